// The (lambda, M) sweep of paper Table 3: its grid, parsed from `--sweep lambda=5,10,15,20 m=5,10,15,20`, and
// its tables: one row per finished cell in sweep.csv, and sweep.md in the paper's layout (rows lambda,
// columns M, each cell "test AUC / fusion parameters").
// defines: kMinLambda, kMaxLambda, SweepGrid, parse_sweep, sweep_cell_name, SweepResult, kSweepCsvHeader, sweep_csv, sweep_markdown
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apps/run_dir.h"

namespace stgs::apps {

// The temperatures `stgs search --lambda` accepts; a sweep's lambda axis is held to the same, since each cell
// is a search (resumed with that flag's checks).
inline constexpr double kMinLambda = 1e-6, kMaxLambda = 1e6;

struct SweepGrid {
  std::vector<double> lambdas;   // the rows: Gumbel-softmax temperatures
  std::vector<int64_t> samples;  // the columns: M, architecture draws per step
};

// Parses axes separated by spaces, each NAME=V,V,... with NAME lambda (positive numbers) or m (positive
// integers); an axis left out is the single value the search would use otherwise. Throws naming the token at
// fault and what was expected ("--sweep: 'x' in 'lambda=5,x' is not a positive number"): a token without '=',
// an unknown or repeated axis, an empty value, a value of the wrong kind, a value given twice.
SweepGrid parse_sweep(const std::string& spec, double default_lambda, int64_t default_samples);

// "lambda10-m15": a cell's directory inside the sweep directory (lambda as %g).
std::string sweep_cell_name(double lambda, int64_t samples);

// One finished cell: the evaluation's test scores of the searched genotype and where its runs are (relative to
// the sweep directory).
struct SweepResult {
  double lambda = 0;
  int64_t samples = 0;
  double test_auc = 0, test_acc = 0;
  int64_t fusion_parameters = 0;
  std::string search_run, eval_run;
};

inline const std::vector<std::string> kSweepCsvHeader = {"lambda",           "m",          "test_auc", "test_acc",
                                                         "fusion_parameters", "search_run", "eval_run"};

// sweep.csv: kSweepCsvHeader, one row per result in the order given.
CsvTable sweep_csv(const std::vector<SweepResult>& results);

// sweep.md: `heading` (markdown), then the grid as a table, rows lambda and columns M, each cell
// "0.9412 / 184962" (test AUC / fusion parameters) or "-" while it has no result.
std::string sweep_markdown(const SweepGrid& grid, const std::vector<SweepResult>& results, const std::string& heading);

}  // namespace stgs::apps
