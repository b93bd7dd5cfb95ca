// The STGS-BMNAS search network (DESIGN.md section 5), its architecture parameters, the sampled-architecture
// loss, and the entropy-based convergence rule (paper section 4.3, eq. 20-21).
// defines: ArchParams, ArchSample, sample_architecture, SearchPath, SearchCell, SearchNetwork, sampled_loss,
//          mean_entropy, Entropies, arch_entropies, ConvergenceMonitor
//
// Data flow for one batch (nas/search_space.h gives the node and row layout):
//   features[i]: (B, C_i, L) --ReshapeLayer i--> node i: (B, C, L)                  once per batch
//   cell v: x = sum_u w_alpha[alpha_row(v, u), Identity] * node_u   (u < N + v: inputs, earlier cells)
//           states [x, x, s_0, ...];  t_k = sum_j w_beta[beta_row(v, k, j), Identity] * state_j
//           s_k = sum_o w_gamma[gamma_row(v, k), o] * op_o(t_k, t_k)
//           out = LayerNorm([C, L])(x + Dropout(ReLU(BN(Conv1d_{steps C -> C}(concat(s_0 .. s_{steps-1}))))))
//   head:   concat(cell outputs): (B, cells C, L) -> LayerNorm -> ReLU -> flatten -> Linear -> (B, num_classes)
// The weights w come from an ArchSample: one-hot (STGS), soft, or a plain softmax (BM-NAS). As in BM-NAS both
// inner inputs of a cell are its input x. The Zero edge and the Zero fusion op output zeros, so their terms
// are left out of every sum: they add nothing to the value and nothing to any gradient, their weight's
// included (d(w * 0)/dw = 0). A cell whose every edge is Zero gets the input zeros (no gradient).
//
// Two evaluation paths give the same forward value for a one-hot sample and differ in the architecture
// gradient. Write G[r, c] = dloss/dw[r, c] = <dloss/d(sum the term feeds), term(r, c)> for the weight of
// row r, column c (0 for Zero columns), y = the soft sample, lambda the temperature.
// - SearchPath::Exact evaluates every edge and op of every row, weighted by the sample, whatever it is.
//   Through a Hard sample the logits receive the full straight-through gradient
//       dlogits[r] = (1/lambda) y[r] (G[r] - <G[r], y[r]>).
//   Unselected terms have weight 0, so they change neither the value nor any network-weight gradient, but
//   their ops still run forward (batch norms in training mode update their running statistics from this
//   batch, and their outputs give G). Their backward is skipped: the gradient through a weight-0 term is
//   exactly 0, so such an op's parameters receive none (the Architect turns that into zeros, so weight
//   decay and momentum act as if it had been computed).
// - SearchPath::Fast needs a one-hot sample (it throws otherwise) and evaluates only the selected term of
//   every row, multiplied by its weight (value 1) so the gradient still reaches the logits. Only the selected
//   coordinate s of G is known, so (GDAS-style)
//       dlogits[r] = (1/lambda) y[r] (G[r, s] e_s - G[r, s] y[r, s])
//   i.e. the exact path's gradient with G masked by the one-hot sample. Network-weight gradients equal the
//   exact path's (the parameters of unused ops get none instead of zeros).
//
// Cost for the M samples of a step: compute the nodes once with reshape_inputs and share them between the
// draws. On the exact path the M draws run as ONE batch of M B samples (stack_draws): every op runs once on
// M times the data (GEMMs with M B L columns, elementwise work large enough for every core) instead of M
// times on small tensors, and the batch norms take their statistics per draw (batch_norm groups), so the
// values, gradients and running statistics are those of M separate forwards. One backward then gives the
// average gradient. The fast path evaluates draw by draw (each selects its own ops) and averages the M
// losses into one graph. The price is memory: the M draws' activations live until that backward (a few MB
// per draw at the paper's sizes and batch 8).
#pragma once

#include <memory>
#include <vector>

#include "engine/nn/conv_layers.h"
#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/random.h"
#include "nas/fusion_ops.h"
#include "nas/gumbel.h"
#include "nas/reshape.h"
#include "nas/search_space.h"

namespace stgs::nas {

// ---- architecture parameters and samples ------------------------------------------------------------

// The logits alpha (alpha_rows, 2), beta (beta_rows, 2), gamma (gamma_rows, |ops|) in ArchLayout's row order,
// initialised 1e-3 * randn (BM-NAS) from `gen` in that order (the default generator when null). A Module of
// its own, separate from the network weights: its own optimizer, and state_dict keys "alpha", "beta", "gamma"
// for checkpoints; to(device) / to(dtype) move it like any module.
class ArchParams : public Module {
 public:
  explicit ArchParams(const SearchConfig& config, Generator* gen = nullptr);
  const ArchLayout& layout() const { return layout_; }

  Tensor alpha, beta, gamma;

