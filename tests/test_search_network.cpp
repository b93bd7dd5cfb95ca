// Tests for the search network and STGS sampling (nas/search_network.h): shapes and state-dict names at the
// default and a small size, F64 central-difference gradients of a cell and of the whole network through soft
// weights (inputs, weights and architecture logits), the fast path against the exact path (same forward, the
// masked straight-through gradient), the plain-softmax mode, the M-sample loss, architecture parameters in
// state dicts, entropies, the convergence rule, and the error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "nas/search_network.h"
#include "tests/compare.h"
#include "tests/module_gradcheck.h"

using namespace stgs;
using namespace stgs::nas;
using stgs::testing::max_abs_diff;

namespace {

using Named = std::vector<std::pair<std::string, Tensor>>;

// 3 inputs of 3, 5 and 2 channels, C = 4, L = 3, 2 cells of 2 steps, every op, no dropout.
SearchConfig small_config() {
  SearchConfig c;
  c.input_names = {"a", "b", "c"};
  c.input_channels = {3, 5, 2};
  c.C = 4;
  c.L = 3;
  c.dropout = 0;
  return c;
}

// Pooled features (B, C_i, L) for every input of `config`.
std::vector<Tensor> make_features(const SearchConfig& config, int64_t B, DType dtype, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> f;
  for (int64_t c : config.input_channels) f.push_back(randn({B, c, config.L}, dtype, Device::cpu(), &gen));
  return f;
}

// Every parameter moved away from its initial value (LayerNorm/BatchNorm affine terms are ones and zeros)
// and every BatchNorm given non-trivial running statistics, so the checks exercise every term.
void randomise(Module& m, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (auto& [name, t] : m.named_parameters())
    t.copy_(add(t, mul(randn(t.shape(), t.dtype(), Device::cpu(), &gen), 0.3)));
  for (auto& [name, t] : m.named_buffers()) {
    if (name.find("running_mean") != std::string::npos) t.copy_(randn(t.shape(), t.dtype(), Device::cpu(), &gen));
    if (name.find("running_var") != std::string::npos) t.copy_(rand(t.shape(), t.dtype(), Device::cpu(), &gen, 0.5, 2));
  }
}

// Architecture logits of order 1, so soft samples are far from uniform.
void randomise_logits(ArchParams& arch, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (auto& [name, t] : arch.named_parameters()) t.copy_(randn(t.shape(), t.dtype(), Device::cpu(), &gen));
}

// Every Dropout module of `net` in eval mode (an identity), the rest left in training mode: batched and
// per-draw paths then compare exactly (attention's dropout is fixed at 0.1 whatever the config says).
void dropout_off(Module& net) {
  for (auto& [name, module] : net.named_modules())
    if (name.size() >= 7 && name.compare(name.size() - 7, 7, "dropout") == 0) module->eval();
}

// A closure as a single-input Module, for tests/module_gradcheck.h.
class Closure : public Module {
 public:
  explicit Closure(std::function<Tensor(const Tensor&)> f) : Module("Closure"), f_(std::move(f)) {}
  Tensor forward(const Tensor& x) override { return f_(x); }

 private:
  std::function<Tensor(const Tensor&)> f_;
};

// A leaf copy of a tensor's value (no history) that collects its own gradient.
Tensor leaf_copy(const Tensor& t) { return t.detach().clone().set_requires_grad(true); }

// The gradient, or zeros where none arrived.
std::vector<double> grad_or_zeros(const Tensor& t) {
  return t.grad().defined() ? t.grad().to_vector<double>() : std::vector<double>(size_t(t.numel()), 0.0);
}

// (1/lambda) y (G - <G, y>) per row: the straight-through gradient of the logits for an incoming G.
Tensor st_gradient(const Tensor& G, const Tensor& y, double lambda) {
  NoGradGuard no_grad;
  return mul(mul(y, sub(G, sum(mul(G, y), {1}, true))), 1.0 / lambda);
}

int64_t params_under(const Module& m, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& [name, t] : m.named_parameters())
    if (name.rfind(prefix, 0) == 0) n += t.numel();
  return n;
}

}  // namespace

// ---- architecture parameters and samples ----------------------------------------------------------------

