// Gradient checks of whole computations over named F64 leaves (modules and their parameters) by central
// differences (F64, CPU).
// defines: LeafTolerance, check_leaf_gradients, check_module_gradients
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/nn/module.h"
#include "engine/ops.h"

namespace stgs::testing {

// An element passes when |analytic - numeric| <= atol + rtol * max(floor, |analytic|, |numeric|).
struct LeafTolerance {
  double atol = 0, rtol = 1e-6, floor = 1;
};

// loss = sum(f() * R) for a fixed random R, where f reads the F64 leaves in `wrt` (inputs and parameters,
// perturbed in place). Compares one backward pass with central differences (eps 1e-6: in F64 the
// difference quotient is good to about 1e-9). With max_elements > 0 only an evenly spread subset of about
// that many elements of each leaf is perturbed.
inline void check_leaf_gradients(const std::function<Tensor()>& f,
                                 const std::vector<std::pair<std::string, Tensor>>& wrt, int64_t max_elements = 0,
                                 LeafTolerance tol = {}) {
  for (const auto& [name, t] : wrt) {
    REQUIRE(t.dtype() == DType::F64);
    REQUIRE(t.requires_grad());
    t.zero_grad();
  }
  Generator gen(99);
  const Tensor probe = [&] {
    NoGradGuard no_grad;
    return f();
  }();
  const Tensor R = randn(probe.shape(), DType::F64, Device::cpu(), &gen);
  auto loss_value = [&] {
    NoGradGuard no_grad;
    return sum(f() * R).item();
  };
  sum(f() * R).backward();
  const double eps = 1e-6;
  for (const auto& [name, t] : wrt) {
    INFO("gradient of " << name << " " << t.str());
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
      CHECK(std::abs(a - numeric) <= tol.atol + tol.rtol * std::max({tol.floor, std::abs(a), std::abs(numeric)}));
    }
  }
}

// The check above for m.forward(x), with every other gradient of the module dropped first.
inline void check_module_gradients(Module& m, const Tensor& x, const std::vector<std::pair<std::string, Tensor>>& wrt,
                                   int64_t max_elements = 0) {
  m.zero_grad();
  check_leaf_gradients([&] { return m.forward(x); }, wrt, max_elements);
}

}  // namespace stgs::testing
