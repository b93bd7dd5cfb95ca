// Layer normalisation over the last D elements of each row.
// defines: cpu::layer_norm_fwd, cpu::layer_norm_bwd
#pragma once

#include <cstdint>

#include "kernels/stream.h"

namespace stgs::kernels::cpu {

// x, y: (rows, D); gamma, beta: (D) or null (no affine); mean, rstd: (rows) saved for backward.
// y = (x - mean) * rstd * gamma + beta,  rstd = 1 / sqrt(var + eps), var biased (divides by D).
template <class T>
void layer_norm_fwd(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, int64_t rows, int64_t D,
                    T eps);

// dx: (rows, D) always written; dgamma, dbeta: (D) written when non-null.
// With xhat = (x - mean) * rstd and g = dy * gamma:
//   dx = rstd * (g - mean_D(g) - xhat * mean_D(g * xhat)),  dgamma = sum_rows(dy * xhat),  dbeta = sum_rows(dy)
template <class T>
void layer_norm_bwd(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                    const T* gamma, int64_t rows, int64_t D);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above; same arguments, device pointers, stream last.
template <class T>
void layer_norm_fwd(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, int64_t rows, int64_t D,
                    T eps, Stream stream);
template <class T>
void layer_norm_bwd(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                    const T* gamma, int64_t rows, int64_t D, Stream stream);

}  // namespace stgs::kernels::cuda
