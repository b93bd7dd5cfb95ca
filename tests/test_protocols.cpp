// The protocols (apps/protocol.h): which caches each split comes from under within, mixed and cross, the
// merged splits and the errors for wrong counts and for caches of other shapes; then `stgs search` and
// `stgs eval` with --protocol end to end on two small caches drawn with different seeds.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/protocol.h"
#include "apps/run_dir.h"
#include "tests/feature_cache_fixture.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::testing;
using namespace stgs::apps;
namespace fs = std::filesystem;
using Paths = std::vector<std::string>;

TEST_CASE("protocols: the caches of each split, merged splits, errors", "[app]") {
  TempDir tmp("protocols");
  const std::string a = tmp.file("a"), b = tmp.file("b"), narrow = tmp.file("narrow");
  write_feature_cache(a, 5);
  write_feature_cache(b, 6, 4, {32, 16, 16});
  write_feature_cache(narrow, 7, 3);

  ProtocolCaches caches = protocol_caches("mixed", a + "," + b, "", "stgs eval");
  CHECK(caches.train == Paths{a, b});
  CHECK(caches.test == Paths{a, b});
  ProtocolData data = load_protocol_data(caches, true);
  CHECK(data.train.size() == 80);
  CHECK(data.val.size() == 40);
  CHECK(data.test.size() == 40);
  CHECK(data.train.ids[47] == "train-s5-47");  // a's rows, then b's
  CHECK(data.train.ids[48] == "train-s6-0");
  CHECK(data.train.features[7].size(0) == 80);
  CHECK(data.test.labels.to_vector<int64_t>().size() == 40);

  caches = protocol_caches("cross", a, b, "stgs eval");
  CHECK(caches.train == Paths{a});
  CHECK(caches.test == Paths{b});
  CHECK(caches.by_split()["val"] == nlohmann::json(Paths{a}));
  CHECK(caches.summary() == "cross: train and val from " + a + "; test from " + b);
  data = load_protocol_data(caches, true);
  CHECK(data.train.size() == 48);
  CHECK(data.test.size() == 16);
  CHECK(data.test.ids.front() == "test-s6-0");
  CHECK(load_protocol_data(caches, false).test.size() == 0);  // the search reads no test split

  REQUIRE_THROWS_WITH(protocol_caches("mixed", a, "", "stgs eval"),
                      Catch::Contains("--protocol mixed merges two or more caches"));
  REQUIRE_THROWS_WITH(protocol_caches("within", a + "," + b, "", "stgs eval"),
                      Catch::Contains("--features names 2 caches; --protocol within takes one"));
  REQUIRE_THROWS_WITH(protocol_caches("cross", a, "", "stgs eval"),
                      Catch::Contains("--protocol cross needs --test-features DIR"));
  REQUIRE_THROWS_WITH(protocol_caches("within", a, b, "stgs eval"),
                      Catch::Contains("--test-features is for --protocol cross"));
  REQUIRE_THROWS_WITH(protocol_caches("mixed", a + "," + a, "", "stgs eval"), Catch::Contains(a + " twice"));
  REQUIRE_THROWS_WITH(load_protocol_data(protocol_caches("mixed", a + "," + narrow, "", "x"), false),
                      Catch::Contains(narrow + "/train.safetensors: its features (") &&
                          Catch::Contains("L 3) differ from those of " + a + "/train.safetensors (") &&
                          Catch::Contains("L 4)"));
}

TEST_CASE("stgs search and eval --protocol mixed and cross", "[app][e2e]") {
  TempDir tmp("protocols_cli");
  const std::string a = tmp.file("a"), b = tmp.file("b"), narrow = tmp.file("narrow"), runs = tmp.file("runs");
  write_feature_cache(a, 5);
  write_feature_cache(b, 6, 4, {32, 16, 16});
  write_feature_cache(narrow, 7, 3);

  // The search: mixed from the config file, --epochs on the command line over the file's.
  const std::string config = tmp.file("search.json");
  std::ofstream(config) << R"({"protocol": "mixed", "epochs": 4, "samples": 1, "channels": 8, "plots": false})";
  CommandResult r = run_stgs("search --config " + config + " --features " + a + "," + b + " --epochs 1 --runs-dir " +
                             runs + " --quiet");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const std::string search = only_run(runs, "search-");
  const nlohmann::json searched = RunDir::open(search).read_json("config.json");
  CHECK(searched["protocol"] == "mixed");
  CHECK(searched["features"] == a + "," + b);
  CHECK(searched["epochs"] == 1);
  CHECK(searched["samples"] == 1);
  CHECK_THAT(slurp(search + "/log.txt"),
             Catch::Contains("80 training and 40 validation clips from " + a + ", " + b + " (protocol mixed)"));

  // Its evaluation takes the protocol with the features (the options from a file, --epochs over it).
  const std::string eval_config = tmp.file("eval.json");
  std::ofstream(eval_config) << R"({"epochs": 3, "unimodal": false, "plots": false, "quiet": true})";
  const std::string eval_flags = " --config " + eval_config + " --epochs 1 --runs-dir " + runs;
  r = run_stgs("eval " + search + eval_flags);
  REQUIRE(r.status == 0);
  const std::string mixed = only_run(runs, "eval-");
  CHECK(RunDir::open(mixed).read_json("config.json")["epochs"] == 1);
  nlohmann::json results = RunDir::open(mixed).read_json("results.json");
  CHECK(results["models"].size() == 1);
  CHECK(results["protocol"] == "mixed");
  CHECK(results["caches"]["train"] == nlohmann::json(Paths{a, b}));
  CHECK(results["caches"]["test"] == nlohmann::json(Paths{a, b}));
  CHECK(results["test_clips"] == 40);
  CHECK_THAT(slurp(mixed + "/scores.csv"), Catch::Contains("test-s5-23") && Catch::Contains("test-s6-15"));
  CHECK_THAT(slurp(mixed + "/report.md"),
             Catch::Contains("Protocol **mixed**: train and val from `" + a + "`, `" + b + "`; test from `" + a));

  // Cross: trained on a, tested on b's test split.
  r = run_stgs("eval " + search + " --features " + a + " --protocol cross --test-features " + b + " --name cross" +
               eval_flags);
  REQUIRE(r.status == 0);
  results = RunDir::open(only_run(runs, "cross-")).read_json("results.json");
  CHECK(results["protocol"] == "cross");
  CHECK(results["caches"]["train"] == nlohmann::json(Paths{a}));
  CHECK(results["caches"]["test"] == nlohmann::json(Paths{b}));
  CHECK(results["test_clips"] == 16);

  // Caches of other shapes are named both; search has no cross protocol.
  r = run_stgs("eval " + search + " --features " + a + " --protocol cross --test-features " + narrow +
               " --name bad" + eval_flags);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains(narrow + "/test.safetensors") && Catch::Contains(a + "/train.safetensors"));
  r = run_stgs("search " + a + " --protocol cross --runs-dir " + runs);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--protocol expects within or mixed, got 'cross'"));
}
