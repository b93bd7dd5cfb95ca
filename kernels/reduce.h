// Reductions over one dimension of a tensor viewed as (outer, n, inner), and their scatter back.
// defines: cpu::sum_dim, cpu::max_dim, cpu::scatter_add_dim, cpu::gather_dim
//
// Every output element is reduced by one thread in index order, and long rows (inner == 1) are summed
// in fixed 4096-element blocks combined in order: results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/stream.h"

namespace stgs::kernels::cpu {

// out: (outer, inner) = sum over n of x: (outer, n, inner)
template <class T>
void sum_dim(T* out, const T* x, int64_t outer, int64_t n, int64_t inner);

// out, argmax: (outer, inner) = max over n of x: (outer, n, inner); ties take the first index; NaN wins.
template <class T>
void max_dim(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t n, int64_t inner);

// out: (outer, k, inner); out[o, j, i] = x[o, index[o, j, i], i] with x: (outer, n, inner).
// Returns -1 when every index is in [0, n), else the flat position of the first bad index.
template <class T>
int64_t gather_dim(T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t k, int64_t inner);

// dx: (outer, n, inner), NOT cleared here; dx[o, index[o, j, i], i] += dy[o, j, i].
// Each (o, i) column is owned by one thread, so the sums are race-free and ordered.
template <class T>
void scatter_add_dim(T* dx, const T* dy, const int64_t* index, int64_t outer, int64_t n, int64_t k, int64_t inner);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above; same arguments, device pointers, stream last. Reductions use
// no atomics (fixed reduction trees), so results are deterministic. gather_dim synchronises the stream
// to report a bad index.
template <class T>
void sum_dim(T* out, const T* x, int64_t outer, int64_t n, int64_t inner, Stream stream);
template <class T>
void max_dim(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t n, int64_t inner, Stream stream);
template <class T>
int64_t gather_dim(T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t k, int64_t inner,
                   Stream stream);
template <class T>
void scatter_add_dim(T* dx, const T* dy, const int64_t* index, int64_t outer, int64_t n, int64_t k, int64_t inner,
                     Stream stream);

}  // namespace stgs::kernels::cuda
