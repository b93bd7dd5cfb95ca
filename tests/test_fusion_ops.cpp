// Tests for the fusion ops (nas/fusion_ops.h) and the reshape layers and pooling (nas/reshape.h): names,
// values against hand-written loops, F64 central-difference gradients of inputs and parameters (BatchNorm in
// training and eval mode), and the shape errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "tests/compare.h"
#include "nas/fusion_ops.h"
#include "nas/reshape.h"
#include "tests/gradcheck.h"
#include "tests/module_gradcheck.h"

using namespace stgs;
using namespace stgs::nas;
using stgs::testing::normal64;

namespace {

using Named = std::vector<std::pair<std::string, Tensor>>;

// At most 40 evenly spread elements of each leaf, within the tolerance of tests/gradcheck.h.
void check_gradients(const std::function<Tensor()>& f, const Named& wrt) {
  stgs::testing::check_leaf_gradients(f, wrt, 40, {.atol = 1e-7, .rtol = 1e-5, .floor = 0});
}

Tensor leaf(const Shape& shape, uint64_t seed) { return normal64(shape, seed).set_requires_grad(true); }

Named join(Named a, const Named& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Non-trivial affine parameters and running statistics, so eval-mode checks exercise every term.
void randomise_state(Module& m, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (auto& [name, t] : m.named_parameters()) t.copy_(randn(t.shape(), DType::F64, Device::cpu(), &gen));
  for (auto& [name, t] : m.named_buffers()) {
    if (name.find("running_mean") != std::string::npos) t.copy_(randn(t.shape(), DType::F64, Device::cpu(), &gen));
    if (name.find("running_var") != std::string::npos)
      t.copy_(rand(t.shape(), DType::F64, Device::cpu(), &gen, 0.5, 2.0));
  }
}

}  // namespace

// ---- names, factory -----------------------------------------------------------------------------------

TEST_CASE("Fusion op names round-trip and the factory builds each kind", "[nas]") {
  const std::vector<std::string> names = {"zero", "sum", "attention", "linear_glu", "concat_fc"};
  REQUIRE(kFusionOpKinds.size() == names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    CHECK(fusion_op_name(kFusionOpKinds[i]) == names[i]);
    CHECK(fusion_op_from_name(names[i]) == kFusionOpKinds[i]);
    const auto op = make_fusion_op(kFusionOpKinds[i], 4, 3, 0.2);
    CHECK(op->kind() == kFusionOpKinds[i]);
    CHECK(op->channels() == 4);
    CHECK(op->length() == 3);
  }
  CHECK_THROWS_WITH(fusion_op_from_name("Sum"), Catch::Contains("unknown fusion op 'Sum'") &&
                                                    Catch::Contains("linear_glu"));
  CHECK_THROWS_WITH(fusion_op_name(FusionOpKind(42)), Catch::Contains("invalid kind 42"));
  CHECK_THROWS_WITH(make_fusion_op(FusionOpKind(42), 4, 3, 0.1), Catch::Contains("invalid kind 42"));

  // State-dict names follow BM-NAS's modules (conv, bn, ln).
  auto names_of = [](const Module::NamedTensors& list) {
    std::vector<std::string> out;
    for (const auto& entry : list) out.push_back(entry.first);
    return out;
  };
  CHECK(make_fusion_op(FusionOpKind::Zero, 4, 3, 0)->named_parameters().empty());
  CHECK(make_fusion_op(FusionOpKind::Sum, 4, 3, 0)->named_parameters().empty());
  const auto attn = make_fusion_op(FusionOpKind::Attention, 4, 3, 0);
  CHECK(names_of(attn->named_parameters()) == std::vector<std::string>{"ln.weight", "ln.bias"});
  CHECK(attn->named_parameters()[0].second.shape() == Shape{4, 3});
  const auto glu_op = make_fusion_op(FusionOpKind::LinearGLU, 4, 3, 0);
  CHECK(names_of(glu_op->named_parameters()) ==
        std::vector<std::string>{"conv.weight", "conv.bias", "bn.weight", "bn.bias"});
  CHECK(glu_op->named_parameters()[0].second.shape() == Shape{8, 8, 1});
  CHECK(names_of(glu_op->named_buffers()) ==
        std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});
  const auto cat_op = make_fusion_op(FusionOpKind::ConcatFC, 4, 3, 0);
  CHECK(cat_op->named_parameters()[0].second.shape() == Shape{4, 8, 1});
  CHECK(cat_op->named_parameters()[2].second.shape() == Shape{4});
  // Attention drops with BM-NAS's fixed rate whatever the network's rate is.
  CHECK(std::static_pointer_cast<AttentionFusion>(attn)->dropout->p() == kAttentionDropout);
  CHECK(std::static_pointer_cast<LinearGLUFusion>(make_fusion_op(FusionOpKind::LinearGLU, 4, 3, 0.3))->dropout->p() ==
        0.3);
}

