// CPU reference: elementwise ops. Contiguous inputs take flat loops the compiler vectorises; broadcast
// and strided inputs walk rows of the last dimension.
#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>

#include "kernels/check.h"

namespace stgs::kernels::cpu {
namespace {

constexpr int64_t kParallelFrom = 32768;  // below this, threading costs more than it saves

// Small sizes branch around the parallel region entirely: even a disabled `omp parallel ... if()`
// enters the runtime, which costs more than a tiny op itself.
template <class T, class F>
void map_flat(T* y, const T* x, int64_t n, F f) {
  if (n <= kParallelFrom) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
    return;
  }
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <class T, class F>
void map_flat_bwd(T* dx, const T* dy, const T* v, int64_t n, F f) {
  if (n <= kParallelFrom) {
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * f(v[i]);
    return;
  }
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * f(v[i]);
}

// Calls row(out_index, offset_operand1, offset_operand2, offset_operand3) at the start of every row of the
// last dimension (nd >= 1), rows split across threads when the whole is large.
template <class Row>
void for_each_row(const StridedLayout& l, Row row) {
  const int nd = l.ndim;
  const int64_t n = l.numel(), inner = l.sizes[nd - 1];
  const int64_t rows = n / inner;
  auto run = [&](int64_t r) {
    int64_t rem = r, o0 = 0, o1 = 0, o2 = 0;
    for (int i = nd - 2; i >= 0; --i) {
      const int64_t idx = rem % l.sizes[i];
      rem /= l.sizes[i];
      o0 += idx * l.strides[0][i];
      o1 += idx * l.strides[1][i];
      o2 += idx * l.strides[2][i];
    }
    row(r * inner, o0, o1, o2);
  };
  if (n <= kParallelFrom) {  // around the parallel region entirely (see map_flat)
    for (int64_t r = 0; r < rows; ++r) run(r);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) run(r);
}

// Calls body(out_index, offset_operand1, offset_operand2, offset_operand3) for every output element
// in row-major order; rows of the last dimension are split across threads.
template <class Body>
void for_each_strided(const StridedLayout& l, Body body) {
  const int nd = l.ndim;
  const int64_t n = l.numel();
  if (n == 0) return;
  if (nd == 0) {
    body(0, 0, 0, 0);
    return;
  }
  const int64_t inner = l.sizes[nd - 1];
  const int64_t s0 = l.strides[0][nd - 1], s1 = l.strides[1][nd - 1], s2 = l.strides[2][nd - 1];
  for_each_row(l, [&](int64_t base, int64_t o0, int64_t o1, int64_t o2) {
    for (int64_t j = 0; j < inner; ++j) body(base + j, o0 + j * s0, o1 + j * s1, o2 + j * s2);
  });
}

template <class T>
T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return std::pow(a, b);
    case BinaryOp::Maximum: return a > b || a != a ? a : b;  // a NaN on either side wins (as PyTorch)
    case BinaryOp::Minimum: return a < b || a != a ? a : b;
  }
  return T(0);
}

// out[i] = f(a[i], b[i]) over n elements, all contiguous.
template <class T, class F>
void binary_loop(T* out, const T* a, const T* b, int64_t n, F f) {
  if (n <= kParallelFrom) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
    return;
  }
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
}

template <class T, class F>
void binary_loop(T* out, const T* a, const T* b, const StridedLayout& l, F f) {
  const int64_t n = l.numel();
  if (n == 0) return;
  if (l.contiguous(1, 2)) return binary_loop(out, a, b, n, f);
  // A broadcast scalar against a contiguous tensor (a sampled weight times a node, a scale): one flat loop.
  if (l.scalar(2) && l.contiguous(1, 1)) return map_flat(out, a, n, [f, v = *b](T u) { return f(u, v); });
  if (l.scalar(1) && l.contiguous(2, 2)) return map_flat(out, b, n, [f, v = *a](T u) { return f(v, u); });
  // Rows whose operands are unit-stride or repeated (bias-style broadcasts): a flat loop per row.
  const int nd = l.ndim;
  const int64_t inner = l.sizes[nd - 1], sa = l.strides[1][nd - 1], sb = l.strides[2][nd - 1];
  if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
    for_each_row(l, [&](int64_t base, int64_t, int64_t ia, int64_t ib) {
      T* o = out + base;
      const T *pa = a + ia, *pb = b + ib;
      if (sa == 1 && sb == 1) {
        for (int64_t j = 0; j < inner; ++j) o[j] = f(pa[j], pb[j]);
      } else if (sa == 1) {
        const T v = *pb;
        for (int64_t j = 0; j < inner; ++j) o[j] = f(pa[j], v);
      } else if (sb == 1) {
        const T v = *pa;
        for (int64_t j = 0; j < inner; ++j) o[j] = f(v, pb[j]);
      } else {
        std::fill(o, o + inner, f(*pa, *pb));
      }
    });
    return;
  }
  for_each_strided(l, [&](int64_t i, int64_t, int64_t ia, int64_t ib) { out[i] = f(a[ia], b[ib]); });
}

}  // namespace

