// CPU reference: Philox-driven fills and dropout.
#include "kernels/random.h"

#include "kernels/philox.h"

namespace stgs::kernels::cpu {

template <class T>
void uniform_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T lo, T hi) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) out[i] = uniform_in_range(philox_uniform<T>(seed, offset + uint64_t(i)), lo, hi);
}

template <class T>
void normal_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T mean, T std) {
  const uint64_t first_block = offset / 4;
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) out[i] = mean + std * philox_normal<T>(seed, first_block + uint64_t(i));
}

template <class T>
void dropout_fwd(T* y, const T* x, int64_t n, T p, uint64_t seed, uint64_t offset) {
  const T scale = T(1) / (T(1) - p);
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; ++i) y[i] = philox_uniform<T>(seed, offset + uint64_t(i)) >= p ? x[i] * scale : T(0);
}

template <class T>
void dropout_bwd(T* dx, const T* dy, int64_t n, T p, uint64_t seed, uint64_t offset) {
  dropout_fwd(dx, dy, n, p, seed, offset);  // the same mask and scale apply to the gradient
}

#define STGS_INSTANTIATE(T)                                                    \
  template void uniform_fill<T>(T*, int64_t, uint64_t, uint64_t, T, T);        \
  template void normal_fill<T>(T*, int64_t, uint64_t, uint64_t, T, T);         \
  template void dropout_fwd<T>(T*, const T*, int64_t, T, uint64_t, uint64_t); \
  template void dropout_bwd<T>(T*, const T*, int64_t, T, uint64_t, uint64_t);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