// ---- Zero, Sum ----------------------------------------------------------------------------------------

TEST_CASE("Zero returns zeros and passes no gradient; Sum is x + y", "[nas]") {
  Tensor x = leaf(Shape{2, 3, 4}, 1), y = leaf(Shape{2, 3, 4}, 2);
  ZeroFusion zero(3, 4);
  const Tensor z = zero(x, y);
  CHECK(z.shape() == x.shape());
  CHECK(z.dtype() == DType::F64);
  CHECK_FALSE(z.requires_grad());
  for (double v : z.to_vector<double>()) CHECK(v == 0.0);
  // Inside a larger graph the Zero branch contributes nothing: x's gradient comes from the other term only.
  sum(zero(x, y) + x * 2.0).backward();
  for (double g : x.grad().to_vector<double>()) CHECK(g == 2.0);
  CHECK_FALSE(y.grad().defined());

  SumFusion add_op(3, 4);
  const Tensor s = add_op(x, y);
  const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>(), sv = s.to_vector<double>();
  for (size_t i = 0; i < sv.size(); ++i) CHECK(sv[i] == xv[i] + yv[i]);
  stgs::testing::gradcheck("Sum", [&](const std::vector<Tensor>& in) { return add_op(in[0], in[1]); },
                           {normal64(Shape{2, 3, 4}, 3), normal64(Shape{2, 3, 4}, 4)});
}

// ---- Attention ----------------------------------------------------------------------------------------

TEST_CASE("Attention: x is the query, y the keys and values, then LayerNorm over (C, L)", "[nas]") {
  const int64_t B = 2, C = 3, L = 4;
  AttentionFusion attn(C, L);
  attn.to(DType::F64);
  attn.eval();  // dropout off
  const Tensor x = normal64(Shape{B, C, L}, 5), y = normal64(Shape{B, C, L}, 6);
  const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  auto at = [&](const std::vector<double>& v, int64_t b, int64_t c, int64_t l) {
    return v[size_t((b * C + c) * L + l)];
  };

  // Reference: out[b, c, i] = sum_j softmax_j(sum_c' x[b, c', i] y[b, c', j] / sqrt(C)) y[b, c, j], then
  // normalised over all (c, i) of the sample (weight 1, bias 0, eps 1e-5).
  std::vector<double> expected(size_t(B * C * L));
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> out(size_t(C * L));
    for (int64_t i = 0; i < L; ++i) {
      std::vector<double> score(static_cast<size_t>(L));
      for (int64_t j = 0; j < L; ++j) {
        for (int64_t c = 0; c < C; ++c) score[size_t(j)] += at(xv, b, c, i) * at(yv, b, c, j);
        score[size_t(j)] /= std::sqrt(double(C));
      }
      const double top = *std::max_element(score.begin(), score.end());
      double total = 0;
      for (double& s : score) total += (s = std::exp(s - top));
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < L; ++j) out[size_t(c * L + i)] += score[size_t(j)] / total * at(yv, b, c, j);
    }
    double mean = 0, var = 0;
    for (double v : out) mean += v / double(C * L);
    for (double v : out) var += (v - mean) * (v - mean) / double(C * L);
    for (int64_t k = 0; k < C * L; ++k)
      expected[size_t(b * C * L + k)] = (out[size_t(k)] - mean) / std::sqrt(var + 1e-5);
  }
  const std::vector<double> got = attn(x, y).to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (size_t k = 0; k < got.size(); ++k) CHECK(got[k] == Approx(expected[k]).margin(1e-12));

  // The roles are not symmetric.
  const std::vector<double> swapped = attn(y, x).to_vector<double>();
  double diff = 0;
  for (size_t k = 0; k < got.size(); ++k) diff = std::max(diff, std::abs(got[k] - swapped[k]));
  CHECK(diff > 1e-3);
}

