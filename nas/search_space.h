// The STGS-BMNAS search space: its sizes (SearchConfig) and where every architecture choice lives in the
// three logit matrices alpha, beta and gamma (ArchLayout).
// defines: kEdgeZero, kEdgeIdentity, SearchConfig, ArchLayout
//
// Nodes. The network sees N input nodes (backbone features pooled to (B, C_i, L) and reshaped to (B, C, L))
// followed by `cells` cells; node index u < N is input u, node N + j is cell j. Cell v reads every earlier
// node u < N + v through an edge choosing {Zero, Identity} (alpha, first level); in the search both inner
// inputs x and y of the cell are the sum of its sampled edges. Inside a cell the states are [x, y, s_0,
// s_1, ...]: inner step k reads states j < 2 + k through {Zero, Identity} edges (beta) and applies one fusion
// op (gamma, a row over `ops`) to the sum. The cell output is concat(s_0 .. s_{steps-1}) -> Conv1d + BN +
// ReLU + Dropout -> + x -> LayerNorm([C, L]); the head is concat(cells) -> LayerNorm -> ReLU -> Linear.
//
// Rows. alpha: (alpha_rows, 2), row alpha_row(v, u) for cell v and predecessor u < N + v, cells in order.
// beta: (beta_rows, 2), row beta_row(v, k, j) for cell v, step k, state j < 2 + k. gamma: (gamma_rows,
// |ops|), row gamma_row(v, k). Edge columns: kEdgeZero = 0, kEdgeIdentity = 1. The same layout indexes
// every sample drawn from the logits, the entropies and the genotype derivation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nas/fusion_ops.h"

namespace stgs::nas {

inline constexpr int kEdgeZero = 0;
inline constexpr int kEdgeIdentity = 1;

struct SearchConfig {
  std::vector<std::string> input_names;  // one per input node, e.g. "image.layer1"
  std::vector<int64_t> input_channels;   // C_i of each input node, before its reshape layer
  int cells = 2;                         // fusion cells (first level)
  int steps = 2;                         // inner steps per cell (second level)
  int64_t C = 128;                       // channels of every node after the reshape layers
  int64_t L = 8;                         // sequence length of every node
  double dropout = 0.2;                  // reshape layers, cell outputs, LinearGLU and ConcatFC
  std::vector<FusionOpKind> ops{kFusionOpKinds.begin(), kFusionOpKinds.end()};  // gamma columns
  int64_t num_classes = 2;               // class 1 = fake

  // The paper's setting: image layer1..4 then audio layer1..4 of two ResNet-34s of `backbone_width`
  // (channels w, 2w, 4w, 8w), C = 128, L = 8, 2 cells of 2 steps, all five fusion ops.
  static SearchConfig defaults(int64_t backbone_width = 64);

  int num_inputs() const { return int(input_names.size()); }
  // Throws naming the field unless every size is positive, names are unique and non-empty, the channel list
  // matches the names, ops are distinct, and dropout is in [0, 1).
  void validate() const;
};

class ArchLayout {
 public:
  explicit ArchLayout(const SearchConfig& config);

  int64_t alpha_rows() const { return alpha_rows_; }
  int64_t beta_rows() const { return beta_rows_; }
  int64_t gamma_rows() const { return gamma_rows_; }
  int64_t gamma_cols() const { return gamma_cols_; }

  // Cell v's edge from node u (0 <= u < N + v).
  int64_t alpha_row(int cell, int node) const;
  // Cell v, inner step k's edge from state j (0 <= j < 2 + k; 0 = x, 1 = y, 2 + i = step i).
  int64_t beta_row(int cell, int step, int state) const;
  // Cell v, inner step k's op row.
  int64_t gamma_row(int cell, int step) const;

 private:
  int inputs_, cells_, steps_;
  int64_t alpha_rows_ = 0, beta_rows_ = 0, gamma_rows_ = 0, gamma_cols_ = 0;
  int64_t beta_rows_per_cell_ = 0;
};

}  // namespace stgs::nas
