// Autograd: graph shapes (chains, shared inputs, reused nodes, diamonds), accumulation, retain_graph,
// grad mode, detach, hooks, custom ops, deep graphs, and the backward rules of the view ops.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/tensor.h"

using namespace stgs;

namespace {

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

Tensor leaf(const std::vector<double>& v, const Shape& shape) {
  return from_vector<double>(v, shape).set_requires_grad(true);
}

Tensor seq(const Shape& shape, double start = 0) {
  return arange(start, start + double(shape.numel()), 1, DType::F64).reshape(shape);
}

void check_close(const std::vector<double>& got, const std::vector<double>& expect) {
  REQUIRE(got.size() == expect.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(expect[i]).epsilon(1e-12).margin(1e-12));
  }
}

// Straight-through hard threshold: forward (x > 0), backward identity.
Tensor hard_threshold(const Tensor& x) {
  return custom_op(
      "hard_threshold", {x},
      [](const std::vector<Tensor>& in) { return gt(in[0], 0.0).to(in[0].dtype()); },
      [](const Tensor& g, const std::vector<Tensor>&, const Tensor&) { return std::vector<Tensor>{g}; });
}

}  // namespace

TEST_CASE("a simple chain", "[autograd]") {
  const Tensor x = leaf({0.5, -1, 2}, Shape{3});
  const Tensor y = sum(exp(x * 2.0));
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(x.is_leaf());
  CHECK(x.grad_fn() == nullptr);
  y.backward();
  check_close(vals(x.grad()), {2 * std::exp(1.0), 2 * std::exp(-2.0), 2 * std::exp(4.0)});
  CHECK(x.grad().shape() == x.shape());
  CHECK(x.grad().dtype() == DType::F64);
  CHECK_FALSE(x.grad().requires_grad());
}

TEST_CASE("shared inputs", "[autograd]") {
  const Tensor x = leaf({1, -2, 3}, Shape{3});
  sum(x * x).backward();
  check_close(vals(x.grad()), {2, -4, 6});

  // x feeds two branches that meet again.
  const Tensor z = leaf({0, 1, -1}, Shape{3});
  sum(add(z * 3.0, exp(z))).backward();
  check_close(vals(z.grad()), {3 + 1, 3 + std::exp(1.0), 3 + std::exp(-1.0)});

  // The same tensor as both operands of every binary op.
  const Tensor w = leaf({2, 3}, Shape{2});
  sum(add(div(w, w), sub(w, w)) + mul(w, w)).backward();
  check_close(vals(w.grad()), {4, 6});
}

TEST_CASE("a reused intermediate node", "[autograd]") {
  const Tensor x = leaf({1, 2, -0.5}, Shape{3});
  const Tensor h = x * 2.0;
  const Tensor y = sum(h * h + h + exp(h));
  y.backward();
  std::vector<double> expect;
  for (double v : {1.0, 2.0, -0.5}) expect.push_back((2 * (2 * v) + 1 + std::exp(2 * v)) * 2);
  check_close(vals(x.grad()), expect);
}

TEST_CASE("a diamond graph", "[autograd]") {
  const Tensor x = leaf({0.5, 1.5}, Shape{2});
  const Tensor a = x + 1.0;
  const Tensor b = a * 2.0;
  const Tensor c = a * a;
  const Tensor d = b * c;  // 2 a^3
  sum(d).backward();
  check_close(vals(x.grad()), {6 * 1.5 * 1.5, 6 * 2.5 * 2.5});

  // Two diamonds in a row, with an extra edge skipping the middle.
  const Tensor p = leaf({2}, Shape{1});
  const Tensor q = p * p;                 // p^2
  const Tensor r = exp(q) + q * 3.0;      // e^{p^2} + 3p^2
  const Tensor s = r * r + r * p;         // r^2 + r p
  s.backward();
  const double pv = 2, qv = pv * pv, rv = std::exp(qv) + 3 * qv;
  const double dr_dp = (std::exp(qv) + 3) * 2 * pv;
  check_close(vals(p.grad()), {2 * rv * dr_dp + dr_dp * pv + rv});
}

