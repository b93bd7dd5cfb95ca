// The search network: architecture parameters and samples, cells, the head, the M-sample loss, entropies.
#include "nas/search_network.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/ops.h"

namespace stgs::nas {
namespace {

// One weighted term of a mixture: w[d, row, col] * x for every draw d. x is (D B, C, L), one slice per draw,
// or (B, C, L), shared by all draws (an input node). `live`: some draw's weight for it is nonzero.
struct Term {
  Tensor x;
  int64_t row, col;
  bool live;
};

// The column w[:, row, col] of stacked weights (D, R, K) as a (D, 1) view.
Tensor weight_column(const Tensor& w, int64_t row, int64_t col) {
  return w.narrow(1, row, 1).narrow(2, col, 1).reshape({w.size(0), 1});
}

// The columns w[:, row, col] of the terms `which`, side by side: (D, |which|).
Tensor weight_columns(const Tensor& w, const std::vector<Term>& terms, const std::vector<size_t>& which) {
  std::vector<Tensor> cols;
  for (size_t i : which) cols.push_back(weight_column(w, terms[i].row, terms[i].col));
  return concat(cols, 1);
}

// Draw by draw, sum_i w[d, row_i, col_i] * x_i[d] over terms with distinct (row, col); w: (D, R, K), every
// x_i (D B, C, L) or shared (B, C, L); out: (D B, C, L), zeros (no gradient) when no term is live. One
// autograd node for the whole sum. With g the output gradient viewed (D, n), n = B C L:
//   dx_i[d] = w[d, row_i, col_i] g[d]  (summed over d for a shared x_i),   dw[d, row_i, col_i] = <g[d], x_i[d]>.
// A term whose weight is exactly 0 in every draw (with a Hard sample: unselected everywhere) adds nothing to
// the value and its dx_i is exactly 0, so neither is computed: the backward gives x_i no gradient at all,
// and the ops that produced it run no backward (for an exact-path step, most of the fusion ops' backward
// work). Its dw is still computed: that is the straight-through signal.
// With several draws, the shared terms (the input nodes mixed into a cell) go through GEMMs: stacked as
// X (T, n), their part of the output is W (D, T) X, of dw is g X^T and of their dx_i is W^T g, one pass each
// instead of a multiply and an add over (D, n) per term.
Tensor mix(const Tensor& w, const std::vector<Term>& terms, const Shape& out_shape) {
  const int64_t D = w.size(0), n = out_shape.numel() / D;
  // With several draws, the shared terms' rows in the stacked X: slot[i] for term i, -1 for a per-draw term.
  std::vector<size_t> shared;
  std::vector<int64_t> slot(terms.size(), -1);
  for (size_t i = 0; i < terms.size(); ++i)
    if (D > 1 && terms[i].x.size(0) * D == out_shape[0]) {
      slot[i] = int64_t(shared.size());
      shared.push_back(i);
    }
  Tensor out, stacked_shared;  // stacked_shared: (T, n)
  {
    NoGradGuard no_grad;
    if (!shared.empty()) {
      std::vector<Tensor> rows;
      for (size_t i : shared) rows.push_back(terms[i].x.detach().reshape({1, n}));
      stacked_shared = concat(rows, 0);
      out = matmul(weight_columns(w, terms, shared), stacked_shared);  // (D, n); dead terms weigh 0 everywhere
    }
    for (size_t i = 0; i < terms.size(); ++i) {
      const Term& t = terms[i];
      if (!t.live || slot[i] >= 0) continue;
      const Tensor p = mul(t.x.reshape({-1, n}), weight_column(w, t.row, t.col));  // (D, n)
      out = out.defined() ? add(out, p) : p;
    }
    out = out.defined() ? out.reshape(out_shape) : zeros(out_shape, w.dtype(), w.device());
  }
  std::vector<Tensor> inputs{w};
  for (const Term& t : terms) inputs.push_back(t.x);
  if (terms.empty() || !any_requires_grad(inputs)) return out;

  std::vector<Term> saved;
  for (const Term& t : terms) saved.push_back({t.x.detach(), t.row, t.col, t.live});
  const Tensor wd = w.detach();
  record("search mix", out, inputs, [wd, saved, shared, slot, stacked_shared, D, n](const Tensor& g, GradInputs& gi) {
    const Tensor g2 = g.reshape({D, n});
    if (gi.needs(0)) {
      Tensor dw = zeros(wd.shape(), wd.dtype(), wd.device());
      const Tensor dw_shared = shared.empty() ? Tensor() : matmul(g2, stacked_shared.transpose(0, 1));  // (D, T)
      for (size_t i = 0; i < saved.size(); ++i) {
        const Term& t = saved[i];
        const Tensor dots = slot[i] >= 0 ? dw_shared.narrow(1, slot[i], 1)  // (D, 1)
                                         : sum(mul(g2, t.x.reshape({-1, n})), {1}).reshape({D, 1});
        dw.narrow(1, t.row, 1).narrow(2, t.col, 1).copy_(dots.reshape({D, 1, 1}));
      }
      gi.set(0, dw);
    }
    Tensor dx_shared;  // (T, n) = W^T g, computed when a live shared term needs it
    for (size_t i = 0; i < saved.size(); ++i) {
      const Term& t = saved[i];
      if (!gi.needs(i + 1) || !t.live) continue;
      if (slot[i] < 0) {
        gi.set(i + 1, mul(g2, weight_column(wd, t.row, t.col)).reshape(t.x.shape()));
        continue;
      }
      if (!dx_shared.defined()) dx_shared = matmul(weight_columns(wd, saved, shared).transpose(0, 1), g2);
      gi.set(i + 1, dx_shared.narrow(0, slot[i], 1).reshape(t.x.shape()));
    }
  });
  return out;
}

// Sampled weights as stacked (D, R, K): one draw's (R, K) becomes (1, R, K).
Tensor stacked(const Tensor& w) { return w.dim() == 2 ? w.unsqueeze(0) : w; }

// A sampled weight matrix for D draws: stacked (D, R, K) and its host copy (for the liveness tests and the
// fast path's selections).
struct DrawWeights {
  explicit DrawWeights(const Tensor& sample)
      : w(stacked(sample)), host(w.to_vector<double>()), D(w.size(0)), R(w.size(1)), K(w.size(2)) {}
  // Some draw gives w[., row, col] a nonzero weight.
  bool live(int64_t row, int64_t col) const {
    for (int64_t d = 0; d < D; ++d)
      if (host[size_t((d * R + row) * K + col)] != 0) return true;
    return false;
  }
  Tensor w;
  std::vector<double> host;
  int64_t D, R, K;
};

// The selected column of every row of one draw's one-hot weight matrix (rows, K); throws naming the row
// unless it holds exactly one 1 and zeros elsewhere.
std::vector<int64_t> one_hot_columns(const DrawWeights& w, const char* name) {
  STGS_CHECK(w.D == 1, "SearchPath::Fast evaluates one draw at a time, but ", name, " holds ", w.D,
             " stacked draws; use SearchPath::Exact");
  const std::vector<double>& v = w.host;
  const int64_t rows = w.R, K = w.K;
  std::vector<int64_t> cols(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t ones = 0, zeros = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double x = v[size_t(r * K + k)];
      if (x == 1.0) {
        ++ones;
        cols[size_t(r)] = k;
      } else if (x == 0.0) {
        ++zeros;
      }
    }
    if (ones != 1 || zeros != K - 1) {
      std::string row;
      for (int64_t k = 0; k < K; ++k) row += (k ? ", " : "") + std::to_string(v[size_t(r * K + k)]);
      STGS_FAIL("SearchPath::Fast needs a one-hot (Hard) sample, but ", name, " row ", r, " is [", row,
                "]; use SearchPath::Exact for soft or plain-softmax weights");
    }
  }
  return cols;
}

// A sampled matrix must be (rows, cols), or (D, rows, cols) for D stacked draws, with the nodes' dtype and
// device.
void check_weights(const char* where, const char* name, const Tensor& w, int64_t rows, int64_t cols,
                   const Tensor& like) {
  STGS_CHECK(w.defined() && (w.dim() == 2 || (w.dim() == 3 && w.size(0) >= 1)) && w.size(-2) == rows &&
                 w.size(-1) == cols,
             where, ": sample ", name, " must be (", rows, ", ", cols, ") or (draws, ", rows, ", ", cols, "), got ",
             w.defined() ? w.str() : "undefined");
  STGS_CHECK(w.dtype() == like.dtype() && w.device() == like.device(), where, ": sample ", name, " ", w.str(),
             " must have the dtype and device of the nodes, ", like.str());
}

// A node must be (B, C, L).
void check_node(const char* where, const std::string& what, const Tensor& t, int64_t B, int64_t C, int64_t L) {
  STGS_CHECK(t.defined() && t.dim() == 3 && t.size(0) == B && t.size(1) == C && t.size(2) == L, where, ": ",
             what, " must be (", B, ", ", C, ", ", L, "), got ", t.defined() ? t.str() : "undefined");
}

}  // namespace