TEST_CASE("ArchParams: ArchLayout shapes, 1e-3 randn init, state dict round trip", "[nas]") {
  const SearchConfig config = SearchConfig::defaults();
  Generator gen(1);
  ArchParams arch(config, &gen);
  CHECK(arch.alpha.shape() == Shape{17, 2});  // cell 0: 8 inputs, cell 1: 8 inputs + cell 0
  CHECK(arch.beta.shape() == Shape{10, 2});   // per cell: step 0 reads x, y; step 1 reads x, y, s_0
  CHECK(arch.gamma.shape() == Shape{4, 5});
  CHECK(arch.alpha.requires_grad());
  double sq = 0;
  int64_t n = 0;
  for (const Tensor& t : arch.parameters())
    for (double v : t.to_vector<double>()) sq += v * v, ++n;
  CHECK(std::sqrt(sq / double(n)) == Approx(1e-3).epsilon(0.3));

  const StateDict saved = arch.state_dict().clone();
  REQUIRE(saved.size() == 3);
  CHECK(saved.entries()[0].first == "alpha");
  CHECK(saved.entries()[1].first == "beta");
  CHECK(saved.entries()[2].first == "gamma");
  Generator other(2);
  ArchParams restored(config, &other);
  CHECK(restored.alpha.to_vector<float>() != arch.alpha.to_vector<float>());
  restored.load_state_dict(saved);
  CHECK(restored.alpha.to_vector<float>() == arch.alpha.to_vector<float>());
  CHECK(restored.beta.to_vector<float>() == arch.beta.to_vector<float>());
  CHECK(restored.gamma.to_vector<float>() == arch.gamma.to_vector<float>());
  // The network's weights are not among them.
  SearchNetwork net(config, &gen);
  for (const auto& [name, t] : net.named_parameters()) CHECK_FALSE(saved.contains(name));
}

TEST_CASE("sample_architecture: one-hot, soft and plain-softmax weights, one draw per matrix in order", "[nas]") {
  const SearchConfig config = small_config();
  ArchParams arch(config);
  randomise_logits(arch, 3);
  const ArchLayout& lay = arch.layout();

  Generator gen(5);
  const ArchSample hard = sample_architecture(arch, 10, GumbelMode::Hard, &gen);
  // alpha, beta, gamma reserve their counters in that order (each rounded up to a Philox block of 4).
  auto block = [](int64_t n) { return uint64_t((n + 3) / 4 * 4); };
  CHECK(gen.offset() == block(lay.alpha_rows() * 2) + block(lay.beta_rows() * 2) +
                            block(lay.gamma_rows() * lay.gamma_cols()));
  for (const Tensor& w : {hard.alpha, hard.beta, hard.gamma}) {
    const std::vector<float> v = w.to_vector<float>();
    const int64_t K = w.size(1);
    for (int64_t r = 0; r < w.size(0); ++r) {
      float total = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float x = v[size_t(r * K + k)];
        CHECK((x == 0.0f || x == 1.0f));
        total += x;
      }
      CHECK(total == 1.0f);
    }
  }
  // The same counters give the same draw; Soft gives the relaxed sample of that draw.
  Generator again(5);
  const ArchSample soft = sample_architecture(arch, 10, GumbelMode::Soft, &again);
  const std::vector<float> s = soft.gamma.to_vector<float>(), h = hard.gamma.to_vector<float>();
  for (int64_t r = 0; r < lay.gamma_rows(); ++r) {
    float total = 0, top = -1;
    int64_t arg = 0;
    for (int64_t k = 0; k < lay.gamma_cols(); ++k) {
      const float x = s[size_t(r * lay.gamma_cols() + k)];
      total += x;
      if (x > top) top = x, arg = k;
    }
    CHECK(total == Approx(1.0f));
    CHECK(top < 1.0f);
    CHECK(h[size_t(r * lay.gamma_cols() + arg)] == 1.0f);
  }
  // PlainSoftmax is softmax(logits) and draws nothing.
  Generator quiet(7);
  const ArchSample plain = sample_architecture(arch, 10, GumbelMode::PlainSoftmax, &quiet);
  CHECK(quiet.offset() == 0);
  CHECK(max_abs_diff(plain.beta.to(DType::F64).to_vector<double>(),
                     softmax(arch.beta, -1).to(DType::F64).to_vector<double>()) < 1e-7);
}

// ---- shapes and names -------------------------------------------------------------------------------

