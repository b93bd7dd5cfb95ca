// CPU-vs-CUDA parity, in the style of ggml's test-backend-ops: one table of cases, each run on the CPU and
// on cuda:0 from the same fresh random inputs (odd sizes, size 1, non-multiples of 4/32/128, large sizes),
// compared element by element with |cuda - cpu| <= atol + rtol * |cpu|; the first mismatches are printed.
// New blocks are poisoned with NaN while the cases run, so an element a kernel forgets to write fails.
// Differentiable cases also compare the inputs' gradients. Every case is tagged [cuda]: without a GPU
// the runner skips and counts them.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cuda/runtime.h"
#include "engine/ops.h"
#include "tests/compare.h"

using namespace stgs;

namespace {

using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

using testing::Tolerance;
using testing::compare;

// Runs fn on CPU inputs and on copies of them on cuda:0; compares outputs and, when differentiable,
// the gradients of sum(fn(x) * R) for a fixed random R.
void parity(const std::string& name, const Fn& fn, const V& inputs, bool differentiable = true, Tolerance tol = {}) {
  INFO(name);
  set_poison_allocations(true);
  V cpu_in, gpu_in;
  for (const Tensor& x : inputs) {
    Tensor c = x.detach().clone(), g = x.detach().to(Device::cuda(0));
    if (differentiable && is_floating(x.dtype())) {
      c.set_requires_grad(true);
      g.set_requires_grad(true);
    }
    cpu_in.push_back(c);
    gpu_in.push_back(g);
  }
  Tensor y_cpu = fn(cpu_in), y_gpu = fn(gpu_in);
  std::string report = compare(name, y_cpu, y_gpu.to(Device::cpu()), tol);
  if (differentiable && y_cpu.requires_grad()) {
    Generator gen(99);
    const Tensor R = randn(y_cpu.shape(), y_cpu.dtype(), Device::cpu(), &gen);
    sum(mul(y_cpu, R)).backward();
    sum(mul(y_gpu, R.to(Device::cuda(0)))).backward();
    for (size_t i = 0; i < cpu_in.size(); ++i) {
      if (!cpu_in[i].requires_grad() || !cpu_in[i].grad().defined()) continue;
      report += compare(name + " grad " + std::to_string(i), cpu_in[i].grad(), gpu_in[i].grad().to(Device::cpu()),
                        tol);
    }
  }
  set_poison_allocations(false);
  INFO(report);
  CHECK(report.empty());
}

Tensor normal(const Shape& s, uint64_t seed, DType dt = DType::F32) {
  Generator g(seed);
  return randn(s, dt, Device::cpu(), &g);
}
Tensor uniform(const Shape& s, double lo, double hi, uint64_t seed, DType dt = DType::F32) {
  Generator g(seed);
  return rand(s, dt, Device::cpu(), &g, lo, hi);
}

// Odd and even, tiny and large: size 1, primes, non-multiples of 4/32/128, one past a power of two.
const std::vector<Shape> kShapes = {{1}, {7}, {33}, {129}, {1000}, {3, 5}, {17, 31}, {2, 3, 129}, {(1 << 20) + 3}};

}  // namespace

TEST_CASE("cuda parity: unary maps", "[cuda]") {
  uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    const Tensor z = normal(s, seed++), p = uniform(s, 0.1, 3.0, seed++);
    const std::string sh = std::string(" ").append(s.str());  // not " " + str: GCC 12 -Wrestrict false positive
    parity("neg" + sh, [](const V& v) { return neg(v[0]); }, {z});
    parity("exp" + sh, [](const V& v) { return exp(v[0]); }, {z});
    parity("log" + sh, [](const V& v) { return log(v[0]); }, {p});
    parity("sqrt" + sh, [](const V& v) { return sqrt(v[0]); }, {p});
    parity("abs" + sh, [](const V& v) { return abs(v[0]); }, {z});
    parity("relu" + sh, [](const V& v) { return relu(v[0]); }, {z});
    parity("sigmoid" + sh, [](const V& v) { return sigmoid(v[0]); }, {z});
    parity("tanh" + sh, [](const V& v) { return tanh(v[0]); }, {z});
    parity("pow scalar" + sh, [](const V& v) { return pow(v[0], 1.7); }, {p});
    parity("scalar ops" + sh, [](const V& v) { return mul(add(v[0], 0.5), -2.0); }, {z});
  }
  parity("unary F64", [](const V& v) { return tanh(exp(v[0])); }, {normal({129}, 7, DType::F64)}, true, {1e-12, 1e-12});
}

