// CPU-vs-CUDA parity of convolution (cuDNN), batch norm and pooling, in the style of test_cuda_parity.cpp:
// each case runs the op and its backward on the CPU and on cuda:0 from the same random inputs, and compares
// every output and gradient element by |cuda - cpu| <= atol + rtol * |cpu|, printing the first mismatches.
// New blocks are poisoned with NaN while a case runs, so an element a kernel forgets to write fails.
//
// Convolution tolerances follow the length K of the sums behind each result: F32 rounding of a K-term sum
// grows like eps * sqrt(K) times the result's size, and cuDNN's algorithms (implicit GEMM, Winograd, FFT)
// sum in other orders than the CPU's im2col GEMM. So atol = c * sqrt(K) * rms(cpu result) with c = 2e-6
// (~17 F32 ulps) and rtol = 1e-4; F64: c = 1e-14, rtol = 1e-10. A wrong index or a missing term errs by
// O(rms), far above these. Batch norm accumulates in double on both sides (tight tolerances); pooling does
// the same additions in the same order on both sides, and is held to the default tolerance (1e-5 + 1e-4 |ref|).
// Every case is tagged [cuda]: without a GPU the runner skips and counts them.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cuda/runtime.h"
#include "engine/ops.h"
#include "kernels/winograd.h"
#include "tests/compare.h"

using namespace stgs;

