#include "apps/cli.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "apps/options.h"
#include "engine/io/atomic_file.h"
#include "engine/io/read_file.h"
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

// "a or b", "a, b or c" (last = " or "); "a, b and c" (last = " and ").
std::string list_text(const std::vector<std::string>& items, const std::string& last) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : i + 1 == items.size() ? last : ", ") + items[i];
  return out;
}

// A bound as the flag's type prints it: "1000000" for an integer flag, not "1e+06".
std::string bound_text(const Flag& flag, double v) {
  if (flag.default_value.is_number_integer()) return std::to_string((long long)v);
  std::ostringstream out;
  out << v;
  return out.str();
}

// "an integer in [1, 1000]", "an integer >= 0", "one of a, b": what the flag accepts.
std::string expectation(const Flag& flag) {
  if (!flag.allowed.empty()) return list_text(flag.allowed, " or ");
  std::string text = type_name(flag.default_value);
  if (flag.min_value && flag.max_value)
    text += " in [" + bound_text(flag, *flag.min_value) + ", " + bound_text(flag, *flag.max_value) + "]";
  else if (flag.min_value)
    text += " >= " + bound_text(flag, *flag.min_value);
  return text;
}

// `text` broken at spaces and followed by `tail` (kept on one line) in lines of at most `width` columns, the
// lines after the first indented by `indent` (the first one starts there already).
std::string wrapped(const std::string& text, const std::string& tail, size_t indent, size_t width) {
  std::vector<std::string> units;
  for (size_t start = 0; start < text.size();) {
    const size_t end = std::min(text.find(' ', start), text.size());
    units.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (!tail.empty()) units.push_back(tail);
  std::string out;
  size_t column = indent;
  for (const std::string& unit : units) {
    if (column > indent && column + 1 + unit.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
    } else if (column > indent) {
      out += ' ';
      ++column;
    }
    out += unit;
    column += unit.size();
  }
  return out;
}

}  // namespace

Flag Flag::in(double lo, double hi) const {
  Flag f = *this;
  f.min_value = lo;
  f.max_value = hi;
  return f;
}

Flag Flag::at_least(double lo) const {
  Flag f = *this;
  f.min_value = lo;
  return f;
}

Flag Flag::one_of(std::vector<std::string> values) const {
  Flag f = *this;
  f.allowed = std::move(values);
  return f;
}

Flag Flag::positional() const {
  Flag f = *this;
  f.is_positional = true;
  return f;
}

Flag Flag::required() const {
  Flag f = *this;
  f.is_required = true;
  return f;
}

Flag Flag::words() const {
  Flag f = *this;
  f.takes_words = true;
  return f;
}

