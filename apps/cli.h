// Declared command-line flags with a JSON config file beside them, for the commands whose settings are
// saved with their runs (search, eval): every flag --some-name has the config key "some_name", a config file
// given with --config FILE sets any of them, flags given on the command line override the file, and the
// result (every flag, defaults included) is the resolved config that the run saves.
// defines: Flag, CommandLine, ParsedCommand
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stgs::apps {

// One flag. Its type is its default's JSON type: a boolean is a switch (--name sets true, --no-name false),
// an integer takes a whole number, a float any number, a string any text.
struct Flag {
  std::string name;  // without dashes, words joined by '-': "arch-lr"
  nlohmann::json default_value;
  std::string help;
  std::string metavar = "";  // shown in the help, e.g. "N"; empty = from the type
};

struct ParsedCommand {
  nlohmann::json config;                // every flag's value, keys with '_' ("arch_lr")
  std::vector<std::string> positional;  // arguments that are not flags, in order
  bool help = false;                    // -h/--help was given: the caller prints help and exits 0
};

class CommandLine {
 public:
  CommandLine(std::string command, std::string synopsis, std::string description, std::vector<Flag> flags);

  // argv: the arguments after the subcommand's name. Throws stgs::Error naming the flag or config key and
  // what was expected for: an unknown flag or key (with the closest known name), a missing or malformed
  // value, a value of the wrong type, a config file that is not a JSON object, and `--config` itself inside
  // a config file.
  ParsedCommand parse(int argc, char** argv) const;
  // The same from an argument vector (tests).
  ParsedCommand parse(const std::vector<std::string>& args) const;

  void print_help(FILE* out) const;

  static std::string key_of(const std::string& flag_name);  // "arch-lr" -> "arch_lr"

 private:
  const Flag* find(const std::string& name) const;  // by flag name or config key
  std::string closest(const std::string& name) const;
  nlohmann::json convert(const Flag& flag, const std::string& text, const std::string& where) const;
  void check_type(const Flag& flag, const nlohmann::json& value, const std::string& where) const;

  std::string command_, synopsis_, description_;
  std::vector<Flag> flags_;
};

// "arch_lr" -> "arch-lr": a config key as the flag a user types.
std::string flag_name_of(const std::string& key);

}  // namespace stgs::apps
