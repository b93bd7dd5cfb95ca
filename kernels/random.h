// Random fills and dropout, all driven by Philox at (seed, offset + element index).
// defines: cpu::uniform_fill, cpu::normal_fill, cpu::dropout_fwd, cpu::dropout_bwd
#pragma once

#include <cstdint>

#include "kernels/stream.h"

namespace stgs::kernels::cpu {

// out[i] = lo + (hi - lo) * u(seed, offset + i), u in (0, 1), strictly inside (lo, hi); consumes n counters.
template <class T>
void uniform_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T lo, T hi);

// out[i] = mean + std * N(0,1) from Philox block (offset / 4 + i); consumes 4n counters.
template <class T>
void normal_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T mean, T std);

// Element i is kept when u(seed, offset + i) >= p; y = keep ? x / (1 - p) : 0. The mask is never stored:
// the backward pass regenerates it from the same (seed, offset).
template <class T>
void dropout_fwd(T* y, const T* x, int64_t n, T p, uint64_t seed, uint64_t offset);
template <class T>
void dropout_bwd(T* dx, const T* dy, int64_t n, T p, uint64_t seed, uint64_t offset);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above (the same Philox counters, so the same numbers), stream last.
template <class T>
void uniform_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T lo, T hi, Stream stream);
template <class T>
void normal_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T mean, T std, Stream stream);
template <class T>
void dropout_fwd(T* y, const T* x, int64_t n, T p, uint64_t seed, uint64_t offset, Stream stream);
template <class T>
void dropout_bwd(T* dx, const T* dy, int64_t n, T p, uint64_t seed, uint64_t offset, Stream stream);

}  // namespace stgs::kernels::cuda
