// `stgs search` and `stgs eval` end to end on a small feature cache written by the test: every file of the
// run directories, resume after a kill at the worst moment and after Ctrl-C, and the errors users meet.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "apps/run_dir.h"
#include "engine/io/directory_lock.h"
#include "nas/genotype.h"
#include "tests/feature_cache_fixture.h"
#include "tests/test_files.h"

using namespace stgs;
using stgs::testing::CommandResult;
using stgs::testing::only_run;
using stgs::testing::run_stgs;
using stgs::testing::slurp;
using stgs::testing::TempDir;
using stgs::testing::write_feature_cache;
namespace fs = std::filesystem;

namespace {

// Lines of a text file.
long count_lines(const std::string& text) { return long(std::count(text.begin(), text.end(), '\n')); }

// metrics.csv without its last column (seconds), which differs between runs.
std::string metrics_without_time(const fs::path& p) {
  std::istringstream in(slurp(p));
  std::string line, out;
  while (std::getline(in, line)) out += line.substr(0, line.rfind(',')) + "\n";
  return out;
}

const std::string kSearchFlags = " --epochs 3 --samples 2 --channels 8 --lambda 1 --optimizer adam --weight-lr 0.01"
                                 " --arch-lr 0.05 --quiet --no-plots";

}  // namespace

TEST_CASE("stgs search and eval: run directories, resume after a kill and after Ctrl-C", "[app][e2e]") {
  TempDir tmp("search_cli");
  const fs::path cache = tmp.dir / "features";
  write_feature_cache(cache, 5);

  // The uninterrupted search.
  CommandResult r = run_stgs("search " + cache.string() + " --runs-dir " + (tmp.dir / "a").string() + kSearchFlags);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const fs::path a = only_run(tmp.dir / "a", "search-");
  for (const char* f : {"config.json", "log.txt", "metrics.csv", "entropy.csv", "genotypes/epoch_001.json",
                        "genotypes/epoch_003.json", "genotype.json", "genotype.dot", "checkpoints/last.safetensors",
                        "checkpoints/best.safetensors", "report.md"})
    CHECK(fs::exists(a / f));
  CHECK(count_lines(slurp(a / "metrics.csv")) == 4);
  CHECK(nas::load_genotype((a / "genotype.json").string()).cells.size() == 2);
  const nlohmann::json config = apps::RunDir::open(a.string()).read_json("config.json");
  CHECK(config["samples"] == 2);
  CHECK(config["features"] == fs::absolute(cache).string());

  // Killed (SIGKILL) after epoch 2's tables and before its checkpoint, then resumed: the same numbers.
  setenv("STGS_FAULT_KILL_AFTER_TABLES", "2", 1);
  r = run_stgs("search " + cache.string() + " --runs-dir " + (tmp.dir / "b").string() + kSearchFlags);
  unsetenv("STGS_FAULT_KILL_AFTER_TABLES");
  CHECK(r.status == 128 + 9);  // the shell's report of a child killed by SIGKILL
  const fs::path b = only_run(tmp.dir / "b", "search-");
  r = run_stgs("search --resume " + b.string() + " --quiet");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(metrics_without_time(b / "metrics.csv") == metrics_without_time(a / "metrics.csv"));
  CHECK(slurp(b / "entropy.csv") == slurp(a / "entropy.csv"));
  CHECK(slurp(b / "genotype.json") == slurp(a / "genotype.json"));
  CHECK(slurp(b / "log.txt").find("resumed at epoch 2") != std::string::npos);

  // Ctrl-C after 7 steps (inside epoch 2 of 6 steps each): exit 130, a mid-epoch checkpoint, then resumed.
  setenv("STGS_FAULT_INTERRUPT_AT_STEP", "7", 1);
  r = run_stgs("search " + cache.string() + " --runs-dir " + (tmp.dir / "c").string() + kSearchFlags);
  unsetenv("STGS_FAULT_INTERRUPT_AT_STEP");
  CHECK(r.status == 130);
  const fs::path c = only_run(tmp.dir / "c", "search-");
  CHECK(slurp(c / "log.txt").find("interrupted at epoch 2, step 1") != std::string::npos);
  r = run_stgs("search --resume " + c.string() + " --quiet");
  REQUIRE(r.status == 0);
  CHECK(metrics_without_time(c / "metrics.csv") == metrics_without_time(a / "metrics.csv"));
  CHECK(slurp(c / "genotype.json") == slurp(a / "genotype.json"));
  r = run_stgs("search --resume " + c.string() + " --epochs 5");
  CHECK(r.status != 0);
  CHECK(r.output.find("--epochs cannot change a run being resumed") != std::string::npos);

  // Eval of the newest search run (c), with the single-modality comparison.
  const std::string eval_flags = " --epochs 3 --lr 0.01 --quiet --no-plots";
  r = run_stgs("eval " + a.string() + " --runs-dir " + (tmp.dir / "e").string() + eval_flags);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const fs::path e = only_run(tmp.dir / "e", "eval-");
  for (const char* f : {"config.json", "log.txt", "metrics.csv", "genotype.json", "checkpoints/last.safetensors",
                        "scores.csv", "roc.csv", "results.json", "report.md", "models/image-only.safetensors",
                        "models/audio-only.safetensors"})
    CHECK(fs::exists(e / f));
  const nlohmann::json results = apps::RunDir::open(e.string()).read_json("results.json");
  CHECK(results["models"].size() == 3);
  CHECK(results["test_auc"].get<double>() >= 0.0);
  CHECK(results["fusion_parameters"].get<int64_t>() > 0);
  CHECK(count_lines(slurp(e / "scores.csv")) == 25);
  CHECK(slurp(e / "report.md").find("| image-only |") != std::string::npos);
  CHECK(r.output.find("test AUC") != std::string::npos);

  // Eval killed after epoch 2's table, then resumed: the same test scores.
  setenv("STGS_FAULT_KILL_AFTER_TABLES", "2", 1);
  r = run_stgs("eval " + a.string() + " --runs-dir " + (tmp.dir / "f").string() + eval_flags);
  unsetenv("STGS_FAULT_KILL_AFTER_TABLES");
  CHECK(r.status == 128 + 9);
  const fs::path f = only_run(tmp.dir / "f", "eval-");
  r = run_stgs("eval --resume " + f.string() + " --quiet");
  REQUIRE(r.status == 0);
  CHECK(slurp(f / "scores.csv") == slurp(e / "scores.csv"));
  CHECK(metrics_without_time(f / "metrics.csv") == metrics_without_time(e / "metrics.csv"));
}

