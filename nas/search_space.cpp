// SearchConfig defaults and validation, and the row layout of alpha, beta and gamma.
#include "nas/search_space.h"

#include <set>

#include "kernels/check.h"

namespace stgs::nas {

SearchConfig SearchConfig::defaults(int64_t backbone_width) {
  STGS_CHECK(backbone_width > 0, "SearchConfig::defaults: backbone width must be positive, got ", backbone_width);
  SearchConfig c;
  for (const char* modality : {"image", "audio"}) {
    for (int l = 0; l < 4; ++l) {
      c.input_names.push_back(std::string(modality) + ".layer" + std::to_string(l + 1));
      c.input_channels.push_back(backbone_width << l);
    }
  }
  return c;
}

void SearchConfig::validate() const {
  STGS_CHECK(!input_names.empty(), "search config: no input nodes");
  STGS_CHECK(input_channels.size() == input_names.size(), "search config: ", input_names.size(),
             " input names but ", input_channels.size(), " input channel counts");
  std::set<std::string> seen;
  for (size_t i = 0; i < input_names.size(); ++i) {
    STGS_CHECK(!input_names[i].empty(), "search config: input node ", i, " has an empty name");
    STGS_CHECK(seen.insert(input_names[i]).second, "search config: input name '", input_names[i],
               "' appears twice");
    STGS_CHECK(input_channels[i] > 0, "search config: input '", input_names[i], "' has ", input_channels[i],
               " channels; expected a positive count");
  }
  STGS_CHECK(cells >= 1, "search config: cells must be >= 1, got ", cells);
  STGS_CHECK(steps >= 1, "search config: steps must be >= 1, got ", steps);
  STGS_CHECK(C >= 1, "search config: C must be >= 1, got ", C);
  STGS_CHECK(L >= 1, "search config: L must be >= 1, got ", L);
  STGS_CHECK(dropout >= 0 && dropout < 1, "search config: dropout must be in [0, 1), got ", dropout);
  STGS_CHECK(!ops.empty(), "search config: no fusion ops");
  std::set<FusionOpKind> distinct(ops.begin(), ops.end());
  STGS_CHECK(distinct.size() == ops.size(), "search config: a fusion op is listed twice");
  STGS_CHECK(num_classes >= 2, "search config: num_classes must be >= 2, got ", num_classes);
}

ArchLayout::ArchLayout(const SearchConfig& config)
    : inputs_(config.num_inputs()), cells_(config.cells), steps_(config.steps) {
  config.validate();
  // Cell v has N + v predecessors; step k has 2 + k states before it.
  for (int v = 0; v < cells_; ++v) alpha_rows_ += inputs_ + v;
  for (int k = 0; k < steps_; ++k) beta_rows_per_cell_ += 2 + k;
  beta_rows_ = beta_rows_per_cell_ * cells_;
  gamma_rows_ = int64_t(cells_) * steps_;
  gamma_cols_ = int64_t(config.ops.size());
}

int64_t ArchLayout::alpha_row(int cell, int node) const {
  STGS_CHECK(cell >= 0 && cell < cells_ && node >= 0 && node < inputs_ + cell, "alpha_row: cell ", cell,
             " node ", node, " out of range (", cells_, " cells, ", inputs_, " inputs)");
  // Rows of cells before v: sum_{w < v} (N + w) = v N + v (v - 1) / 2.
  return int64_t(cell) * inputs_ + int64_t(cell) * (cell - 1) / 2 + node;
}

int64_t ArchLayout::beta_row(int cell, int step, int state) const {
  STGS_CHECK(cell >= 0 && cell < cells_ && step >= 0 && step < steps_ && state >= 0 && state < 2 + step,
             "beta_row: cell ", cell, " step ", step, " state ", state, " out of range (", cells_, " cells, ",
             steps_, " steps)");
  // Rows of steps before k within the cell: sum_{i < k} (2 + i) = 2 k + k (k - 1) / 2.
  return cell * beta_rows_per_cell_ + 2 * step + int64_t(step) * (step - 1) / 2 + state;
}

int64_t ArchLayout::gamma_row(int cell, int step) const {
  STGS_CHECK(cell >= 0 && cell < cells_ && step >= 0 && step < steps_, "gamma_row: cell ", cell, " step ", step,
             " out of range (", cells_, " cells, ", steps_, " steps)");
  return int64_t(cell) * steps_ + step;
}

}  // namespace stgs::nas