TEST_CASE("Attention gradients match central differences (F64)", "[nas][grad]") {
  AttentionFusion attn(3, 5);
  attn.to(DType::F64);
  randomise_state(attn, 7);
  SECTION("eval mode, distinct inputs") {
    attn.eval();
    Tensor x = leaf(Shape{2, 3, 5}, 8), y = leaf(Shape{2, 3, 5}, 9);
    check_gradients([&] { return attn(x, y); }, join({{"x", x}, {"y", y}}, attn.named_parameters()));
  }
  SECTION("training mode with p = 0, one tensor as both inputs (as the search calls it)") {
    AttentionFusion no_drop(3, 5, 0.0);
    no_drop.to(DType::F64);
    randomise_state(no_drop, 10);
    Tensor t = leaf(Shape{2, 3, 5}, 11);
    check_gradients([&] { return no_drop(t, t); }, join({{"t", t}}, no_drop.named_parameters()));
  }
}

// ---- LinearGLU, ConcatFC ------------------------------------------------------------------------------

TEST_CASE("LinearGLU computes GLU(BN(conv(concat(x, y)))) over channels", "[nas]") {
  const int64_t B = 2, C = 2, L = 3;
  Generator gen(12);
  LinearGLUFusion op(C, L, 0.0, &gen);
  op.to(DType::F64);
  randomise_state(op, 13);
  op.eval();
  const Tensor x = normal64(Shape{B, C, L}, 14), y = normal64(Shape{B, C, L}, 15);
  const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  const std::vector<double> w = op.conv->weight.to_vector<double>(), cb = op.conv->bias.to_vector<double>();
  const std::vector<double> g = op.bn->weight.to_vector<double>(), bb = op.bn->bias.to_vector<double>();
  const std::vector<double> rm = op.bn->running_mean.to_vector<double>(), rv = op.bn->running_var.to_vector<double>();
  const std::vector<double> got = op(x, y).to_vector<double>();
  // h[o] = BN_o(sum_k W[o, k] cat[k] + b[o]) for o < 2C; out[c] = h[c] * sigmoid(h[C + c]).
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {
      std::vector<double> h(size_t(2 * C));
      for (int64_t o = 0; o < 2 * C; ++o) {
        double v = cb[size_t(o)];
        for (int64_t k = 0; k < C; ++k) {
          v += w[size_t(o * 2 * C + k)] * xv[size_t((b * C + k) * L + l)];
          v += w[size_t(o * 2 * C + C + k)] * yv[size_t((b * C + k) * L + l)];
        }
        h[size_t(o)] = (v - rm[size_t(o)]) / std::sqrt(rv[size_t(o)] + 1e-5) * g[size_t(o)] + bb[size_t(o)];
      }
      for (int64_t c = 0; c < C; ++c)
        CHECK(got[size_t((b * C + c) * L + l)] ==
              Approx(h[size_t(c)] / (1 + std::exp(-h[size_t(C + c)]))).margin(1e-12));
    }
}

TEST_CASE("LinearGLU and ConcatFC gradients match central differences (F64, BN train and eval)", "[nas][grad]") {
  for (FusionOpKind kind : {FusionOpKind::LinearGLU, FusionOpKind::ConcatFC}) {
    Generator gen(20);
    {
      INFO(fusion_op_name(kind) << ": training mode (batch statistics), p = 0");
      const auto op = make_fusion_op(kind, 3, 4, 0.0, &gen);
      op->to(DType::F64);
      randomise_state(*op, 21);
      Tensor x = leaf(Shape{3, 3, 4}, 22), y = leaf(Shape{3, 3, 4}, 23);
      check_gradients([&] { return (*op)(x, y); }, join({{"x", x}, {"y", y}}, op->named_parameters()));
    }
    {
      INFO(fusion_op_name(kind) << ": eval mode (running statistics), p = 0.3 inactive");
      const auto op = make_fusion_op(kind, 3, 4, 0.3, &gen);
      op->to(DType::F64);
      randomise_state(*op, 24);
      op->eval();
      Tensor x = leaf(Shape{2, 3, 4}, 25), y = leaf(Shape{2, 3, 4}, 26);
      check_gradients([&] { return (*op)(x, y); }, join({{"x", x}, {"y", y}}, op->named_parameters()));
    }
  }
}

