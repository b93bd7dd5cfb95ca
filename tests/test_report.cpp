// `stgs report` on the tiny trained pipeline's runs (tests/tiny_pipeline.h): a run's report regenerated from its
// files is the one the run wrote, and a comparison of an STGS search, a softmax search and an evaluation has
// the right table, overlay tables and figures.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "apps/plots.h"
#include "apps/run_dir.h"
#include "apps/run_tables.h"
#include "tests/test_files.h"
#include "tests/tiny_pipeline.h"

using namespace stgs;
using stgs::testing::CommandResult;
using stgs::testing::read_file_bytes;
using stgs::testing::run_stgs;
using stgs::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string name_of(const std::string& run) { return fs::path(run).filename().string(); }

CommandResult report(const std::string& args) {
  const CommandResult r = run_stgs("report " + args);
  INFO(r.output);
  REQUIRE(r.status == 0);
  return r;
}

}  // namespace

TEST_CASE("stgs report: one run's report regenerated from its files", "[report][app]") {
  const testing::TrainedPipeline& p = testing::trained_pipeline();
  // In place, without plots (the runs were made without): byte for byte what the runs wrote.
  for (const std::string& run : {p.search_run, p.eval_run}) {
    INFO(run);
    const std::string written = read_file_bytes(run + "/report.md");
    REQUIRE(!written.empty());
    report(run + " --no-plots");
    CHECK(read_file_bytes(run + "/report.md") == written);
  }

  // Elsewhere, with plots.
  TempDir tmp("report_one");
  report(p.search_run + " --out " + tmp.file("search"));
  const std::string search = read_file_bytes(tmp.file("search/report.md"));
  CHECK_THAT(search, Catch::StartsWith("# Search"));
  CHECK_THAT(search, Catch::Contains("mode stgs (M 2, lambda 10.0), 2 of at most 2 epochs."));
  CHECK_THAT(search, Catch::Contains("- cell 0: x = "));
  CHECK_THAT(search, Catch::Contains("- cell 1: x = "));
  report(p.eval_run + " --out " + tmp.file("eval"));
  const std::string eval = read_file_bytes(tmp.file("eval/report.md"));
  const nlohmann::json results = apps::RunDir::open(p.eval_run).read_json("results.json");
  char fused_row[64];
  std::snprintf(fused_row, sizeof fused_row, "| fused | %.4f | %.4f |", results["test_auc"].get<double>(),
                results["test_acc"].get<double>());
  CHECK_THAT(eval, Catch::Contains(fused_row));
  CHECK_THAT(eval, Catch::Contains("| image-only |"));
  CHECK_THAT(eval, Catch::Contains("| audio-only |"));
  if (apps::gnuplot_available()) {
    for (const char* f : {"search/loss.png", "search/entropy.png", "eval/loss.png", "eval/roc.png"})
      CHECK(fs::file_size(tmp.file(f)) > 0);
    CHECK_THAT(search, Catch::Contains("![architecture entropy](entropy.png)"));
    CHECK_THAT(eval, Catch::Contains("![test ROC](roc.png)"));
  } else {
    WARN("gnuplot not installed: the report's PNG figures are not checked");
  }
}

