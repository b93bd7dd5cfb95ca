// Matrix multiplication: C = alpha * op(A) @ op(B) + beta * C, row-major, batched by strides.
// defines: cpu::gemm, cpu::gemm_batched
// The CPU versions split large products over the OpenMP threads and keep OpenBLAS itself single-threaded
// (see kernels/cpu/gemm.cpp for why); called inside an OpenMP region they run in the calling thread.
#pragma once

#include <cstdint>

#include "kernels/stream.h"

namespace stgs::kernels::cpu {

// C: (M, N) with leading dimension ldc; op(A): (M, K); op(B): (K, N). trans_a means A is stored (K, M).
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// batch independent products; matrix b starts at A + b * stride_a etc. (a stride of 0 reuses one matrix).
template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                  int64_t stride_c, int64_t batch);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// cuBLAS (cublasGemmStridedBatchedEx) with the row-major arguments of the CPU version; the row-major
// product C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T. allow_tf32 lets F32
// products use TF32 tensor cores (off by default: parity with the CPU is then exact to F32 rounding).
template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                  int64_t stride_c, int64_t batch, bool allow_tf32, BlasHandle handle, Stream stream);

}  // namespace stgs::kernels::cuda
