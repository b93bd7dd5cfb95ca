// CPU-vs-CUDA parity of the optimizers and of clip_grad_norm: the same parameters (odd sizes: 0, 1, 33,
// 1000003, 5500001 and 40 small tensors, so that one step takes several fused launches and a tensor
// straddles two of them) stepped on the CPU and on cuda:0 with the same gradients, in F32 and F64, then
// parameters and optimizer state compared element by element.
//
// Tolerance, not bit equality: the CUDA kernels round every operation of the CPU formula separately, but
// the CPU build (g++ -O3 -march=native) contracts some a*b + c into FMAs, and the clipping norm sums in a
// different order. Accepted: |cuda - cpu| <= rtol * |cpu| + atol with rtol = atol = 1e-6 (F32) and 1e-12
// (F64). Every case is tagged [cuda]: without a GPU the runner skips and counts them.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip.h"
#include "engine/optim/sgd.h"

using namespace stgs;

namespace {

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<ParamGroup>)>;

double rtol_for(DType dtype) { return dtype == DType::F32 ? 1e-6 : 1e-12; }

// Empty when every element matches within rtol/atol; else the first mismatches and their count.
std::string compare(const std::string& what, const Tensor& cpu, const Tensor& other, double tol) {
  std::ostringstream out;
  if (cpu.shape() != other.shape() || cpu.dtype() != other.dtype()) {
    out << what << ": cpu " << cpu.str() << " vs " << other.str() << "\n";
    return out.str();
  }
  const std::vector<double> a = cpu.to_vector<double>(), b = other.to_vector<double>();
  size_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool ok = a[i] == b[i] || std::abs(a[i] - b[i]) <= tol * std::abs(a[i]) + tol;
    if (!ok && bad++ < 5) out << what << "[" << i << "]: cpu " << a[i] << ", other " << b[i] << "\n";
  }
  if (bad) out << what << ": " << bad << " of " << a.size() << " elements differ\n";
  return out.str();
}

// A cheap deterministic value in [-1, 1) for element i of stream `salt` (multiplicative hashing).
double wave(uint64_t i, uint64_t salt) {
  const uint64_t h = ((i + 1) * 0x9E3779B97F4A7C15ull) ^ ((salt + 1) * 0xC2B2AE3D27D4EB4Full);
  return double((h * 0x9E3779B97F4A7C15ull) >> 40) / double(1ull << 23) - 1.0;
}

std::vector<int64_t> sizes() {
  std::vector<int64_t> s = {1, 33, 1000003, 0, 5500001};
  for (int j = 0; j < 40; ++j) s.push_back(7 + 3 * j);
  return s;
}

// The same starting values on the CPU and on `device`.
struct Params {
  std::vector<Tensor> cpu, dev;
};

Params make_params(DType dtype, Device device) {
  Params out;
  const std::vector<int64_t> s = sizes();
  for (size_t j = 0; j < s.size(); ++j) {
    std::vector<double> v(size_t(s[j]));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = wave(i, j) * (1 + 0.1 * double(j % 7));
    Tensor c = from_vector(v, Shape{s[j]}).to(dtype);
    out.cpu.push_back(c.detach().clone().set_requires_grad(true));
    out.dev.push_back(c.detach().to(device).set_requires_grad(true));
  }
  return out;
}

// Gradients of step k on both copies; parameter 1 gets none on step 1 (so its step count and momentum
// buffer lag behind the others').
void feed_grads(const Params& p, DType dtype, int k) {
  for (size_t j = 0; j < p.cpu.size(); ++j) {
    p.cpu[j].zero_grad();
    p.dev[j].zero_grad();
    if (k == 1 && j == 1) continue;
    std::vector<double> g(size_t(p.cpu[j].numel()));
    for (size_t i = 0; i < g.size(); ++i) g[i] = 1.5 * wave(i, 1000 * uint64_t(k) + j);
    Tensor c = from_vector(g, p.cpu[j].shape()).to(dtype);
    p.cpu[j].set_grad(c);
    p.dev[j].set_grad(c.clone().to(p.dev[j].device()));  // its own copy even when both are on the CPU
  }
}

// Two groups: the first three parameters with their own lr and weight decay, the rest on the defaults.
std::vector<ParamGroup> groups_of(const std::vector<Tensor>& params) {
  std::vector<ParamGroup> g(2);
  g[0].params.assign(params.begin(), params.begin() + 3);
  g[0].lr = 0.05;
  g[0].weight_decay = 0.02;
  g[1].params.assign(params.begin() + 3, params.end());
  return g;
}

