// The (lambda, M) sweep: its grid and tables (apps/sweep.h), then `stgs search --sweep` end to end on a 2 x 2
// grid of one-epoch cells, resumed after a cell lost its results, and its parse errors.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/run_dir.h"
#include "apps/sweep.h"
#include "tests/feature_cache_fixture.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::testing;
using namespace stgs::apps;
namespace fs = std::filesystem;

TEST_CASE("sweep: grid, cell names and tables", "[app]") {
  SweepGrid g = parse_sweep("lambda=5,10,15,20 m=5,10,15,20", 10, 15);
  CHECK(g.lambdas == std::vector<double>{5, 10, 15, 20});
  CHECK(g.samples == std::vector<int64_t>{5, 10, 15, 20});
  g = parse_sweep(" m=3  ", 10, 15);  // the axis left out keeps the search's value
  CHECK(g.lambdas == std::vector<double>{10});
  CHECK(g.samples == std::vector<int64_t>{3});
  CHECK(parse_sweep("lambda=0.5", 10, 15).samples == std::vector<int64_t>{15});

  REQUIRE_THROWS_WITH(parse_sweep("lambda=5,x", 10, 15),
                      Catch::Contains("'x' in 'lambda=5,x' is not a positive number"));
  REQUIRE_THROWS_WITH(parse_sweep("lambda=0", 10, 15), Catch::Contains("'0' in 'lambda=0' is not a positive number"));
  REQUIRE_THROWS_WITH(parse_sweep("m=2.5", 10, 15), Catch::Contains("'2.5' in 'm=2.5' is not a positive integer"));
  REQUIRE_THROWS_WITH(parse_sweep("lr=1", 10, 15),
                      Catch::Contains("unknown axis 'lr' in 'lr=1' (expected lambda or m)"));
  REQUIRE_THROWS_WITH(parse_sweep("lambda", 10, 15), Catch::Contains("'lambda' is not AXIS=V,V,..."));
  REQUIRE_THROWS_WITH(parse_sweep("lambda=", 10, 15), Catch::Contains("'lambda=' lists no values"));
  REQUIRE_THROWS_WITH(parse_sweep("m=1 m=2", 10, 15), Catch::Contains("the axis m is given twice"));
  REQUIRE_THROWS_WITH(parse_sweep("m=1,1", 10, 15), Catch::Contains("'1' in 'm=1,1' is given twice"));
  REQUIRE_THROWS_WITH(parse_sweep("lambda=5.0000001,5.0000002", 10, 15),
                      Catch::Contains("lambda 5.0000001 and 5.0000002 in") && Catch::Contains("would share a cell directory"));
  REQUIRE_THROWS_WITH(parse_sweep("lambda=1e7", 10, 15), Catch::Contains("lambda 1e+07 in 'lambda=1e7' is outside"));
  CHECK(sweep_cell_name(2.5, 15) == "lambda2.5-m15");

  g = parse_sweep("lambda=1,2 m=1,2", 10, 15);
  const std::vector<SweepResult> results = {{1, 1, 0.9, 0.75, 100, "r/s11", "r/e11"},
                                            {1, 2, 0.875, 0.5, 90, "r/s12", "r/e12"}};
  CHECK(sweep_markdown(g, results, "# T") ==
        "# T\n\nEach cell: test AUC / fusion parameters of the searched genotype.\n\n"
        "| lambda | M = 1 | M = 2 |\n|---|---|---|\n| 1 | 0.9000 / 100 | 0.8750 / 90 |\n| 2 | - | - |\n");
  CHECK(sweep_csv(results).str() ==
        "lambda,m,test_auc,test_acc,fusion_parameters,search_run,eval_run\n"
        "1,1,0.9,0.75,100,r/s11,r/e11\n1,2,0.875,0.5,90,r/s12,r/e12\n");
}

