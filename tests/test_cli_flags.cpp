// Declared flags and config files (apps/cli.h): defaults, overrides, types and the errors users see.
#include <catch2/catch.hpp>
#include <fstream>
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
                     {{"epochs", 30, "search epochs"},
                      {"arch-lr", 3e-3, "architecture learning rate"},
                      {"mode", "stgs", "stgs or softmax"},
                      {"fast", false, "GDAS-style fast path"},
                      {"plots", true, "render PNG plots"}});
}

}  // namespace

TEST_CASE("flags: defaults, command line, config file and precedence", "[app]") {
  const CommandLine cl = example();
  ParsedCommand p = cl.parse(std::vector<std::string>{"feats"});
  CHECK(p.positional == std::vector<std::string>{"feats"});
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
  CHECK(p.positional == std::vector<std::string>{"x"});

  TempDir tmp("flags");
  const std::string path = (tmp.dir / "c.json").string();
  std::ofstream(path) << R"({"epochs": 7, "arch_lr": 0.5, "fast": true})";
  p = cl.parse(std::vector<std::string>{"--config", path, "--epochs", "9"});
  CHECK(p.config["epochs"] == 9);  // the flag wins over the file
  CHECK(p.config["arch_lr"] == 0.5);
  CHECK(p.config["fast"] == true);
  CHECK(p.config["mode"] == "stgs");  // neither: the default
  CHECK(cl.parse(std::vector<std::string>{"-h"}).help);
}

TEST_CASE("flags: errors name the flag or key and what was expected", "[app]") {
  const CommandLine cl = example();
  using V = std::vector<std::string>;
  REQUIRE_THROWS_WITH(cl.parse(V{"--epoch", "3"}), Catch::Contains("unknown flag --epoch (did you mean --epochs?)"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--epochs"}), Catch::Contains("--epochs expects a value"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--epochs", "3.5"}), Catch::Contains("--epochs: expects an integer, got '3.5'"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--arch-lr", "fast"}), Catch::Contains("--arch-lr: expects a number, got 'fast'"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--fast=1"}), Catch::Contains("is a switch and takes no value"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--no-epochs"}), Catch::Contains("only switches have a --no- form"));

  TempDir tmp("flags_bad");
  const std::string path = (tmp.dir / "c.json").string();
  std::ofstream(path) << R"({"epochs": "many"})";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains(path + ": \"epochs\": expects an integer"));
  std::ofstream(path) << R"({"arch-lr": 0.1, "lamda": 3})";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains("unknown key \"lamda\""));
  std::ofstream(path) << R"([1, 2])";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains("one JSON object"));
  std::ofstream(path) << R"({"epochs": 1, "epochs": 2})";
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", path}), Catch::Contains("duplicate key"));
  REQUIRE_THROWS_WITH(cl.parse(V{"--config", (tmp.dir / "missing.json").string()}),
                      Catch::Contains("cannot open the config file"));
}
