#include "apps/cli.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/io/json_strict.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

// Levenshtein distance, for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const char* type_name(const nlohmann::json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  return "a string";
}

std::string read_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STGS_CHECK(in.good(), path, ": cannot open the config file: ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

CommandLine::CommandLine(std::string command, std::string synopsis, std::string description, std::vector<Flag> flags)
    : command_(std::move(command)),
      synopsis_(std::move(synopsis)),
      description_(std::move(description)),
      flags_(std::move(flags)) {
  for (const Flag& f : flags_) {
    STGS_CHECK(f.default_value.is_boolean() || f.default_value.is_number() || f.default_value.is_string(),
               command_, ": flag --", f.name, " needs a boolean, number or string default");
    STGS_CHECK(f.name != "config" && f.name != "help", command_, ": --", f.name, " is reserved");
  }
}

std::string CommandLine::key_of(const std::string& flag_name) {
  std::string key = flag_name;
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

std::string flag_name_of(const std::string& key) {
  std::string name = key;
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

const Flag* CommandLine::find(const std::string& name) const {
  const std::string key = key_of(name);
  for (const Flag& f : flags_)
    if (key_of(f.name) == key) return &f;
  return nullptr;
}

std::string CommandLine::closest(const std::string& name) const {
  const Flag* best = nullptr;
  size_t best_distance = 0;
  for (const Flag& f : flags_) {
    const size_t d = edit_distance(key_of(name), key_of(f.name));
    if (best == nullptr || d < best_distance) best = &f, best_distance = d;
  }
  if (best == nullptr || best_distance > std::max<size_t>(2, name.size() / 3)) return "";
  return " (did you mean --" + best->name + "?)";
}

void CommandLine::check_type(const Flag& flag, const nlohmann::json& value, const std::string& where) const {
  const nlohmann::json& d = flag.default_value;
  const bool ok = d.is_boolean()          ? value.is_boolean()
                  : d.is_number_integer() ? value.is_number_integer()
                  : d.is_number()         ? value.is_number()
                                          : value.is_string();
  STGS_CHECK(ok, where, ": expects ", type_name(d), ", got ", value.dump());
  if (value.is_number_float()) STGS_CHECK(std::isfinite(value.get<double>()), where, ": expects a finite number");
}

nlohmann::json CommandLine::convert(const Flag& flag, const std::string& text, const std::string& where) const {
  const nlohmann::json& d = flag.default_value;
  char* end = nullptr;
  if (d.is_number_integer()) {
    errno = 0;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    STGS_CHECK(!text.empty() && *end == '\0' && errno == 0, where, ": expects an integer, got '", text, "'");
    return v;
  }
  if (d.is_number()) {
    const double v = std::strtod(text.c_str(), &end);
    STGS_CHECK(!text.empty() && *end == '\0' && std::isfinite(v), where, ": expects a number, got '", text, "'");
    return v;
  }
  return text;
}

ParsedCommand CommandLine::parse(int argc, char** argv) const {
  return parse(std::vector<std::string>(argv, argv + argc));
}

ParsedCommand CommandLine::parse(const std::vector<std::string>& args) const {
  ParsedCommand out;
  nlohmann::json cli = nlohmann::json::object();  // what the command line set, applied over the file
  std::string config_path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      out.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) value = name.substr(eq + 1), name = name.substr(0, eq);
    auto next_value = [&](const std::string& flag) {
      if (inline_value) return value;
      STGS_CHECK(i + 1 < args.size(), command_, ": --", flag, " expects a value");
      return args[++i];
    };
    if (name == "config") {
      config_path = next_value("config");
      continue;
    }
    const bool negated = name.rfind("no-", 0) == 0 && find(name) == nullptr;
    const Flag* flag = find(negated ? name.substr(3) : name);
    STGS_CHECK(flag != nullptr, command_, ": unknown flag --", name, closest(name), "; see --help");
    const std::string where = command_ + ": --" + flag->name;
    if (flag->default_value.is_boolean()) {
      STGS_CHECK(!inline_value, where, " is a switch and takes no value (use --", flag->name, " or --no-",
                 flag->name, ")");
      cli[key_of(flag->name)] = !negated;
    } else {
      STGS_CHECK(!negated, command_, ": unknown flag --", name, "; only switches have a --no- form");
      cli[key_of(flag->name)] = convert(*flag, next_value(flag->name), where);
    }
  }

  for (const Flag& f : flags_) out.config[key_of(f.name)] = f.default_value;
  if (!config_path.empty()) {
    const nlohmann::json file = parse_json_strict(read_config_file(config_path), config_path, "config file");
    STGS_CHECK(file.is_object(), config_path, ": a config file is one JSON object of flag names and values");
    for (const auto& [key, value] : file.items()) {
      STGS_CHECK(key != "config", config_path, ": \"config\" cannot be set inside a config file");
      const Flag* flag = find(key);
      STGS_CHECK(flag != nullptr, config_path, ": unknown key \"", key, "\"", closest(key));
      check_type(*flag, value, config_path + ": \"" + key + "\"");
      out.config[key_of(flag->name)] = value;
    }
  }
  for (const auto& [key, value] : cli.items()) out.config[key] = value;
  return out;
}

void CommandLine::print_help(FILE* out) const {
  std::fprintf(out, "usage: %s\n\n%s\n\noptions (config-file keys use '_' for '-'):\n", synopsis_.c_str(),
               description_.c_str());
  for (const Flag& f : flags_) {
    const nlohmann::json& d = f.default_value;
    std::string left = "--" + f.name;
    if (!d.is_boolean()) {
      const std::string metavar =
          !f.metavar.empty() ? f.metavar : d.is_number_integer() ? "N" : d.is_number() ? "X" : "TEXT";
      left += " " + metavar;
    }
    std::string def = d.is_string() ? (d.get<std::string>().empty() ? "none" : d.get<std::string>()) : d.dump();
    if (d.is_boolean()) def = d.get<bool>() ? "on; --no-" + f.name + " turns it off" : "off";
    std::fprintf(out, "  %-24s %s (default %s)\n", left.c_str(), f.help.c_str(), def.c_str());
  }
  std::fprintf(out, "  %-24s %s\n  %-24s %s\n", "--config FILE",
               "JSON object of the options above; flags given here override it", "-h, --help", "show this text");
}

}  // namespace stgs::apps