// ---- ArchParams, sampling ----------------------------------------------------------------------------

ArchParams::ArchParams(const SearchConfig& config, Generator* gen) : Module("ArchParams"), layout_(config) {
  auto init = [gen](int64_t rows, int64_t cols) {
    NoGradGuard no_grad;
    return mul(randn({rows, cols}, DType::F32, Device::cpu(), gen), 1e-3);
  };
  alpha = register_parameter("alpha", init(layout_.alpha_rows(), 2));
  beta = register_parameter("beta", init(layout_.beta_rows(), 2));
  gamma = register_parameter("gamma", init(layout_.gamma_rows(), layout_.gamma_cols()));
}

ArchSample sample_architecture(const ArchParams& arch, double lambda, GumbelMode mode, Generator* gen) {
  auto draw = [&](const Tensor& logits) { return gumbel_softmax_st(logits, lambda, mode, gen).weights(); };
  ArchSample s;
  s.alpha = draw(arch.alpha);
  s.beta = draw(arch.beta);
  s.gamma = draw(arch.gamma);
  return s;
}

ArchSample stack_draws(const std::vector<ArchSample>& draws) {
  STGS_CHECK(!draws.empty(), "stack_draws: no draws");
  auto stack = [&](Tensor ArchSample::*m) {
    std::vector<Tensor> parts;
    for (const ArchSample& d : draws) parts.push_back((d.*m).unsqueeze(0));
    return concat(parts, 0);
  };
  return {stack(&ArchSample::alpha), stack(&ArchSample::beta), stack(&ArchSample::gamma)};
}