TEST_CASE("LinearGLU and ConcatFC on one tensor twice (a search step) fold the conv weights exactly", "[nas][grad]") {
  // op(t, t) takes the folded path (W[:, :C] + W[:, C:]) t; op(t, copy of t) the concatenation. Same values
  // and gradients, and the folded path's own central differences.
  for (FusionOpKind kind : {FusionOpKind::LinearGLU, FusionOpKind::ConcatFC}) {
    INFO(fusion_op_name(kind));
    Generator gen(30);
    const auto op = make_fusion_op(kind, 3, 4, 0.0, &gen);
    op->to(DType::F64);
    randomise_state(*op, 31);
    Tensor t = leaf(Shape{3, 3, 4}, 32);
    const Tensor folded = (*op)(t, t);
    const Tensor concatenated = (*op)(t, t.detach().clone());
    CHECK(testing::compare("folded vs concatenated", concatenated, folded, {1e-12, 0}).empty());
    const Tensor g = normal64(folded.shape(), 33);
    sum(mul(folded, g)).backward();
    const std::vector<double> dt = t.grad().to_vector<double>();
    const Tensor weight = op->named_parameters().front().second;  // conv.weight
    const std::vector<double> dw = weight.grad().to_vector<double>();
    op->zero_grad();
    Tensor t1 = t.detach().clone().set_requires_grad(true), t2 = t.detach().clone().set_requires_grad(true);
    sum(mul((*op)(t1, t2), g)).backward();
    const std::vector<double> dt_sum = add(t1.grad(), t2.grad()).to_vector<double>();
    const std::vector<double> dw_concat = weight.grad().to_vector<double>();
    for (size_t i = 0; i < dt.size(); ++i) CHECK(dt[i] == Approx(dt_sum[i]).margin(1e-12));
    for (size_t i = 0; i < dw.size(); ++i) CHECK(dw[i] == Approx(dw_concat[i]).margin(1e-12));
    t.zero_grad();
    check_gradients([&] { return (*op)(t, t); }, join({{"t", t}}, op->named_parameters()));
  }
}

TEST_CASE("LinearGLU and ConcatFC apply dropout after the activation, only in training mode", "[nas]") {
  for (FusionOpKind kind : {FusionOpKind::LinearGLU, FusionOpKind::ConcatFC}) {
    INFO(fusion_op_name(kind));
    // Two ops with the same weights, one without dropout: in training mode (same batch statistics) every
    // output of the p = 0.5 op is either dropped or the p = 0 op's output scaled by 2.
    Generator gen_a(30), gen_b(30), data_gen(31);
    const auto with_dropout = make_fusion_op(kind, 8, 16, 0.5, &gen_a);
    const auto without = make_fusion_op(kind, 8, 16, 0.0, &gen_b);
    const Tensor x = randn(Shape{4, 8, 16}, DType::F32, Device::cpu(), &data_gen);
    const Tensor y = randn(Shape{4, 8, 16}, DType::F32, Device::cpu(), &data_gen);
    const std::vector<float> a = (*with_dropout)(x, y).to_vector<float>(), b = (*without)(x, y).to_vector<float>();
    int64_t live = 0, dropped = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (b[i] == 0.0f) continue;  // ReLU zeros say nothing about the mask
      ++live;
      if (a[i] == 0.0f)
        ++dropped;
      else
        CHECK(a[i] == Approx(2 * b[i]).epsilon(1e-6));
    }
    CHECK(double(dropped) > 0.35 * double(live));
    CHECK(double(dropped) < 0.65 * double(live));
    // In eval mode (same running statistics after one training batch each) the outputs agree.
    with_dropout->eval();
    without->eval();
    CHECK((*with_dropout)(x, y).to_vector<float>() == (*without)(x, y).to_vector<float>());
  }
}