TEST_CASE("SearchNetwork: default and small sizes, state-dict names, BM-NAS parameter counts", "[nas]") {
  SECTION("defaults: 8 inputs of a width-64 ResNet-34 pair, C = 128, L = 8") {
    const SearchConfig config = SearchConfig::defaults();
    Generator gen(11);
    SearchNetwork net(config, &gen);
    ArchParams arch(config, &gen);
    const std::vector<Tensor> features = make_features(config, 2, DType::F32, 12);
    const std::vector<Tensor> nodes = net.reshape_inputs(features);
    REQUIRE(nodes.size() == 8);
    for (const Tensor& t : nodes) CHECK(t.shape() == Shape{2, 128, 8});
    for (SearchPath path : {SearchPath::Exact, SearchPath::Fast}) {
      const Tensor logits = net.forward_nodes(nodes, sample_architecture(arch, 10, GumbelMode::Hard, &gen), path);
      CHECK(logits.shape() == Shape{2, 2});
    }
    CHECK(net.forward(features, sample_architecture(arch, 10, GumbelMode::Soft, &gen), SearchPath::Exact).shape() ==
          Shape{2, 2});

    // One cell = BM-NAS's FusionNode at C = 128, L = 8 (238,208 parameters: two steps of attention, LinearGLU
    // and ConcatFC, then the 2C -> C conv, BN and LayerNorm); the cells and the head's LayerNorm are BM-NAS's
    // search fusion_net (480,512).
    CHECK(params_under(net, "cells.0.") == 238208);
    CHECK(params_under(net, "cells.") + params_under(net, "head_norm.") == 480512);
    CHECK(params_under(net, "reshape.") == (64 + 128 + 256 + 512) * 2 * 128 + 8 * (128 + 2 * 128));
    CHECK(params_under(net, "classifier.") == 2 * 128 * 8 * 2 + 2);
    StateDict dict = net.state_dict();
    for (const char* key : {"reshape.0.conv.weight", "reshape.7.bn.running_mean", "cells.0.steps.0.attention.ln.weight",
                            "cells.1.steps.1.linear_glu.conv.weight", "cells.1.steps.0.concat_fc.bn.bias",
                            "cells.0.conv.weight", "cells.0.bn.running_var", "cells.1.ln.bias", "head_norm.weight",
                            "classifier.weight"})
      CHECK(dict.contains(key));
    for (const auto& [name, t] : dict) CHECK(name.find("zero") == std::string::npos);
    CHECK(dict.at("classifier.weight").shape() == Shape{2, 2048});
    CHECK(dict.at("head_norm.weight").shape() == Shape{256, 8});
  }
  SECTION("small: 3 inputs, C = 4, L = 3, one cell of three steps, no Zero op") {
    SearchConfig config = small_config();
    config.cells = 1;
    config.steps = 3;
    config.ops = {FusionOpKind::Sum, FusionOpKind::ConcatFC};
    SearchNetwork net(config);
    ArchParams arch(config);
    CHECK(arch.gamma.shape() == Shape{3, 2});
    const Tensor logits = net.forward(make_features(config, 5, DType::F32, 13),
                                      sample_architecture(arch, 1, GumbelMode::Hard), SearchPath::Fast);
    CHECK(logits.shape() == Shape{5, 2});
    CHECK(net.state_dict().at("cells.0.conv.weight").shape() == Shape{4, 12, 1});  // 3 steps of C = 4
    CHECK(net.state_dict().contains("cells.0.steps.2.concat_fc.conv.weight"));
  }
}

// ---- gradients --------------------------------------------------------------------------------------

TEST_CASE("SearchCell gradients match central differences through soft weights (F64)", "[nas][grad]") {
  const SearchConfig config = small_config();
  Generator gen(21);
  SearchCell cell(config, 1, &gen);  // cell 1: its own rows of beta and gamma
  ArchParams arch(config, &gen);
  cell.to(DType::F64);
  arch.to(DType::F64);
  randomise(cell, 22);
  randomise_logits(arch, 23);
  const Tensor x = randn({2, 4, 3}, DType::F64, Device::cpu(), &gen).set_requires_grad(true);

  // The same Gumbel noise and attention-dropout mask at every evaluation make the function smooth; batch
  // norms use batch statistics (training mode).
  Closure f([&](const Tensor& in) {
    manual_seed(24);
    Generator noise(25);
    const ArchSample s = sample_architecture(arch, 2.0, GumbelMode::Soft, &noise);
    return cell.forward(in, s.beta, s.gamma, SearchPath::Exact);
  });
  Named wrt = {{"x", x}, {"beta", arch.beta}, {"gamma", arch.gamma}};
  for (const auto& entry : cell.named_parameters()) wrt.push_back(entry);
  stgs::testing::check_module_gradients(f, x, wrt, 12);
  // Only cell 1's rows of the logits are used.
  const std::vector<double> gb = arch.beta.grad().to_vector<double>();
  const ArchLayout& lay = arch.layout();
  for (int64_t r = 0; r < lay.beta_rows(); ++r) {
    const bool own = r >= lay.beta_row(1, 0, 0);
    CHECK((gb[size_t(2 * r)] != 0.0) == own);
  }
}