// ---- SearchCell -------------------------------------------------------------------------------------

SearchCell::SearchCell(const SearchConfig& config, int index, Generator* gen)
    : Module("SearchCell"), layout_(config), index_(index), steps_(config.steps), C_(config.C), L_(config.L) {
  STGS_CHECK(index >= 0 && index < config.cells, "SearchCell: index ", index, " out of range for ", config.cells,
             " cells");
  auto steps = register_module("steps", std::make_shared<Module>("ModuleList"));
  for (int k = 0; k < steps_; ++k) {
    auto step = steps->register_module(std::to_string(k), std::make_shared<Module>("ModuleList"));
    std::vector<std::shared_ptr<FusionOp>>& ops = ops_.emplace_back();
    for (FusionOpKind kind : config.ops) {
      // Zero's term is left out of every sum (see the header), so it needs no module.
      if (kind == FusionOpKind::Zero) {
        ops.push_back(nullptr);
        continue;
      }
      ops.push_back(step->register_module(fusion_op_name(kind), make_fusion_op(kind, C_, L_, config.dropout, gen)));
    }
  }
  conv_ = register_module("conv", std::make_shared<Conv1d>(steps_ * C_, C_, 1, 1, 0, true, gen));
  bn_ = register_module("bn", std::make_shared<BatchNorm>(C_));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(config.dropout));
  ln_ = register_module("ln", std::make_shared<LayerNorm>(Shape{C_, L_}));
}

Tensor SearchCell::forward(const Tensor& x, const Tensor& beta, const Tensor& gamma, SearchPath path) {
  const std::string where = "SearchCell " + std::to_string(index_);
  STGS_CHECK(x.defined() && x.dim() == 3 && x.size(1) == C_ && x.size(2) == L_, where, ": input x must be (B, ", C_,
             ", ", L_, "), got ", x.defined() ? x.str() : "undefined");
  check_weights(where.c_str(), "beta", beta, layout_.beta_rows(), 2, x);
  check_weights(where.c_str(), "gamma", gamma, layout_.gamma_rows(), layout_.gamma_cols(), x);
  const DrawWeights bw(beta), gw(gamma);
  const int64_t D = bw.D;
  STGS_CHECK(gw.D == D && x.size(0) % D == 0, where, ": beta ", beta.str(), ", gamma ", gamma.str(), " and x ",
             x.str(), " must hold the same number of draws");
  const bool fast = path == SearchPath::Fast;
  std::vector<int64_t> beta_sel, gamma_sel;
  if (fast) {
    beta_sel = one_hot_columns(bw, "beta");
    gamma_sel = one_hot_columns(gw, "gamma");
  }

  std::vector<Tensor> states{x, x};  // BM-NAS search: both inner inputs are the cell's input
  for (int k = 0; k < steps_; ++k) {
    std::vector<Term> edges;
    for (int j = 0; j < 2 + k; ++j) {
      const int64_t r = layout_.beta_row(index_, k, j);
      if (!fast || beta_sel[size_t(r)] == kEdgeIdentity)
        edges.push_back({states[size_t(j)], r, kEdgeIdentity, bw.live(r, kEdgeIdentity)});
    }
    const Tensor t = mix(bw.w, edges, x.shape());  // (D B, C, L)

    const int64_t r = layout_.gamma_row(index_, k);
    std::vector<Term> fused;
    for (size_t o = 0; o < ops_[size_t(k)].size(); ++o) {
      const std::shared_ptr<FusionOp>& op = ops_[size_t(k)][o];
      if (op && (!fast || gamma_sel[size_t(r)] == int64_t(o)))
        fused.push_back({op->forward(t, t, D), r, int64_t(o), gw.live(r, int64_t(o))});
    }
    states.push_back(mix(gw.w, fused, x.shape()));  // s_k: (D B, C, L)
  }

  const Tensor h = concat(std::vector<Tensor>(states.begin() + 2, states.end()), 1);  // (D B, steps C, L)
  const Tensor y = dropout_->forward(relu(bn_->forward(conv_->forward(h), D)));        // (D B, C, L)
  return ln_->forward(add(y, x));
}

