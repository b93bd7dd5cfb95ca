// gumbel_softmax_st: validation, the Philox counters it reserves, dispatch, and the straight-through backward.
#include "nas/gumbel.h"

#include <cmath>
#include <limits>

#include "engine/ops/op_utils.h"
#include "kernels/gumbel.h"

namespace stgs::nas {
namespace {

constexpr const char* kOp = "gumbel_softmax_st";

// A NaN or infinite logit would turn its row's soft sample into NaN; on the CPU it is an error here, with
// its place. lc: (rows, K) contiguous.
template <class T>
void check_finite(const Tensor& lc, int64_t rows, int64_t K) {
  const T* x = lc.data<T>();
  for (int64_t i = 0; i < rows * K; ++i)
    STGS_CHECK(std::isfinite(x[i]), kOp, ": logit ", x[i], " at row ", i / K, ", category ", i % K, " of ",
               lc.str(), " is not finite");
}

template <class T>
void sample_rows(GumbelSample& out, const Tensor& lc, int64_t rows, int64_t K, double lambda, bool noise,
                 uint64_t seed, uint64_t offset) {
  T* hard = out.hard.defined() ? out.hard.data<T>() : nullptr;
  STGS_KERNEL(lc.device(), gumbel_softmax_fwd<T>, out.soft.data<T>(), hard, out.index.data<int64_t>(),
              lc.data<T>(), rows, K, T(lambda), noise, seed, offset);
}

}  // namespace

GumbelSample gumbel_softmax_st(const Tensor& logits, double lambda, GumbelMode mode, Generator* gen) {
  detail::check_float(kOp, logits);
  STGS_CHECK(logits.dim() >= 1, kOp, ": logits need a last dimension of categories, got ", logits.str());
  const int64_t K = logits.size(-1);
  STGS_CHECK(K >= 1, kOp, ": no categories to sample from (the last dimension is 0) in ", logits.str());
  STGS_CHECK(std::isfinite(lambda) && lambda > 0, kOp, ": temperature lambda must be finite and > 0, got ", lambda);
  // The kernels divide in the logits' precision: a lambda that is 0 there (1e-50 in F32) would give NaNs.
  STGS_CHECK(logits.dtype() != DType::F32 || float(lambda) >= std::numeric_limits<float>::min(), kOp,
             ": temperature lambda ", lambda, " is below what F32 logits can be divided by");
  const int64_t rows = logits.numel() / K;
  const Tensor lc = logits.contiguous();
  if (lc.device().is_cpu()) STGS_DISPATCH_FLOAT(lc.dtype(), kOp, check_finite<T>(lc, rows, K));

  const bool noise = mode != GumbelMode::PlainSoftmax;
  const double lam = noise ? lambda : 1.0;
  uint64_t seed = 0, offset = 0;
  if (noise) {
    Generator& g = gen ? *gen : default_generator();
    seed = g.seed();
    offset = g.reserve(uint64_t(rows * K));
  }

  GumbelSample out;
  Shape row_shape = logits.shape();
  row_shape.erase(row_shape.size() - 1);
  out.soft = empty(logits.shape(), logits.dtype(), logits.device());
  if (mode == GumbelMode::Hard) out.hard = empty(logits.shape(), logits.dtype(), logits.device());
  out.index = empty(row_shape, DType::I64, logits.device());
  if (rows > 0) STGS_DISPATCH_FLOAT(lc.dtype(), kOp, sample_rows<T>(out, lc, rows, K, lam, noise, seed, offset));

  if (any_requires_grad({&logits})) {
    // One closure for both outputs: the hard sample's gradient is routed through the soft one's Jacobian.
    const Tensor ys = out.soft.detach();
    const BackwardFn backward = [ys, lam, rows, K](const Tensor& g, GradInputs& gi) {
      const Tensor gc = g.contiguous();
      Tensor dx = empty(ys.shape(), ys.dtype(), ys.device());
      if (rows > 0)
        STGS_DISPATCH_FLOAT(ys.dtype(), "gumbel_softmax_st backward",
                            STGS_KERNEL(ys.device(), gumbel_softmax_bwd<T>, dx.data<T>(), gc.data<T>(), ys.data<T>(),
                                        rows, K, T(lam)));
      gi.set(0, dx);
    };
    if (out.hard.defined()) record("gumbel_softmax_st (hard, straight-through)", out.hard, {&logits}, backward);
    record("gumbel_softmax_st (soft)", out.soft, {&logits}, backward);
  }
  return out;
}

}  // namespace stgs::nas