TEST_CASE("SearchNetwork gradients match central differences through soft weights (F64)", "[nas][grad]") {
  const SearchConfig config = small_config();
  Generator gen(31);
  SearchNetwork net(config, &gen);
  ArchParams arch(config, &gen);
  net.to(DType::F64);
  arch.to(DType::F64);
  randomise(net, 32);
  randomise_logits(arch, 33);
  std::vector<Tensor> features = make_features(config, 3, DType::F64, 34);
  for (Tensor& t : features) t.set_requires_grad(true);

  Closure f([&](const Tensor& first) {
    manual_seed(35);
    Generator noise(36);
    return net.forward({first, features[1], features[2]}, sample_architecture(arch, 2.0, GumbelMode::Soft, &noise),
                       SearchPath::Exact);
  });
  Named wrt = {{"feature a", features[0]}, {"feature b", features[1]}, {"feature c", features[2]},
               {"alpha", arch.alpha},      {"beta", arch.beta},         {"gamma", arch.gamma}};
  for (const auto& entry : net.named_parameters()) wrt.push_back(entry);
  stgs::testing::check_module_gradients(f, features[0], wrt, 6);
}

// ---- fast path ----------------------------------------------------------------------------------------

TEST_CASE("Fast path: the exact forward, and the exact gradient masked by the one-hot sample (F64)", "[nas][grad]") {
  // Eval mode with every op (attention's dropout off), and training mode (batch statistics) without attention,
  // whose fixed dropout would draw different masks on the two paths.
  for (const bool training : {false, true}) {
    SearchConfig config = small_config();
    if (training) config.ops = {FusionOpKind::Zero, FusionOpKind::Sum, FusionOpKind::LinearGLU, FusionOpKind::ConcatFC};
    INFO((training ? "training mode" : "eval mode"));
    Generator gen(41);
    SearchNetwork net(config, &gen);
    ArchParams arch(config, &gen);
    net.to(DType::F64);
    arch.to(DType::F64);
    randomise(net, 42);
    randomise_logits(arch, 43);
    net.train(training);
    // Detached: every draw below runs its own backward passes from the same nodes.
    std::vector<Tensor> nodes;
    for (const Tensor& t : net.reshape_inputs(make_features(config, 3, DType::F64, 44))) nodes.push_back(t.detach());
    const Tensor R = randn({3, 2}, DType::F64, Device::cpu(), &gen);
    const double lambda = 2.0;
    std::set<std::string> knows_unselected;  // matrices where the exact path gave an unselected entry a gradient

    for (uint64_t draw = 0; draw < 6; ++draw) {
      INFO("draw " << draw);
      // The same sample three times: as leaves on the exact and the fast path, and attached to the logits.
      Generator noise(100 + draw);
      const ArchSample hard = sample_architecture(arch, lambda, GumbelMode::Hard, &noise);
      auto loss_with = [&](const ArchSample& s, SearchPath path) { return sum(mul(net.forward_nodes(nodes, s, path), R)); };
      const ArchSample exact_w{leaf_copy(hard.alpha), leaf_copy(hard.beta), leaf_copy(hard.gamma)};
      const ArchSample fast_w{leaf_copy(hard.alpha), leaf_copy(hard.beta), leaf_copy(hard.gamma)};
      net.zero_grad();
      const Tensor exact_loss = loss_with(exact_w, SearchPath::Exact);
      exact_loss.backward();
      const Named exact_params = net.named_parameters();
      std::vector<std::vector<double>> exact_param_grads;
      for (const auto& [name, t] : exact_params) exact_param_grads.push_back(grad_or_zeros(t));
      net.zero_grad();
      const Tensor fast_loss = loss_with(fast_w, SearchPath::Fast);
      CHECK(fast_loss.item() == Approx(exact_loss.item()).epsilon(1e-12).margin(1e-12));
      fast_loss.backward();

      // dloss/dw: the fast path's is the exact path's at the selected entries and zero elsewhere.
      const std::vector<std::pair<const char*, std::pair<Tensor, Tensor>>> pairs = {
          {"alpha", {exact_w.alpha, fast_w.alpha}}, {"beta", {exact_w.beta, fast_w.beta}},
          {"gamma", {exact_w.gamma, fast_w.gamma}}};
      for (const auto& [name, ef] : pairs) {
        INFO(name);
        const std::vector<double> e = grad_or_zeros(ef.first), fw = grad_or_zeros(ef.second);
        const std::vector<double> onehot = ef.first.to_vector<double>();
        std::vector<double> masked(e.size());
        for (size_t i = 0; i < e.size(); ++i) masked[i] = e[i] * onehot[i];
        CHECK(max_abs_diff(fw, masked) < 1e-10);
        if (max_abs_diff(e, masked) > 1e-6) knows_unselected.insert(name);
      }
      // Network weights: the same gradient (ops the fast path skipped get none, the exact path zeros).
      for (size_t i = 0; i < exact_params.size(); ++i) {
        INFO(exact_params[i].first);
        CHECK(max_abs_diff(grad_or_zeros(exact_params[i].second), exact_param_grads[i]) < 1e-10);
      }

      // Through the logits: the exact path gives (1/lambda) y (G - <G, y>), the fast path the same with G masked.
      std::vector<Tensor> soft;
      {
        Generator replay(100 + draw);
        for (const Tensor& logits : {arch.alpha, arch.beta, arch.gamma})
          soft.push_back(gumbel_softmax_st(logits, lambda, GumbelMode::Hard, &replay).soft.detach());
      }
      const std::vector<Tensor> G = {exact_w.alpha.grad(), exact_w.beta.grad(), exact_w.gamma.grad()};
      const std::vector<Tensor> onehot = {hard.alpha.detach(), hard.beta.detach(), hard.gamma.detach()};
      for (SearchPath path : {SearchPath::Exact, SearchPath::Fast}) {
        INFO((path == SearchPath::Exact ? "exact" : "fast"));
        arch.zero_grad();
        Generator replay(100 + draw);
        loss_with(sample_architecture(arch, lambda, GumbelMode::Hard, &replay), path).backward();
        const std::vector<Tensor> logits = {arch.alpha, arch.beta, arch.gamma};
        for (size_t m = 0; m < 3; ++m) {
          const Tensor g = path == SearchPath::Exact ? G[m] : mul(G[m], onehot[m]);
          CHECK(max_abs_diff(grad_or_zeros(logits[m]), st_gradient(g, soft[m], lambda).to_vector<double>()) < 1e-10);
        }
      }
    }
    CHECK(knows_unselected == std::set<std::string>{"alpha", "beta", "gamma"});
  }
}