namespace {

using testing::Tolerance;
using testing::compare;

double rms(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  double s = 0;
  for (double e : v) s += e * e;
  return v.empty() ? 0.0 : std::sqrt(s / double(v.size()));
}

// The tolerance of a result made of K-term sums (see the file comment).
Tolerance sum_tolerance(const Tensor& ref, int64_t K) {
  const bool f32 = ref.dtype() == DType::F32;
  const double scale = std::sqrt(double(K > 0 ? K : 1)) * rms(ref);
  return f32 ? Tolerance{2e-6 * scale, 1e-4} : Tolerance{1e-14 * scale, 1e-10};
}

Tensor normal(const Shape& s, uint64_t seed, DType dt = DType::F32, double mean = 0, double std = 1) {
  Generator g(seed);
  return randn(s, dt, Device::cpu(), &g, mean, std);
}

// The same values as a leaf on the CPU and on cuda:0.
struct Twin {
  Tensor cpu, gpu;
};
Twin twin(const Tensor& t, bool requires_grad = true) {
  Tensor c = t.detach().clone(), g = t.detach().to(Device::cuda(0));
  if (requires_grad) {
    c.set_requires_grad(true);
    g.set_requires_grad(true);
  }
  return {c, g};
}

// Poisons new device blocks for the duration of a case.
struct Poison {
  Poison() { set_poison_allocations(true); }
  ~Poison() { set_poison_allocations(false); }
};

// ---- convolution -------------------------------------------------------------------------------------

struct ConvCase {
  std::string name;
  Shape x, w;  // x: (N, C_in, H, W) or (N, C_in, L) for conv1d; w: (C_out, C_in / groups, kH, kW) or (.., k)
  bool bias = false;
  Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  DType dtype = DType::F32;
};

Tensor run_conv(const ConvCase& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  if (c.x.size() == 3) return conv1d(x, w, b, c.stride[1], c.padding[1], c.dilation[1], c.groups);
  return conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
}

// Forward, and the gradients of sum(y * R) for x, w and b, on both devices. `atol_scale` widens the
// atol (TF32 cases); returns the report (empty when everything agrees).
std::string conv_report(const ConvCase& c, uint64_t seed, double atol_scale = 1) {
  const int64_t fan_in = c.w.numel() / c.w[0];  // (C_in / groups) kH kW: the forward sum length
  const Twin x = twin(normal(c.x, seed, c.dtype));
  const Twin w = twin(mul(normal(c.w, seed + 1, c.dtype), 1.0 / std::sqrt(double(fan_in))));  // y ~ O(1)
  const Twin b = c.bias ? twin(normal({c.w[0]}, seed + 2, c.dtype)) : Twin{};
  const Tensor y_cpu = run_conv(c, x.cpu, w.cpu, b.cpu), y_gpu = run_conv(c, x.gpu, w.gpu, b.gpu);
  const Tensor R = normal(y_cpu.shape(), seed + 3, c.dtype);
  sum(mul(y_cpu, R)).backward();
  sum(mul(y_gpu, R.to(Device::cuda(0)))).backward();

  const int64_t C_out = c.w[0], out_positions = y_cpu.numel() / C_out;  // N H_out W_out: dw and db sum lengths
  // dx sums over the output channels of its group and the kernel taps that reach it (at most kH kW).
  const int64_t dx_terms = C_out / c.groups * (c.w.numel() / (c.w[0] * c.w[1]));
  auto tol = [&](const Tensor& ref, int64_t K) {
    Tolerance t = sum_tolerance(ref, K);
    t.atol *= atol_scale;
    return t;
  };
  std::string report = compare(c.name + " y", y_cpu, y_gpu.to(Device::cpu()), tol(y_cpu, fan_in));
  report += compare(c.name + " dx", x.cpu.grad(), x.gpu.grad().to(Device::cpu()), tol(x.cpu.grad(), dx_terms));
  report += compare(c.name + " dw", w.cpu.grad(), w.gpu.grad().to(Device::cpu()), tol(w.cpu.grad(), out_positions));
  if (c.bias)
    report += compare(c.name + " db", b.cpu.grad(), b.gpu.grad().to(Device::cpu()), tol(b.cpu.grad(), out_positions));
  return report;
}

// Sends the CPU's F32 convolutions through im2col (the reference cuDNN is held to) for its lifetime: the
// Winograd kernels round differently, up to the edge of these tolerances with 4x4 tiles, and are tested
// against im2col in tests/test_conv.cpp.
struct Im2colReference {
  Im2colReference() { kernels::cpu::set_winograd_enabled(false); }
  ~Im2colReference() { kernels::cpu::set_winograd_enabled(was); }
  bool was = kernels::cpu::winograd_enabled();
};

void conv_parity(const ConvCase& c, uint64_t seed) {
  INFO(c.name);
  const Poison poison;
  const Im2colReference reference;
  const std::string report = conv_report(c, seed);
  INFO(report);
  CHECK(report.empty());
}

// Restores the cuDNN switches on scope exit.
struct MathGuard {
  bool tf32 = cuda_rt::allow_tf32(), det = cuda_rt::deterministic(), bench = cuda_rt::conv_benchmark();
  ~MathGuard() {
    cuda_rt::set_allow_tf32(tf32);
    cuda_rt::set_deterministic(det);
    cuda_rt::set_conv_benchmark(bench);
  }
};

// ---- batch norm --------------------------------------------------------------------------------------

// Training (with running stats) or eval batch norm on both devices: y, the updated running stats, and the
// gradients of sum(y * R) for x, weight and bias.
void bn_parity(const std::string& name, const Shape& shape, bool training, bool affine, DType dt, uint64_t seed) {
  INFO(name);
  const Poison poison;
  const int64_t C = shape[1];
  const Twin x = twin(normal(shape, seed, dt, 3.0, 2.0));  // mean 3, std 2: exercises the shifted sums
  const Twin w = affine ? twin(normal({C}, seed + 1, dt, 1.0, 0.5)) : Twin{};
  const Twin b = affine ? twin(normal({C}, seed + 2, dt)) : Twin{};
  Generator g(seed + 3);
  const Twin rm = twin(normal({C}, seed + 4, dt), false);
  const Twin rv = twin(rand({C}, dt, Device::cpu(), &g, 0.5, 2.0), false);
  const Tensor y_cpu = batch_norm(x.cpu, w.cpu, b.cpu, rm.cpu, rv.cpu, training, 0.1, 1e-5);
  const Tensor y_gpu = batch_norm(x.gpu, w.gpu, b.gpu, rm.gpu, rv.gpu, training, 0.1, 1e-5);
  const Tensor R = normal(shape, seed + 5, dt);
  sum(mul(y_cpu, R)).backward();
  sum(mul(y_gpu, R.to(Device::cuda(0)))).backward();

  const Tolerance tol = dt == DType::F32 ? Tolerance{1e-5, 1e-5} : Tolerance{1e-12, 1e-12};
  std::string report = compare(name + " y", y_cpu, y_gpu.to(Device::cpu()), tol);
  report += compare(name + " running_mean", rm.cpu, rm.gpu.to(Device::cpu()), tol);
  report += compare(name + " running_var", rv.cpu, rv.gpu.to(Device::cpu()), tol);
  report += compare(name + " dx", x.cpu.grad(), x.gpu.grad().to(Device::cpu()), tol);
  if (affine) {
    report += compare(name + " dweight", w.cpu.grad(), w.gpu.grad().to(Device::cpu()), tol);
    report += compare(name + " dbias", b.cpu.grad(), b.gpu.grad().to(Device::cpu()), tol);
  }
  INFO(report);
  CHECK(report.empty());
}

// ---- pooling -----------------------------------------------------------------------------------------

// A pool and its backward (gradient of sum(y * R)) on both devices, at the default tolerance.
void pool_parity(const std::string& name, const std::function<Tensor(const Tensor&)>& pool, const Tensor& input,
                 uint64_t seed) {
  INFO(name);
  const Poison poison;
  const Twin x = twin(input);
  const Tensor y_cpu = pool(x.cpu), y_gpu = pool(x.gpu);
  const Tensor R = normal(y_cpu.shape(), seed, input.dtype());
  sum(mul(y_cpu, R)).backward();
  sum(mul(y_gpu, R.to(Device::cuda(0)))).backward();
  std::string report = compare(name + " y", y_cpu, y_gpu.to(Device::cpu()), {});
  report += compare(name + " dx", x.cpu.grad(), x.gpu.grad().to(Device::cpu()), {});
  INFO(report);
  CHECK(report.empty());
}

}  // namespace

