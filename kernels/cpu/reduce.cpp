// CPU reference: sum/max over a dimension, gather and its scatter-add backward.
#include "kernels/reduce.h"

#include <cmath>
#include <vector>

namespace stgs::kernels::cpu {
namespace {
constexpr int64_t kBlock = 4096;
}

template <class T>
void sum_dim(T* out, const T* x, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
    if (outer == 1 && n > 4 * kBlock) {
      // One long row: fixed blocks in parallel, then an ordered combine.
      const int64_t nblocks = (n + kBlock - 1) / kBlock;
      std::vector<T> partial(size_t(nblocks), T(0));
#pragma omp parallel for schedule(static)
      for (int64_t b = 0; b < nblocks; ++b) {
        const int64_t lo = b * kBlock, hi = lo + kBlock < n ? lo + kBlock : n;
        T acc = 0;
        for (int64_t j = lo; j < hi; ++j) acc += x[j];
        partial[size_t(b)] = acc;
      }
      T acc = 0;
      for (T p : partial) acc += p;
      out[0] = acc;
      return;
    }
#pragma omp parallel for schedule(static) if (outer * n > 65536)
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = x + o * n;
      T acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += row[j];
      out[o] = acc;
    }
    return;
  }
  // Strided reduction: accumulate whole inner rows so the inner loop is contiguous.
#pragma omp parallel for schedule(static) if (outer * n * inner > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    T* dst = out + o * inner;
    for (int64_t i = 0; i < inner; ++i) dst[i] = 0;
    for (int64_t j = 0; j < n; ++j) {
      const T* src = x + (o * n + j) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
    }
  }
}

template <class T>
void max_dim(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t n, int64_t inner) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * n * inner > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* col = x + o * n * inner + i;
      T best = col[0];
      int64_t at = 0;
      for (int64_t j = 1; j < n && !std::isnan(best); ++j) {
        const T v = col[j * inner];
        if (v > best || std::isnan(v)) {
          best = v;
          at = j;
        }
      }
      out[o * inner + i] = best;
      argmax[o * inner + i] = at;
    }
  }
}

template <class T>
int64_t gather_dim(T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t k, int64_t inner) {
  const int64_t total = outer * k * inner;
  for (int64_t p = 0; p < total; ++p)
    if (index[p] < 0 || index[p] >= n) return p;
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t p = 0; p < total; ++p) {
    const int64_t i = p % inner, o = p / (k * inner);
    out[p] = x[(o * n + index[p]) * inner + i];
  }
  return -1;
}

template <class T>
void scatter_add_dim(T* dx, const T* dy, const int64_t* index, int64_t outer, int64_t n, int64_t k, int64_t inner) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * k * inner > 65536)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t p = (o * k + j) * inner + i;
        dx[(o * n + index[p]) * inner + i] += dy[p];
      }
}

#define STGS_INSTANTIATE(T)                                                                         \
  template void sum_dim<T>(T*, const T*, int64_t, int64_t, int64_t);                                \
  template void max_dim<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t);                      \
  template int64_t gather_dim<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t); \
  template void scatter_add_dim<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