TEST_CASE("cuda parity: broadcasting binary ops, comparisons, where", "[cuda]") {
  const std::vector<std::pair<Shape, Shape>> pairs = {{{1}, {1}},         {{1000}, {1000}},   {{17, 31}, {31}},
                                                      {{17, 1}, {1, 31}}, {{2, 3, 129}, {3, 1}}, {{}, {33}},
                                                      {{(1 << 20) + 3}, {(1 << 20) + 3}},
                                                      // rows x a repeated row, cols a multiple of 4: the row kernel
                                                      {{37, 64}, {64}},   {{64}, {37, 64}}};
  uint64_t seed = 100;
  for (const auto& [sa, sb] : pairs) {
    const Tensor a = normal(sa, seed++), b = normal(sb, seed++), bp = uniform(sb, 0.5, 2, seed++);
    const std::string sh = std::string(" ").append(sa.str()).append("x").append(sb.str());
    parity("add" + sh, [](const V& v) { return add(v[0], v[1]); }, {a, b});
    parity("sub" + sh, [](const V& v) { return sub(v[0], v[1]); }, {a, b});
    parity("mul" + sh, [](const V& v) { return mul(v[0], v[1]); }, {a, b});
    parity("div" + sh, [](const V& v) { return div(v[0], v[1]); }, {a, bp});
    parity("maximum" + sh, [](const V& v) { return maximum(v[0], v[1]); }, {a, b});
    parity("minimum" + sh, [](const V& v) { return minimum(v[0], v[1]); }, {a, b});
    parity("pow" + sh, [](const V& v) { return pow(v[1], v[0]); }, {a, bp});
    parity("gt" + sh, [](const V& v) { return gt(v[0], v[1]); }, {a, b}, false);
    parity("where" + sh, [](const V& v) { return where(ge(v[0], v[1]), v[0], v[1]); }, {a, b});
  }
  parity("add transposed views", [](const V& v) { return add(v[0].transpose(0, 1), v[1]); },
         {normal({31, 17}, 200), normal({17, 31}, 201)});
  parity("mul sliced with step", [](const V& v) { return mul(v[0].slice(1, 1, 31, 3), v[1]); },
         {normal({17, 31}, 202), normal({10}, 203)});
}

TEST_CASE("cuda parity: reductions, gather, concat", "[cuda]") {
  const Tensor x = normal({5, 33, 129}, 300);
  parity("sum all", [](const V& v) { return sum(v[0]); }, {x}, true, {1e-3, 1e-4});
  parity("sum all large", [](const V& v) { return sum(v[0]); }, {normal({(1 << 22) + 5}, 301)}, true, {1e-1, 1e-4});
  parity("sum dim 0", [](const V& v) { return sum(v[0], {0}); }, {x});
  parity("sum dim 1", [](const V& v) { return sum(v[0], {1}); }, {x});
  // Few columns over many rows: the chunked two-pass column sum (a bias gradient's shape).
  parity("sum dim 0 tall", [](const V& v) { return sum(v[0], {0}); }, {normal({20011, 37}, 309)}, true, {1e-4, 1e-4});
  parity("sum dim 2 keepdim", [](const V& v) { return sum(v[0], {2}, true); }, {x});
  parity("mean dims", [](const V& v) { return mean(v[0], {0, 2}); }, {x});
  parity("max dim 2", [](const V& v) { return max(v[0], 2); }, {x});
  parity("max dim 1", [](const V& v) { return max(v[0], 1); }, {x});
  parity("max long row", [](const V& v) { return max(v[0], 0); }, {normal({100003}, 302)});
  parity("argmax", [](const V& v) { return argmax(v[0], 1); }, {x}, false);
  const Tensor index = from_vector<int64_t>({0, 4, 4, 1, 2, 3, 0, 0, 1, 4, 2, 2}, {3, 4});
  parity("gather", [index](const V& v) { return gather(v[0], 1, index.to(v[0].device())); }, {normal({3, 5}, 303)});
  parity("concat", [](const V& v) { return concat({v[0], v[1], v[2]}, 1); },
         {normal({7, 3, 5}, 304), normal({7, 1, 5}, 305), normal({7, 129, 5}, 306)});
  parity("split + glu", [](const V& v) {
    auto parts = split(v[0], {2, 6, 4}, 1);
    return concat({glu(parts[0], 1), glu(parts[1], 1), glu(parts[2], 1)}, 1);
  }, {normal({9, 12, 7}, 307)});
  parity("glu last dim", [](const V& v) { return glu(v[0]); }, {normal({33, 258}, 308)});
}