// Steps one optimizer per device `steps` times on the same gradients, then compares parameters and state.
void check_parity(const std::string& name, const Factory& make, DType dtype, Device device, int steps = 4) {
  INFO(name << " " << dtype_name(dtype));
  const Params p = make_params(dtype, device);
  std::unique_ptr<Optimizer> on_cpu = make(groups_of(p.cpu)), on_dev = make(groups_of(p.dev));
  for (int k = 1; k <= steps; ++k) {
    feed_grads(p, dtype, k);
    on_cpu->step();
    on_dev->step();
  }
  const double tol = rtol_for(dtype);
  std::string diff;
  for (size_t j = 0; j < p.cpu.size(); ++j) diff += compare("param " + std::to_string(j), p.cpu[j], p.dev[j], tol);
  const StateDict a = on_cpu->state_dict(), b = on_dev->state_dict();
  CHECK(a.size() == b.size());
  for (const auto& [key, t] : a) {
    const Tensor* other = b.find(key);
    if (other == nullptr) {
      diff += "missing " + key + "\n";
      continue;
    }
    const bool buffer = key.rfind("state.", 0) == 0 && key.find(".step") == std::string::npos;
    if (buffer) CHECK(other->device() == device);  // state lives on the parameter's device
    diff += compare(key, t, *other, tol);
  }
  INFO(diff);
  CHECK(diff.empty());
}

const std::vector<std::pair<std::string, Factory>>& sgd_cases() {
  static const std::vector<std::pair<std::string, Factory>> cases = {
      {"SGD plain",
       [](std::vector<ParamGroup> g) { return std::make_unique<SGD>(std::move(g), SGDOptions{.lr = 0.1}); }},
      {"SGD momentum, dampening, weight decay",
       [](std::vector<ParamGroup> g) {
         return std::make_unique<SGD>(std::move(g), SGDOptions{.lr = 0.03, .momentum = 0.9, .dampening = 0.1,
                                                               .weight_decay = 1e-3});
       }},
      {"SGD Nesterov, weight decay",
       [](std::vector<ParamGroup> g) {
         return std::make_unique<SGD>(std::move(g),
                                      SGDOptions{.lr = 0.02, .momentum = 0.8, .weight_decay = 5e-3, .nesterov = true});
       }},
  };
  return cases;
}

const std::vector<std::pair<std::string, Factory>>& adam_cases() {
  static const std::vector<std::pair<std::string, Factory>> cases = {
      {"Adam",
       [](std::vector<ParamGroup> g) { return std::make_unique<Adam>(std::move(g), AdamOptions{.lr = 1e-2}); }},
      {"Adam with L2 weight decay",
       [](std::vector<ParamGroup> g) {
         return std::make_unique<Adam>(std::move(g), AdamOptions{.lr = 3e-3, .beta1 = 0.8, .beta2 = 0.99,
                                                                 .eps = 1e-6, .weight_decay = 0.01});
       }},
      {"AdamW",
       [](std::vector<ParamGroup> g) {
         return std::make_unique<AdamW>(std::move(g), AdamOptions{.lr = 1e-2, .weight_decay = 0.05});
       }},
  };
  return cases;
}

}  // namespace

TEST_CASE("cuda optim: SGD matches the CPU (momentum, dampening, Nesterov, weight decay)", "[cuda]") {
  for (DType dtype : {DType::F32, DType::F64})
    for (const auto& [name, make] : sgd_cases()) check_parity(name, make, dtype, Device::cuda(0));
}

TEST_CASE("cuda optim: Adam and AdamW match the CPU", "[cuda]") {
  for (DType dtype : {DType::F32, DType::F64})
    for (const auto& [name, make] : adam_cases()) check_parity(name, make, dtype, Device::cuda(0));
}