 private:
  ArchLayout layout_;
};

// The mixing weights of one forward: the three matrices in the logits' shapes, dtype and device.
struct ArchSample {
  Tensor alpha, beta, gamma;
};

// One gumbel_softmax_st call per matrix (alpha, beta, gamma, in that order, consuming `gen`'s counters in
// that order): Hard -> one-hot weights with the straight-through gradient, Soft -> the relaxed sample,
// PlainSoftmax -> softmax(logits) (no noise, lambda ignored). The weights are differentiable with respect to
// the logits unless sampled under a NoGradGuard (a weight step needs no architecture gradient).
ArchSample sample_architecture(const ArchParams& arch, double lambda, GumbelMode mode, Generator* gen = nullptr);

// D draws stacked for one batched forward: each matrix becomes (D, rows, K), draw d at index d
// (differentiable: the gradient of each slice reaches that draw's sample).
ArchSample stack_draws(const std::vector<ArchSample>& draws);

enum class SearchPath { Exact, Fast };

// ---- the network ---------------------------------------------------------------------------------

// Cell v of the search space: the inner steps and the output block. Children (state-dict names):
// "steps.<k>.<op name>" for every fusion op but Zero (e.g. "steps.0.linear_glu.conv.weight"), "conv", "bn",
// "dropout", "ln".
class SearchCell : public Module {
 public:
  SearchCell(const SearchConfig& config, int index, Generator* gen = nullptr);

  // x: (B, C, L), the cell's input; beta: (beta_rows, 2) and gamma: (gamma_rows, |ops|), the WHOLE sampled
  // matrices (the cell reads its own rows) -> (B, C, L). x, beta and gamma share dtype and device. For D
  // stacked draws beta and gamma are (D, rows, K) and x holds the draws back to back: (D B, C, L).
  Tensor forward(const Tensor& x, const Tensor& beta, const Tensor& gamma, SearchPath path);
  using Module::forward;

 private:
  ArchLayout layout_;
  int index_, steps_;
  int64_t C_, L_;
  std::vector<std::vector<std::shared_ptr<FusionOp>>> ops_;  // [step][gamma column]; null for Zero
  std::shared_ptr<Conv1d> conv_;
  std::shared_ptr<BatchNorm> bn_;
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<LayerNorm> ln_;
};

// Children (state-dict names): "reshape.<i>" (ReshapeLayer C_i -> C of input i), "cells.<v>" (SearchCell),
// "head_norm" (LayerNorm([cells C, L])), "classifier" (Linear(cells C L -> num_classes)). Weights are F32 on
// the CPU, drawn from `gen` (the default generator when null); dropout masks use the default generator.
class SearchNetwork : public Module {
 public:
  explicit SearchNetwork(const SearchConfig& config, Generator* gen = nullptr);

  // features: the N pooled inputs (B, C_i, L) in config order -> the N nodes (B, C, L). This part does not
  // depend on the architecture: compute it once per batch and reuse it for all M draws.
  std::vector<Tensor> reshape_inputs(const std::vector<Tensor>& features);
  // nodes: N tensors (B, C, L); sample: matrices in ArchLayout's shapes, the nodes' dtype and device
  // -> logits (B, num_classes), class 1 = fake. With D stacked draws (stack_draws) the nodes are shared and
  // the logits are (D B, num_classes), draw d in rows [d B, (d + 1) B); exact path only.
  Tensor forward_nodes(const std::vector<Tensor>& nodes, const ArchSample& sample, SearchPath path);
  // forward_nodes(reshape_inputs(features), sample, path), for a single draw (validation, inference).
  Tensor forward(const std::vector<Tensor>& features, const ArchSample& sample, SearchPath path);
  using Module::forward;

  const SearchConfig& config() const { return config_; }
  const ArchLayout& layout() const { return layout_; }
  const std::shared_ptr<SearchCell>& cell(int v) const;  // 0 <= v < cells

 private:
  SearchConfig config_;
  ArchLayout layout_;
  std::vector<std::shared_ptr<ReshapeLayer>> reshape_;
  std::vector<std::shared_ptr<SearchCell>> cells_;
  std::shared_ptr<LayerNorm> head_norm_;
  std::shared_ptr<Linear> classifier_;
};

// The STGS objective of one step (paper eq. 19, Monte Carlo over M draws): for m = 1..M an independent
// sample_architecture(arch, lambda, mode, gen) and cross_entropy(net.forward_nodes(nodes, sample, path),
// labels); returns their mean (shape []), one graph, so a single backward gives the average gradient to the
// network weights, the reshape layers (through the shared nodes) and the logits. labels: I64 (B), values
// in [0, num_classes). M >= 1.
Tensor sampled_loss(SearchNetwork& net, const std::vector<Tensor>& nodes, const ArchParams& arch, const Tensor& labels,
                    double lambda, int M, GumbelMode mode, SearchPath path, Generator* gen = nullptr);

// ---- entropy and convergence --------------------------------------------------------------------

// logits: (rows, K), any float dtype and device -> mean over rows of the entropy (nats) of softmax(row):
// log K for uniform rows, 0 in the one-hot limit. Paper eq. 20-21 with the mean in place of the sum, so
// matrices of different sizes compare.
double mean_entropy(const Tensor& logits);

struct Entropies {
  double alpha = 0, beta = 0, gamma = 0;
};
Entropies arch_entropies(const ArchParams& arch);

// The paper's stopping rule ("the entropy remains constant for dozens of epochs"): feed the entropies after
// every epoch; update() returns true once each of the three changed by less than `tolerance` (absolute, per
// epoch) for `patience` consecutive epochs. A resumed search restores the monitor by replaying the logged
// per-epoch entropies.
class ConvergenceMonitor {
 public:
  ConvergenceMonitor(double tolerance, int patience);  // tolerance finite and > 0, patience >= 1
  bool update(const Entropies& e);
  bool converged() const { return flat_epochs_ >= patience_; }
  int flat_epochs() const { return flat_epochs_; }  // the current run of flat epochs

 private:
  double tolerance_;
  int patience_;
  int flat_epochs_ = 0;
  bool has_last_ = false;
  Entropies last_;
};

}  // namespace stgs::nas