// ---- SearchNetwork ----------------------------------------------------------------------------------

SearchNetwork::SearchNetwork(const SearchConfig& config, Generator* gen)
    : Module("SearchNetwork"), config_(config), layout_(config) {
  auto reshape = register_module("reshape", std::make_shared<Module>("ModuleList"));
  for (int i = 0; i < config_.num_inputs(); ++i)
    reshape_.push_back(reshape->register_module(
        std::to_string(i), std::make_shared<ReshapeLayer>(config_.input_channels[size_t(i)], config_.C,
                                                           config_.dropout, gen)));
  auto cells = register_module("cells", std::make_shared<Module>("ModuleList"));
  for (int v = 0; v < config_.cells; ++v)
    cells_.push_back(cells->register_module(std::to_string(v), std::make_shared<SearchCell>(config_, v, gen)));
  head_norm_ = register_module("head_norm", std::make_shared<LayerNorm>(Shape{config_.cells * config_.C, config_.L}));
  classifier_ = register_module(
      "classifier", std::make_shared<Linear>(config_.cells * config_.C * config_.L, config_.num_classes, true, gen));
}

const std::shared_ptr<SearchCell>& SearchNetwork::cell(int v) const {
  STGS_CHECK(v >= 0 && v < config_.cells, "SearchNetwork::cell: index ", v, " out of range for ", config_.cells,
             " cells");
  return cells_[size_t(v)];
}

std::vector<Tensor> SearchNetwork::reshape_inputs(const std::vector<Tensor>& features) {
  const int N = config_.num_inputs();
  STGS_CHECK(int(features.size()) == N, "SearchNetwork::reshape_inputs: expected ", N,
             " input features (one per input node, config order), got ", features.size());
  STGS_CHECK(features[0].defined() && features[0].dim() == 3, "SearchNetwork::reshape_inputs: input 0 '",
             config_.input_names[0], "' must be (B, ", config_.input_channels[0], ", ", config_.L, "), got ",
             features[0].defined() ? features[0].str() : "undefined");
  const int64_t B = features[0].size(0);
  std::vector<Tensor> nodes;
  for (int i = 0; i < N; ++i) {
    check_node("SearchNetwork::reshape_inputs",
               "input " + std::to_string(i) + " '" + config_.input_names[size_t(i)] + "'", features[size_t(i)], B,
               config_.input_channels[size_t(i)], config_.L);
    nodes.push_back(reshape_[size_t(i)]->forward(features[size_t(i)]));
  }
  return nodes;
}

Tensor SearchNetwork::forward_nodes(const std::vector<Tensor>& nodes, const ArchSample& sample, SearchPath path) {
  const char* where = "SearchNetwork::forward_nodes";
  const int N = config_.num_inputs();
  STGS_CHECK(int(nodes.size()) == N, where, ": expected ", N, " nodes (one per input), got ", nodes.size());
  STGS_CHECK(nodes[0].defined() && nodes[0].dim() == 3, where, ": node 0 must be (B, ", config_.C, ", ", config_.L,
             "), got ", nodes[0].defined() ? nodes[0].str() : "undefined");
  const int64_t B = nodes[0].size(0);
  for (int i = 0; i < N; ++i)
    check_node(where, "node " + std::to_string(i), nodes[size_t(i)], B, config_.C, config_.L);
  check_weights(where, "alpha", sample.alpha, layout_.alpha_rows(), 2, nodes[0]);
  const DrawWeights aw(sample.alpha);
  const bool fast = path == SearchPath::Fast;
  const std::vector<int64_t> alpha_sel = fast ? one_hot_columns(aw, "alpha") : std::vector<int64_t>{};

  // The nodes are shared by the D draws; each cell's output holds all draws: (D B, C, L).
  const Shape batch_shape{aw.D * B, config_.C, config_.L};
  std::vector<Tensor> states = nodes;  // inputs, then each cell's output
  for (int v = 0; v < config_.cells; ++v) {
    std::vector<Term> edges;
    for (int u = 0; u < N + v; ++u) {
      const int64_t r = layout_.alpha_row(v, u);
      if (!fast || alpha_sel[size_t(r)] == kEdgeIdentity)
        edges.push_back({states[size_t(u)], r, kEdgeIdentity, aw.live(r, kEdgeIdentity)});
    }
    const Tensor x = mix(aw.w, edges, batch_shape);  // (D B, C, L)
    states.push_back(cells_[size_t(v)]->forward(x, sample.beta, sample.gamma, path));
  }

  const Tensor h = concat(std::vector<Tensor>(states.begin() + N, states.end()), 1);  // (D B, cells C, L)
  return classifier_->forward(relu(head_norm_->forward(h)).flatten(1));             // (D B, num_classes)
}

