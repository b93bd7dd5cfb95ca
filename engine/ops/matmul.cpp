// Matrix products on BLAS: 2-D and batched with broadcast batch dimensions.
#include "kernels/gemm.h"

#include "engine/ops.h"
#include "engine/ops/op_utils.h"

namespace stgs {
namespace {

// One operand as BLAS sees it: a base pointer, a transpose flag, a leading dimension and a stride between
// the matrices of the (flattened) batch. `keep` holds whatever tensor owns the memory.
struct GemmOperand {
  Tensor keep;
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

// Strides of the batch dims merge into one when each is the next one's stride times its size
// (or the dim is broadcast with stride 0 throughout).
bool batch_collapses(const Tensor& t, int64_t* stride) {
  const int nb = t.dim() - 2;
  if (nb == 0) {
    *stride = 0;
    return true;
  }
  bool all_zero = true;
  for (int i = 0; i < nb; ++i) all_zero = all_zero && (t.strides()[i] == 0 || t.shape()[i] == 1);
  if (all_zero) {
    *stride = 0;
    return true;
  }
  for (int i = 0; i + 1 < nb; ++i)
    if (t.shape()[i] != 1 && t.strides()[i] != t.strides()[i + 1] * t.shape()[i + 1]) return false;
  *stride = t.strides()[nb - 1];
  return true;
}

// t: (batch..., rows, cols) already expanded to the output's batch shape.
GemmOperand prepare(const Tensor& t) {
  const int r = t.dim() - 2, c = t.dim() - 1;
  const int64_t rows = t.shape()[r], cols = t.shape()[c];
  const int64_t sr = t.strides()[r], sc = t.strides()[c];
  GemmOperand op;
  int64_t bstride = 0;
  if (batch_collapses(t, &bstride)) {
    if ((sc == 1 || cols == 1) && sr >= (cols > 1 ? cols : 1) && sr > 0) {
      return {t, false, sr, bstride};
    }
    if ((sr == 1 || rows == 1) && sc >= (rows > 1 ? rows : 1) && sc > 0) {
      return {t, true, sc, bstride};
    }
  }
  Tensor tc = t.contiguous();
  return {tc, false, cols > 0 ? cols : 1, t.dim() > 2 ? rows * cols : 0};
}

// C = op(A) op(B) for every matrix of the batch, on BLAS or cuBLAS.
template <class T>
void gemm(Device device, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, int64_t sa,
          const T* B, int64_t ldb, int64_t sb, T* C, int64_t ldc, int64_t sc, int64_t batch) {
#if defined(STGS_CUDA)
  if (device.is_cuda()) {
    kernels::cuda::gemm_batched<T>(ta, tb, M, N, K, T(1), A, lda, sa, B, ldb, sb, T(0), C, ldc, sc, batch,
                                   cuda_rt::allow_tf32(), cuda_rt::blas(device.index), cuda_rt::stream(device.index));
    return;
  }
#endif
  STGS_CHECK(device.is_cpu(), "matmul on ", device.str(), ": this binary was built without CUDA");
  kernels::cpu::gemm_batched<T>(ta, tb, M, N, K, T(1), A, lda, sa, B, ldb, sb, T(0), C, ldc, sc, batch);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_same("matmul", {&a, &b});
  STGS_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: both operands need at least 2 dimensions, got ", a.str(), " @ ",
             b.str());
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  STGS_CHECK(b.size(-2) == K, "matmul: inner dimensions differ, ", a.str(), " @ ", b.str());

  Shape batch_a, batch_b;
  for (int i = 0; i < a.dim() - 2; ++i) batch_a.push_back(a.shape()[i]);
  for (int i = 0; i < b.dim() - 2; ++i) batch_b.push_back(b.shape()[i]);
  const Shape batch = broadcast_shapes("matmul", batch_a, batch_b);
  Shape out_shape = batch, a_full = batch, b_full = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  a_full.push_back(M);
  a_full.push_back(K);
  b_full.push_back(K);
  b_full.push_back(N);

  Tensor y = empty(out_shape, a.dtype(), a.device());
  {
    NoGradGuard no_grad;
    const GemmOperand A = prepare(a.detach().expand(a_full));
    const GemmOperand B = prepare(b.detach().expand(b_full));
    const int64_t count = batch.numel();
    STGS_DISPATCH_FLOAT(a.dtype(), "matmul",
                        gemm<T>(a.device(), A.trans, B.trans, M, N, K, A.keep.data<T>(), A.ld, A.batch_stride,
                                B.keep.data<T>(), B.ld, B.batch_stride, y.data<T>(), N, M * N, count));
  }
  if (any_requires_grad({&a, &b})) {
    Tensor as = a.detach(), bs = b.detach();
    record("matmul", y, {&a, &b}, [as, bs](const Tensor& g, GradInputs& gi) {
      if (gi.needs(0)) gi.set(0, sum_to(matmul(g, bs.transpose(-1, -2)), as.shape()));
      if (gi.needs(1)) gi.set(1, sum_to(matmul(as.transpose(-1, -2), g), bs.shape()));
    });
  }
  return y;
}

}  // namespace stgs