TEST_CASE("cuda optim: optimizer state moves between devices through state dicts", "[cuda]") {
  const DType dtype = DType::F32;
  const Device cuda = Device::cuda(0);
  const Params p = make_params(dtype, cuda);
  const Factory& make = adam_cases()[2].second;
  std::unique_ptr<Optimizer> on_cpu = make(groups_of(p.cpu)), on_dev = make(groups_of(p.dev));
  for (int k = 1; k <= 2; ++k) {
    feed_grads(p, dtype, k);
    on_cpu->step();
    on_dev->step();
  }
  // Resume each run on the other device: CPU state into a CUDA optimizer and vice versa.
  Params swapped;
  for (size_t j = 0; j < p.cpu.size(); ++j) {
    swapped.cpu.push_back(p.dev[j].detach().to(Device::cpu()).set_requires_grad(true));
    swapped.dev.push_back(p.cpu[j].detach().to(cuda).set_requires_grad(true));
  }
  std::unique_ptr<Optimizer> resumed_cpu = make(groups_of(swapped.cpu)), resumed_dev = make(groups_of(swapped.dev));
  resumed_cpu->load_state_dict(on_dev->state_dict());
  resumed_dev->load_state_dict(on_cpu->state_dict());
  for (const auto& [key, t] : resumed_dev->state_dict())
    if (key.rfind("state.", 0) == 0 && key.find(".step") == std::string::npos) CHECK(t.device() == cuda);
  for (int k = 3; k <= 4; ++k) {
    feed_grads(p, dtype, k);
    feed_grads(swapped, dtype, k);
    on_cpu->step();
    on_dev->step();
    resumed_cpu->step();
    resumed_dev->step();
  }
  std::string diff;
  for (size_t j = 0; j < p.cpu.size(); ++j) {
    diff += compare("cuda resumed from cpu, param " + std::to_string(j), p.cpu[j], swapped.dev[j], 1e-6);
    diff += compare("cpu resumed from cuda, param " + std::to_string(j), p.cpu[j], swapped.cpu[j], 1e-6);
    diff += compare("cuda run, param " + std::to_string(j), p.cpu[j], p.dev[j], 1e-6);
  }
  INFO(diff);
  CHECK(diff.empty());
}

TEST_CASE("cuda optim: clip_grad_norm matches the CPU", "[cuda]") {
  const Device cuda = Device::cuda(0);
  for (DType dtype : {DType::F32, DType::F64}) {
    INFO(dtype_name(dtype));
    const double tol = rtol_for(dtype);
    const Params p = make_params(dtype, cuda);
    feed_grads(p, dtype, 2);
    // A max_norm far above the norm leaves the gradients as they are, bit for bit.
    const double norm_cpu = clip_grad_norm(p.cpu, 1e30), norm_dev = clip_grad_norm(p.dev, 1e30);
    CHECK(norm_dev == Approx(norm_cpu).epsilon(1e-12));
    std::string diff;
    for (size_t j = 0; j < p.cpu.size(); ++j)
      diff += compare("unclipped grad " + std::to_string(j), p.cpu[j].grad(), p.dev[j].grad(), 0);
    // Clipping to a tenth of the norm.
    const double max_norm = norm_cpu / 10;
    CHECK(clip_grad_norm(p.dev, max_norm) == Approx(norm_cpu).epsilon(1e-12));
    CHECK(clip_grad_norm(p.cpu, max_norm) == Approx(norm_cpu).epsilon(1e-12));
    for (size_t j = 0; j < p.cpu.size(); ++j)
      diff += compare("clipped grad " + std::to_string(j), p.cpu[j].grad(), p.dev[j].grad(), tol);
    CHECK(clip_grad_norm(p.dev, 1e30) == Approx(max_norm).epsilon(1e-5));
    // Gradients on both devices in one call: the same norm.
    feed_grads(p, dtype, 3);
    std::vector<Tensor> mixed;
    for (size_t j = 0; j < p.cpu.size(); ++j) mixed.push_back(j % 2 ? p.dev[j] : p.cpu[j]);
    const double norm_mixed = clip_grad_norm(mixed, 1e30), norm_all = clip_grad_norm(p.cpu, 1e30);
    CHECK(norm_mixed == Approx(norm_all).epsilon(1e-12));
    INFO(diff);
    CHECK(diff.empty());
  }
  // No gradients at all: norm 0.
  Tensor lone = zeros(Shape{4}, DType::F32, cuda).set_requires_grad(true);
  CHECK(clip_grad_norm({lone}, 1.0) == 0.0);
}

TEST_CASE("cuda optim: parameters on two devices in one optimizer fail clearly", "[cuda]") {
  Tensor a = zeros(Shape{3}, DType::F32).set_requires_grad(true);
  Tensor b = zeros(Shape{3}, DType::F32, Device::cuda(0)).set_requires_grad(true);
  a.set_grad(ones(Shape{3}, DType::F32));
  b.set_grad(ones(Shape{3}, DType::F32, Device::cuda(0)));
  Adam opt({a, b});
  REQUIRE_THROWS_WITH(opt.step(), Catch::Contains("more than one device"));
  // Nothing was updated.
  CHECK(a.to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(b.to_vector<float>() == std::vector<float>{0, 0, 0});
  // A gradient on another device than its parameter is refused when it is set, before any optimizer sees it.
  Tensor c = zeros(Shape{3}, DType::F32, Device::cuda(0)).set_requires_grad(true);
  REQUIRE_THROWS_WITH(c.set_grad(ones(Shape{3}, DType::F32)),
                      Catch::Contains("gradient F32[3] cpu for tensor F32[3] cuda:0"));
}
