// The report of one run directory, written from the files the run keeps (config.json, metrics.csv, entropy.csv,
// genotype.json, results.json, roc.csv) and from nothing held in memory, so that `stgs report RUN_DIR`
// regenerates exactly what the run wrote, and a comparison of several runs reads the same numbers.
// defines: RunKind, run_kind, RunSummary, summarize_run, format_metric, format_count, render_run_plots,
//          render_run_plots_or_warn, write_run_report
#pragma once

#include <cstdint>
#include <string>

#include "apps/run_dir.h"

namespace stgs::apps {

enum class RunKind { Search, Eval };

// Search when the run has entropy.csv, eval when it has results.json (written when an evaluation finishes).
// Throws naming the directory otherwise (a search before its first epoch, an unfinished evaluation).
RunKind run_kind(const RunDir& run);

// The numbers a run is judged by: one row of a comparison.
struct RunSummary {
  std::string name;  // the run directory's name, e.g. "search-20261126-101500"
  std::string path;
  RunKind kind = RunKind::Search;
  // The search relaxation (stgs, soft, softmax): the run's own, or for an eval run its search run's ("" when
  // the genotype came from elsewhere or that run is gone).
  std::string mode;
  // Where AUC, ACC and EER come from: "test" for an eval run (the fused model), "val" for a search run (the
  // epoch with the best validation AUC, the one whose genotype the search keeps).
  std::string split;
  double auc = 0, acc = 0, eer = 0;
  int64_t best_epoch = 0;         // 1-based
  int64_t fusion_parameters = 0;  // search: the fixed network of its best genotype
  int64_t total_parameters = -1;  // fusion + both backbones; -1 when the inputs are not the cache's eight
};

// Reads the run's files; throws naming the file when one is missing or malformed.
RunSummary summarize_run(const RunDir& run);

// "0.9796", or "n/a" for NaN (a split of one class has no AUC).
std::string format_metric(double value);
// "2,853,890", or "n/a" for a negative count (unknown).
std::string format_count(int64_t n);

// The figures of the run into out_dir (created), from its CSV files: loss.png and entropy.png for a search,
// loss.png and roc.png for an evaluation. Nothing without gnuplot (apps/plots.h).
void render_run_plots(const RunDir& run, const std::string& out_dir);
// The same into the run's own directory, for a run in progress: a failure is a warning in its log, since a
// figure must never stop (or fail) the training it illustrates.
void render_run_plots_or_warn(const RunDir& run);

// Writes report.md into out_dir (the run directory itself, or another directory) and, when `plots` and gnuplot
// is installed, the figures it shows there (render_run_plots). A search report gives its caches and protocol,
// its settings, the best epoch's validation metrics, the final entropies and the best genotype; an evaluation
// report its protocol (the caches of each split) and the results table of every model it trained.
void write_run_report(const RunDir& run, const std::string& out_dir, bool plots);

}  // namespace stgs::apps
