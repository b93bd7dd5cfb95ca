// Gradient checks (F64, central differences) for every differentiable op of engine/ops.h and the views.
#include "tests/gradcheck.h"

using namespace stgs;
using stgs::testing::away_from_zero;
using stgs::testing::gradcheck;
using stgs::testing::GradcheckOptions;
using stgs::testing::normal64;
using stgs::testing::positive;
using stgs::testing::uniform64;
using V = std::vector<Tensor>;

namespace {

// Shape pairs that exercise same-shape, two-sided broadcasting, rank broadcasting and scalars.
const std::vector<std::pair<Shape, Shape>> kBroadcastCases = {
    {{3, 4}, {3, 4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {4}}, {{}, {3}}, {{5}, {}}, {{2, 1, 3}, {4, 1}}};

}  // namespace

TEST_CASE("gradcheck: add, sub, mul, div with broadcasting", "[grad]") {
  uint64_t seed = 10;
  for (const auto& [sa, sb] : kBroadcastCases) {
    const Tensor a = normal64(sa, seed++), b = normal64(sb, seed++), bpos = positive(sb, seed++);
    const std::string shapes = sa.str() + " x " + sb.str();
    gradcheck("add " + shapes, [](const V& x) { return add(x[0], x[1]); }, {a, b});
    gradcheck("sub " + shapes, [](const V& x) { return sub(x[0], x[1]); }, {a, b});
    gradcheck("mul " + shapes, [](const V& x) { return mul(x[0], x[1]); }, {a, b});
    gradcheck("div " + shapes, [](const V& x) { return div(x[0], x[1]); }, {a, bpos});
  }
}

TEST_CASE("gradcheck: pow, maximum, minimum", "[grad]") {
  gradcheck("pow tensor", [](const V& x) { return pow(x[0], x[1]); }, {positive({3, 4}, 1), normal64({4}, 2)});
  // Keep a and b apart so no element sits on the tie where the gradient switches sides.
  const Tensor a = normal64({3, 4}, 3);
  Tensor b;
  {
    NoGradGuard no_grad;
    b = add(a, away_from_zero({3, 4}, 4));
  }
  gradcheck("maximum", [](const V& x) { return maximum(x[0], x[1]); }, {a, b});
  gradcheck("minimum", [](const V& x) { return minimum(x[0], x[1]); }, {a, b});
  gradcheck("maximum broadcast", [](const V& x) { return maximum(x[0], x[1]); },
            {normal64({3, 1}, 5), uniform64({4}, 0.1, 0.2, 6)});
}

TEST_CASE("gradcheck: scalar variants and operators", "[grad]") {
  const Tensor x = positive({2, 5}, 7);
  gradcheck("add scalar", [](const V& v) { return add(v[0], 2.5); }, {x});
  gradcheck("mul scalar", [](const V& v) { return mul(v[0], -1.5); }, {x});
  gradcheck("pow scalar", [](const V& v) { return pow(v[0], 2.7); }, {x});
  gradcheck("pow scalar negative exponent", [](const V& v) { return pow(v[0], -0.5); }, {x});
  gradcheck("operators", [](const V& v) { return (2.0 - v[0]) * v[1] / 3.0 + (v[0] - 1.0) * 4.0 - -v[1]; },
            {x, normal64({5}, 8)});
}

TEST_CASE("gradcheck: unary maps", "[grad]") {
  const Tensor z = normal64({3, 7}, 20);
  gradcheck("neg", [](const V& v) { return neg(v[0]); }, {z});
  gradcheck("exp", [](const V& v) { return exp(v[0]); }, {z});
  gradcheck("log", [](const V& v) { return log(v[0]); }, {positive({3, 7}, 21)});
  gradcheck("sqrt", [](const V& v) { return sqrt(v[0]); }, {positive({3, 7}, 22)});
  gradcheck("abs", [](const V& v) { return abs(v[0]); }, {away_from_zero({3, 7}, 23)});
  gradcheck("relu", [](const V& v) { return relu(v[0]); }, {away_from_zero({3, 7}, 24)});
  gradcheck("sigmoid", [](const V& v) { return sigmoid(v[0]); }, {z});
  gradcheck("tanh", [](const V& v) { return tanh(v[0]); }, {z});
}

TEST_CASE("gradcheck: glu", "[grad]") {
  gradcheck("glu last", [](const V& v) { return glu(v[0], -1); }, {normal64({3, 8}, 30)});
  gradcheck("glu middle", [](const V& v) { return glu(v[0], 1); }, {normal64({2, 6, 3}, 31)});
  gradcheck("glu first", [](const V& v) { return glu(v[0], 0); }, {normal64({4, 5}, 32)});
}

TEST_CASE("gradcheck: where and masked_fill", "[grad]") {
  const Tensor cond = gt(normal64({3, 4}, 40), 0.0);
  gradcheck("where", [cond](const V& v) { return where(cond, v[0], v[1]); }, {normal64({3, 4}, 41), normal64({4}, 42)});
  gradcheck("where broadcast cond", [](const V& v) {
    const Tensor c = from_vector<uint8_t>({1, 0, 1}, {3, 1});
    return where(c, v[0], v[1]);
  }, {normal64({3, 4}, 43), normal64({3, 4}, 44)});
  gradcheck("masked_fill", [cond](const V& v) { return masked_fill(v[0], cond, -3.0); }, {normal64({3, 4}, 45)});
}

TEST_CASE("gradcheck: reductions", "[grad]") {
  const Tensor x = normal64({2, 3, 4}, 50);
  gradcheck("sum all", [](const V& v) { return sum(v[0]); }, {x});
  gradcheck("sum dim 1", [](const V& v) { return sum(v[0], {1}); }, {x});
  gradcheck("sum dims 0,2 keepdim", [](const V& v) { return sum(v[0], {0, 2}, true); }, {x});
  gradcheck("sum dim -1", [](const V& v) { return sum(v[0], {-1}); }, {x});
  gradcheck("mean all", [](const V& v) { return mean(v[0]); }, {x});
  gradcheck("mean dims", [](const V& v) { return mean(v[0], {0, 1}); }, {x});
  // Random normals are distinct with probability 1, so the maxima are unique and differentiable.
  gradcheck("max dim 1", [](const V& v) { return max(v[0], 1); }, {x});
  gradcheck("max dim 0 keepdim", [](const V& v) { return max(v[0], 0, true); }, {x});
  gradcheck("max dims 1,2", [](const V& v) { return max(v[0], std::vector<int>{1, 2}); }, {x});
  gradcheck("sum_to", [](const V& v) { return sum_to(v[0], {3, 1}); }, {x});
}

TEST_CASE("gradcheck: matmul", "[grad]") {
  gradcheck("matmul 2d", [](const V& v) { return matmul(v[0], v[1]); }, {normal64({3, 4}, 60), normal64({4, 5}, 61)});
  gradcheck("matmul batched", [](const V& v) { return matmul(v[0], v[1]); },
            {normal64({2, 3, 4}, 62), normal64({2, 4, 5}, 63)});
  gradcheck("matmul broadcast rhs", [](const V& v) { return matmul(v[0], v[1]); },
            {normal64({2, 3, 4}, 64), normal64({4, 5}, 65)});
  gradcheck("matmul broadcast lhs", [](const V& v) { return matmul(v[0], v[1]); },
            {normal64({3, 4}, 66), normal64({2, 2, 4, 5}, 67)});
  gradcheck("matmul two-sided batch broadcast", [](const V& v) { return matmul(v[0], v[1]); },
            {normal64({2, 1, 3, 4}, 68), normal64({3, 4, 2}, 69)});
  gradcheck("matmul transposed views", [](const V& v) { return matmul(v[0].transpose(0, 1), v[1].transpose(0, 1)); },
            {normal64({4, 3}, 70), normal64({5, 4}, 71)});
  gradcheck("matmul size 1", [](const V& v) { return matmul(v[0], v[1]); }, {normal64({1, 3}, 72), normal64({3, 1}, 73)});
}

TEST_CASE("gradcheck: softmax family and cross-entropy", "[grad]") {
  const Tensor x = normal64({2, 3, 4}, 80);
  for (int dim : {0, 1, 2, -1}) {
    gradcheck("softmax dim " + std::to_string(dim), [dim](const V& v) { return softmax(v[0], dim); }, {x});
    gradcheck("log_softmax dim " + std::to_string(dim), [dim](const V& v) { return log_softmax(v[0], dim); }, {x});
  }
  const Tensor targets = from_vector<int64_t>({2, 0, 4, 1, 3}, {5});
  const Tensor logits = normal64({5, 5}, 81);
  gradcheck("cross_entropy mean", [targets](const V& v) { return cross_entropy(v[0], targets); }, {logits});
  gradcheck("cross_entropy sum",
            [targets](const V& v) { return cross_entropy(v[0], targets, Reduction::Sum); }, {logits});
  gradcheck("cross_entropy none",
            [targets](const V& v) { return cross_entropy(v[0], targets, Reduction::None); }, {logits});
}

TEST_CASE("gradcheck: layer_norm", "[grad]") {
  const Tensor x = normal64({3, 2, 5}, 90);
  gradcheck("layer_norm affine last dim", [](const V& v) { return layer_norm(v[0], {5}, v[1], v[2]); },
            {x, normal64({5}, 91), normal64({5}, 92)});
  gradcheck("layer_norm affine last two dims", [](const V& v) { return layer_norm(v[0], {2, 5}, v[1], v[2]); },
            {x, normal64({2, 5}, 93), normal64({2, 5}, 94)});
  gradcheck("layer_norm no affine", [](const V& v) { return layer_norm(v[0], {5}, Tensor(), Tensor()); }, {x});
  gradcheck("layer_norm weight only", [](const V& v) { return layer_norm(v[0], {5}, v[1], Tensor(), 1e-3); },
            {x, normal64({5}, 95)});
}

TEST_CASE("gradcheck: dropout with a fixed mask", "[grad]") {
  // Each evaluation draws from a fresh generator with the same seed, so the mask is the same every time.
  gradcheck("dropout", [](const V& v) {
    Generator g(77);
    return dropout(v[0], 0.3, true, &g);
  }, {normal64({4, 6}, 100)});
}

TEST_CASE("gradcheck: concat, split, chunk, gather", "[grad]") {
  gradcheck("concat dim 1", [](const V& v) { return concat({v[0], v[1], v[2]}, 1); },
            {normal64({2, 3}, 110), normal64({2, 1}, 111), normal64({2, 4}, 112)});
  gradcheck("concat dim 0", [](const V& v) { return concat({v[0], v[1]}, 0); },
            {normal64({1, 3}, 113), normal64({2, 3}, 114)});
  gradcheck("split", [](const V& v) {
    auto parts = split(v[0], {1, 3, 2}, 1);
    return concat({mul(parts[0], 2.0), exp(parts[1]), mul(parts[2], parts[2])}, 1);
  }, {normal64({2, 6}, 115)});
  gradcheck("chunk", [](const V& v) {
    auto parts = chunk(v[0], 3, 0);
    return add(mul(parts[0], parts[1]), parts[2]);
  }, {normal64({6, 2}, 116)});
  const Tensor index = from_vector<int64_t>({0, 2, 2, 1, 0, 0, 3, 1}, {2, 4});
  gradcheck("gather dim 1 (repeated indices)", [index](const V& v) { return gather(v[0], 1, index); },
            {normal64({2, 4}, 117)});
  const Tensor index0 = from_vector<int64_t>({1, 0, 1, 1, 1, 0}, {2, 3});
  gradcheck("gather dim 0", [index0](const V& v) { return gather(v[0], 0, index0); }, {normal64({2, 3}, 118)});
}

TEST_CASE("gradcheck: views, copies and conversions", "[grad]") {
  const Tensor x = normal64({3, 4, 2}, 120);
  gradcheck("reshape", [](const V& v) { return mul(v[0].reshape({4, -1}), 2.0); }, {x});
  gradcheck("reshape of a transposed view", [](const V& v) { return v[0].transpose(0, 2).reshape({-1}); }, {x});
  gradcheck("slice with step", [](const V& v) { return v[0].slice(1, 1, 4, 2); }, {x});
  gradcheck("narrow + select", [](const V& v) { return v[0].narrow(0, 1, 2).select(2, 1); }, {x});
  gradcheck("permute", [](const V& v) { return v[0].permute({2, 0, 1}); }, {x});
  gradcheck("expand", [](const V& v) { return mul(v[0].expand({3, 2, 4}), v[1]); },
            {normal64({2, 1}, 121), normal64({3, 2, 4}, 122)});
  gradcheck("unsqueeze/squeeze", [](const V& v) { return v[0].unsqueeze(1).squeeze(1).unsqueeze(0); }, {x});
  gradcheck("flatten", [](const V& v) { return v[0].flatten(1); }, {x});
  gradcheck("clone", [](const V& v) { return mul(v[0].clone(), v[0]); }, {x});
  gradcheck("to F32 and back", [](const V& v) { return v[0].to(DType::F32).to(DType::F64); }, {x},
            GradcheckOptions{1e-3, 1e-4, 1e-3});
}