TEST_CASE("gradients accumulate across backward calls", "[autograd]") {
  const Tensor x = leaf({1, 2}, Shape{2});
  sum(x * x).backward();
  check_close(vals(x.grad()), {2, 4});
  sum(x * 3.0).backward();
  check_close(vals(x.grad()), {5, 7});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  check_close(vals(x.grad()), {1, 1});

  // The accumulated gradient is a tensor of its own, not an alias of the seed.
  const Tensor y = leaf({1, 1}, Shape{2});
  Tensor seed = from_vector<double>({5, 6}, Shape{2});
  (y * 1.0).backward(seed);
  seed.fill_(0);
  check_close(vals(y.grad()), {5, 6});
  // Nor of a leaf passed straight through.
  const Tensor z = leaf({1, 2}, Shape{2});
  Tensor seed2 = from_vector<double>({3, 4}, Shape{2});
  z.backward(seed2);
  seed2.fill_(0);
  check_close(vals(z.grad()), {3, 4});
}

TEST_CASE("retain_graph", "[autograd]") {
  const Tensor x = leaf({1, 2}, Shape{2});
  const Tensor y = sum(x * x);
  y.backward();
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("retain_graph"));
  check_close(vals(x.grad()), {2, 4});

  const Tensor z = leaf({1, 2}, Shape{2});
  const Tensor w = sum(exp(z) * z);
  w.backward(Tensor(), true);
  w.backward(Tensor(), true);
  const double e1 = std::exp(1.0), e2 = std::exp(2.0);
  check_close(vals(z.grad()), {2 * (e1 + e1), 2 * (e2 + 2 * e2)});
  w.backward();  // last one frees
  check_close(vals(z.grad()), {3 * (2 * e1), 3 * (3 * e2)});
  CHECK_THROWS_WITH(w.backward(), Catch::Contains("retain_graph"));

  // A second backward through a freed shared subgraph also fails clearly.
  const Tensor u = leaf({1}, Shape{1});
  const Tensor h = u * 2.0;
  sum(h * 3.0).backward();
  CHECK_THROWS_WITH(sum(h * 4.0).backward(), Catch::Contains("retain_graph"));
}

TEST_CASE("a hook does not run on a freed node", "[autograd]") {
  const Tensor x = leaf({1}, Shape{1});
  const Tensor y = sum(x * 2.0);
  int calls = 0;
  y.register_hook([&calls](const Tensor&) {
    ++calls;
    return Tensor();
  });
  y.backward();
  CHECK(calls == 1);
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("retain_graph"));
  CHECK(calls == 1);
  check_close(vals(x.grad()), {2});
}

TEST_CASE("NoGradGuard", "[autograd]") {
  const Tensor x = leaf({1, 2, 3}, Shape{3});
  CHECK(grad_enabled());
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    const Tensor y = exp(x * 2.0);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    const Tensor v = x.slice(0, 0, 2).transpose(0, 0).reshape(Shape{2, 1}).expand(Shape{2, 3});
    CHECK_FALSE(v.requires_grad());
    CHECK(v.grad_fn() == nullptr);
    CHECK_FALSE(x.clone().requires_grad());
    CHECK_FALSE(hard_threshold(x).requires_grad());
    {
      NoGradGuard nested;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());
    CHECK_THROWS_WITH(sum(y).backward(), Catch::Contains("does not require grad"));
  }
  CHECK(grad_enabled());
  CHECK(exp(x).requires_grad());
  // The guard restores the mode even when leaving by an exception.
  try {
    NoGradGuard guard;
    throw Error("boom");
  } catch (const Error&) {
  }
  CHECK(grad_enabled());
}