TEST_CASE("Dead cells: every edge Zero gives a zero input, a finite output independent of the features", "[nas]") {
  const SearchConfig config = small_config();
  SearchNetwork net(config);
  ArchParams arch(config);
  net.eval();
  // Every alpha edge and every beta edge Zero, every step's op Sum.
  ArchSample s;
  const ArchLayout& lay = arch.layout();
  auto one_hot = [](int64_t rows, int64_t K, int64_t col) {
    std::vector<float> v(size_t(rows * K), 0.0f);
    for (int64_t r = 0; r < rows; ++r) v[size_t(r * K + col)] = 1.0f;
    return from_vector<float>(v, {rows, K}).set_requires_grad(true);
  };
  s.alpha = one_hot(lay.alpha_rows(), 2, kEdgeZero);
  s.beta = one_hot(lay.beta_rows(), 2, kEdgeZero);
  s.gamma = one_hot(lay.gamma_rows(), lay.gamma_cols(), 1);  // kFusionOpKinds[1] = Sum
  std::vector<Tensor> features = make_features(config, 2, DType::F32, 51);
  for (Tensor& t : features) t.set_requires_grad(true);
  const Tensor exact = net.forward(features, s, SearchPath::Exact);
  const Tensor fast = net.forward(features, s, SearchPath::Fast);
  const Tensor other = net.forward(make_features(config, 2, DType::F32, 52), s, SearchPath::Fast);
  for (float v : exact.to_vector<float>()) CHECK(std::isfinite(v));
  CHECK(max_abs_diff(exact.to(DType::F64).to_vector<double>(), fast.to(DType::F64).to_vector<double>()) < 1e-6);
  CHECK(max_abs_diff(fast.to(DType::F64).to_vector<double>(), other.to(DType::F64).to_vector<double>()) == 0.0);
  // Nothing reaches the features on the fast path; on the exact path every edge's weight is 0.
  sum(fast).backward();
  for (const Tensor& t : features) CHECK_FALSE(t.grad().defined());
  sum(exact).backward();
  for (const Tensor& t : features)
    for (double g : grad_or_zeros(t)) CHECK(g == 0.0);
}

