// Gradient checking by central differences in F64 on the CPU.
// defines: GradcheckOptions, gradcheck(name, fn, inputs, options), positive(), away_from_zero()
//
// For an op f and fixed random weights R of f's output shape, L(x) = sum(f(x) * R). The analytic
// gradient comes from one backward pass; the numeric one perturbs each checked element by +-eps:
// dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps), with truncation error O(eps^2) and rounding
// error O(1e-16 / eps), so eps = 1e-6 leaves about 1e-9 of slack in F64.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace stgs::testing {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  int64_t max_elements = 64;  // per input; larger inputs are checked on an evenly spread subset
};

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Returns an empty string when every checked element agrees, else a report of the first mismatches.
inline std::string gradcheck_report(const std::string& name, const OpFn& fn, std::vector<Tensor> inputs,
                                    const GradcheckOptions& opt = {}) {
  for (Tensor& x : inputs) {
    REQUIRE(x.dtype() == DType::F64);
    x = x.detach().clone();
    x.set_requires_grad(true);
  }
  Generator weights_gen(1234);
  Tensor probe;
  {
    NoGradGuard no_grad;
    probe = fn(inputs);
  }
  const Tensor R = randn(probe.shape(), DType::F64, Device::cpu(), &weights_gen);

  Tensor loss = sum(mul(fn(inputs), R));
  loss.backward();

  auto loss_at = [&]() {
    NoGradGuard no_grad;
    return sum(mul(fn(inputs), R)).item();
  };

  std::ostringstream report;
  int mismatches = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    const int64_t n = x.numel();
    if (n == 0) continue;
    const Tensor g = x.grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(size_t(n), 0.0);
    double* data = x.data<double>();
    const int64_t step = n > opt.max_elements ? (n + opt.max_elements - 1) / opt.max_elements : 1;
    for (int64_t i = 0; i < n; i += step) {
      const double saved = data[i];
      data[i] = saved + opt.eps;
      const double up = loss_at();
      data[i] = saved - opt.eps;
      const double down = loss_at();
      data[i] = saved;
      const double numeric = (up - down) / (2 * opt.eps);
      const double a = analytic[size_t(i)];
      if (std::abs(a - numeric) > opt.atol + opt.rtol * std::max(std::abs(a), std::abs(numeric))) {
        if (mismatches++ < 5)
          report << name << ": input " << k << " " << x.shape().str() << " element " << i << ": analytic " << a
                 << ", numeric " << numeric << "\n";
      }
    }
  }
  if (mismatches > 0) report << name << ": " << mismatches << " mismatching elements\n";
  return report.str();
}

inline void gradcheck(const std::string& name, const OpFn& fn, const std::vector<Tensor>& inputs,
                      const GradcheckOptions& opt = {}) {
  const std::string report = gradcheck_report(name, fn, inputs, opt);
  INFO(report);
  CHECK(report.empty());
}

// Random F64 inputs that keep ops away from their kinks and poles.
inline Tensor uniform64(const Shape& shape, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  return rand(shape, DType::F64, Device::cpu(), &g, lo, hi);
}
inline Tensor normal64(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  return randn(shape, DType::F64, Device::cpu(), &g);
}
inline Tensor positive(const Shape& shape, uint64_t seed) { return uniform64(shape, 0.5, 2.0, seed); }
// |x| in [0.2, 1.5] with random signs: no element near 0.
inline Tensor away_from_zero(const Shape& shape, uint64_t seed) {
  Tensor mag = uniform64(shape, 0.2, 1.5, seed);
  Tensor sign = uniform64(shape, -1, 1, seed + 1);
  NoGradGuard no_grad;
  return where(gt(sign, 0.0), mag, neg(mag));
}

}  // namespace stgs::testing