TEST_CASE("detach", "[autograd]") {
  const Tensor x = leaf({1, 2}, Shape{2});
  const Tensor h = x * 3.0;
  const Tensor d = h.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.impl()->storage == h.impl()->storage);
  sum(d * x).backward();
  check_close(vals(x.grad()), {3, 6});  // d is a constant
  // A detached tensor can become a leaf of its own.
  Tensor e = h.detach();
  e.set_requires_grad(true);
  sum(e * e).backward();
  check_close(vals(e.grad()), {6, 12});
  check_close(vals(x.grad()), {3, 6});
}

TEST_CASE("set_grad checks the shape", "[autograd]") {
  const Tensor x = leaf({1, 2}, Shape{2});
  x.set_grad(from_vector<double>({5, 5}, Shape{2}));
  sum(x).backward();
  check_close(vals(x.grad()), {6, 6});
  CHECK_THROWS_WITH(x.set_grad(zeros(Shape{3}, DType::F64)), Catch::Contains("set_grad") && Catch::Contains("[3]"));
  CHECK_THROWS_WITH(x.set_grad(zeros(Shape{2}, DType::F32)), Catch::Contains("set_grad") && Catch::Contains("F32"));
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("set_requires_grad rules", "[autograd]") {
  const Tensor x = leaf({1}, Shape{1});
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH(y.set_requires_grad(false), Catch::Contains("non-leaf"));
  CHECK_THROWS_WITH(y.set_requires_grad(true), Catch::Contains("non-leaf"));
  Tensor i = zeros(Shape{2}, DType::I64);
  CHECK_THROWS_WITH(i.set_requires_grad(true), Catch::Contains("I64"));
  CHECK_NOTHROW(i.set_requires_grad(false));
  Tensor f = zeros(Shape{2});
  f.set_requires_grad(true);
  CHECK(f.requires_grad());
  f.set_requires_grad(false);
  CHECK_FALSE(f.requires_grad());
}

TEST_CASE("backward seeds", "[autograd]") {
  const Tensor x = leaf({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  const Tensor y = x * 3.0;
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("grad_out") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(y.backward(ones(Shape{3, 2}, DType::F64)), Catch::Contains("grad_out"));
  CHECK_THROWS_WITH(y.backward(ones(Shape{2, 3}, DType::F32)),
                    Catch::Contains("grad_out") && Catch::Contains("F32[2, 3]") && Catch::Contains("F64[2, 3]"));
  CHECK_FALSE(x.grad().defined());
  y.backward(from_vector<double>({1, 0, -1, 2, 0.5, 10}, Shape{2, 3}));
  check_close(vals(x.grad()), {3, 0, -3, 6, 1.5, 30});

  // A single-element non-scalar output takes the default seed of ones.
  const Tensor z = leaf({2}, Shape{1, 1});
  (z * z).backward();
  check_close(vals(z.grad()), {4});

  // A non-contiguous seed.
  const Tensor w = leaf({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  (w * 1.0).backward(seq(Shape{3, 2}).transpose(0, 1));
  check_close(vals(w.grad()), {0, 2, 4, 1, 3, 5});

  // Backward from something that needs no gradient.
  CHECK_THROWS_WITH(sum(ones(Shape{2})).backward(), Catch::Contains("does not require grad"));
}

TEST_CASE("branches that need no gradient are skipped", "[autograd]") {
  const Tensor a = leaf({1, 2}, Shape{2});
  const Tensor b = from_vector<double>({3, 4}, Shape{2});
  CHECK_FALSE(b.requires_grad());
  sum(a * b + exp(b)).backward();
  check_close(vals(a.grad()), {3, 4});
  CHECK_FALSE(b.grad().defined());

  // A custom op on a constant input records nothing and its backward never runs.
  int calls = 0;
  auto counting = [&calls](const Tensor& x) {
    return custom_op(
        "counting", {x}, [](const std::vector<Tensor>& in) { return in[0] * 2.0; },
        [&calls](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
          ++calls;
          return std::vector<Tensor>{g * 2.0};
        });
  };
  const Tensor c = counting(b);
  CHECK_FALSE(c.requires_grad());
  const Tensor a2 = leaf({1, 2}, Shape{2});
  sum(a2 * c).backward();
  CHECK(calls == 0);
  check_close(vals(a2.grad()), {6, 8});

  // The closure is told which inputs need a gradient.
  std::vector<bool> seen;
  const Tensor p = leaf({1}, Shape{1});
  const Tensor q = from_vector<double>({2}, Shape{1});
  const Tensor r = custom_op(
      "needs", {q, p}, [](const std::vector<Tensor>& in) { return in[0] * in[1]; },
      [&seen](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
        seen.push_back(true);
        return std::vector<Tensor>{g * in[1], g * in[0]};
      });
  sum(r).backward();
  CHECK(seen.size() == 1);
  check_close(vals(p.grad()), {2});
  CHECK_FALSE(q.grad().defined());
}

TEST_CASE("a branch that receives no gradient does not block the rest of the graph", "[autograd]") {
  // zero_grad_op passes its value through but gives no gradient to its input.
  auto no_grad_op = [](const Tensor& x) {
    return custom_op(
        "no_grad_through", {x}, [](const std::vector<Tensor>& in) { return in[0].clone(); },
        [](const Tensor&, const std::vector<Tensor>&, const Tensor&) { return std::vector<Tensor>{Tensor()}; });
  };
  const Tensor x = leaf({1, 2}, Shape{2});
  const Tensor y = sum(no_grad_op(x * 2.0) + x * 3.0);
  y.backward();
  REQUIRE(x.grad().defined());
  check_close(vals(x.grad()), {3, 3});

  // Deeper: the starved branch has its own chain before rejoining.
  const Tensor z = leaf({1}, Shape{1});
  const Tensor h = exp(z * 2.0) * 5.0;
  const Tensor out = sum(no_grad_op(h) + h * 0.0 + z);
  out.backward();
  check_close(vals(z.grad()), {1});

  // Only a starved path: the leaf gets no gradient at all.
  const Tensor w = leaf({1}, Shape{1});
  sum(no_grad_op(w * 2.0)).backward();
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("hooks on leaves and intermediates", "[autograd]") {
  auto twice = [](const Tensor& g) { return g * 2.0; };

  const Tensor x = leaf({1, 2}, Shape{2});
  x.register_hook(twice);
  sum(x * x).backward();
  check_close(vals(x.grad()), {4, 8});

  // The hook sees the summed gradient once, even with several consumers.
  const Tensor y = leaf({1, 2}, Shape{2});
  int calls = 0;
  std::vector<double> seen;
  y.register_hook([&](const Tensor& g) {
    ++calls;
    seen = vals(g);
    return Tensor();  // undefined: keep the gradient
  });
  sum(y * 3.0 + y * y).backward();
  CHECK(calls == 1);
  check_close(seen, {5, 7});
  check_close(vals(y.grad()), {5, 7});

  // On an intermediate: the doubled gradient flows further down.
  const Tensor z = leaf({1, -1}, Shape{2});
  const Tensor h = z * 3.0;
  h.register_hook(twice);
  sum(h * h).backward();
  check_close(vals(z.grad()), {2 * (2 * 3) * 3, 2 * (2 * -3) * 3});

  // Hooks run in registration order.
  const Tensor w = leaf({1}, Shape{1});
  const Tensor hw = w * 1.0;
  hw.register_hook([](const Tensor& g) { return g + 1.0; });
  hw.register_hook(twice);
  sum(hw).backward();
  check_close(vals(w.grad()), {4});

  CHECK_THROWS_WITH(ones(Shape{2}).register_hook(twice), Catch::Contains("does not require grad"));

  // A hook that changes the gradient's shape or dtype is an error, not a wrong-sized read downstream.
  const Tensor v = leaf({1, 2, 3}, Shape{3});
  const Tensor hv = exp(v);
  hv.register_hook([](const Tensor&) { return zeros(Shape{2}, DType::F64); });
  CHECK_THROWS_WITH(sum(hv * 2.0).backward(), Catch::Contains("hook") && Catch::Contains("[2]") &&
                                                  Catch::Contains("[3]"));
  const Tensor u = leaf({1, 2, 3}, Shape{3});
  u.register_hook([](const Tensor& g) { return g.to(DType::F32); });
  CHECK_THROWS_WITH(sum(u * 2.0).backward(), Catch::Contains("hook") && Catch::Contains("F32"));
}

TEST_CASE("a leaf takes a gradient only the backward holds, and copies one held elsewhere", "[autograd]") {
  // Only the backward holds the gradient a hook returns (it keeps just the address): taken without a copy.
  const Tensor x = leaf({1, 2, 3}, Shape{3});
  const void* returned = nullptr;
  x.register_hook([&](const Tensor& g) {
    Tensor doubled = g * 2.0;
    returned = doubled.raw_data();
    return doubled;
  });
  sum(x * 3.0).backward();
  check_close(vals(x.grad()), {6, 6, 6});
  CHECK(x.grad().raw_data() == returned);

  // The same gradient to two leaves (add's backward): each leaf gets its own.
  const Tensor a = leaf({1, 2, 3}, Shape{3}), b = leaf({4, 5, 6}, Shape{3});
  (add(a, b) * 2.0).backward(from_vector<double>({1, 2, 3}, Shape{3}));
  check_close(vals(a.grad()), {2, 4, 6});
  check_close(vals(b.grad()), {2, 4, 6});
  CHECK(a.grad().raw_data() != b.grad().raw_data());

  // A gradient a hook keeps, or a seed the caller keeps, is copied.
  const Tensor c = leaf({1, 2}, Shape{2});
  Tensor kept;
  c.register_hook([&](const Tensor& g) {
    kept = g * 1.0;
    return kept;
  });
  sum(c * 5.0).backward();
  check_close(vals(c.grad()), {5, 5});
  CHECK(c.grad().raw_data() != kept.raw_data());
  const Tensor d = leaf({1, 2}, Shape{2});
  const Tensor seed = from_vector<double>({7, 8}, Shape{2});
  d.backward(seed);
  check_close(vals(d.grad()), {7, 8});
  CHECK(d.grad().raw_data() != seed.raw_data());
}

TEST_CASE("a hook registered on a leaf before use", "[autograd]") {
  Tensor x = zeros(Shape{3}, DType::F64);
  x.set_requires_grad(true);
  std::vector<double> seen;
  x.register_hook([&seen](const Tensor& g) {
    seen = vals(g);
    return Tensor();
  });
  sum(x * 4.0).backward();
  check_close(seen, {4, 4, 4});
  check_close(vals(x.grad()), {4, 4, 4});
}

TEST_CASE("custom_op: a straight-through hard threshold", "[autograd]") {
  const Tensor x = leaf({-1, 0.5, 2, -0.1}, Shape{4});
  const Tensor y = hard_threshold(x);
  CHECK(vals(y) == std::vector<double>{0, 1, 1, 0});
  CHECK(y.requires_grad());
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(std::string(y.grad_fn()->name) == "hard_threshold");
  const Tensor w = from_vector<double>({1, 2, 3, 4}, Shape{4});
  sum(y * w).backward();
  check_close(vals(x.grad()), {1, 2, 3, 4});

  // The backward sees the inputs and the output it produced.
  const Tensor a = leaf({1, 2}, Shape{2});
  const Tensor b = leaf({3, 5}, Shape{2});
  const Tensor p = custom_op(
      "product", {a, b}, [](const std::vector<Tensor>& in) { return in[0] * in[1]; },
      [](const Tensor& g, const std::vector<Tensor>& in, const Tensor& out) {
        CHECK(vals(out) == std::vector<double>{3, 10});
        CHECK_FALSE(in[0].requires_grad());
        return std::vector<Tensor>{g * in[1], g * in[0]};
      });
  sum(p * p).backward();
  check_close(vals(a.grad()), {2 * 3 * 3, 2 * 10 * 5});
  check_close(vals(b.grad()), {2 * 3 * 1, 2 * 10 * 2});

  // A forward that returns its input unchanged still gets a node of its own.
  const Tensor c = leaf({1, 2}, Shape{2});
  const Tensor id = custom_op(
      "identity", {c}, [](const std::vector<Tensor>& in) { return in[0]; },
      [](const Tensor& g, const std::vector<Tensor>&, const Tensor&) { return std::vector<Tensor>{g * 10.0}; });
  CHECK(c.is_leaf());
  CHECK(c.grad_fn() == nullptr);
  CHECK_FALSE(id.is_leaf());
  sum(id).backward();
  check_close(vals(c.grad()), {10, 10});

  // Nor does a tensor the forward returns from elsewhere (a cached constant) get the node.
  const Tensor cached = from_vector<double>({7, 8}, Shape{2});
  const Tensor d = leaf({1, 2}, Shape{2});
  const Tensor k = custom_op(
      "constant", {d}, [cached](const std::vector<Tensor>&) { return cached; },
      [](const Tensor& g, const std::vector<Tensor>&, const Tensor&) { return std::vector<Tensor>{g}; });
  CHECK(k.requires_grad());
  CHECK(vals(k) == std::vector<double>{7, 8});
  CHECK(cached.is_leaf());
  CHECK_FALSE(cached.requires_grad());
  CHECK(cached.grad_fn() == nullptr);
  sum(k).backward();
  check_close(vals(d.grad()), {1, 1});
}

TEST_CASE("custom_op errors", "[autograd]") {
  const Tensor x = leaf({1, 2}, Shape{2});
  const Tensor wrong_count = custom_op(
      "wrong_count", {x}, [](const std::vector<Tensor>& in) { return in[0] * 1.0; },
      [](const Tensor& g, const std::vector<Tensor>&, const Tensor&) { return std::vector<Tensor>{g, g}; });
  CHECK_THROWS_WITH(sum(wrong_count).backward(),
                    Catch::Contains("wrong_count") && Catch::Contains("2 gradients for 1 inputs"));

  const Tensor wrong_shape = custom_op(
      "wrong_shape", {x}, [](const std::vector<Tensor>& in) { return in[0] * 1.0; },
      [](const Tensor&, const std::vector<Tensor>&, const Tensor&) {
        return std::vector<Tensor>{zeros(Shape{3}, DType::F64)};
      });
  CHECK_THROWS_WITH(sum(wrong_shape).backward(),
                    Catch::Contains("wrong_shape") && Catch::Contains("[3]") && Catch::Contains("[2]"));

  CHECK_THROWS_WITH(custom_op(
                        "undefined_out", {x}, [](const std::vector<Tensor>&) { return Tensor(); },
                        [](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
                          return std::vector<Tensor>{g};
                        }),
                    Catch::Contains("undefined_out"));
  // A failed backward leaves grad mode on.
  CHECK(grad_enabled());
}

TEST_CASE("a deep chain runs backward and is freed without recursion", "[autograd]") {
  const Tensor x = leaf({1, 2}, Shape{2});
  const Tensor c = from_vector<double>({1, 1}, Shape{2});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = add(y, c);
  check_close(vals(y), {20001, 20002});
  sum(y).backward();
  check_close(vals(x.grad()), {1, 1});
  y = Tensor();

  // A much deeper graph that is dropped without a backward pass, and one kept with retain_graph.
  Tensor z = x;
  for (int i = 0; i < 200000; ++i) z = z * 1.0;
  sum(z).backward(Tensor(), true);
  check_close(vals(x.grad()), {2, 2});
  z = Tensor();
  Tensor u = x;
  for (int i = 0; i < 200000; ++i) u = u + 0.0;
  u = Tensor();
  SUCCEED();
}

// ---- backward rules of the view ops ---------------------------------------------------------------

TEST_CASE("gradients of view ops", "[autograd]") {
  const Tensor w34 = seq(Shape{3, 4}, 1);  // weights 1..12

  SECTION("slice with step") {
    const Tensor x = seq(Shape{3, 4}).set_requires_grad(true);
    const Tensor w = seq(Shape{3, 2}, 1);
    sum(x.slice(1, 1, 4, 2) * w).backward();
    check_close(vals(x.grad()), {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6});
  }
  SECTION("slice with negative bounds, then narrow") {
    const Tensor x = seq(Shape{6}).set_requires_grad(true);
    sum(x.slice(0, -4, 100).narrow(0, 1, 2) * seq(Shape{2}, 10)).backward();
    check_close(vals(x.grad()), {0, 0, 0, 10, 11, 0});
  }
  SECTION("transpose") {
    const Tensor x = seq(Shape{3, 4}).set_requires_grad(true);
    const Tensor w = seq(Shape{4, 3}, 1);
    sum(x.transpose(0, 1) * w).backward();
    // dL/dx[i][j] = w[j][i] = 1 + 3j + i
    std::vector<double> expect;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) expect.push_back(1 + 3 * j + i);
    check_close(vals(x.grad()), expect);
    CHECK(x.grad().is_contiguous());
  }
  SECTION("permute") {
    const Tensor x = seq(Shape{2, 3, 4}).set_requires_grad(true);
    const Tensor w = seq(Shape{4, 2, 3}, 1);
    sum(x.permute({2, 0, 1}) * w).backward();
    // out[k][i][j] = x[i][j][k]; dL/dx[i][j][k] = w[k][i][j] = 1 + 6k + 3i + j
    std::vector<double> expect;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) expect.push_back(1 + 6 * k + 3 * i + j);
    check_close(vals(x.grad()), expect);
  }
  SECTION("expand") {
    const Tensor x = seq(Shape{3, 1}).set_requires_grad(true);
    sum(x.expand(Shape{2, 3, 4}) * w34).backward();
    // Row sums of w34, twice (leading broadcast dimension of 2).
    check_close(vals(x.grad()), {2 * (1 + 2 + 3 + 4), 2 * (5 + 6 + 7 + 8), 2 * (9 + 10 + 11 + 12)});
    const Tensor s = scalar(2, DType::F64).set_requires_grad(true);
    sum(s.expand(Shape{3, 4}) * w34).backward();
    check_close(vals(s.grad()), {78});
    CHECK(s.grad().dim() == 0);
  }
  SECTION("reshape and view and flatten") {
    const Tensor x = seq(Shape{3, 4}).set_requires_grad(true);
    sum(x.reshape(Shape{2, -1}) * w34.reshape(Shape{2, 6})).backward();
    check_close(vals(x.grad()), vals(w34));
    const Tensor y = seq(Shape{3, 4}).set_requires_grad(true);
    sum(y.view(Shape{12}) * w34.flatten()).backward();
    check_close(vals(y.grad()), vals(w34));
    // reshape of a non-contiguous view copies, and its gradient still routes back.
    const Tensor z = seq(Shape{4, 3}).set_requires_grad(true);
    sum(z.transpose(0, 1).reshape(Shape{12}) * w34.flatten()).backward();
    std::vector<double> expect;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 3; ++j) expect.push_back(1 + 4 * j + i);
    check_close(vals(z.grad()), expect);
    const Tensor f = seq(Shape{2, 3, 2}).set_requires_grad(true);
    sum(f.flatten(1) * seq(Shape{2, 6}, 1)).backward();
    check_close(vals(f.grad()), vals(seq(Shape{12}, 1)));
  }
  SECTION("squeeze and unsqueeze") {
    const Tensor x = seq(Shape{3, 1, 4}).set_requires_grad(true);
    sum(x.squeeze(1).unsqueeze(0) * w34.unsqueeze(0)).backward();
    CHECK(x.grad().shape() == Shape{3, 1, 4});
    check_close(vals(x.grad()), vals(w34));
  }
  SECTION("select") {
    const Tensor x = seq(Shape{3, 4}).set_requires_grad(true);
    (sum(x.select(1, 2) * from_vector<double>({5, 6, 7}, Shape{3})) + sum(x.select(0, -1) * 2.0)).backward();
    check_close(vals(x.grad()), {0, 0, 5, 0, 0, 0, 6, 0, 2, 2, 9, 2});
  }
  SECTION("chained views accumulate into the same leaf") {
    const Tensor x = seq(Shape{2, 3}).set_requires_grad(true);
    const Tensor a = x.transpose(0, 1).slice(0, 0, 3, 2);  // rows 0 and 2 of x^T: columns 0, 2 of x
    const Tensor b = x.select(0, 1).unsqueeze(0).expand(Shape{4, 3});
    sum(a * 3.0).backward();
    sum(b).backward();
    check_close(vals(x.grad()), {3, 0, 3, 3 + 4, 4, 3 + 4});
  }
  SECTION("clone and dtype conversion") {
    const Tensor x = seq(Shape{2}).set_requires_grad(true);
    sum(x.clone() * 3.0 + x.to(DType::F32).to(DType::F64) * 2.0).backward();
    check_close(vals(x.grad()), {5, 5});
    CHECK(x.grad().dtype() == DType::F64);
  }
}

TEST_CASE("broadcasting ops reduce their gradients to the input shapes", "[autograd]") {
  const Tensor a = leaf({1, 2, 3}, Shape{3, 1});
  const Tensor b = leaf({10, 20, 30, 40}, Shape{1, 4});
  sum(a * b + a).backward();
  CHECK(a.grad().shape() == Shape{3, 1});
  CHECK(b.grad().shape() == Shape{1, 4});
  check_close(vals(a.grad()), {100 + 4, 100 + 4, 100 + 4});
  check_close(vals(b.grad()), {6, 6, 6, 6});

  const Tensor s = leaf({2}, Shape{});
  const Tensor m = leaf({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  sum(div(m, s) - s).backward();
  check_close(vals(s.grad()), {-21.0 / 4 - 6});
  check_close(vals(m.grad()), std::vector<double>(6, 0.5));
}

TEST_CASE("autograd edge cases: pow(x, 0) at 0, custom ops' gradients of the wrong dtype", "[autograd]") {
  Tensor x = from_vector(std::vector<float>{0, 4}, Shape{2});
  x.set_requires_grad(true);
  sum(pow(x, 0.0)).backward();  // the derivative of a constant: 0 (was 0 * 0^-1 = NaN at 0)
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0});
  Tensor base = from_vector(std::vector<float>{0, 4}, Shape{2}), exponent = zeros(Shape{2});
  base.set_requires_grad(true);
  sum(pow(base, exponent)).backward();  // the same with a tensor exponent
  CHECK(base.grad().to_vector<float>() == std::vector<float>{0, 0});
  // maximum's gradient follows its forward: to a NaN first operand, which is what it returned.
  Tensor a = from_vector(std::vector<float>{NAN, 1}, Shape{2}), b = from_vector(std::vector<float>{1, 2}, Shape{2});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  sum(maximum(a, b)).backward();  // (the sum is NaN; its gradient is 1 everywhere)
  CHECK(a.grad().to_vector<float>() == std::vector<float>{1, 0});
  CHECK(b.grad().to_vector<float>() == std::vector<float>{0, 1});

  Tensor w = from_vector(std::vector<float>{1, 2}, Shape{2});
  w.set_requires_grad(true);
  const Tensor y = custom_op(
      "twice", {w}, [](const std::vector<Tensor>& in) { return in[0] * 2.0; },
      [](const Tensor&, const std::vector<Tensor>&, const Tensor&) {
        return std::vector<Tensor>{ones(Shape{2}, DType::F64)};
      });
  CHECK_THROWS_WITH(sum(y).backward(), Catch::Contains("custom op 'twice': gradient 0 is F64[2]"));
  CHECK_THROWS_WITH(custom_op(
                        "index", {w}, [](const std::vector<Tensor>& in) { return argmax(in[0], 0); },
                        [](const Tensor&, const std::vector<Tensor>&, const Tensor&) { return std::vector<Tensor>{}; }),
                    Catch::Contains("which cannot carry a gradient"));
}
