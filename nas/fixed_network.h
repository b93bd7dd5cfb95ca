// The evaluation network: only the edges and ops a genotype chose, trained from scratch (paper section 4.4;
// BM-NAS's Found_* models).
// defines: FixedCell, FixedNetwork
//
// Data flow (indices as in nas/genotype.h):
//   features[u]: (B, C_u, L) --ReshapeLayer u--> node u: (B, C, L)        only for inputs some cell reads
//   cell v: x = node[inputs[0]], y = node[inputs[1]]; states [x, y]
//           step k: s_k = op_k(states[a_k], states[b_k])                  two distinct states, one op
//           out = LayerNorm([C, L])(x + Dropout(ReLU(BN(Conv1d_{steps C -> C}(concat(s_0 .. s_{steps-1}))))))
//   head:   concat(all cell outputs): (B, cells C, L) -> LayerNorm -> ReLU -> flatten -> Linear
//           -> (B, num_classes), class 1 = fake.
// Unlike the search (where both inner inputs are the cell's input), x and y are genuinely different nodes.
// The cell output block and the head are the search network's, so the two report comparable sizes.
#pragma once

#include <memory>
#include <vector>

#include "engine/nn/conv_layers.h"
#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/random.h"
#include "nas/fusion_ops.h"
#include "nas/genotype.h"
#include "nas/reshape.h"

namespace stgs::nas {

// Cell v of a genotype. Children (state-dict names): "steps.<k>" (the step's fusion op, e.g.
// "steps.0.conv.weight" for LinearGLU), "conv", "bn", "dropout", "ln".
class FixedCell : public Module {
 public:
  FixedCell(const SearchConfig& config, const CellGenotype& cell, Generator* gen = nullptr);

  // x, y: (B, C, L) -> (B, C, L).
  Tensor forward(const Tensor& x, const Tensor& y);
  using Module::forward;

 private:
  CellGenotype genotype_;
  std::vector<std::shared_ptr<FusionOp>> steps_;
  std::shared_ptr<Conv1d> conv_;
  std::shared_ptr<BatchNorm> bn_;
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<LayerNorm> ln_;
};

// Children (state-dict names): "reshape.<u>" (ReshapeLayer C_u -> C) for each input u some cell reads, in
// input order, "cells.<v>" (FixedCell), "head_norm" (LayerNorm([cells C, L])), "classifier" (Linear(cells C L
// -> num_classes)). Weights are F32 on the CPU, drawn from `gen` in that order (the default generator when
// null); dropout masks use the default generator. Throws what validate_genotype throws for a bad genotype.
class FixedNetwork : public Module {
 public:
  explicit FixedNetwork(const Genotype& genotype, Generator* gen = nullptr);

  // features: all N pooled inputs (B, C_u, L) in config order, sharing B, dtype and device; the ones no
  // cell reads are shape-checked and otherwise ignored -> logits (B, num_classes).
  Tensor forward(const std::vector<Tensor>& features);
  using Module::forward;

  const Genotype& genotype() const { return genotype_; }
  // Input u's reshape layer; null when no cell reads input u.
  const std::shared_ptr<ReshapeLayer>& reshape(int u) const { return reshape_.at(size_t(u)); }
  const std::shared_ptr<FixedCell>& cell(int v) const { return cells_.at(size_t(v)); }

 private:
  Genotype genotype_;
  std::vector<std::shared_ptr<ReshapeLayer>> reshape_;  // one slot per input node
  std::vector<std::shared_ptr<FixedCell>> cells_;
  std::shared_ptr<LayerNorm> head_norm_;
  std::shared_ptr<Linear> classifier_;
};

}  // namespace stgs::nas
