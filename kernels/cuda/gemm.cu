// cuBLAS GEMM with the row-major interface of kernels::cpu::gemm_batched.
// defines: cuda::gemm_batched
//
// cuBLAS is column-major. A row-major (M, N) matrix C is the column-major (N, M) matrix C^T, and
// C = op(A) op(B) is C^T = op(B)^T op(A)^T, so the call swaps the operands (B first), swaps M and N, and
// keeps each operand's transpose flag and leading dimension as they are. Napkin math: 2*M*N*K flops; an
// H100 SXM peaks near 60 TFLOP/s in plain F32 and ~400 TFLOP/s in TF32.
#include <cublas_v2.h>

#include "kernels/cuda/check.cuh"
#include "kernels/gemm.h"

#define CUBLAS_CHECK(expr)                                                                 \
  do {                                                                                     \
    cublasStatus_t stgs_status_ = (expr);                                                  \
    if (stgs_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      STGS_FAIL("cuBLAS error in ", #expr, ": ", cublasGetStatusName(stgs_status_), ": ",  \
                cublasGetStatusString(stgs_status_));                                      \
  } while (0)

namespace stgs::kernels::cuda {

template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                  int64_t stride_c, int64_t batch, bool allow_tf32, BlasHandle handle, Stream stream) {
  if (M == 0 || N == 0 || batch == 0) return;
  cublasHandle_t h = handle;
  CUBLAS_CHECK(cublasSetStream(h, stream));
  constexpr bool is_float = sizeof(T) == 4;
  const cudaDataType_t type = is_float ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute = is_float ? (allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F)
                                               : CUBLAS_COMPUTE_64F;
  // K == 0: cuBLAS scales C by beta, which is what the CPU version does too.
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          int(N), int(M), int(K), &alpha, B, type, int(ldb), stride_b, A, type,
                                          int(lda), stride_a, &beta, C, type, int(ldc), stride_c, int(batch), compute,
                                          CUBLAS_GEMM_DEFAULT));
  // As CUDA_CHECK_LAUNCH does after the engine's own launches (not its cudaGetLastError: cuBLAS reports through
  // its status): with STGS_SYNC_DEBUG=1 a fault in the cuBLAS kernel is reported here, not at a later launch.
  if (sync_debug()) CUDA_CHECK(cudaDeviceSynchronize());
}

template void gemm_batched<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                                  const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t, bool,
                                  BlasHandle, Stream);
template void gemm_batched<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, int64_t,
                                   const double*, int64_t, int64_t, double, double*, int64_t, int64_t, int64_t, bool,
                                   BlasHandle, Stream);

}  // namespace stgs::kernels::cuda
