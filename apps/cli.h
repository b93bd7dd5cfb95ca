// Declared command-line flags with a JSON config file beside them, for every subcommand: every flag --some-name
// has the config key "some_name", a config file given with --config FILE sets any of them, flags given on the
// command line override the file, and the result (every flag, defaults included) is the resolved config that
// the commands writing an output save beside it (search and eval in their run directories; synth, pretrain and
// extract next to what they write).
// defines: Flag, ParsedCommand, UsageError, CommandLine, flag_name_of, save_config
#pragma once

#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/check.h"

namespace stgs::apps {

// One flag. Its type is its default's JSON type: a boolean is a switch (--name sets true, --no-name false),
// an integer takes a whole number, a float any number, a string any text. The modifiers narrow it and are
// chained onto the declaration: Flag{"clips", 200, "clips in all", "N"}.in(1, 1000000).
struct Flag {
  std::string name;  // without dashes, words joined by '-': "arch-lr"
  nlohmann::json default_value;
  std::string help;
  std::string metavar = "";  // shown in the help, e.g. "N"; empty = from the type (or the choices)

  std::optional<double> min_value = std::nullopt, max_value = std::nullopt;  // a number's bounds, inclusive
  std::vector<std::string> allowed = {};  // a string's only values; empty = any
  bool is_positional = false;  // a bare argument sets it too, in declaration order ("stgs pretrain MANIFEST")
  bool is_required = false;    // a string that must be given, non-empty (a usage error otherwise)
  bool takes_words = false;    // its value: every following argument up to the next "-...", joined by spaces
                               // (positional too: every bare argument from its own on)

  Flag in(double lo, double hi) const;
  Flag at_least(double lo) const;
  Flag one_of(std::vector<std::string> values) const;
  Flag positional() const;
  Flag required() const;
  Flag words() const;
};

struct ParsedCommand {
  nlohmann::json config;        // every flag's value, keys with '_' ("arch_lr")
  std::set<std::string> given;  // the keys set by the command line or the config file (not defaults)
  bool help = false;            // -h/--help was given: the caller prints help and exits 0
};

// A command line that cannot be run as written: an unknown flag or config key, a missing required argument,
// an unexpected extra argument. main() prints it with a pointer to --help and exits with status 2 (a bad
// value of a known flag is an ordinary stgs::Error: status 1).
class UsageError : public Error {
 public:
  using Error::Error;
};

class CommandLine {
 public:
  CommandLine(std::string command, std::string synopsis, std::string description, std::vector<Flag> flags);

  // argv: the arguments after the subcommand's name. Throws naming the flag or config key and what was
  // expected: UsageError for an unknown flag or key (with the closest known name), a missing required flag or
  // a bare argument beyond the positional flags; stgs::Error for a missing or malformed value, a value of the
  // wrong type, outside its bounds or not among its choices, a config file that is not a JSON object, and
  // `--config` itself inside a config file. With -h/--help the required flags are not checked.
  ParsedCommand parse(int argc, char** argv) const;
  // The same from an argument vector (tests).
  ParsedCommand parse(const std::vector<std::string>& args) const;
  // parse(), except that with -h/--help it prints the help to stdout and returns nothing: the command then
  // exits with status 0.
  std::optional<ParsedCommand> parse_or_print_help(int argc, char** argv) const;

  // The config of a run being resumed: `saved` (its config.json, read from `saved_path`) over the defaults (for
  // keys added since it was written), with --quiet from `cmd`. Throws naming any other flag `cmd` was given
  // besides --resume (the saved options are the run's), and naming the file and key when a saved key is not
  // one of this command's options (another command's run) or its value is not one the flag accepts.
  nlohmann::json resumed_config(const ParsedCommand& cmd, const nlohmann::json& saved,
                                const std::string& saved_path) const;

  void print_help(FILE* out) const;

  const std::string& command() const { return command_; }
  const std::vector<Flag>& flags() const { return flags_; }

  static std::string key_of(const std::string& flag_name);  // "arch-lr" -> "arch_lr"

 private:
  const Flag* find(const std::string& name) const;  // by flag name or config key
  std::string closest(const std::string& name) const;
  nlohmann::json convert(const Flag& flag, const std::string& text, const std::string& where) const;
  void check_value(const Flag& flag, const nlohmann::json& value, const std::string& where,
                   const std::string& shown) const;
  void check_required(const nlohmann::json& config) const;

  std::string command_, synopsis_, description_;
  std::vector<Flag> flags_;
};

// "arch_lr" -> "arch-lr": a config key as the flag a user types.
std::string flag_name_of(const std::string& key);

// Writes a resolved config (pretty-printed JSON) to `path` atomically; `command` prefixes errors.
void save_config(const std::string& path, const nlohmann::json& config, const std::string& command);

}  // namespace stgs::apps
