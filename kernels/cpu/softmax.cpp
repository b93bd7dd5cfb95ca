// CPU reference: softmax, log-softmax and cross-entropy. One thread owns each (outer, inner) column.
#include "kernels/softmax.h"

#include <cmath>

namespace stgs::kernels::cpu {
namespace {

// Runs body(column pointer offset, stride) for every (o, i) column of an (outer, n, inner) tensor.
template <class Body>
void for_each_column(int64_t outer, int64_t n, int64_t inner, Body body) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * n * inner > 32768)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) body(o * n * inner + i, inner);
}

template <class T>
T column_max(const T* x, int64_t n, int64_t s) {
  T m = x[0];
  for (int64_t j = 1; j < n; ++j) m = x[j * s] > m ? x[j * s] : m;
  return m;
}

}  // namespace

template <class T>
void softmax_fwd(T* y, const T* x, int64_t outer, int64_t n, int64_t inner) {
  for_each_column(outer, n, inner, [&](int64_t base, int64_t s) {
    const T* xc = x + base;
    T* yc = y + base;
    const T m = column_max(xc, n, s);
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      yc[j * s] = std::exp(xc[j * s] - m);
      sum += yc[j * s];
    }
    const T inv = T(1) / sum;
    for (int64_t j = 0; j < n; ++j) yc[j * s] *= inv;
  });
}

template <class T>
void softmax_bwd(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner) {
  for_each_column(outer, n, inner, [&](int64_t base, int64_t s) {
    T dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += dy[base + j * s] * y[base + j * s];
    for (int64_t j = 0; j < n; ++j) dx[base + j * s] = y[base + j * s] * (dy[base + j * s] - dot);
  });
}

template <class T>
void log_softmax_fwd(T* y, const T* x, int64_t outer, int64_t n, int64_t inner) {
  for_each_column(outer, n, inner, [&](int64_t base, int64_t s) {
    const T* xc = x + base;
    const T m = column_max(xc, n, s);
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += std::exp(xc[j * s] - m);
    const T lse = m + std::log(sum);
    for (int64_t j = 0; j < n; ++j) y[base + j * s] = xc[j * s] - lse;
  });
}

template <class T>
void log_softmax_bwd(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner) {
  for_each_column(outer, n, inner, [&](int64_t base, int64_t s) {
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += dy[base + j * s];
    for (int64_t j = 0; j < n; ++j) dx[base + j * s] = dy[base + j * s] - std::exp(y[base + j * s]) * sum;
  });
}

template <class T>
void cross_entropy_fwd(T* loss, const T* logits, const int64_t* target, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
  for (int64_t r = 0; r < N; ++r) {
    const T* row = logits + r * C;
    const T m = column_max(row, C, 1);
    T sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += std::exp(row[c] - m);
    loss[r] = m + std::log(sum) - row[target[r]];
  }
}

template <class T>
void cross_entropy_bwd(T* dlogits, const T* dloss, const T* logits, const int64_t* target, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
  for (int64_t r = 0; r < N; ++r) {
    const T* row = logits + r * C;
    T* drow = dlogits + r * C;
    const T m = column_max(row, C, 1);
    T sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += std::exp(row[c] - m);
    const T scale = dloss[r] / sum;
    for (int64_t c = 0; c < C; ++c) drow[c] = std::exp(row[c] - m) * scale;
    drow[target[r]] -= dloss[r];
  }
}

#define STGS_INSTANTIATE(T)                                                                   \
  template void softmax_fwd<T>(T*, const T*, int64_t, int64_t, int64_t);                      \
  template void softmax_bwd<T>(T*, const T*, const T*, int64_t, int64_t, int64_t);            \
  template void log_softmax_fwd<T>(T*, const T*, int64_t, int64_t, int64_t);                  \
  template void log_softmax_bwd<T>(T*, const T*, const T*, int64_t, int64_t, int64_t);        \
  template void cross_entropy_fwd<T>(T*, const T*, const int64_t*, int64_t, int64_t);         \
  template void cross_entropy_bwd<T>(T*, const T*, const T*, const int64_t*, int64_t, int64_t);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