TEST_CASE("cuda parity: matmul", "[cuda]") {
  const Tolerance tol{1e-4, 1e-4};
  parity("matmul 1x1x1", [](const V& v) { return matmul(v[0], v[1]); }, {normal({1, 1}, 400), normal({1, 1}, 401)},
         true, tol);
  parity("matmul odd", [](const V& v) { return matmul(v[0], v[1]); }, {normal({17, 33}, 402), normal({33, 129}, 403)},
         true, tol);
  parity("matmul batched broadcast", [](const V& v) { return matmul(v[0], v[1]); },
         {normal({3, 5, 33, 17}, 404), normal({17, 7}, 405)}, true, tol);
  parity("matmul transposed views", [](const V& v) { return matmul(v[0].transpose(0, 1), v[1].transpose(0, 1)); },
         {normal({33, 17}, 406), normal({65, 33}, 407)}, true, tol);
  parity("matmul 512", [](const V& v) { return matmul(v[0], v[1]); }, {normal({512, 512}, 408), normal({512, 512}, 409)},
         true, {1e-3, 1e-4});
  parity("matmul F64", [](const V& v) { return matmul(v[0], v[1]); },
         {normal({33, 17}, 410, DType::F64), normal({17, 5}, 411, DType::F64)}, true, {1e-12, 1e-12});
}

TEST_CASE("cuda parity: softmax family, cross-entropy, layer norm", "[cuda]") {
  // Rows of at most 1024 elements that are a multiple of 4 take the register-resident kernels.
  // {3, 2052}: rows longer than 1024 and a multiple of 4, the block kernels with 16-byte loads.
  for (const Shape& s : std::vector<Shape>{{1, 1}, {7, 33}, {3, 1025}, {129, 10}, {2, 5, 7}, {5, 1024}, {33, 132},
                                           {3, 4}, {3, 2052}}) {
    const Tensor x = normal(s, 500 + uint64_t(s.numel()));
    parity("softmax last " + s.str(), [](const V& v) { return softmax(v[0], -1); }, {x});
    parity("softmax first " + s.str(), [](const V& v) { return softmax(v[0], 0); }, {x});
    parity("log_softmax last " + s.str(), [](const V& v) { return log_softmax(v[0], -1); }, {x});
    parity("log_softmax first " + s.str(), [](const V& v) { return log_softmax(v[0], 0); }, {x});
  }
  const Tensor targets = from_vector<int64_t>({0, 6, 3, 3, 1, 5, 2}, {7});
  parity("cross_entropy", [targets](const V& v) { return cross_entropy(v[0], targets.to(v[0].device())); },
         {normal({7, 7}, 510)});
  parity("cross_entropy none", [targets](const V& v) {
    return cross_entropy(v[0], targets.to(v[0].device()), Reduction::None);
  }, {normal({7, 7}, 511)});
  // Wide rows: the block kernels with 16-byte loads (the (7, 7) cases take the warp, scalar ones).
  parity("cross_entropy wide", [targets](const V& v) { return cross_entropy(v[0], targets.to(v[0].device())); },
         {normal({7, 2052}, 512)});
  // F64 takes its own instantiations (2-element packs, 16 slots per lane in the register kernels).
  const Tolerance f64{1e-10, 1e-10};
  for (const Shape& s : std::vector<Shape>{{5, 1024}, {3, 1026}}) {
    const Tensor x = normal(s, 530 + uint64_t(s.numel()), DType::F64);
    parity("softmax F64 " + s.str(), [](const V& v) { return softmax(v[0], -1); }, {x}, true, f64);
    parity("log_softmax F64 " + s.str(), [](const V& v) { return log_softmax(v[0], -1); }, {x}, true, f64);
    const Shape norm{s.back()};
    parity("layer_norm F64 " + s.str(), [norm](const V& v) { return layer_norm(v[0], norm, v[1], v[2]); },
           {x, normal(norm, 531, DType::F64), normal(norm, 532, DType::F64)}, true, f64);
  }
  parity("cross_entropy F64", [targets](const V& v) { return cross_entropy(v[0], targets.to(v[0].device())); },
         {normal({7, 7}, 533, DType::F64)}, true, f64);
  for (const Shape& s : std::vector<Shape>{{1, 1}, {7, 33}, {3, 1025}, {600, 65}, {2, 4, 129}, {9, 1024}, {17, 256},
                                           {5, 4}, {3, 2052}}) {
    const Shape norm{s.back()};
    parity("layer_norm " + s.str(), [norm](const V& v) { return layer_norm(v[0], norm, v[1], v[2]); },
           {normal(s, 520), normal(norm, 521), normal(norm, 522)}, true, {1e-4, 1e-4});
    parity("layer_norm no affine " + s.str(), [norm](const V& v) { return layer_norm(v[0], norm, Tensor(), Tensor()); },
           {normal(s, 523)}, true, {1e-4, 1e-4});
  }
}