CommandLine::CommandLine(std::string command, std::string synopsis, std::string description, std::vector<Flag> flags)
    : command_(std::move(command)),
      synopsis_(std::move(synopsis)),
      description_(std::move(description)),
      flags_(std::move(flags)) {
  for (const Flag& f : flags_) {
    const nlohmann::json& d = f.default_value;
    STGS_CHECK(d.is_boolean() || d.is_number() || d.is_string(), command_, ": flag --", f.name,
               " needs a boolean, number or string default");
    STGS_CHECK(f.name != "config" && f.name != "help", command_, ": --", f.name, " is reserved");
    STGS_CHECK(d.is_number() || (!f.min_value && !f.max_value), command_, ": --", f.name, " has bounds but no number");
    STGS_CHECK(d.is_string() || (f.allowed.empty() && !f.is_positional && !f.is_required && !f.takes_words),
               command_, ": --", f.name, ": choices, positional, required and words need a string flag");
    // The default is a value the flag accepts, so a saved config always reads back (a required flag's
    // default, "", stands for "not given").
    STGS_CHECK(!f.is_required || d == "", command_, ": required --", f.name, " needs the default \"\"");
    if (!f.is_required) check_value(f, d, command_ + ": the default of --" + f.name, d.dump());
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

void CommandLine::check_value(const Flag& flag, const nlohmann::json& value, const std::string& where,
                              const std::string& shown) const {
  const nlohmann::json& d = flag.default_value;
  const bool type_ok = d.is_boolean()          ? value.is_boolean()
                       : d.is_number_integer() ? value.is_number_integer()
                       : d.is_number()         ? value.is_number()
                                               : value.is_string();
  bool ok = type_ok;
  if (ok && value.is_number()) {
    const double v = value.get<double>();
    ok = std::isfinite(v) && (!flag.min_value || v >= *flag.min_value) && (!flag.max_value || v <= *flag.max_value);
  }
  if (ok && !flag.allowed.empty())
    ok = std::find(flag.allowed.begin(), flag.allowed.end(), value.get<std::string>()) != flag.allowed.end();
  STGS_CHECK(ok, where, " expects ", expectation(flag), ", got ", shown);
}

nlohmann::json CommandLine::convert(const Flag& flag, const std::string& text, const std::string& where) const {
  const nlohmann::json& d = flag.default_value;
  const std::string shown = "'" + text + "'";
  nlohmann::json value = text;
  char* end = nullptr;
  if (d.is_number_integer()) {
    errno = 0;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    STGS_CHECK(!text.empty() && *end == '\0' && errno == 0, where, " expects ", expectation(flag), ", got ", shown);
    value = v;
  } else if (d.is_number()) {
    const double v = std::strtod(text.c_str(), &end);
    STGS_CHECK(!text.empty() && *end == '\0', where, " expects ", expectation(flag), ", got ", shown);
    value = v;
  }
  check_value(flag, value, where, shown);
  return value;
}

void CommandLine::check_required(const nlohmann::json& config) const {
  std::vector<std::string> missing;
  for (const Flag& f : flags_) {
    if (!f.is_required || !config[key_of(f.name)].get<std::string>().empty()) continue;
    const std::string metavar = f.metavar.empty() ? "TEXT" : f.metavar;
    missing.push_back(f.is_positional ? metavar : "--" + f.name + " " + metavar);
  }
  if (missing.empty()) return;
  throw UsageError(command_ + ": " + list_text(missing, " and ") + (missing.size() == 1 ? " is" : " are") +
                   " required");
}

ParsedCommand CommandLine::parse(int argc, char** argv) const {
  return parse(std::vector<std::string>(argv, argv + argc));
}

ParsedCommand CommandLine::parse(const std::vector<std::string>& args) const {
  ParsedCommand out;
  nlohmann::json cli = nlohmann::json::object();  // what the command line set, applied over the file
  std::vector<std::string> bare;                  // arguments that are not flags, in order
  std::string config_path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      bare.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) value = name.substr(eq + 1), name = name.substr(0, eq);
    auto next_value = [&](const std::string& flag) {
      if (inline_value) return value;
      // "--out --quiet": the value was forgotten; taking the next flag as it would be silently wrong.
      if (i + 1 == args.size() || (args[i + 1].rfind("--", 0) == 0 && args[i + 1].size() > 2))
        throw UsageError(command_ + ": --" + flag + " expects a value");
      return args[++i];
    };
    if (name == "config") {
      config_path = next_value("config");
      continue;
    }
    const bool negated = name.rfind("no-", 0) == 0 && find(name) == nullptr;
    const Flag* flag = find(negated ? name.substr(3) : name);
    if (flag == nullptr) throw UsageError(command_ + ": unknown flag --" + name + closest(name));
    const std::string where = command_ + ": --" + flag->name;
    const std::string key = key_of(flag->name);
    if (flag->default_value.is_boolean()) {
      STGS_CHECK(!inline_value, where, " is a switch and takes no value (use --", flag->name, " or --no-",
                 flag->name, ")");
      cli[key] = !negated;
    } else if (negated) {
      throw UsageError(command_ + ": unknown flag --" + name + "; only switches have a --no- form");
    } else if (flag->takes_words) {
      std::string words = value;  // "--sweep=lambda=5 m=5": the inline value is the first word
      while (i + 1 < args.size() && args[i + 1].rfind('-', 0) != 0) words += (words.empty() ? "" : " ") + args[++i];
      STGS_CHECK(!words.empty(), where, " expects a value");
      cli[key] = words;
    } else {
      cli[key] = convert(*flag, next_value(flag->name), where);
    }
  }

  // Bare arguments fill the positional flags not given as flags, in declaration order; a positional flag that
  // takes words takes every bare argument left ("stgs report RUN_DIR RUN_DIR").
  size_t next = 0;
  const Flag* collecting = nullptr;
  for (const std::string& arg : bare) {
    if (collecting != nullptr) {
      cli[key_of(collecting->name)] = cli[key_of(collecting->name)].get<std::string>() + " " + arg;
      continue;
    }
    while (next < flags_.size() && (!flags_[next].is_positional || cli.contains(key_of(flags_[next].name)))) ++next;
    if (next == flags_.size()) throw UsageError(command_ + ": unexpected argument '" + arg + "'");
    const Flag& flag = flags_[next++];
    cli[key_of(flag.name)] = convert(flag, arg, command_ + ": " + (flag.metavar.empty() ? flag.name : flag.metavar));
    if (flag.takes_words) collecting = &flag;
  }

  for (const Flag& f : flags_) out.config[key_of(f.name)] = f.default_value;
  if (!config_path.empty()) {
    const nlohmann::json file = parse_json_strict(read_file(config_path, "config file"), config_path + ": ", "config file");
    STGS_CHECK(file.is_object(), config_path, ": a config file is one JSON object of flag names and values");
    for (const auto& [key, value] : file.items()) {
      STGS_CHECK(key != "config", config_path, ": \"config\" cannot be set inside a config file");
      const Flag* flag = find(key);
      if (flag == nullptr)
        throw UsageError(command_ + ": " + config_path + ": unknown key \"" + key + "\"" + closest(key));
      check_value(*flag, value, config_path + ": \"" + key + "\"", value.dump());
      out.config[key_of(flag->name)] = value;
      out.given.insert(key_of(flag->name));
    }
  }
  for (const auto& [key, value] : cli.items()) {
    out.config[key] = value;
    out.given.insert(key);
  }
  if (!out.help) check_required(out.config);
  return out;
}

