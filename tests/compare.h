// Element-wise comparison of a reference tensor with another (CPU vs CUDA parity, fixtures).
// defines: Tolerance, compare, max_abs_diff
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
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

// The largest |a[i] - b[i]|; infinity when the lengths differ or either side holds a NaN (an output element
// left unwritten over a NaN poison, or a broken computation), so a bound on it fails then.
template <class A, class B>
double max_abs_diff(const std::vector<A>& a, const std::vector<B>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, d);
  }
  return worst;
}

// The same over two tensors of one shape (any dtypes and devices).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return std::numeric_limits<double>::infinity();
  return max_abs_diff(a.to(Device::cpu()).to(DType::F64).to_vector<double>(),
                      b.to(Device::cpu()).to(DType::F64).to_vector<double>());
}

}  // namespace stgs::testing