template <class T>
void unary_fwd(UnaryOp op, T* y, const T* x, int64_t n, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return map_flat(y, x, n, [](T v) { return -v; });
    case UnaryOp::Exp: return map_flat(y, x, n, [](T v) { return std::exp(v); });
    case UnaryOp::Log: return map_flat(y, x, n, [](T v) { return std::log(v); });
    case UnaryOp::Sqrt: return map_flat(y, x, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::Relu: return map_flat(y, x, n, [](T v) { return v < T(0) ? T(0) : v; });  // NaN stays NaN
    case UnaryOp::Sigmoid: return map_flat(y, x, n, [](T v) { return T(1) / (T(1) + std::exp(-v)); });
    case UnaryOp::Tanh: return map_flat(y, x, n, [](T v) { return std::tanh(v); });
    case UnaryOp::Abs: return map_flat(y, x, n, [](T v) { return std::abs(v); });
    case UnaryOp::Pow: return map_flat(y, x, n, [alpha](T v) { return std::pow(v, alpha); });
    case UnaryOp::Scale: return map_flat(y, x, n, [alpha](T v) { return v * alpha; });
    case UnaryOp::AddScalar: return map_flat(y, x, n, [alpha](T v) { return v + alpha; });
  }
}

template <class T>
void unary_bwd(UnaryOp op, T* dx, const T* dy, const T* x, const T* y, int64_t n, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return map_flat_bwd(dx, dy, x, n, [](T) { return T(-1); });
    case UnaryOp::Exp: return map_flat_bwd(dx, dy, y, n, [](T e) { return e; });
    case UnaryOp::Log: return map_flat_bwd(dx, dy, x, n, [](T v) { return T(1) / v; });
    case UnaryOp::Sqrt: return map_flat_bwd(dx, dy, y, n, [](T s) { return T(0.5) / s; });
    case UnaryOp::Relu: return map_flat_bwd(dx, dy, x, n, [](T v) { return v > T(0) ? T(1) : T(0); });
    case UnaryOp::Sigmoid: return map_flat_bwd(dx, dy, y, n, [](T s) { return s * (T(1) - s); });
    case UnaryOp::Tanh: return map_flat_bwd(dx, dy, y, n, [](T t) { return T(1) - t * t; });
    case UnaryOp::Abs: return map_flat_bwd(dx, dy, x, n, [](T v) { return v > T(0) ? T(1) : v < T(0) ? T(-1) : T(0); });
    case UnaryOp::Pow:  // x^0 is constant: 0, not 0 * x^-1 (NaN at x = 0)
      return map_flat_bwd(dx, dy, x, n, [alpha](T v) { return alpha == T(0) ? T(0) : alpha * std::pow(v, alpha - T(1)); });
    case UnaryOp::Scale: return map_flat_bwd(dx, dy, x, n, [alpha](T) { return alpha; });
    case UnaryOp::AddScalar: return map_flat_bwd(dx, dy, x, n, [](T) { return T(1); });
  }
}

template <class T>
void binary_fwd(BinaryOp op, T* out, const T* a, const T* b, const StridedLayout& l) {
  // One instantiation of the loop per op, so the contiguous path vectorises.
  switch (op) {
    case BinaryOp::Add: return binary_loop(out, a, b, l, [](T u, T v) { return u + v; });
    case BinaryOp::Sub: return binary_loop(out, a, b, l, [](T u, T v) { return u - v; });
    case BinaryOp::Mul: return binary_loop(out, a, b, l, [](T u, T v) { return u * v; });
    case BinaryOp::Div: return binary_loop(out, a, b, l, [](T u, T v) { return u / v; });
    default: return binary_loop(out, a, b, l, [op](T u, T v) { return apply_binary(op, u, v); });
  }
}

template <class T>
void compare(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedLayout& l) {
  for_each_strided(l, [&](int64_t i, int64_t, int64_t ia, int64_t ib) {
    const T u = a[ia], v = b[ib];
    bool r = false;
    switch (op) {
      case CompareOp::Gt: r = u > v; break;
      case CompareOp::Ge: r = u >= v; break;
      case CompareOp::Lt: r = u < v; break;
      case CompareOp::Le: r = u <= v; break;
      case CompareOp::Eq: r = u == v; break;
      case CompareOp::Ne: r = u != v; break;
    }
    out[i] = r ? 1 : 0;
  });
}

template <class T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedLayout& l) {
  for_each_strided(l, [&](int64_t i, int64_t ic, int64_t ia, int64_t ib) { out[i] = cond[ic] ? a[ia] : b[ib]; });
}

#define STGS_INSTANTIATE(T)                                                                        \
  template void unary_fwd<T>(UnaryOp, T*, const T*, int64_t, T);                                   \
  template void unary_bwd<T>(UnaryOp, T*, const T*, const T*, const T*, int64_t, T);               \
  template void binary_fwd<T>(BinaryOp, T*, const T*, const T*, const StridedLayout&);             \
  template void compare<T>(CompareOp, uint8_t*, const T*, const T*, const StridedLayout&);         \
  template void where_fwd<T>(T*, const uint8_t*, const T*, const T*, const StridedLayout&);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