TEST_CASE("cuda conv: odd geometries (stride, padding, dilation, groups, bias)", "[cuda]") {
  const MathGuard guard;
  cuda_rt::set_allow_tf32(false);
  const std::vector<ConvCase> cases = {
      {"1x1 everything", {1, 1, 1, 1}, {1, 1, 1, 1}, true},
      {"3x3 plain", {2, 3, 9, 11}, {5, 3, 3, 3}},
      {"3x2 stride (2,1) pad (1,0) dil (1,2) bias", {2, 3, 9, 11}, {5, 3, 3, 2}, true, {2, 1}, {1, 0}, {1, 2}},
      {"groups 3 stride 2 pad 1 bias", {3, 6, 10, 7}, {9, 2, 3, 3}, true, {2, 2}, {1, 1}, {1, 1}, 3},
      {"depthwise 5x5 pad 4 dil 2", {2, 8, 13, 13}, {8, 1, 5, 5}, false, {1, 1}, {4, 4}, {2, 2}, 8},
      {"pointwise 1x1", {2, 7, 5, 3}, {4, 7, 1, 1}, true},
      {"stride above kernel", {1, 3, 17, 17}, {4, 3, 2, 2}, false, {3, 3}},
      {"kernel as large as the padded input", {2, 2, 5, 4}, {3, 2, 7, 6}, true, {1, 1}, {1, 1}},
      {"129 channels, odd sizes", {3, 129, 7, 5}, {33, 129, 3, 3}, false, {1, 2}, {1, 1}},
      {"conv1d k=1", {3, 16, 37}, {8, 16, 1}, true},
      {"conv1d k=3 s2 p1 dil 2 groups 2", {2, 6, 41}, {4, 3, 3}, true, {1, 2}, {0, 1}, {1, 2}, 2},
  };
  uint64_t seed = 1000;
  for (const ConvCase& c : cases) conv_parity(c, seed += 10);
}

TEST_CASE("cuda conv: every ResNet-34 layer shape (batch 2, 224x224) and the audio stem", "[cuda]") {
  const MathGuard guard;
  cuda_rt::set_allow_tf32(false);
  const std::vector<ConvCase> cases = {
      {"stem 7x7 s2 p3 3->64 @224", {2, 3, 224, 224}, {64, 3, 7, 7}, false, {2, 2}, {3, 3}},
      {"layer1 3x3 64->64 @56", {2, 64, 56, 56}, {64, 64, 3, 3}, false, {1, 1}, {1, 1}},
      {"layer2 3x3 s2 64->128 @56", {2, 64, 56, 56}, {128, 64, 3, 3}, false, {2, 2}, {1, 1}},
      {"layer2 3x3 128->128 @28", {2, 128, 28, 28}, {128, 128, 3, 3}, false, {1, 1}, {1, 1}},
      {"layer2 downsample 1x1 s2 64->128", {2, 64, 56, 56}, {128, 64, 1, 1}, false, {2, 2}},
      {"layer3 3x3 s2 128->256 @28", {2, 128, 28, 28}, {256, 128, 3, 3}, false, {2, 2}, {1, 1}},
      {"layer3 3x3 256->256 @14", {2, 256, 14, 14}, {256, 256, 3, 3}, false, {1, 1}, {1, 1}},
      {"layer3 downsample 1x1 s2 128->256", {2, 128, 28, 28}, {256, 128, 1, 1}, false, {2, 2}},
      {"layer4 3x3 s2 256->512 @14", {2, 256, 14, 14}, {512, 256, 3, 3}, false, {2, 2}, {1, 1}},
      {"layer4 3x3 512->512 @7", {2, 512, 7, 7}, {512, 512, 3, 3}, false, {1, 1}, {1, 1}},
      {"layer4 downsample 1x1 s2 256->512", {2, 256, 14, 14}, {512, 256, 1, 1}, false, {2, 2}},
      {"audio stem 7x7 s2 p2 1->64 @300x257", {2, 1, 300, 257}, {64, 1, 7, 7}, false, {2, 2}, {2, 2}},
  };
  uint64_t seed = 2000;
  for (const ConvCase& c : cases) conv_parity(c, seed += 10);
}

