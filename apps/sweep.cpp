#include "apps/sweep.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "apps/options.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

// The numbers of one axis token "name=v,v,..."; integers when `integral`. Every error names the token.
std::vector<double> axis_values(const std::string& token, const std::string& list, bool integral) {
  std::vector<double> values;
  for (const std::string& text : split_list(list, ',')) {
    char* end = nullptr;
    errno = 0;
    const double v = integral ? double(std::strtoll(text.c_str(), &end, 10)) : std::strtod(text.c_str(), &end);
    STGS_CHECK(!text.empty() && *end == '\0' && errno == 0 && std::isfinite(v) && v > 0, "--sweep: '", text,
               "' in '", token, "' is not a positive ", integral ? "integer" : "number");
    STGS_CHECK(std::find(values.begin(), values.end(), v) == values.end(), "--sweep: '", text, "' in '", token,
               "' is given twice");
    values.push_back(v);
  }
  STGS_CHECK(!values.empty(), "--sweep: '", token, "' lists no values (expected ", token, "V,V,...)");
  return values;
}

}  // namespace

SweepGrid parse_sweep(const std::string& spec, double default_lambda, int64_t default_samples) {
  SweepGrid grid;
  bool has_lambda = false, has_samples = false;
  for (const std::string& token : split_list(spec, ' ')) {
    if (token.empty()) continue;  // repeated spaces
    const size_t eq = token.find('=');
    STGS_CHECK(eq != std::string::npos, "--sweep: '", token, "' is not AXIS=V,V,... (axes: lambda, m)");
    const std::string axis = token.substr(0, eq), list = token.substr(eq + 1);
    if (axis == "lambda") {
      STGS_CHECK(!has_lambda, "--sweep: the axis lambda is given twice ('", token, "')");
      has_lambda = true;
      grid.lambdas = axis_values(token, list, false);
      for (double v : grid.lambdas)
        STGS_CHECK(v >= kMinLambda && v <= kMaxLambda, "--sweep: lambda ", v, " in '", token, "' is outside [",
                   kMinLambda, ", ", kMaxLambda, "]");
      // Cells are directories named by sweep_cell_name (6 significant digits): two values it cannot tell apart
      // would share one cell and one result.
      for (size_t i = 0; i < grid.lambdas.size(); ++i)
        for (size_t j = 0; j < i; ++j)
          STGS_CHECK(sweep_cell_name(grid.lambdas[i], 1) != sweep_cell_name(grid.lambdas[j], 1), "--sweep: lambda ",
                     CsvTable::number(grid.lambdas[j]), " and ", CsvTable::number(grid.lambdas[i]), " in '", token,
                     "' would share a cell directory; give values that differ within 6 significant digits");
    } else if (axis == "m") {
      STGS_CHECK(!has_samples, "--sweep: the axis m is given twice ('", token, "')");
      has_samples = true;
      for (double v : axis_values(token, list, true)) grid.samples.push_back(int64_t(v));
    } else {
      STGS_FAIL("--sweep: unknown axis '", axis, "' in '", token, "' (expected lambda or m)");
    }
  }
  STGS_CHECK(has_lambda || has_samples, "--sweep: no axis in '", spec, "' (e.g. lambda=5,10,15,20 m=5,10,15,20)");
  if (!has_lambda) grid.lambdas = {default_lambda};
  if (!has_samples) grid.samples = {default_samples};
  return grid;
}

std::string sweep_cell_name(double lambda, int64_t samples) {
  char name[64];
  std::snprintf(name, sizeof name, "lambda%g-m%lld", lambda, (long long)samples);
  return name;
}

CsvTable sweep_csv(const std::vector<SweepResult>& results) {
  CsvTable table(kSweepCsvHeader);
  for (const SweepResult& r : results)
    table.add({CsvTable::number(r.lambda), std::to_string(r.samples), CsvTable::number(r.test_auc),
               CsvTable::number(r.test_acc), std::to_string(r.fusion_parameters), r.search_run, r.eval_run});
  return table;
}

std::string sweep_markdown(const SweepGrid& grid, const std::vector<SweepResult>& results,
                           const std::string& heading) {
  std::string md = heading + "\n\nEach cell: test AUC / fusion parameters of the searched genotype.\n\n| lambda |";
  for (int64_t m : grid.samples) md += " M = " + std::to_string(m) + " |";
  md += "\n|---|";
  for (size_t i = 0; i < grid.samples.size(); ++i) md += "---|";
  md += "\n";
  char text[96];
  for (double lambda : grid.lambdas) {
    std::snprintf(text, sizeof text, "| %g |", lambda);
    md += text;
    for (int64_t m : grid.samples) {
      auto done = std::find_if(results.begin(), results.end(),
                               [&](const SweepResult& r) { return r.lambda == lambda && r.samples == m; });
      if (done == results.end()) {
        md += " - |";
        continue;
      }
      std::snprintf(text, sizeof text, " %.4f / %lld |", done->test_auc, (long long)done->fusion_parameters);
      md += text;
    }
    md += "\n";
  }
  return md;
}

}  // namespace stgs::apps
