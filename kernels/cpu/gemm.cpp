// CPU GEMM through OpenBLAS's cblas (sgemm/dgemm); the engine adds no copies around it.
//
// Threading: the engine has one thread pool, OpenMP's. Left to itself the pthread OpenBLAS starts its own
// threads, which busy-wait for a while after every call, while the OpenMP threads of the code between
// GEMMs (im2col, batch norm, pooling) busy-wait for theirs: on 2 cores the two pools took turns spinning
// and a ResNet-34 forward spent half its time in libgomp's spin loop (5.5 s vs 2.0 s with a passive
// OpenMP wait policy, batch 8 at 224x224). So OpenBLAS runs single-threaded in its caller, and a GEMM big
// enough to share is split here across the OpenMP threads: the matrices of a batch go to different
// threads, and a single large product is cut into blocks of rows of C (or of columns when C is wide), one
// single-threaded BLAS call per block. Each element of C is still summed over K by one BLAS call, so the
// result does not depend on the split; inside an OpenMP region everything runs in the calling thread.
#include "kernels/gemm.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <mutex>

#include "kernels/check.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace stgs::kernels::cpu {
namespace {

// Below about 1 MFLOP a fork-join (a few microseconds) costs more than the split saves.
constexpr double kParallelFlops = 1e6;
// Blocks of C rows/columns are multiples of this (the AVX2 micro-tile width), so no thread gets a ragged
// sliver that the BLAS kernel would pad.
constexpr int64_t kBlockAlign = 16;

void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// Threads to use for `parts` independent pieces of work totalling `flops`.
int threads_for(double flops, int64_t parts) {
  if (omp_in_parallel() || flops < kParallelFlops) return 1;
  return int(std::min<int64_t>(omp_get_max_threads(), parts));
}

// cblas takes int sizes: anything larger would be silently truncated.
void check_blas_sizes(int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
  for (int64_t v : {M, N, K, lda, ldb, ldc})
    STGS_CHECK(v <= INT_MAX, "gemm: size ", v, " (M ", M, ", N ", N, ", K ", K, ", leading dimensions ", lda, "/",
               ldb, "/", ldc, ") exceeds cblas's int range");
}

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_blas_sizes(M, N, K, lda, ldb, ldc);
  cblas_sgemm(CblasRowMajor, ta, tb, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
               int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  check_blas_sizes(M, N, K, lda, ldb, ldc);
  cblas_dgemm(CblasRowMajor, ta, tb, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

// One single-threaded product; C (M, N) = alpha op(A) op(B) + beta C.
template <class T>
void gemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // BLAS leaves C untouched for K == 0 only when beta == 1; make the result well defined
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  blas_gemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
            beta, C, ldc);
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  single_threaded_blas();
  // Split the longer side of C: rows of C are rows of op(A), columns of C are columns of op(B).
  const bool split_rows = M >= N;
  const int64_t extent = split_rows ? M : N;
  const int threads = threads_for(2.0 * double(M) * double(N) * double(K), extent / kBlockAlign);
  if (threads <= 1) {
    gemm_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int64_t block = (extent + threads - 1) / threads;
  const int64_t chunk = (block + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const int64_t lo = std::min(extent, t * chunk), hi = std::min(extent, lo + chunk);
    if (lo == hi) continue;
    if (split_rows) {  // op(A) rows [lo, hi): row i of op(A) is A[i, :] or column i of A
      gemm_serial(trans_a, trans_b, hi - lo, N, K, alpha, A + (trans_a ? lo : lo * lda), lda, B, ldb, beta,
                  C + lo * ldc, ldc);
    } else {  // op(B) columns [lo, hi): column j of op(B) is B[:, j] or row j of B
      gemm_serial(trans_a, trans_b, M, hi - lo, K, alpha, A, lda, B + (trans_b ? lo * ldb : lo), ldb, beta, C + lo,
                  ldc);
    }
  }
}

template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                  int64_t stride_c, int64_t batch) {
  single_threaded_blas();
  // A batch at least as large as the thread count goes one matrix per thread; otherwise each product is
  // split by gemm() itself.
  const double flops = 2.0 * double(M) * double(N) * double(K) * double(batch);
  const int threads = threads_for(flops, batch);
  if (threads > 1 && batch >= omp_get_max_threads()) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < batch; ++b)
      gemm_serial(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
                  C + b * stride_c, ldc);
    return;
  }
  for (int64_t b = 0; b < batch; ++b)
    gemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta, C + b * stride_c, ldc);
}

#define STGS_INSTANTIATE(T)                                                                                       \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,     \
                        int64_t);                                                                                  \
  template void gemm_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t, const T*,    \
                                int64_t, int64_t, T, T*, int64_t, int64_t, int64_t);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
