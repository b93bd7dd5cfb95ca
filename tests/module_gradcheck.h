// Gradient check of a whole module by central differences (F64, CPU).
// defines: check_module_gradients
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "engine/nn/module.h"
#include "engine/ops.h"

namespace stgs::testing {

// loss = sum(m(x) * R) for a fixed random R. Compares the analytic gradient of every tensor in `wrt` (x
// and/or the module's parameters, all F64 leaves) with central differences (eps 1e-6): in F64 the
// difference quotient is good to about 1e-9, so 1e-6 relative leaves a wide margin. With max_elements > 0
// only an evenly spread subset of about that many elements of each tensor is perturbed.
inline void check_module_gradients(Module& m, const Tensor& x, const std::vector<std::pair<std::string, Tensor>>& wrt,
                                   int64_t max_elements = 0) {
  Generator gen(99);
  const Tensor probe = [&] {
    NoGradGuard no_grad;
    return m.forward(x);
  }();
  const Tensor R = randn(probe.shape(), DType::F64, Device::cpu(), &gen);
  auto loss_value = [&] {
    NoGradGuard no_grad;
    return sum(m.forward(x) * R).item();
  };
  m.zero_grad();
  for (const auto& entry : wrt) entry.second.zero_grad();
  sum(m.forward(x) * R).backward();
  const double eps = 1e-6;
  for (const auto& [name, t] : wrt) {
    INFO("gradient of " << name);
    REQUIRE(t.dtype() == DType::F64);
    REQUIRE(t.grad().defined());
    const std::vector<double> analytic = t.grad().to_vector<double>();
    double* data = t.data<double>();
    const int64_t step = max_elements > 0 ? std::max<int64_t>(1, t.numel() / max_elements) : 1;
    for (int64_t i = 0; i < t.numel(); i += step) {
      const double saved = data[i];
      data[i] = saved + eps;
      const double plus = loss_value();
      data[i] = saved - eps;
      const double minus = loss_value();
      data[i] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      const double a = analytic[size_t(i)];
      INFO("element " << i << ": analytic " << a << ", numeric " << numeric);
      CHECK(std::abs(a - numeric) <= 1e-6 * std::max({1.0, std::abs(a), std::abs(numeric)}));
    }
  }
}

}  // namespace stgs::testing