TEST_CASE("stgs search and eval: clear errors for bad input", "[app][e2e]") {
  TempDir tmp("search_cli_errors");
  CommandResult r = run_stgs("search " + (tmp.dir / "missing").string() + " --quiet");
  CHECK(r.status != 0);
  CHECK(r.output.find("no such feature directory") != std::string::npos);

  const fs::path cache = tmp.dir / "features";
  write_feature_cache(cache, 6);
  fs::remove(cache / "val.safetensors");
  r = run_stgs("search " + cache.string() + " --quiet");
  CHECK(r.output.find("has no val.safetensors") != std::string::npos);
  // A search reads no test split, but a cache without one is an unfinished extract: refused now, not at eval.
  write_feature_cache(cache, 6);
  fs::remove(cache / "test.safetensors");
  r = run_stgs("search " + cache.string() + " --quiet");
  CHECK(r.status == 1);
  CHECK(r.output.find("has no test.safetensors (an extract that did not finish?") != std::string::npos);

  write_feature_cache(cache, 6);
  { std::ofstream(cache / "val.safetensors", std::ios::binary | std::ios::trunc) << "not a safetensors file"; }
  r = run_stgs("search " + cache.string() + " --quiet");
  CHECK(r.status != 0);
  CHECK(r.output.find("val.safetensors") != std::string::npos);

  write_feature_cache(cache, 6);
  r = run_stgs("search " + cache.string() + " --epoch 3");
  CHECK(r.output.find("unknown flag --epoch (did you mean --epochs?)") != std::string::npos);

  // A genotype whose inputs do not match the features.
  const fs::path genotype = tmp.dir / "g.json";
  {
    std::ofstream(genotype) << R"({"format": "stgs-genotype", "version": 1,
      "config": {"inputs": [{"name": "a", "channels": 4}, {"name": "b", "channels": 4}], "C": 8, "L": 4,
                 "cells": 1, "steps": 1, "dropout": 0.1, "num_classes": 2, "ops": ["zero", "sum"]},
      "cells": [{"inputs": ["a", "b"], "steps": [{"inputs": ["x", "y"], "op": "sum"}]}]})";
  }
  r = run_stgs("eval --genotype " + genotype.string() + " --features " + cache.string() + " --runs-dir " +
               (tmp.dir / "runs").string() + " --quiet");
  CHECK(r.status != 0);
  CHECK(r.output.find("its inputs do not match the feature cache's") != std::string::npos);

  // A corrupt checkpoint is named on resume.
  r = run_stgs("search " + cache.string() + " --runs-dir " + (tmp.dir / "runs").string() +
               " --epochs 1 --samples 1 --channels 8 --quiet --no-plots");
  REQUIRE(r.status == 0);
  const fs::path run = only_run(tmp.dir / "runs", "search-");
  { std::ofstream(run / "checkpoints/last.safetensors", std::ios::trunc) << "garbage"; }
  r = run_stgs("search --resume " + run.string() + " --quiet");
  CHECK(r.status != 0);
  CHECK(r.output.find("last.safetensors") != std::string::npos);
  r = run_stgs("eval --resume " + (tmp.dir / "nope").string());
  CHECK(r.output.find("no such run directory") != std::string::npos);

  // A split without clips is refused, naming the split and its file.
  const fs::path no_test = tmp.dir / "no_test", no_train = tmp.dir / "no_train";
  write_feature_cache(no_test, 7, 4, {48, 24, 0});
  r = run_stgs("eval --genotype " + (run / "genotype.json").string() + " --features " + no_test.string() +
               " --runs-dir " + (tmp.dir / "runs").string() + " --quiet");
  CHECK(r.status == 1);
  CHECK(r.output.find((no_test / "test.safetensors").string() + ": the test split has no clips") != std::string::npos);
  write_feature_cache(no_train, 8, 4, {0, 24, 24});
  r = run_stgs("search " + no_train.string() + " --runs-dir " + (tmp.dir / "runs").string() + " --quiet");
  CHECK(r.status == 1);
  CHECK(r.output.find((no_train / "train.safetensors").string() + ": the train split has no clips") !=
        std::string::npos);
}