std::optional<ParsedCommand> CommandLine::parse_or_print_help(int argc, char** argv) const {
  ParsedCommand cmd = parse(argc, argv);
  if (!cmd.help) return cmd;
  print_help(stdout);
  return std::nullopt;
}

nlohmann::json CommandLine::resumed_config(const ParsedCommand& cmd, const nlohmann::json& saved,
                                           const std::string& saved_path) const {
  for (const std::string& key : cmd.given)
    STGS_CHECK(key == "resume" || key == "quiet", command_, " --resume: --", flag_name_of(key),
               " cannot change a run being resumed (its config.json holds its options)");
  // The saved options are checked as a --config file's would be, before the run is touched: an edited value,
  // or the directory of another command's run (its keys are not this command's options).
  STGS_CHECK(saved.is_object(), saved_path, ": expected a JSON object of options");
  for (const auto& [key, value] : saved.items()) {
    const Flag* flag = find(key);
    STGS_CHECK(flag != nullptr, saved_path, ": \"", key, "\" is not an option of ", command_,
               " (the directory of another command's run?)");
    check_value(*flag, value, saved_path + ": \"" + key + "\"", value.dump());
  }
  nlohmann::json config = parse(std::vector<std::string>{}).config;
  config.update(saved);
  config["quiet"] = cmd.config["quiet"];
  return config;
}

void CommandLine::print_help(FILE* out) const {
  std::fprintf(out, "usage: %s\n\n%s\n\noptions (config-file keys use '_' for '-'):\n", synopsis_.c_str(),
               description_.c_str());
  for (const Flag& f : flags_) {
    const nlohmann::json& d = f.default_value;
    std::string left = f.is_positional ? "[--" + f.name + "]" : "--" + f.name;
    if (!d.is_boolean()) {
      std::string metavar = f.metavar;
      if (metavar.empty()) metavar = join_list(f.allowed, "|");
      if (metavar.empty()) metavar = d.is_number_integer() ? "N" : d.is_number() ? "X" : "TEXT";
      left += " " + metavar;
      if (f.takes_words) left += " ...";
    }
    std::string help = f.help;
    if (f.min_value && f.max_value)
      help += "; " + bound_text(f, *f.min_value) + ".." + bound_text(f, *f.max_value);
    else if (f.min_value)
      help += "; >= " + bound_text(f, *f.min_value);
    // An empty string default means "not given"; the help says what that does.
    std::string def = d.is_string() ? d.get<std::string>() : d.dump();
    if (d.is_boolean()) def = d.get<bool>() ? "on; --no-" + f.name + " turns it off" : "off";
    def = f.is_required ? "(required)" : def.empty() ? "" : "(default " + def + ")";
    std::fprintf(out, "  %-26s %s\n", left.c_str(), wrapped(help, def, 29, 112).c_str());
  }
  std::fprintf(out, "  %-26s %s\n  %-26s %s\n", "--config FILE",
               "JSON object of the options above; flags given here override it", "-h, --help", "show this text");
}

void save_config(const std::string& path, const nlohmann::json& config, const std::string& command) {
  write_file_atomically(path, config.dump(2) + "\n", command + ": config: ");
}

}  // namespace stgs::apps
