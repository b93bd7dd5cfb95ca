// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11), written once for host and device.
// defines: philox4x32_10, philox_bits, uniform_from_bits_f32/f64, philox_uniform, uniform_in_range,
//          philox_normal, philox_gumbel
//
// A random value is addressed by (seed, element counter e): block = e / 4 is the Philox counter,
// the 64-bit seed is the key, and lane e % 4 picks one of the four 32-bit outputs. The CPU and the GPU
// therefore draw the same numbers for the same (seed, offset), and a kernel can regenerate its noise
// in the backward pass instead of storing it.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define STGS_HD __host__ __device__ __forceinline__
#else
#define STGS_HD inline
#endif

namespace stgs::kernels {

struct Philox4 {
  uint32_t v[4];
};

STGS_HD Philox4 philox4x32_10(Philox4 counter, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kMul0) * counter.v[0];
    const uint64_t p1 = uint64_t(kMul1) * counter.v[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    counter = Philox4{{hi1 ^ counter.v[1] ^ key0, lo1, hi0 ^ counter.v[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

// The four 32-bit words of block (e / 4) for this seed.
STGS_HD Philox4 philox_block(uint64_t seed, uint64_t block) {
  return philox4x32_10(Philox4{{uint32_t(block), uint32_t(block >> 32), 0u, 0u}}, uint32_t(seed),
                       uint32_t(seed >> 32));
}

// 32 random bits for element counter e.
STGS_HD uint32_t philox_bits(uint64_t seed, uint64_t e) { return philox_block(seed, e >> 2).v[e & 3]; }

// Strictly inside (0, 1). The float version keeps 23 bits: (k + 0.5) * 2^-23 is exact in float for
// every k < 2^23, so neither 0 nor 1 can come out (with 24 bits, 2^24 - 0.5 would round up to 1.0
// and -log(-log(u)) would be infinite).
STGS_HD float uniform_from_bits_f32(uint32_t bits) { return (float(bits >> 9) + 0.5f) * 1.1920928955078125e-07f; }
STGS_HD double uniform_from_bits_f64(uint32_t bits) { return (double(bits) + 0.5) * 2.3283064365386963e-10; }

template <class T>
STGS_HD T philox_uniform(uint64_t seed, uint64_t e) {
  if constexpr (sizeof(T) == 4) {
    return uniform_from_bits_f32(philox_bits(seed, e));
  } else {
    return T(uniform_from_bits_f64(philox_bits(seed, e)));
  }
}

// lo + (hi - lo) * u for u in (0, 1), kept strictly inside (lo, hi): the product can round onto an end
// point (u = 1 - 2^-24 on [1, 2) gives exactly 2.0f), so such values move to the nearest one inside.
template <class T>
STGS_HD T uniform_in_range(T u, T lo, T hi) {
  const T v = lo + (hi - lo) * u;
  if constexpr (sizeof(T) == 4) {
    return v <= lo ? ::nextafterf(lo, hi) : v >= hi ? ::nextafterf(hi, lo) : v;
  } else {
    return v <= lo ? ::nextafter(lo, hi) : v >= hi ? ::nextafter(hi, lo) : v;
  }
}

// Standard normal by Box-Muller from the first two lanes of block `block` (one block per value).
template <class T>
STGS_HD T philox_normal(uint64_t seed, uint64_t block) {
  const Philox4 r = philox_block(seed, block);
  if constexpr (sizeof(T) == 4) {
    const float u1 = uniform_from_bits_f32(r.v[0]), u2 = uniform_from_bits_f32(r.v[1]);
    return ::sqrtf(-2.0f * ::logf(u1)) * ::cosf(6.283185307179586f * u2);
  } else {
    const double u1 = uniform_from_bits_f64(r.v[0]), u2 = uniform_from_bits_f64(r.v[1]);
    return T(::sqrt(-2.0 * ::log(u1)) * ::cos(6.283185307179586 * u2));
  }
}

// Standard Gumbel(0, 1): -log(-log(u)), finite because u is strictly inside (0, 1).
// The math functions are called by their global names: unqualified, they would find stgs::log(Tensor)
// first in any file that includes engine/ops.h before this header.
template <class T>
STGS_HD T philox_gumbel(uint64_t seed, uint64_t e) {
  const T u = philox_uniform<T>(seed, e);
  if constexpr (sizeof(T) == 4) {
    return -::logf(-::logf(u));
  } else {
    return T(-::log(-::log(double(u))));
  }
}

}  // namespace stgs::kernels
