// CPU reference: Philox-driven fills and dropout.
#include "kernels/random.h"

#include "kernels/philox.h"

namespace stgs::kernels::cpu {
namespace {

// Calls body(i, u) for every i in [0, n) with the uniform of Philox counter offset + i (the value
// philox_uniform<T>(seed, offset + i) gives), computing each Philox block once for its four counters:
// per element, philox_uniform would run the 10 rounds four times over (it was a quarter of a search step's
// time inside dropout).
template <class T, class Body>
void for_each_uniform(int64_t n, uint64_t seed, uint64_t offset, Body body) {
  if (n <= 0) return;
  const uint64_t end = offset + uint64_t(n), first = offset >> 2;
  const int64_t blocks = int64_t(((end - 1) >> 2) - first + 1);
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t b = 0; b < blocks; ++b) {
    const uint64_t block = first + uint64_t(b);
    const Philox4 bits = philox_block(seed, block);
    for (uint64_t lane = 0; lane < 4; ++lane) {
      const uint64_t e = (block << 2) + lane;
      if (e < offset || e >= end) continue;
      if constexpr (sizeof(T) == 4)
        body(int64_t(e - offset), uniform_from_bits_f32(bits.v[lane]));
      else
        body(int64_t(e - offset), T(uniform_from_bits_f64(bits.v[lane])));
    }
  }
}

}  // namespace

template <class T>
void uniform_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T lo, T hi) {
  for_each_uniform<T>(n, seed, offset, [&](int64_t i, T u) { out[i] = uniform_in_range(u, lo, hi); });
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
  for_each_uniform<T>(n, seed, offset, [&](int64_t i, T u) { y[i] = u >= p ? x[i] * scale : T(0); });
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
