// The fixed (evaluation) network built from a genotype.
#include "nas/fixed_network.h"

#include <string>

#include "engine/ops.h"

namespace stgs::nas {

FixedCell::FixedCell(const SearchConfig& config, const CellGenotype& cell, Generator* gen)
    : Module("FixedCell"), genotype_(cell) {
  const int64_t C = config.C, L = config.L;
  auto steps = register_module("steps", std::make_shared<Module>("ModuleList"));
  for (size_t k = 0; k < cell.steps.size(); ++k)
    steps_.push_back(
        steps->register_module(std::to_string(k), make_fusion_op(cell.steps[k].op, C, L, config.dropout, gen)));
  conv_ = register_module("conv", std::make_shared<Conv1d>(int64_t(cell.steps.size()) * C, C, 1, 1, 0, true, gen));
  bn_ = register_module("bn", std::make_shared<BatchNorm>(C));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(config.dropout));
  ln_ = register_module("ln", std::make_shared<LayerNorm>(Shape{C, L}));
}

Tensor FixedCell::forward(const Tensor& x, const Tensor& y) {
  // The fusion ops check that x and y are (B, C, L).
  std::vector<Tensor> states{x, y};
  for (size_t k = 0; k < steps_.size(); ++k) {
    const StepGenotype& s = genotype_.steps[k];
    states.push_back(steps_[k]->forward(states[size_t(s.inputs[0])], states[size_t(s.inputs[1])]));
  }
  const Tensor stacked = concat({states.begin() + 2, states.end()}, 1);          // (B, steps C, L)
  const Tensor mixed = dropout_->forward(relu(bn_->forward(conv_->forward(stacked))));  // (B, C, L)
  return ln_->forward(x + mixed);
}

FixedNetwork::FixedNetwork(const Genotype& genotype, Generator* gen)
    : Module("FixedNetwork"), genotype_(genotype) {
  validate_genotype(genotype_);
  const SearchConfig& c = genotype_.config;
  std::vector<bool> used(size_t(c.num_inputs()), false);
  for (const CellGenotype& cell : genotype_.cells)
    for (int u : cell.inputs)
      if (u < c.num_inputs()) used[size_t(u)] = true;

  // An unused input gets no layer at all (BM-NAS swaps in a parameter-free ReLU): it cannot affect the
  // logits, so its parameters would only inflate the count and receive no gradient.
  auto reshape = register_module("reshape", std::make_shared<Module>("ModuleList"));
  reshape_.resize(size_t(c.num_inputs()));
  for (int u = 0; u < c.num_inputs(); ++u) {
    if (!used[size_t(u)]) continue;
    reshape_[size_t(u)] = reshape->register_module(
        std::to_string(u), std::make_shared<ReshapeLayer>(c.input_channels[size_t(u)], c.C, c.dropout, gen));
  }
  auto cells = register_module("cells", std::make_shared<Module>("ModuleList"));
  for (int v = 0; v < c.cells; ++v)
    cells_.push_back(
        cells->register_module(std::to_string(v), std::make_shared<FixedCell>(c, genotype_.cells[size_t(v)], gen)));
  head_norm_ = register_module("head_norm", std::make_shared<LayerNorm>(Shape{c.cells * c.C, c.L}));
  classifier_ = register_module("classifier", std::make_shared<Linear>(c.cells * c.C * c.L, c.num_classes, true, gen));
}

Tensor FixedNetwork::forward(const std::vector<Tensor>& features) {
  const SearchConfig& c = genotype_.config;
  const int N = c.num_inputs();
  STGS_CHECK(int(features.size()) == N, "FixedNetwork: expected ", N, " input features (one per input node), got ",
             features.size());
  for (int u = 0; u < N; ++u) {
    const Tensor& f = features[size_t(u)];
    const int64_t C_u = c.input_channels[size_t(u)];
    STGS_CHECK(f.defined() && f.dim() == 3 && f.size(1) == C_u && f.size(2) == c.L, "FixedNetwork: input ", u, " ('",
               c.input_names[size_t(u)], "') must be (B, ", C_u, ", ", c.L, "), got ",
               f.defined() ? f.str() : std::string("an undefined tensor"));
    STGS_CHECK(f.size(0) == features[0].size(0) && f.dtype() == features[0].dtype() &&
                   f.device() == features[0].device(),
               "FixedNetwork: input ", u, " is ", f.str(), " but input 0 is ", features[0].str(),
               "; all inputs share the batch size, dtype and device");
  }
  // Node u: (B, C, L). Inputs no cell reads stay undefined.
  std::vector<Tensor> nodes(features.size());
  for (int u = 0; u < N; ++u)
    if (reshape_[size_t(u)]) nodes[size_t(u)] = reshape_[size_t(u)]->forward(features[size_t(u)]);
  for (int v = 0; v < c.cells; ++v) {
    const CellGenotype& cell = genotype_.cells[size_t(v)];
    nodes.push_back(cells_[size_t(v)]->forward(nodes[size_t(cell.inputs[0])], nodes[size_t(cell.inputs[1])]));
  }
  const Tensor joined = concat({nodes.begin() + N, nodes.end()}, 1);  // (B, cells C, L)
  return classifier_->forward(relu(head_norm_->forward(joined)).flatten(1));
}

}  // namespace stgs::nas
