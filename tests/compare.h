// Element-wise comparison of a reference tensor with another (CPU vs CUDA parity, fixtures).
// defines: Tolerance, compare
#pragma once

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace stgs::testing {

struct Tolerance {
  double atol = 1e-5, rtol = 1e-4;
};

// Empty when every element of `got` is within atol + rtol * |ref| of `ref` (equal values and NaN pairs
// pass), else a report: the first 5 mismatches with their index, then the count and the worst error.
inline std::string compare(const std::string& what, const Tensor& ref, const Tensor& got, Tolerance tol) {
  std::ostringstream out;
  if (ref.shape() != got.shape() || ref.dtype() != got.dtype()) {
    out << what << ": cpu " << ref.str() << " vs cuda " << got.str() << "\n";
    return out.str();
  }
  const std::vector<double> a = ref.to_vector<double>(), b = got.to_vector<double>();
  int64_t bad = 0;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
    const double err = std::abs(a[i] - b[i]);
    const bool ok = both_nan || a[i] == b[i] || err <= tol.atol + tol.rtol * std::abs(a[i]);
    if (!ok) {
      worst = std::isnan(err) || err > worst ? err : worst;
      if (bad++ < 5)
        out << what << " " << ref.shape().str() << "[" << i << "]: cpu " << a[i] << ", cuda " << b[i] << "\n";
    }
  }
  if (bad)
    out << what << ": " << bad << " of " << a.size() << " elements differ (worst " << worst << ", atol " << tol.atol
        << ", rtol " << tol.rtol << ")\n";
  return out.str();
}

}  // namespace stgs::testing