TEST_CASE("stgs search --sweep: a 2 x 2 table of searches and evaluations, resumable", "[app][e2e]") {
  TempDir tmp("sweep_cli");
  const std::string cache = tmp.file("features"), runs = tmp.file("runs");
  write_feature_cache(cache, 5);
  CommandResult r = run_stgs("search " + cache + " --sweep lambda=1,2 m=1,2 --epochs 1 --eval-epochs 1 --channels 8" +
                             " --runs-dir " + runs + " --quiet --no-plots");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const std::string sweep = only_run(runs, "sweep-");
  const nlohmann::json config = RunDir::open(sweep).read_json("config.json");
  CHECK(config["sweep"] == "lambda=1,2 m=1,2");
  CHECK(config["eval_epochs"] == 1);
  for (const char* cell : {"lambda1-m1", "lambda1-m2", "lambda2-m1", "lambda2-m2"}) {
    const std::string search = only_run(sweep + "/" + cell, "search-"), eval = only_run(sweep + "/" + cell, "eval-");
    CHECK(fs::exists(search + "/genotype.json"));
    CHECK(fs::exists(eval + "/results.json"));
  }
  auto cell_config = [&](const std::string& prefix) {
    return RunDir::open(only_run(sweep + "/lambda2-m1", prefix)).read_json("config.json");
  };
  const nlohmann::json cell = cell_config("search-"), cell_eval = cell_config("eval-");
  CHECK(cell["lambda"] == 2.0);
  CHECK(cell["samples"] == 1);
  CHECK(cell["sweep"] == "");
  CHECK(cell_eval["epochs"] == 1);
  CHECK(cell_eval["unimodal"] == false);

  const CsvTable table = CsvTable::load(sweep + "/sweep.csv", kSweepCsvHeader);
  REQUIRE(table.rows() == 4);
  const std::vector<std::pair<std::string, std::string>> order = {{"1", "1"}, {"1", "2"}, {"2", "1"}, {"2", "2"}};
  for (size_t i = 0; i < 4; ++i) {
    CHECK(table.row(i)[0] == order[i].first);
    CHECK(table.row(i)[1] == order[i].second);
    CHECK(std::stod(table.row(i)[2]) >= 0.0);
    CHECK(std::stod(table.row(i)[2]) <= 1.0);
    CHECK(std::stoll(table.row(i)[4]) > 0);
    CHECK(fs::exists(sweep + "/" + table.row(i)[6] + "/results.json"));  // relative to the sweep directory
  }
  const std::string md = slurp(sweep + "/sweep.md");
  CHECK_THAT(md, Catch::Contains("| lambda | M = 1 | M = 2 |") && Catch::Contains("| 2 | 0."));

  // Resume: a cell whose evaluation lost its results is finished from its checkpoint, the others are skipped,
  // and the table comes out the same.
  const std::string before = slurp(sweep + "/sweep.csv");
  const std::string kept = only_run(sweep + "/lambda1-m1", "eval-") + "/results.json";
  const auto kept_time = fs::last_write_time(kept);
  fs::remove(only_run(sweep + "/lambda2-m2", "eval-") + "/results.json");
  r = run_stgs("search --resume " + sweep + " --quiet");
  REQUIRE(r.status == 0);
  CHECK(fs::last_write_time(kept) == kept_time);
  CHECK(fs::exists(only_run(sweep + "/lambda2-m2", "eval-") + "/results.json"));
  CHECK(slurp(sweep + "/sweep.csv") == before);
  CHECK_THAT(slurp(sweep + "/log.txt"),
             Catch::Contains("lambda1-m1: done before, skipped") && Catch::Contains("lambda2-m2: resuming"));
  r = run_stgs("search --resume " + sweep + " --eval-epochs 3");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--eval-epochs cannot change a run being resumed"));

  // A bad token is named, before anything is written.
  r = run_stgs("search " + cache + " --sweep lambda=5,x --runs-dir " + tmp.file("runs2"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--sweep: 'x' in 'lambda=5,x' is not a positive number"));
  CHECK_FALSE(fs::exists(tmp.file("runs2")));
}