// ---- errors -------------------------------------------------------------------------------------------

TEST_CASE("Fusion ops reject wrong shapes with errors naming the op and shapes", "[nas]") {
  const Tensor good = zeros(Shape{2, 4, 3});
  for (FusionOpKind kind : kFusionOpKinds) {
    const auto op = make_fusion_op(kind, 4, 3, 0.1);
    const std::string label = op->type_name() + "(C=4, L=3)";
    INFO(label);
    CHECK_NOTHROW((*op)(good, good));
    CHECK_THROWS_WITH((*op)(zeros(Shape{2, 5, 3}), good),
                      Catch::Contains(label) && Catch::Contains("input x must be (B, 4, 3)") &&
                          Catch::Contains("[2, 5, 3]"));
    CHECK_THROWS_WITH((*op)(good, zeros(Shape{2, 4, 7})),
                      Catch::Contains("input y must be (B, 4, 3)") && Catch::Contains("[2, 4, 7]"));
    CHECK_THROWS_WITH((*op)(zeros(Shape{4, 3}), good), Catch::Contains("input x") && Catch::Contains("[4, 3]"));
    CHECK_THROWS_WITH((*op)(Tensor(), good), Catch::Contains("undefined"));
    CHECK_THROWS_WITH((*op)(good, zeros(Shape{1, 4, 3})),
                      Catch::Contains("same batch size") && Catch::Contains("[1, 4, 3]"));
    CHECK_THROWS_WITH(op->forward(good), Catch::Contains("no single-input forward"));
  }
  CHECK_THROWS_WITH(make_fusion_op(FusionOpKind::Sum, 4, 3, 1.0), Catch::Contains("dropout must be in [0, 1)"));
  CHECK_THROWS_WITH(make_fusion_op(FusionOpKind::LinearGLU, 0, 3, 0.1), Catch::Contains("C and L must be positive"));
  CHECK_THROWS_WITH(make_fusion_op(FusionOpKind::Attention, 4, 0, 0.1), Catch::Contains("Attention(C=4, L=0)"));
}

// ---- reshape layer ------------------------------------------------------------------------------------

TEST_CASE("ReshapeLayer maps (B, C_in, L) to (B, C, L); gradients match central differences (F64)",
          "[nas][grad]") {
  Generator gen(40);
  ReshapeLayer layer(5, 3, 0.0, &gen);
  CHECK(layer.in_channels() == 5);
  CHECK(layer.out_channels() == 3);
  CHECK(layer.conv->weight.shape() == Shape{3, 5, 1});
  CHECK(layer(zeros(Shape{2, 5, 7})).shape() == Shape{2, 3, 7});
  layer.to(DType::F64);
  randomise_state(layer, 41);
  SECTION("training mode, p = 0") {
    Tensor x = leaf(Shape{3, 5, 4}, 42);
    check_gradients([&] { return layer(x); }, join({{"x", x}}, layer.named_parameters()));
  }
  SECTION("eval mode") {
    layer.eval();
    Tensor x = leaf(Shape{2, 5, 4}, 43);
    check_gradients([&] { return layer(x); }, join({{"x", x}}, layer.named_parameters()));
  }
  SECTION("errors") {
    CHECK_THROWS_WITH(layer(zeros(Shape{2, 4, 7}, DType::F64)),
                      Catch::Contains("ReshapeLayer(5 -> 3)") && Catch::Contains("(B, 5, L)") &&
                          Catch::Contains("[2, 4, 7]"));
    CHECK_THROWS_WITH(layer(zeros(Shape{2, 5}, DType::F64)), Catch::Contains("[2, 5]"));
    CHECK_THROWS_WITH(ReshapeLayer(0, 3, 0.1), Catch::Contains("channels must be positive"));
    CHECK_THROWS(ReshapeLayer(5, 3, 1.5));
  }
}

// ---- pooling ------------------------------------------------------------------------------------------