TEST_CASE("Soft and plain-softmax weights run the exact path; the fast path rejects them", "[nas]") {
  const SearchConfig config = small_config();
  SearchNetwork net(config);
  ArchParams arch(config);
  std::vector<Tensor> nodes;
  for (const Tensor& t : net.reshape_inputs(make_features(config, 2, DType::F32, 61))) nodes.push_back(t.detach());
  for (GumbelMode mode : {GumbelMode::PlainSoftmax, GumbelMode::Soft}) {
    arch.zero_grad();
    Generator gen(62);
    sum(net.forward_nodes(nodes, sample_architecture(arch, 10, mode, &gen), SearchPath::Exact)).backward();
    // Every weight takes part, so every logit gets a gradient.
    for (const Tensor& t : arch.parameters())
      for (double g : grad_or_zeros(t)) CHECK(g != 0.0);
    CHECK_THROWS_WITH(net.forward_nodes(nodes, sample_architecture(arch, 10, mode, &gen), SearchPath::Fast),
                      Catch::Contains("SearchPath::Fast needs a one-hot (Hard) sample") &&
                          Catch::Contains("alpha row 0"));
  }
}

// ---- the M-sample loss ------------------------------------------------------------------------------

TEST_CASE("sampled_loss: the mean of M independent draws, one backward for all of them", "[nas]") {
  SearchConfig config = small_config();
  SearchNetwork net(config);
  ArchParams arch(config);
  randomise_logits(arch, 71);
  // The exact path runs the M draws as one batch (batch norms with per-draw statistics); without dropout
  // (attention's is fixed at 0.1) the values and gradients must be those of M separate forwards.
  dropout_off(net);
  const StateDict stats_before = net.state_dict().clone();
  const std::vector<Tensor> features = make_features(config, 4, DType::F32, 72);
  const Tensor labels = from_vector<int64_t>({0, 1, 1, 0}, {4});
  const int M = 4;

  net.zero_grad();
  Generator gen(73);
  const Tensor loss = sampled_loss(net, net.reshape_inputs(features), arch, labels, 10, M, GumbelMode::Hard,
                                   SearchPath::Exact, &gen);
  CHECK(loss.shape() == Shape{});
  loss.backward();
  const Tensor w = net.named_parameters()[0].second;  // reshape.0.conv.weight
  const std::vector<double> one_backward = w.grad().to_vector<double>();
  std::vector<std::vector<double>> net_batched;
  for (const Tensor& p : net.parameters()) net_batched.push_back(p.grad().defined() ? p.grad().to_vector<double>()
                                                                                    : std::vector<double>());
  const StateDict stats_batched = net.state_dict().clone();
  net.load_state_dict(stats_before);  // the running statistics as they were
  std::vector<std::vector<double>> arch_batched;
  for (const Tensor& p : arch.parameters()) arch_batched.push_back(p.grad().to_vector<double>());

  // The same draws one at a time, each with its own graph and backward.
  net.zero_grad();
  arch.zero_grad();
  Generator replay(73);
  double total = 0;
  for (int m = 0; m < M; ++m) {
    const Tensor l = cross_entropy(net.forward(features, sample_architecture(arch, 10, GumbelMode::Hard, &replay),
                                               SearchPath::Exact),
                                   labels);
    total += l.item();
    mul(l, 1.0 / M).backward();
  }
  CHECK(gen.offset() == replay.offset());
  CHECK(loss.item() == Approx(total / M).epsilon(1e-5));
  CHECK(max_abs_diff(w.grad().to_vector<double>(), one_backward) < 1e-6);
  for (size_t i = 0; i < arch_batched.size(); ++i) {
    INFO("architecture gradient " << i << " (alpha, beta, gamma)");
    CHECK(max_abs_diff(arch.parameters()[i].grad().to_vector<double>(), arch_batched[i]) < 1e-6);
  }
  const std::vector<std::pair<std::string, Tensor>> params = net.named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    INFO("weight gradient of " << params[i].first);
    const Tensor g = params[i].second.grad();
    REQUIRE(g.defined() == !net_batched[i].empty());
    if (g.defined()) CHECK(max_abs_diff(g.to_vector<double>(), net_batched[i]) < 1e-5);
  }
  // Running statistics after the M separate draws (whose replay runs the reshape layers once per draw, the
  // batched step once for all: those are left out).
  const StateDict stats_sequential = net.state_dict();
  for (const auto& [name, value] : stats_batched) {
    if (name.rfind("reshape.", 0) == 0) continue;
    INFO("state " << name);
    CHECK(max_abs_diff(stats_sequential.at(name).to_vector<double>(), value.to_vector<double>()) < 1e-5);
  }

  CHECK_THROWS_WITH(sampled_loss(net, net.reshape_inputs(features), arch, labels, 10, 0, GumbelMode::Hard,
                                 SearchPath::Exact, &gen),
                    Catch::Contains("M must be >= 1, got 0"));
}