TEST_CASE("cuda conv: timed algorithm choice (cudnn benchmark mode) keeps CPU parity", "[cuda][find]") {
  // cudnnFind*Ex runs every candidate on the call's buffers; the pick must still be an FP32 (FMA) one and
  // the results the CPU's. Geometries not seen before in this process (batch 3), so the timing runs here.
  const MathGuard guard;
  cuda_rt::set_allow_tf32(false);
  cuda_rt::set_conv_benchmark(true);
  const std::vector<ConvCase> cases = {
      {"find: layer1 3x3 64->64 @56", {3, 64, 56, 56}, {64, 64, 3, 3}, false, {1, 1}, {1, 1}},
      {"find: audio layer4 3x3 512->512 @10x8", {3, 512, 10, 8}, {512, 512, 3, 3}, false, {1, 1}, {1, 1}},
      {"find: groups 3 stride 2 bias", {3, 6, 10, 7}, {9, 2, 3, 3}, true, {2, 2}, {1, 1}, {1, 1}, 3},
      {"find: F64 3x3 pad 1 bias", {3, 5, 9, 8}, {7, 5, 3, 3}, true, {1, 1}, {1, 1}, {1, 1}, 1, DType::F64},
  };
  uint64_t seed = 2500;
  for (const ConvCase& c : cases) conv_parity(c, seed += 10);
}

TEST_CASE("cuda conv: F64", "[cuda]") {
  const std::vector<ConvCase> cases = {
      {"F64 3x3 pad 1 bias", {2, 5, 9, 8}, {7, 5, 3, 3}, true, {1, 1}, {1, 1}, {1, 1}, 1, DType::F64},
      {"F64 groups 2 stride 2 dil 2", {2, 4, 13, 11}, {6, 2, 3, 3}, true, {2, 2}, {2, 1}, {2, 2}, 2, DType::F64},
      {"F64 conv1d k=1", {3, 16, 37}, {8, 16, 1}, false, {1, 1}, {0, 0}, {1, 1}, 1, DType::F64},
  };
  uint64_t seed = 3000;
  for (const ConvCase& c : cases) conv_parity(c, seed += 10);
}

TEST_CASE("cuda conv: deterministic mode repeats bitwise; TF32 mode stays close", "[cuda]") {
  const MathGuard guard;
  cuda_rt::set_allow_tf32(false);
  cuda_rt::set_deterministic(true);
  const Device gpu = Device::cuda(0);
  const Tensor x = normal({4, 64, 28, 28}, 4000).to(gpu);
  const Tensor w = mul(normal({64, 64, 3, 3}, 4001), 1.0 / 24).to(gpu);
  const Tensor R = normal({4, 64, 28, 28}, 4002).to(gpu);
  auto grads = [&] {
    Tensor xs = x.detach().set_requires_grad(true), ws = w.detach().set_requires_grad(true);
    sum(mul(conv2d(xs, ws, Tensor(), {1, 1}, {1, 1}), R)).backward();
    return std::vector<std::vector<float>>{xs.grad().to_vector<float>(), ws.grad().to_vector<float>()};
  };
  const auto first = grads(), second = grads();
  CHECK(first[0] == second[0]);
  CHECK(first[1] == second[1]);

  // TF32 products keep 10 mantissa bits: errors ~1e-3 of the result's size, so only closeness is checked.
  cuda_rt::set_deterministic(false);
  cuda_rt::set_allow_tf32(true);
  const ConvCase c{"tf32 3x3 64->64 @28", {2, 64, 28, 28}, {64, 64, 3, 3}, true, {1, 1}, {1, 1}};
  INFO(c.name);
  const Poison poison;
  const Im2colReference reference;
  const std::string report = conv_report(c, 4010, 1000);  // atol ~ 2e-3 sqrt(K) rms
  INFO(report);
  CHECK(report.empty());
}