TEST_CASE("stgs report: an STGS search, a softmax search and an evaluation compared", "[report][app]") {
  const testing::TrainedPipeline& p = testing::trained_pipeline();
  TempDir tmp("report_compare");
  // Through a config file, as every flag can be given.
  std::ofstream(tmp.file("report.json")) << R"({"out": ")" << tmp.file("cmp") << R"("})";
  const CommandResult r = report(p.search_run + " " + p.softmax_run + " " + p.eval_run + " --config " +
                                 tmp.file("report.json"));
  CHECK_THAT(r.output, Catch::Contains(tmp.file("cmp") + "/report.md"));

  const apps::CsvTable results =
      apps::CsvTable::load(tmp.file("cmp/results.csv"), {"run", "kind", "mode", "split", "auc", "acc", "eer", "best_epoch",
                                                         "fusion_parameters", "total_parameters", "path"});
  REQUIRE(results.rows() == 3);
  const std::vector<std::string> search = results.row(0), softmax = results.row(1), eval = results.row(2);
  CHECK(search[0] == name_of(p.search_run));
  CHECK((search[1] == "search" && search[2] == "stgs" && search[3] == "val"));
  CHECK((softmax[1] == "search" && softmax[2] == "softmax" && softmax[3] == "val"));
  CHECK((eval[1] == "eval" && eval[2] == "stgs" && eval[3] == "test"));
  const nlohmann::json fused = apps::RunDir::open(p.eval_run).read_json("results.json");
  CHECK(eval[4] == apps::CsvTable::number(fused["test_auc"].get<double>()));
  CHECK(eval[9] == std::to_string(fused["total_parameters"].get<int64_t>()));
  // The evaluation trained the STGS search's genotype: the search's count of its fixed network agrees.
  CHECK(search[8] == std::to_string(fused["fusion_parameters"].get<int64_t>()));
  // The search's row is its best validation epoch.
  const apps::CsvTable metrics = apps::CsvTable::load(p.search_run + "/metrics.csv", apps::kSearchMetricsHeader);
  const size_t best = size_t(std::stoll(search[7]) - 1);
  CHECK(search[4] == metrics.row(best)[6]);  // val_auc
  for (size_t e = 0; e < metrics.rows(); ++e) CHECK(std::stod(metrics.row(e)[6]) <= std::stod(search[4]));

  // The overlays' tables: both searches' entropies, every run's loss.
  const apps::CsvTable entropy =
      apps::CsvTable::load(tmp.file("cmp/entropy.csv"), {"run", "epoch", "alpha", "beta", "gamma"});
  REQUIRE(entropy.rows() == 4);
  const apps::CsvTable own = apps::CsvTable::load(p.softmax_run + "/entropy.csv", apps::kEntropyHeader);
  CHECK(entropy.row(2) == std::vector<std::string>{name_of(p.softmax_run), own.row(0)[0], own.row(0)[1],
                                                   own.row(0)[2], own.row(0)[3]});
  CHECK(apps::CsvTable::load(tmp.file("cmp/loss.csv"), {"run", "epoch", "train_loss"}).rows() == 6);

  const std::string md = read_file_bytes(tmp.file("cmp/report.md"));
  CHECK_THAT(md, Catch::Contains("# Comparison of 3 runs"));
  CHECK_THAT(md, Catch::Contains("| " + name_of(p.search_run) + " | search | stgs | val |"));
  CHECK_THAT(md, Catch::Contains("| " + name_of(p.softmax_run) + " | search | softmax | val |"));
  CHECK_THAT(md, Catch::Contains("| " + name_of(p.eval_run) + " | eval | stgs | test |"));
  if (apps::gnuplot_available()) {
    for (const char* f : {"cmp/entropy.png", "cmp/loss.png", "cmp/roc.png"}) CHECK(fs::file_size(tmp.file(f)) > 0);
    CHECK_THAT(md, Catch::Contains("![architecture entropy](entropy.png)"));
  }

  // Errors.
  CommandResult bad = run_stgs("report " + p.search_run + " " + p.eval_run);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Catch::Contains("comparing 2 runs needs --out DIR"));
  fs::create_directories(tmp.dir / "unstarted");
  std::ofstream(tmp.file("unstarted/config.json")) << "{}";
  bad = run_stgs("report " + tmp.file("unstarted"));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Catch::Contains(tmp.file("unstarted") + ": neither a search run"));
  bad = run_stgs("report " + tmp.file("nope"));
  CHECK_THAT(bad.output, Catch::Contains(tmp.file("nope") + ": no such run directory"));
  bad = run_stgs("report");
  CHECK(bad.status == 2);  // a usage error
  CHECK_THAT(bad.output, Catch::Contains("RUN_DIR is required"));
  const CommandResult help = run_stgs("report --help");
  CHECK(help.status == 0);
  CHECK_THAT(help.output, Catch::Contains("usage: stgs report RUN_DIR"));
}