TEST_CASE("image_features_to_sequence: per-frame spatial max, frames as the sequence", "[nas]") {
  // maps: 2 clips x 2 frames, C = 2, H = 2, W = 3; frame f, channel c holds values whose maximum is
  // 10 f + c, placed at a different spatial position in every map.
  const int64_t frames = 4, C = 2, H = 2, W = 3;
  std::vector<double> v(size_t(frames * C * H * W));
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < H * W; ++s)
        v[size_t((f * C + c) * H * W + s)] = s == (f + c) % (H * W) ? 10.0 * f + c : -1.0 - double(s);
  const Tensor maps = from_vector(v, Shape{frames, C, H, W});

  // K = L = 2: out[b, c, k] = 10 (2 b + k) + c.
  CHECK(image_features_to_sequence(maps, 2, 2).to_vector<double>() ==
        std::vector<double>{0, 10, 1, 11, 20, 30, 21, 31});
  // K = 2 < L = 4: overlapping adaptive bins repeat each frame.
  CHECK(image_features_to_sequence(maps, 2, 4).to_vector<double>() ==
        std::vector<double>{0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 21, 21, 31, 31});
  // K = 4 (one clip) > L = 2: frames pooled pairwise.
  CHECK(image_features_to_sequence(maps, 4, 2).to_vector<double>() == std::vector<double>{10, 30, 11, 31});
  CHECK(image_features_to_sequence(maps, 4, 1).shape() == Shape{1, 2, 1});

  CHECK_THROWS_WITH(image_features_to_sequence(maps, 3, 2),
                    Catch::Contains("4 frames") && Catch::Contains("K=3"));
  CHECK_THROWS_WITH(image_features_to_sequence(zeros(Shape{4, 2, 3}), 2, 2),
                    Catch::Contains("(B * K, C, H, W)") && Catch::Contains("[4, 2, 3]"));
  CHECK_THROWS_WITH(image_features_to_sequence(maps, 0, 2), Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(image_features_to_sequence(maps, 2, 0), Catch::Contains("must be positive"));
}

TEST_CASE("audio_features_to_sequence: max over frequency, adaptive max over time", "[nas]") {
  // maps: B = 1, C = 2, T = 4, F = 3 with value 100 c + 10 t + f: the frequency max is at f = 2.
  std::vector<double> v;
  for (int c = 0; c < 2; ++c)
    for (int t = 0; t < 4; ++t)
      for (int f = 0; f < 3; ++f) v.push_back(100.0 * c + 10.0 * t + f);
  const Tensor maps = from_vector(v, Shape{1, 2, 4, 3});
  CHECK(audio_features_to_sequence(maps, 4).to_vector<double>() ==
        std::vector<double>{2, 12, 22, 32, 102, 112, 122, 132});
  CHECK(audio_features_to_sequence(maps, 2).to_vector<double>() == std::vector<double>{12, 32, 112, 132});
  CHECK(audio_features_to_sequence(maps, 8).to_vector<double>() ==
        std::vector<double>{2, 2, 12, 12, 22, 22, 32, 32, 102, 102, 112, 112, 122, 122, 132, 132});

  CHECK_THROWS_WITH(audio_features_to_sequence(zeros(Shape{2, 4, 3}), 2),
                    Catch::Contains("(B, C, T, F)") && Catch::Contains("[2, 4, 3]"));
  CHECK_THROWS_WITH(audio_features_to_sequence(maps, 0), Catch::Contains("L must be positive"));
}

TEST_CASE("Feature pooling gradients match central differences (F64)", "[nas][grad]") {
  // Gaussian maps have no ties, so every max has one well-defined winner.
  using stgs::testing::gradcheck;
  for (int64_t L : {2, 3, 5}) {
    INFO("L = " << L);
    gradcheck("image_features_to_sequence", [&](const std::vector<Tensor>& in) {
      return image_features_to_sequence(in[0], 3, L);
    }, {normal64(Shape{6, 2, 3, 2}, 50)});
    gradcheck("audio_features_to_sequence", [&](const std::vector<Tensor>& in) {
      return audio_features_to_sequence(in[0], L);
    }, {normal64(Shape{2, 2, 3, 4}, 51)});
  }
}