Tensor SearchNetwork::forward(const std::vector<Tensor>& features, const ArchSample& sample, SearchPath path) {
  return forward_nodes(reshape_inputs(features), sample, path);
}

Tensor sampled_loss(SearchNetwork& net, const std::vector<Tensor>& nodes, const ArchParams& arch, const Tensor& labels,
                    double lambda, int M, GumbelMode mode, SearchPath path, Generator* gen) {
  STGS_CHECK(M >= 1, "sampled_loss: the number of samples M must be >= 1, got ", M);
  if (path == SearchPath::Exact) {
    // All M draws in one batch of M B samples: the mean over its rows is the mean of the M per-draw means.
    std::vector<ArchSample> draws;
    for (int m = 0; m < M; ++m) draws.push_back(sample_architecture(arch, lambda, mode, gen));
    const Tensor logits = net.forward_nodes(nodes, stack_draws(draws), path);  // (M B, num_classes)
    return cross_entropy(logits, M == 1 ? labels : concat(std::vector<Tensor>(size_t(M), labels), 0));
  }
  Tensor total;
  for (int m = 0; m < M; ++m) {
    const Tensor loss = cross_entropy(net.forward_nodes(nodes, sample_architecture(arch, lambda, mode, gen), path),
                                      labels);
    total = total.defined() ? add(total, loss) : loss;
  }
  return M == 1 ? total : mul(total, 1.0 / M);
}

// ---- entropy, convergence ---------------------------------------------------------------------------

double mean_entropy(const Tensor& logits) {
  STGS_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) > 0 && logits.size(1) > 0,
             "mean_entropy: logits must be (rows, K) with rows, K >= 1, got ",
             logits.defined() ? logits.str() : "undefined");
  const std::vector<double> v = logits.to_vector<double>();
  const int64_t rows = logits.size(0), K = logits.size(1);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const double* z = v.data() + r * K;
    double m = z[0];
    for (int64_t k = 1; k < K; ++k) m = std::max(m, z[k]);
    // With e_k = exp(z_k - m) and S = sum e_k: H = -sum p_k log p_k = log S - sum_k p_k (z_k - m), which
    // stays finite when some p_k underflows to 0.
    double S = 0, weighted = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double e = std::exp(z[k] - m);
      S += e;
      weighted += e * (z[k] - m);
    }
    total += std::log(S) - weighted / S;
  }
  return total / double(rows);
}

Entropies arch_entropies(const ArchParams& arch) {
  return {mean_entropy(arch.alpha), mean_entropy(arch.beta), mean_entropy(arch.gamma)};
}

ConvergenceMonitor::ConvergenceMonitor(double tolerance, int patience) : tolerance_(tolerance), patience_(patience) {
  STGS_CHECK(std::isfinite(tolerance) && tolerance > 0, "ConvergenceMonitor: tolerance must be finite and > 0, got ",
             tolerance);
  STGS_CHECK(patience >= 1, "ConvergenceMonitor: patience must be >= 1 epoch, got ", patience);
}

bool ConvergenceMonitor::update(const Entropies& e) {
  if (has_last_) {
    // A NaN entropy compares false, so it breaks the run instead of counting as flat.
    const bool flat = std::abs(e.alpha - last_.alpha) < tolerance_ && std::abs(e.beta - last_.beta) < tolerance_ &&
                      std::abs(e.gamma - last_.gamma) < tolerance_;
    flat_epochs_ = flat ? flat_epochs_ + 1 : 0;
  }
  last_ = e;
  has_last_ = true;
  return converged();
}

}  // namespace stgs::nas
