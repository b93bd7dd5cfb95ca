// CPU reference: Philox-driven fills and dropout.
#include "kernels/random.h"

#include "kernels/philox.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace stgs::kernels::cpu {
namespace {

// Philox4x32-10 of kGroupBlocks consecutive blocks at once, in counter order: bits[4 j + lane] = lane `lane`
// of block first + j, the same words as philox_block, bit for bit (tests/test_random.cpp checks). With AVX2,
// eight blocks run in the eight 32-bit lanes of a register; philox_block's one-block dependency chain of scalar 64-bit
// multiplies (which the compiler does not vectorise) made dropout a fifth of a search step's time.
constexpr int kGroupBlocks = 16;

#if defined(__AVX2__)
// The high and low 32 bits of the eight 32x32-bit products a[i] * m.
inline void mul_hi_lo(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m);                         // 64-bit products of lanes 0, 2, 4, 6
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // of lanes 1, 3, 5, 7
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0b10101010);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0b10101010);
}

void philox_group(uint64_t seed, uint64_t first, uint32_t (&bits)[4 * kGroupBlocks]) {
  const __m256i mul0 = _mm256_set1_epi32(int(0xD2511F53u)), mul1 = _mm256_set1_epi32(int(0xCD9E8D57u));
  for (int half = 0; half < kGroupBlocks; half += 8) {
    alignas(32) uint32_t lo_words[8], hi_words[8];
    for (int j = 0; j < 8; ++j) {
      const uint64_t block = first + uint64_t(half + j);
      lo_words[j] = uint32_t(block);
      hi_words[j] = uint32_t(block >> 32);
    }
    __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo_words));
    __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi_words));
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    uint32_t key0 = uint32_t(seed), key1 = uint32_t(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      __m256i hi0, lo0, hi1, lo1;
      mul_hi_lo(c0, mul0, hi0, lo0);
      mul_hi_lo(c2, mul1, hi1, lo1);
      c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(int(key0)));
      c1 = lo1;
      c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(int(key1)));
      c3 = lo0;
      key0 += 0x9E3779B9u;
      key1 += 0xBB67AE85u;
    }
    // Transpose lanes-by-blocks to blocks-by-lanes: after the unpacks r0 holds blocks 0 and 4, r1 1 and 5,
    // r2 2 and 6, r3 3 and 7 (four words each, 128 bits per block).
    const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
    const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
    const __m256i r0 = _mm256_unpacklo_epi64(t0, t2), r1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i r2 = _mm256_unpacklo_epi64(t1, t3), r3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i* out = reinterpret_cast<__m256i*>(bits + 4 * half);
    _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(r0, r1, 0x20));  // blocks 0, 1
    _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(r2, r3, 0x20));  // blocks 2, 3
    _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(r0, r1, 0x31));  // blocks 4, 5
    _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(r2, r3, 0x31));  // blocks 6, 7
  }
}
#else
void philox_group(uint64_t seed, uint64_t first, uint32_t (&bits)[4 * kGroupBlocks]) {
  for (int j = 0; j < kGroupBlocks; ++j) {
    const Philox4 b = philox_block(seed, first + uint64_t(j));
    for (int lane = 0; lane < 4; ++lane) bits[4 * j + lane] = b.v[lane];
  }
}
#endif

// Calls body(i, u) for every i in [0, n) with the uniform of Philox counter offset + i (the value
// philox_uniform<T>(seed, offset + i) gives), computing each Philox block once for its four counters and
// kGroupBlocks blocks together (dropout's mask was a fifth of a search step's time with one block at a time).
template <class T, class Body>
void for_each_uniform(int64_t n, uint64_t seed, uint64_t offset, Body body) {
  if (n <= 0) return;
  constexpr int64_t kGroup = 4 * kGroupBlocks;  // elements per group
  const uint64_t end = offset + uint64_t(n), first = offset >> 2;
  const int64_t groups = int64_t(((end - 1) >> 2) - first) / kGroupBlocks + 1;
#pragma omp parallel for schedule(static) if (n > 8192)
  for (int64_t g = 0; g < groups; ++g) {
    const uint64_t block = first + uint64_t(g) * kGroupBlocks;
    uint32_t bits[kGroup];
    philox_group(seed, block, bits);
    T u[kGroup];  // u[k]: element counter block * 4 + k
    for (int64_t k = 0; k < kGroup; ++k) {
      if constexpr (sizeof(T) == 4)
        u[k] = uniform_from_bits_f32(bits[k]);
      else
        u[k] = T(uniform_from_bits_f64(bits[k]));
    }
    const uint64_t e0 = block << 2;  // element counter of u[0]
    const uint64_t lo = e0 > offset ? e0 : offset, hi = e0 + kGroup < end ? e0 + kGroup : end;
    const int64_t i0 = int64_t(lo - offset), k0 = int64_t(lo - e0), count = int64_t(hi - lo);
    // A private copy of the body: the shared one is reached through the OpenMP closure, so the compiler would
    // reload its captures after every store and not vectorise.
    const Body local = body;
    for (int64_t k = 0; k < count; ++k) local(i0 + k, u[k0 + k]);
  }
}

}  // namespace

template <class T>
void uniform_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T lo, T hi) {
  // Captures by value: through references the compiler must assume out[i] may alias them, and reloads.
  for_each_uniform<T>(n, seed, offset, [=](int64_t i, T u) { out[i] = uniform_in_range(u, lo, hi); });
}

template <class T>
void normal_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T mean, T std) {
  const uint64_t first_block = offset / 4;
#pragma omp parallel for schedule(static) if (n > 8192)
  for (int64_t i = 0; i < n; ++i) out[i] = mean + std * philox_normal<T>(seed, first_block + uint64_t(i));
}

template <class T>
void dropout_fwd(T* y, const T* x, int64_t n, T p, uint64_t seed, uint64_t offset) {
  const T scale = T(1) / (T(1) - p);
  for_each_uniform<T>(n, seed, offset, [=](int64_t i, T u) { y[i] = u >= p ? x[i] * scale : T(0); });
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
