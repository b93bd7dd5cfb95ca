// Declared flags and config files (apps/cli.h): defaults, overrides, types and the errors users see.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "apps/cli.h"
#include "kernels/check.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::apps;
using stgs::testing::TempDir;

namespace {

CommandLine example() {
  return CommandLine("stgs search", "stgs search FEATURES [options]", "Searches.",
                     {Flag{"features", "", "feature cache", "DIR"}.positional(),
                      {"epochs", 30, "search epochs"},
                      {"arch-lr", 3e-3, "architecture learning rate"},
                      {"mode", "stgs", "stgs or softmax"},
                      {"fast", false, "GDAS-style fast path"},
                      {"plots", true, "render PNG plots"}});
}

}  // namespace

TEST_CASE("flags: defaults, command line, config file and precedence", "[app]") {
  const CommandLine cl = example();
  ParsedCommand p = cl.parse(std::vector<std::string>{"feats"});
  CHECK(p.config["features"] == "feats");
  CHECK(p.given == std::set<std::string>{"features"});
  CHECK(p.config["epochs"] == 30);
  CHECK(p.config["arch_lr"] == 3e-3);
  CHECK(p.config["fast"] == false);
  CHECK_FALSE(p.help);

  p = cl.parse(std::vector<std::string>{"--epochs", "5", "--arch-lr=0.01", "--fast", "--no-plots", "x", "--mode",
                                        "softmax"});
  CHECK(p.config["epochs"] == 5);
  CHECK(p.config["arch_lr"] == 0.01);
  CHECK(p.config["fast"] == true);
  CHECK(p.config["plots"] == false);
  CHECK(p.config["mode"] == "softmax");
  CHECK(p.config["features"] == "x");

  TempDir tmp("flags");
  const std::string path = (tmp.dir / "c.json").string();
  std::ofstream(path) << R"({"epochs": 7, "arch_lr": 0.5, "fast": true})";
  p = cl.parse(std::vector<std::string>{"--config", path, "--epochs", "9"});
  CHECK(p.config["epochs"] == 9);  // the flag wins over the file
  CHECK(p.config["arch_lr"] == 0.5);
  CHECK(p.config["fast"] == true);
  CHECK(p.config["mode"] == "stgs");  // neither: the default
  CHECK(p.given == std::set<std::string>{"epochs", "arch_lr", "fast"});
  CHECK(cl.parse(std::vector<std::string>{"-h"}).help);
}

TEST_CASE("flags: errors name the flag or key and what was expected", "[app]") {
  const CommandLine cl = example();
  using V = std::vector<std::string>;
  REQUIRE_THROWS_WITH(cl.parse(V{"--epoch", "3"}), Catch::Contains("unknown flag --epoch (did you mean --epochs?)"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--epochs"}), Catch::Contains("--epochs expects a value"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--epochs", "3.5"}), Catch::Contains("--epochs expects an integer, got '3.5'"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--arch-lr", "fast"}), Catch::Contains("--arch-lr expects a number, got 'fast'"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--fast=1"}), Catch::Contains("is a switch and takes no value"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--no-epochs"}), Catch::Contains("only switches have a --no- form"));

  TempDir tmp("flags_bad");
  const std::string path = (tmp.dir / "c.json").string();
  std::ofstream(path) << R"({"epochs": "many"})";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains(path + ": \"epochs\" expects an integer"));
  std::ofstream(path) << R"({"arch-lr": 0.1, "lamda": 3})";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains("unknown key \"lamda\""));
  std::ofstream(path) << R"([1, 2])";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains("one JSON object"));
  std::ofstream(path) << R"({"epochs": 1, "epochs": 2})";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains("duplicate key"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", (tmp.dir / "missing.json").string()}),
                      Catch::Contains("cannot read config file") && Catch::Contains("missing.json': no such file"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", tmp.dir.string()}),
                      Catch::Contains("cannot read config file '" + tmp.dir.string() + "': is a directory"));
  std::ofstream(path) << "{\"epochs\": 1";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains(path + ": config file is not valid JSON"));
  // A forgotten value is a usage error, not the next flag taken as the value.
  REQUIRE_THROWS_AS(cl.parse(V{"--arch-lr", "--fast"}), UsageError);
  REQUIRE_THROWS_WITH(cl.parse(V{"--arch-lr", "--fast"}), Catch::Contains("--arch-lr expects a value"));
  REQUIRE_THROWS_AS(cl.parse(V{"--epochs"}), UsageError);
  CHECK(cl.parse(V{"--arch-lr", "-0.5"}).config["arch_lr"] == -0.5);  // a negative number is a value
}

