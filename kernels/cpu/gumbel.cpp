// CPU reference: Gumbel-softmax sampling and its backward, one row per loop iteration.
#include "kernels/gumbel.h"

#include <cmath>

#include "kernels/philox.h"

namespace stgs::kernels::cpu {

template <class T>
void gumbel_softmax_fwd(T* soft, T* hard, int64_t* index, const T* logits, int64_t rows, int64_t K, T lambda,
                        bool noise, uint64_t seed, uint64_t offset) {
#pragma omp parallel for schedule(static) if (rows * K > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * K;
    T* y = soft + r * K;
    // z goes into y first; the maximum of z is both the argmax and the softmax shift.
    int64_t best = 0;
    for (int64_t k = 0; k < K; ++k) {
      const T g = noise ? philox_gumbel<T>(seed, offset + uint64_t(r * K + k)) : T(0);
      y[k] = (x[k] + g) / lambda;
      if (y[k] > y[best]) best = k;  // strict: ties keep the lowest index
    }
    const T m = y[best];
    T sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      y[k] = std::exp(y[k] - m);
      sum += y[k];
    }
    const T inv = T(1) / sum;
    for (int64_t k = 0; k < K; ++k) y[k] *= inv;
    index[r] = best;
    if (hard)
      for (int64_t k = 0; k < K; ++k) hard[r * K + k] = k == best ? T(1) : T(0);
  }
}

template <class T>
void gumbel_softmax_bwd(T* dlogits, const T* grad, const T* soft, int64_t rows, int64_t K, T lambda) {
#pragma omp parallel for schedule(static) if (rows * K > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = grad + r * K;
    const T* y = soft + r * K;
    T dot = 0;
    for (int64_t k = 0; k < K; ++k) dot += g[k] * y[k];
    for (int64_t k = 0; k < K; ++k) dlogits[r * K + k] = y[k] * (g[k] - dot) / lambda;
  }
}

#define STGS_INSTANTIATE(T)                                                                                 \
  template void gumbel_softmax_fwd<T>(T*, T*, int64_t*, const T*, int64_t, int64_t, T, bool, uint64_t,     \
                                      uint64_t);                                                            \
  template void gumbel_softmax_bwd<T>(T*, const T*, const T*, int64_t, int64_t, T);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
