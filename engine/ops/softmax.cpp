// Softmax, log-softmax and cross-entropy, each with a dedicated backward kernel.
#include "kernels/softmax.h"

#include "engine/ops.h"
#include "engine/ops/op_utils.h"

namespace stgs {
namespace {

template <class Fwd, class Bwd>
Tensor softmax_like(const char* name, const Tensor& x, int dim, Fwd fwd, Bwd bwd) {
  detail::check_float(name, x);
  STGS_CHECK(x.dim() > 0, name, ": needs at least one dimension, got ", x.str());
  dim = wrap_dim(name, dim, x.dim());
  Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  const detail::DimSplit s = detail::split_at(x.shape(), dim);
  if (x.numel() > 0) STGS_DISPATCH_FLOAT(x.dtype(), name, fwd(T(), x.device(), y.data<T>(), xc.data<T>(), s));
  if (any_requires_grad({&x})) {
    Tensor ys = y.detach();
    record(name, y, {&x}, [name, ys, s, bwd](const Tensor& g, GradInputs& gi) {
      Tensor gc = g.contiguous();
      Tensor dx = empty(ys.shape(), ys.dtype(), ys.device());
      if (dx.numel() > 0)
        STGS_DISPATCH_FLOAT(ys.dtype(), name, bwd(T(), ys.device(), dx.data<T>(), gc.data<T>(), ys.data<T>(), s));
      gi.set(0, dx);
    });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int dim) {
  return softmax_like(
      "softmax", x, dim,
      [](auto t, Device d, auto* y, const auto* xp, const detail::DimSplit& s) {
        STGS_KERNEL(d, softmax_fwd<decltype(t)>, y, xp, s.outer, s.n, s.inner);
      },
      [](auto t, Device d, auto* dx, const auto* dy, const auto* y, const detail::DimSplit& s) {
        STGS_KERNEL(d, softmax_bwd<decltype(t)>, dx, dy, y, s.outer, s.n, s.inner);
      });
}

Tensor log_softmax(const Tensor& x, int dim) {
  return softmax_like(
      "log_softmax", x, dim,
      [](auto t, Device d, auto* y, const auto* xp, const detail::DimSplit& s) {
        STGS_KERNEL(d, log_softmax_fwd<decltype(t)>, y, xp, s.outer, s.n, s.inner);
      },
      [](auto t, Device d, auto* dx, const auto* dy, const auto* y, const detail::DimSplit& s) {
        STGS_KERNEL(d, log_softmax_bwd<decltype(t)>, dx, dy, y, s.outer, s.n, s.inner);
      });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  detail::check_float("cross_entropy", logits);
  detail::check_defined("cross_entropy", targets);
  STGS_CHECK(logits.dim() == 2, "cross_entropy: logits must be (N, C), got ", logits.str());
  STGS_CHECK(targets.dtype() == DType::I64 && targets.dim() == 1 && targets.size(0) == logits.size(0),
             "cross_entropy: targets must be I64 of shape [", logits.size(0), "], got ", targets.str());
  const int64_t N = logits.size(0), C = logits.size(1);
  {
    // Validated on the host (a GPU kernel would read out of bounds on a bad target).
    const Tensor host = targets.to(Device::cpu()).contiguous();
    const int64_t* t = host.data<int64_t>();
    for (int64_t r = 0; r < N; ++r)
      STGS_CHECK(t[r] >= 0 && t[r] < C, "cross_entropy: target ", t[r], " at row ", r, " is outside [0, ", C, ")");
  }
  const Tensor tc = targets.to(logits.device()).contiguous();

  Tensor lc = logits.contiguous();
  Tensor loss = empty(Shape{N}, logits.dtype(), logits.device());
  STGS_DISPATCH_FLOAT(logits.dtype(), "cross_entropy",
                      STGS_KERNEL(logits.device(), cross_entropy_fwd<T>, loss.data<T>(), lc.data<T>(),
                                  tc.data<int64_t>(), N, C));
  if (any_requires_grad({&logits})) {
    Tensor ls = lc.detach();
    record("cross_entropy", loss, {&logits}, [ls, tc, N, C](const Tensor& g, GradInputs& gi) {
      Tensor gc = g.contiguous();
      Tensor dx = empty(ls.shape(), ls.dtype(), ls.device());
      STGS_DISPATCH_FLOAT(ls.dtype(), "cross_entropy backward",
                          STGS_KERNEL(ls.device(), cross_entropy_bwd<T>, dx.data<T>(), gc.data<T>(), ls.data<T>(),
                                      tc.data<int64_t>(), N, C));
      gi.set(0, dx);
    });
  }
  switch (reduction) {
    case Reduction::Mean: STGS_CHECK(N > 0, "cross_entropy: mean over an empty batch"); return mean(loss);
    case Reduction::Sum: return sum(loss);
    case Reduction::None: return loss;
  }
  return loss;
}

}  // namespace stgs