TEST_CASE("flags: bounds, choices, positional and required arguments, word lists, help", "[app]") {
  const CommandLine cl("stgs pretrain", "stgs pretrain MANIFEST [options]", "Trains.",
                       {Flag{"manifest", "", "the manifest", "MANIFEST"}.positional().required(),
                        Flag{"out", "", "the output", "FILE"}.required(),
                        Flag{"clips", 200, "clips in all"}.in(1, 1000),
                        Flag{"seed", 1, "seed"}.at_least(0),
                        Flag{"modality", "image", "which backbone"}.one_of({"image", "audio"}),
                        Flag{"sweep", "", "axes", "AXIS=V"}.words(),
                        {"quiet", false, "no output"}});
  using V = std::vector<std::string>;
  ParsedCommand p = cl.parse(V{"m.csv", "--out", "o", "--sweep", "lambda=1,2", "m=3", "--quiet"});
  CHECK(p.config["manifest"] == "m.csv");
  CHECK(p.config["sweep"] == "lambda=1,2 m=3");
  CHECK(p.config["quiet"] == true);
  CHECK(cl.parse(V{"m.csv", "--out", "o", "--sweep=lambda=1", "m=3"}).config["sweep"] == "lambda=1 m=3");
  p = cl.parse(V{"--manifest", "m.csv", "--out=o", "--clips", "1000", "--modality", "audio", "--seed", "0"});
  CHECK(p.config["clips"] == 1000);
  CHECK(p.config["modality"] == "audio");
  CHECK(cl.parse(V{"--help"}).help);  // no required check with --help

  // A positional word list takes every bare argument from its own on ("stgs report RUN_DIR RUN_DIR").
  const CommandLine list("stgs report", "stgs report RUN_DIR [RUN_DIR ...]", "Reports.",
                         {Flag{"runs", "", "the runs", "RUN_DIR"}.positional().required().words(),
                          {"out", "", "the directory"}});
  CHECK(list.parse(V{"a", "--out", "o", "b", "c"}).config["runs"] == "a b c");
  CHECK(list.parse(V{"--runs", "a", "b"}).config["runs"] == "a b");
  REQUIRE_THROWS_WITH(list.parse(V{"--runs", "a", "--out", "o", "b"}), Catch::Contains("unexpected argument 'b'"));
  REQUIRE_THROWS_WITH(list.parse(V{"--out", "o"}), Catch::Contains("stgs report: RUN_DIR is required"));

  // Usage errors (exit status 2) and bad values (status 1) are told apart by type.
  REQUIRE_THROWS_WITH(cl.parse(V{}), Catch::Contains("stgs pretrain: MANIFEST and --out FILE are required"));
  REQUIRE_THROWS_AS(cl.parse(V{"m.csv"}), UsageError);
  REQUIRE_THROWS_WITH(cl.parse(V{"m.csv", "n.csv", "--out", "o"}), Catch::Contains("unexpected argument 'n.csv'"));
  REQUIRE_THROWS_AS(cl.parse(V{"m.csv", "--out", "o", "--bogus"}), UsageError);
  auto bad_value = [&](const V& args, const std::string& message) {
    try {
      cl.parse(args);
      FAIL("no error for " << args.back());
    } catch (const UsageError& e) {
      FAIL("a bad value is not a usage error: " << e.what());
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::Contains(message));
    }
  };
  bad_value(V{"m", "--out", "o", "--clips", "0"}, "--clips expects an integer in [1, 1000], got '0'");
  bad_value(V{"m", "--out", "o", "--clips", "x"}, "--clips expects an integer in [1, 1000], got 'x'");
  bad_value(V{"m", "--out", "o", "--seed", "-1"}, "--seed expects an integer >= 0, got '-1'");
  bad_value(V{"m", "--out", "o", "--modality", "video"}, "--modality expects image or audio, got 'video'");
  bad_value(V{"m", "--out", "o", "--sweep", "--quiet"}, "--sweep expects a value");

  TempDir tmp("flags_bounds");
  const std::string path = (tmp.dir / "c.json").string();
  std::ofstream(path) << R"({"manifest": "from-file.csv", "out": "o", "clips": 5000})";
  bad_value(V{"--config", path}, path + ": \"clips\" expects an integer in [1, 1000], got 5000");
  std::ofstream(path) << R"({"manifest": "from-file.csv", "out": "o", "modality": "audio"})";
  p = cl.parse(V{"--config", path, "flag.csv"});
  CHECK(p.config["manifest"] == "flag.csv");  // the argument overrides the file
  CHECK(p.config["modality"] == "audio");

  // A default the flag itself would refuse is a programming error.
  REQUIRE_THROWS_WITH(CommandLine("x", "x", "x", {Flag{"n", 0, "count"}.in(1, 5)}),
                      Catch::Contains("the default of --n expects an integer in [1, 5], got 0"));

  FILE* help = std::tmpfile();
  REQUIRE(help != nullptr);
  cl.print_help(help);
  std::rewind(help);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), help));
  std::fclose(help);
  CHECK_THAT(text, Catch::Contains("[--manifest] MANIFEST") && Catch::Contains("(required)") &&
                       Catch::Contains("clips in all; 1..1000 (default 200)") &&
                       Catch::Contains("--modality image|audio") && Catch::Contains("--sweep AXIS=V ..."));
}
