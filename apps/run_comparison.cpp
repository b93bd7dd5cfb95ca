#include "apps/run_comparison.h"

#include <filesystem>

#include "apps/plots.h"
#include "apps/run_report.h"
#include "apps/run_tables.h"
#include "engine/io/atomic_file.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

std::string kind_name(RunKind kind) { return kind == RunKind::Search ? "search" : "eval"; }

// "search-20261126-101500 (softmax)": a legend entry that tells STGS and softmax runs apart.
std::string label(const RunSummary& s) { return s.mode.empty() ? s.name : s.name + " (" + s.mode + ")"; }

}  // namespace

void write_comparison_report(const std::vector<RunDir>& runs, const std::string& out_dir, bool plots) {
  STGS_CHECK(!runs.empty(), "write_comparison_report: no runs");
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  STGS_CHECK(!ec, out_dir, ": cannot create the report directory: ", ec.message());
  CsvTable results({"run", "kind", "mode", "split", "auc", "acc", "eer", "best_epoch", "fusion_parameters",
                    "total_parameters", "path"});
  CsvTable entropy({"run", "epoch", "alpha", "beta", "gamma"}), loss({"run", "epoch", "train_loss"});
  std::vector<PlotSeries> entropy_series, loss_series, roc_series;
  std::string table =
      "| run | kind | mode | split | AUC | ACC @ 0.5 | EER | best epoch | fusion params | total params |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const RunDir& run : runs) {
    const RunSummary s = summarize_run(run);
    const std::string total = s.total_parameters < 0 ? "n/a" : std::to_string(s.total_parameters);
    results.add({s.name, kind_name(s.kind), s.mode, s.split, CsvTable::number(s.auc), CsvTable::number(s.acc),
                 CsvTable::number(s.eer), std::to_string(s.best_epoch), std::to_string(s.fusion_parameters), total,
                 s.path});
    table += "| " + s.name + " | " + kind_name(s.kind) + " | " + (s.mode.empty() ? "-" : s.mode) + " | " + s.split +
             " | " + format_metric(s.auc) + " | " + format_metric(s.acc) + " | " + format_metric(s.eer) + " | " +
             std::to_string(s.best_epoch) + " | " + format_count(s.fusion_parameters) + " | " +
             format_count(s.total_parameters) + " |\n";

    const CsvTable metrics = CsvTable::load(run.file("metrics.csv"),
                                            s.kind == RunKind::Search ? kSearchMetricsHeader : kEvalMetricsHeader);
    for (size_t r = 0; r < metrics.rows(); ++r) loss.add({s.name, metrics.row(r)[0], metrics.row(r)[1]});
    loss_series.push_back({run.file("metrics.csv"), "epoch", "train_loss", label(s)});
    if (s.kind == RunKind::Search) {
      const CsvTable e = CsvTable::load(run.file("entropy.csv"), kEntropyHeader);
      for (size_t r = 0; r < e.rows(); ++r) {
        std::vector<std::string> row = {s.name};
        row.insert(row.end(), e.row(r).begin(), e.row(r).end());
        entropy.add(row);
      }
      for (const char* column : {"alpha", "beta", "gamma"})
        entropy_series.push_back({run.file("entropy.csv"), "epoch", column, label(s) + " E(" + column + ")"});
    } else if (CsvTable::load(run.file("roc.csv"), kRocHeader).rows() > 0) {
      roc_series.push_back({run.file("roc.csv"), "fpr", "tpr", label(s)});
    }
  }
  results.save(out_dir + "/results.csv");
  entropy.save(out_dir + "/entropy.csv");
  loss.save(out_dir + "/loss.csv");

  std::string report = "# Comparison of " + std::to_string(runs.size()) + " runs\n\n" + table +
                       "\nAUC, ACC and EER are on the test split for an evaluation run (its fused model) and on the "
                       "validation split for a search run (its best epoch, whose genotype it keeps; fusion parameters "
                       "are that genotype's fixed network). Files: `results.csv`, `entropy.csv`, `loss.csv`.\n";
  const std::string entropy_png = out_dir + "/entropy.png", loss_png = out_dir + "/loss.png",
                    roc_png = out_dir + "/roc.png";
  if (plots && !entropy_series.empty() &&
      plot_lines(entropy_png, entropy_series,
                 {.title = "architecture entropy per epoch (paper Figure 1b: STGS vs softmax)",
                  .xlabel = "epoch",
                  .ylabel = "mean row entropy (nats)",
                  .key_below = true}))
    report += "\n![architecture entropy](entropy.png)\n";
  if (plots && plot_lines(loss_png, loss_series,
                          {.title = "training loss", .xlabel = "epoch", .ylabel = "cross-entropy", .key_below = true}))
    report += "\n![training loss](loss.png)\n";
  if (plots && !roc_series.empty() &&
      plot_lines(roc_png, roc_series,
                 {.title = "test ROC", .xlabel = "false positive rate", .ylabel = "true positive rate",
                  .diagonal = true, .square = true, .key_below = true}))
    report += "\n![test ROC](roc.png)\n";
  write_file_atomically(out_dir + "/report.md", report, "stgs report: ");
}

}  // namespace stgs::apps