TEST_CASE("cuda parity: random fills and dropout draw the same numbers", "[cuda]") {
  for (int64_t n : {1, 7, 129, 1000003}) {
    Generator g1(42), g2(42);
    const Tensor a = rand({n}, DType::F32, Device::cpu(), &g1);
    const Tensor b = rand({n}, DType::F32, Device::cuda(0), &g2);
    CHECK(compare("rand", a, b.to(Device::cpu()), {0, 0}).empty());
    const Tensor c = randn({n}, DType::F32, Device::cpu(), &g1);
    const Tensor d = randn({n}, DType::F32, Device::cuda(0), &g2);
    CHECK(compare("randn", c, d.to(Device::cpu()), {1e-5, 1e-5}).empty());
    // A range other than (0, 1), where lo + (hi - lo) * u rounds the same only if neither side fuses it.
    for (DType t : {DType::F32, DType::F64}) {
      const Tensor e = rand({n}, t, Device::cpu(), &g1, -0.3, 0.7);
      const Tensor f = rand({n}, t, Device::cuda(0), &g2, -0.3, 0.7);
      CHECK(compare("rand range", e, f.to(Device::cpu()), {0, 0}).empty());
    }
  }
  parity("dropout", [](const V& v) {
    Generator g(7);
    return dropout(v[0], 0.3, true, &g);
  }, {normal({33, 129}, 600)});
}

TEST_CASE("cuda parity: copies, conversions, fills", "[cuda]") {
  parity("clone of a permuted view", [](const V& v) { return v[0].permute({2, 0, 1}).contiguous(); },
         {normal({5, 33, 7}, 700)});
  parity("copy_ into a strided view", [](const V& v) {
    Tensor out = zeros({9, 8}, v[0].dtype(), v[0].device());
    out.slice(1, 1, 8, 2).copy_(v[0]);
    return out;
  }, {normal({9, 4}, 701)}, false);
  const Tensor x = normal({1001}, 702);
  // A float outside the integer type's range saturates on both backends (the CPU's convert does what CUDA's
  // conversion instructions do; unverified on a GPU so far), so U8 gets inputs in [0, 255] once scaled by 50.
  const Tensor x_unsigned = uniform({1001}, 0.0, 5.1, 703);
  for (DType t : {DType::F64, DType::BF16, DType::F16, DType::I64, DType::I32, DType::U8}) {
    const Tensor& in = t == DType::U8 ? x_unsigned : x;
    parity(std::string("to ") + dtype_name(t), [t](const V& v) { return mul(v[0], 50.0).to(t); }, {in}, false,
           {0, 0});
    parity(std::string("from ") + dtype_name(t), [t](const V& v) { return mul(v[0], 50.0).to(t).to(DType::F32); },
           {in}, false, {0, 0});
  }
  // Out of range on both sides, and NaN: saturated to [0, 255] and 0 alike.
  parity("to U8 out of range", [](const V& v) { return mul(v[0], 50.0).to(DType::U8); },
         {uniform({1001}, -3.0, 8.0, 704)}, false, {0, 0});
  parity("fill", [](const V& v) { return full({1003}, -2.5, DType::F32, v[0].device()); }, {x}, false, {0, 0});
}

TEST_CASE("cuda: a steady-state step allocates nothing new from the driver", "[cuda]") {
  // A small MLP step (forward, backward, manual update) repeated: after the first steps have sized the
  // pool, further steps are served entirely from it.
  const Device gpu = Device::cuda(0);
  Tensor w1 = normal({64, 128}, 800).to(gpu).set_requires_grad(true);
  Tensor w2 = normal({128, 10}, 801).to(gpu).set_requires_grad(true);
  const Tensor x = normal({32, 64}, 802).to(gpu);
  const Tensor y = from_vector<int64_t>(std::vector<int64_t>(32, 3), {32}).to(gpu);
  auto step = [&] {
    Tensor loss = cross_entropy(matmul(relu(matmul(x, w1)), w2), y);
    loss.backward();
    NoGradGuard no_grad;
    w1.copy_(sub(w1, mul(w1.grad(), 0.01)));
    w2.copy_(sub(w2, mul(w2.grad(), 0.01)));
    w1.zero_grad();
    w2.zero_grad();
  };
  for (int i = 0; i < 3; ++i) step();
  cuda_rt::synchronize(0);
  const uint64_t before = allocator_for(gpu).stats().system_allocations;
  for (int i = 0; i < 20; ++i) step();
  cuda_rt::synchronize(0);
  CHECK(allocator_for(gpu).stats().system_allocations == before);
}

// [oom]: asks the driver for more memory than the GPU has, which compute-sanitizer reports as an API error.
TEST_CASE("cuda: errors name the device and the problem", "[cuda][oom]") {
  REQUIRE_THROWS_WITH(add(ones({3}), ones({3}, DType::F32, Device::cuda(0))), Catch::Contains("device mismatch"));
  REQUIRE_THROWS_WITH(empty({int64_t(1) << 50}, DType::F32, Device::cuda(0)), Catch::Contains("out of GPU memory"));
  REQUIRE_THROWS_WITH(ones({2}).to(Device::cuda(1 << 10)), Catch::Contains("CUDA device(s) are visible"));
}