// ---- entropy and convergence ----------------------------------------------------------------------

TEST_CASE("mean_entropy: log K for uniform rows, known values, mean over rows", "[nas]") {
  CHECK(mean_entropy(zeros({3, 2})) == Approx(std::log(2.0)));
  CHECK(mean_entropy(full({4, 5}, 7.0, DType::F64)) == Approx(std::log(5.0)));
  // Row 0: p = (1/4, 3/4); row 1: a near one-hot row (entropy ~ 0, no NaN from p = 0).
  const Tensor logits = from_vector<double>({0, std::log(3.0), 800, 0}, {2, 2});
  const double h0 = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75));
  CHECK(mean_entropy(logits) == Approx(h0 / 2).epsilon(1e-12));
  // Fresh 1e-3 * randn logits are close to uniform.
  Generator gen(81);
  ArchParams arch(SearchConfig::defaults(), &gen);
  const Entropies e = arch_entropies(arch);
  CHECK(e.alpha == Approx(std::log(2.0)).epsilon(1e-5));
  CHECK(e.beta == Approx(std::log(2.0)).epsilon(1e-5));
  CHECK(e.gamma == Approx(std::log(5.0)).epsilon(1e-5));
  CHECK_THROWS_WITH(mean_entropy(zeros({4})), Catch::Contains("logits must be (rows, K)"));
}

TEST_CASE("ConvergenceMonitor: converged after `patience` flat epochs; a jump or NaN resets the run", "[nas]") {
  ConvergenceMonitor monitor(0.01, 3);
  CHECK_FALSE(monitor.update({0.69, 0.69, 1.60}));  // first epoch: nothing to compare with
  CHECK_FALSE(monitor.update({0.67, 0.69, 1.60}));  // alpha moved by 0.02
  CHECK(monitor.flat_epochs() == 0);
  CHECK_FALSE(monitor.update({0.675, 0.69, 1.60}));  // each moved by less than 0.01
  CHECK_FALSE(monitor.update({0.675, 0.695, 1.60}));
  CHECK(monitor.flat_epochs() == 2);
  CHECK_FALSE(monitor.update({0.675, 0.695, 1.50}));  // gamma jumped
  CHECK(monitor.flat_epochs() == 0);
  CHECK_FALSE(monitor.update({0.675, 0.695, 1.50}));
  CHECK_FALSE(monitor.update({0.675, 0.695, std::nan("")}));
  CHECK(monitor.flat_epochs() == 0);
  CHECK_FALSE(monitor.update({0.675, 0.695, 1.5}));
  CHECK_FALSE(monitor.update({0.675, 0.695, 1.5}));
  CHECK_FALSE(monitor.update({0.675, 0.695, 1.5}));
  CHECK(monitor.update({0.675, 0.695, 1.5}));
  CHECK(monitor.converged());
  CHECK_THROWS_WITH(ConvergenceMonitor(0, 3), Catch::Contains("tolerance must be finite and > 0"));
  CHECK_THROWS_WITH(ConvergenceMonitor(0.1, 0), Catch::Contains("patience must be >= 1"));
}

// ---- errors -------------------------------------------------------------------------------------------