TEST_CASE("cuda batch norm: training and eval, 1-D and 2-D, running stats", "[cuda]") {
  uint64_t seed = 5000;
  for (const Shape& s : std::vector<Shape>{{7, 5}, {4, 3, 33}, {3, 129, 5, 7}, {2, 64, 56, 56}, {64, 512, 7, 7}}) {
    for (bool affine : {true, false}) {
      const std::string sh = std::string(" ").append(s.str()).append(affine ? " affine" : "");
      bn_parity("bn train" + sh, s, true, affine, DType::F32, seed += 10);
      bn_parity("bn eval" + sh, s, false, affine, DType::F32, seed += 10);
    }
  }
  bn_parity("bn train F64", {5, 6, 9, 7}, true, true, DType::F64, seed += 10);
  bn_parity("bn eval F64", {5, 6, 9, 7}, false, true, DType::F64, seed += 10);
  bn_parity("bn train F64 1-D", {9, 4}, true, true, DType::F64, seed += 10);
}

TEST_CASE("cuda pooling: max/avg window pools and adaptive pools, forward and backward", "[cuda]") {
  uint64_t seed = 6000;
  for (DType dt : {DType::F32, DType::F64}) {
    const std::string t = dt == DType::F32 ? " F32" : " F64";
    const Tensor odd = normal({2, 3, 9, 11}, seed++, dt);
    // Half the values are exactly 0: many windows tie, so the first-maximum rule is exercised.
    const Tensor ties = relu(normal({2, 3, 9, 11}, seed++, dt));
    const Tensor stem = normal({2, 64, 112, 112}, seed++, dt);
    pool_parity("max 3x3 s2 p1 (ResNet stem)" + t,
                [](const Tensor& x) { return max_pool2d(x, {3, 3}, {2, 2}, {1, 1}); }, stem, seed++);
    pool_parity("max 3x2 s(2,1) p(1,1)" + t, [](const Tensor& x) { return max_pool2d(x, {3, 2}, {2, 1}, {1, 1}); }, odd,
                seed++);
    pool_parity("max 2x2 s2 odd sizes" + t, [](const Tensor& x) { return max_pool2d(x, {2, 2}, {2, 2}); }, odd, seed++);
    pool_parity("max 3x3 s1 ties" + t, [](const Tensor& x) { return max_pool2d(x, {3, 3}, {1, 1}, {1, 1}); }, ties,
                seed++);
    pool_parity("avg 3x3 s2 p1 incl pad" + t,
                [](const Tensor& x) { return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, true); }, odd, seed++);
    pool_parity("avg 3x3 s2 p1 excl pad" + t,
                [](const Tensor& x) { return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, false); }, odd, seed++);
    pool_parity("avg 2x3 s1 overlapping" + t, [](const Tensor& x) { return avg_pool2d(x, {2, 3}, {1, 1}); }, odd,
                seed++);
    const Tensor head = normal({2, 512, 7, 7}, seed++, dt);
    pool_parity("adaptive avg -> 1x1 (ResNet head)" + t,
                [](const Tensor& x) { return adaptive_avg_pool2d(x, {1, 1}); }, head, seed++);
    pool_parity("adaptive avg -> 4x5 overlapping bins" + t,
                [](const Tensor& x) { return adaptive_avg_pool2d(x, {4, 5}); }, odd, seed++);
    pool_parity("adaptive avg -> larger than input" + t,
                [](const Tensor& x) { return adaptive_avg_pool2d(x, {13, 17}); }, odd, seed++);
    pool_parity("adaptive max -> 4x5" + t, [](const Tensor& x) { return adaptive_max_pool2d(x, {4, 5}); }, odd, seed++);
    pool_parity("adaptive max -> larger than input, ties" + t,
                [](const Tensor& x) { return adaptive_max_pool2d(x, {13, 17}); }, ties, seed++);
    const Tensor seq = normal({2, 4, 37}, seed++, dt);
    pool_parity("adaptive avg 1d -> 5" + t, [](const Tensor& x) { return adaptive_avg_pool1d(x, 5); }, seq, seed++);
    pool_parity("adaptive avg 1d -> 1" + t, [](const Tensor& x) { return adaptive_avg_pool1d(x, 1); }, seq, seed++);
    pool_parity("adaptive max 1d -> 5" + t, [](const Tensor& x) { return adaptive_max_pool1d(x, 5); }, seq, seed++);
    pool_parity("adaptive max 1d -> 40" + t, [](const Tensor& x) { return adaptive_max_pool1d(x, 40); }, seq, seed++);
  }
}