TEST_CASE("stgs search and eval: resume after a first-epoch Ctrl-C; refused on edited or foreign run files",
          "[app][e2e]") {
  TempDir tmp("search_cli_resume");
  const fs::path cache = tmp.dir / "features";
  write_feature_cache(cache, 5);  // 48 training clips: 6 steps per epoch
  const std::string eval_flags = " --epochs 2 --lr 0.01 --quiet --no-plots --no-unimodal";
  auto interrupted = [&](const std::string& command, int step) {
    setenv("STGS_FAULT_INTERRUPT_AT_STEP", std::to_string(step).c_str(), 1);
    const CommandResult r = run_stgs(command);
    unsetenv("STGS_FAULT_INTERRUPT_AT_STEP");
    CHECK(r.status == 130);
  };
  // `stgs <kind> <input>` into runs directory `dir`, stopped at `step`, then resumed to its end: the run.
  auto stopped_and_resumed = [&](const std::string& kind, const std::string& input, const char* dir,
                                 const std::string& flags, int step) {
    interrupted(kind + " " + input + " --runs-dir " + (tmp.dir / dir).string() + flags, step);
    const fs::path run = only_run(tmp.dir / dir, kind + "-");
    const CommandResult resumed = run_stgs(kind + " --resume " + run.string() + " --quiet");
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    return run;
  };
  CommandResult r = run_stgs("search " + cache.string() + " --runs-dir " + (tmp.dir / "a").string() + kSearchFlags);
  REQUIRE(r.status == 0);
  const fs::path a = only_run(tmp.dir / "a", "search-");
  r = run_stgs("eval " + a.string() + " --runs-dir " + (tmp.dir / "e").string() + eval_flags);
  REQUIRE(r.status == 0);
  const fs::path e = only_run(tmp.dir / "e", "eval-");

  // Ctrl-C before the first epoch ends (no tables yet): both resume to the uninterrupted results.
  const fs::path b = stopped_and_resumed("search", cache.string(), "b", kSearchFlags, 2);
  CHECK(metrics_without_time(b / "metrics.csv") == metrics_without_time(a / "metrics.csv"));
  const fs::path f = stopped_and_resumed("eval", a.string(), "f", eval_flags, 2);
  CHECK(slurp(f / "scores.csv") == slurp(e / "scores.csv"));

  // A table cut shorter than the checkpoint's epoch.
  interrupted("search " + cache.string() + " --runs-dir " + (tmp.dir / "c").string() + kSearchFlags, 14);
  const fs::path c = only_run(tmp.dir / "c", "search-");
  const std::string metrics = slurp(c / "metrics.csv");
  testing::write_file_bytes((c / "metrics.csv").string(), metrics.substr(0, metrics.find('\n', metrics.find('\n') + 1) + 1));
  r = run_stgs("search --resume " + c.string() + " --quiet");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("metrics.csv: 1 rows, but the checkpoint is at epoch 2"));

  // Another command's run directory is refused before anything in it is written.
  const std::string genotype = slurp(e / "genotype.json");
  r = run_stgs("search --resume " + e.string() + " --quiet");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("config.json: \"genotype\" is not an option of stgs search"));
  CHECK(slurp(e / "genotype.json") == genotype);
  r = run_stgs("eval --resume " + a.string() + " --quiet");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("is not an option of stgs eval"));

  // An edited saved option is checked as a --config file's.
  fs::copy(f, tmp.dir / "g", fs::copy_options::recursive);
  nlohmann::json config = nlohmann::json::parse(slurp(tmp.dir / "g/config.json"));
  config["epochs"] = 0;
  testing::write_file_bytes((tmp.dir / "g/config.json").string(), config.dump());
  r = run_stgs("eval --resume " + (tmp.dir / "g").string() + " --quiet");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("config.json: \"epochs\" expects an integer >= 1, got 0"));

  // Caches rewritten since the run began: the resume refuses to finish on other data.
  const fs::path moved = tmp.dir / "features2";
  write_feature_cache(moved, 5);
  interrupted("search " + moved.string() + " --runs-dir " + (tmp.dir / "h").string() + kSearchFlags, 7);
  write_feature_cache(moved, 9);
  r = run_stgs("search --resume " + fs::path(only_run(tmp.dir / "h", "search-")).string() + " --quiet");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("the feature caches changed since this run began"));

  // A genotype searched on other feature shapes (here L 4) is refused on these (L 3), naming both.
  write_feature_cache(tmp.dir / "features_l3", 5, 3);
  r = run_stgs("eval " + a.string() + " --features " + (tmp.dir / "features_l3").string() + " --runs-dir " +
               (tmp.dir / "l3").string() + eval_flags);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("the genotype was searched on features with channels [4, 4, 8, 8, 4, 4, 8, 8], "
                                       "L 4, but the feature cache"));

  // A run another process holds (a second resume of it) is refused before anything is written.
  {
    const DirectoryLock held(a.string(), "test");
    r = run_stgs("search --resume " + a.string() + " --quiet");
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Catch::Contains("is in use by another stgs process (pid " + std::to_string(getpid()) + ")"));
  }

  // A report of a search whose entropy table lost its rows: an error, not a crash.
  fs::copy(a, tmp.dir / "k", fs::copy_options::recursive);
  const std::string entropy = slurp(tmp.dir / "k/entropy.csv");
  testing::write_file_bytes((tmp.dir / "k/entropy.csv").string(), entropy.substr(0, entropy.find('\n') + 1));
  r = run_stgs("report " + (tmp.dir / "k").string() + " --no-plots");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("entropy.csv: no epoch finished yet"));
}