TEST_CASE("SearchNetwork rejects wrong input counts, shapes and samples with errors naming them", "[nas]") {
  const SearchConfig config = small_config();
  SearchNetwork net(config);
  ArchParams arch(config);
  std::vector<Tensor> features = make_features(config, 2, DType::F32, 91);
  const ArchSample s = sample_architecture(arch, 10, GumbelMode::Hard);

  CHECK_THROWS_WITH(net.reshape_inputs({features[0], features[1]}),
                    Catch::Contains("expected 3 input features") && Catch::Contains("got 2"));
  std::vector<Tensor> bad = features;
  bad[1] = randn({2, 4, 3});
  CHECK_THROWS_WITH(net.reshape_inputs(bad), Catch::Contains("input 1 'b' must be (2, 5, 3), got F32[2, 4, 3]"));
  bad[1] = randn({3, 5, 3});
  CHECK_THROWS_WITH(net.reshape_inputs(bad), Catch::Contains("input 1 'b' must be (2, 5, 3), got F32[3, 5, 3]"));
  bad[1] = randn({2, 5});
  CHECK_THROWS_WITH(net.reshape_inputs(bad), Catch::Contains("input 1 'b' must be (2, 5, 3)"));

  const std::vector<Tensor> nodes = net.reshape_inputs(features);
  CHECK_THROWS_WITH(net.forward_nodes({nodes[0]}, s, SearchPath::Exact), Catch::Contains("expected 3 nodes"));
  CHECK_THROWS_WITH(net.forward_nodes({nodes[0], nodes[1], randn({2, 4, 2})}, s, SearchPath::Exact),
                    Catch::Contains("node 2 must be (2, 4, 3), got F32[2, 4, 2]"));
  ArchSample wrong = s;
  wrong.gamma = zeros({4, 4});
  CHECK_THROWS_WITH(net.forward_nodes(nodes, wrong, SearchPath::Exact),
                    Catch::Contains("sample gamma must be (4, 5) or (draws, 4, 5), got F32[4, 4]"));
  wrong = s;
  wrong.alpha = Tensor();
  CHECK_THROWS_WITH(net.forward_nodes(nodes, wrong, SearchPath::Exact),
                    Catch::Contains("sample alpha must be (7, 2) or (draws, 7, 2), got undefined"));
  wrong = s;
  wrong.beta = s.beta.to(DType::F64);
  CHECK_THROWS_WITH(net.forward_nodes(nodes, wrong, SearchPath::Exact),
                    Catch::Contains("sample beta F64[10, 2] cpu must have the dtype and device of the nodes"));
  CHECK_THROWS_WITH(SearchCell(config, 2), Catch::Contains("SearchCell: index 2 out of range for 2 cells"));
  CHECK_THROWS_WITH(net.cell(-1), Catch::Contains("SearchNetwork::cell: index -1 out of range for 2 cells"));
  CHECK_THROWS_WITH(net.cell(0)->forward(randn({2, 3, 3}), s.beta, s.gamma, SearchPath::Exact),
                    Catch::Contains("SearchCell 0: input x must be (B, 4, 3), got F32[2, 3, 3]"));
}

TEST_CASE("sampled_loss on CUDA matches the CPU: the batched exact path, its gradients and running statistics",
          "[nas][cuda]") {
  // Same weights, logits, features and sampler seed on both devices (the Gumbel kernels draw the same noise);
  // dropout off, so the only differences are F32 rounding.
  const SearchConfig config = small_config();
  const int M = 5;
  auto build = [&](Device device) {
    auto net = std::make_shared<SearchNetwork>(config);
    randomise(*net, 81);
    auto arch = std::make_shared<ArchParams>(config);
    randomise_logits(*arch, 82);
    net->to(device);
    arch->to(device);
    dropout_off(*net);
    return std::make_pair(net, arch);
  };
  auto [net_cpu, arch_cpu] = build(Device::cpu());
  auto [net_gpu, arch_gpu] = build(Device::cuda(0));
  const std::vector<Tensor> features = make_features(config, 6, DType::F32, 83);
  std::vector<Tensor> features_gpu;
  for (const Tensor& f : features) features_gpu.push_back(f.to(Device::cuda(0)));
  const Tensor labels = from_vector<int64_t>({0, 1, 1, 0, 1, 0}, {6});
  Generator g_cpu(84), g_gpu(84);
  const Tensor loss_cpu = sampled_loss(*net_cpu, net_cpu->reshape_inputs(features), *arch_cpu, labels, 2.0, M,
                                       GumbelMode::Hard, SearchPath::Exact, &g_cpu);
  const Tensor loss_gpu = sampled_loss(*net_gpu, net_gpu->reshape_inputs(features_gpu), *arch_gpu,
                                       labels.to(Device::cuda(0)), 2.0, M, GumbelMode::Hard, SearchPath::Exact, &g_gpu);
  loss_cpu.backward();
  loss_gpu.backward();
  CHECK(loss_gpu.item() == Approx(loss_cpu.item()).epsilon(1e-5));
  const testing::Tolerance tol{1e-4, 1e-3};
  auto compare_all = [&](const std::vector<std::pair<std::string, Tensor>>& a,
                         const std::vector<std::pair<std::string, Tensor>>& b, bool grads) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      const Tensor x = grads ? a[i].second.grad() : a[i].second, y = grads ? b[i].second.grad() : b[i].second;
      REQUIRE(x.defined() == y.defined());
      if (x.defined()) CHECK(testing::compare(a[i].first, x, y.to(Device::cpu()), tol) == "");
    }
  };
  compare_all(arch_cpu->named_parameters(), arch_gpu->named_parameters(), true);
  compare_all(net_cpu->named_parameters(), net_gpu->named_parameters(), true);
  const StateDict s_cpu = net_cpu->state_dict(), s_gpu = net_gpu->state_dict();
  compare_all(s_cpu.entries(), s_gpu.entries(), false);
}
