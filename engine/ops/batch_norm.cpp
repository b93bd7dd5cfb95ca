// Batch norm (1-D and 2-D, PyTorch semantics) on the CPU or CUDA kernels of kernels/batch_norm.h.
#include "kernels/batch_norm.h"

#include "engine/ops.h"
#include "engine/ops/op_utils.h"

namespace stgs {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps, int64_t groups) {
  detail::check_float("batch_norm", x);
  STGS_CHECK(x.dim() >= 2 && x.dim() <= 4, "batch_norm: expected input (N, C), (N, C, L) or (N, C, H, W), got ",
             x.str());
  const int64_t N = x.size(0), C = x.size(1);
  int64_t S = 1;
  for (int i = 2; i < x.dim(); ++i) S *= x.size(i);
  STGS_CHECK(groups >= 1 && N % groups == 0, "batch_norm: ", groups, " groups do not divide the batch of input ",
             x.str());
  if (!training) groups = 1;  // running statistics: every sample alike
  const int64_t Ng = N / groups;  // samples per group
  const int64_t M = Ng * S;       // values per channel and group

  const std::pair<const Tensor*, const char*> per_channel[] = {
      {&weight, "weight"}, {&bias, "bias"}, {&running_mean, "running_mean"}, {&running_var, "running_var"}};
  for (const auto& [p, what] : per_channel) {
    if (!p->defined()) continue;
    detail::check_same("batch_norm", {&x, p});
    STGS_CHECK(p->dim() == 1 && p->size(0) == C, "batch_norm: ", what, " ", p->str(), " must have shape [", C,
               "] (the channels of input ", x.str(), ")");
  }
  STGS_CHECK(running_mean.defined() == running_var.defined(),
             "batch_norm: running_mean and running_var must be both defined or both undefined");
  STGS_CHECK(training || running_mean.defined(),
             "batch_norm: eval mode (training = false) needs running_mean and running_var, input ", x.str());
  STGS_CHECK(!training || M != 1, "batch_norm: expected more than 1 value per channel when training, got input ",
             x.str());
  STGS_CHECK(eps >= 0, "batch_norm: eps must be >= 0, got ", eps);

  Tensor xc = x.contiguous();
  Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  Tensor mean = empty(Shape{groups * C}, x.dtype(), x.device());    // per group and channel
  Tensor invstd = empty(Shape{groups * C}, x.dtype(), x.device());

  if (training) {
    // The kernel updates the running statistics in place; a non-contiguous buffer goes through a copy.
    // An empty batch (M == 0) has no statistics and leaves them alone.
    const bool update = running_mean.defined() && M > 0;
    Tensor rm, rv;
    if (update) {
      NoGradGuard no_grad;
      rm = running_mean.is_contiguous() ? running_mean : running_mean.contiguous();
      rv = running_var.is_contiguous() ? running_var : running_var.contiguous();
    }
    const int64_t slice = Ng * C * S;
    for (int64_t g = 0; g < groups; ++g)
      STGS_DISPATCH_FLOAT(x.dtype(), "batch_norm",
                          STGS_KERNEL(x.device(), batch_norm_fwd_train<T>,
                              y.data<T>() + g * slice, mean.data<T>() + g * C, invstd.data<T>() + g * C,
                              update ? rm.data<T>() : nullptr, update ? rv.data<T>() : nullptr,
                              xc.data<T>() + g * slice, wc.defined() ? wc.data<T>() : nullptr,
                              bc.defined() ? bc.data<T>() : nullptr, Ng, C, S, T(momentum), T(eps)));
    if (update) {
      NoGradGuard no_grad;
      Tensor mean_dst = running_mean, var_dst = running_var;  // handles onto the caller's buffers
      if (!mean_dst.is_contiguous()) mean_dst.copy_(rm);
      if (!var_dst.is_contiguous()) var_dst.copy_(rv);
    }
  } else {
    Tensor rm = running_mean.contiguous(), rv = running_var.contiguous();
    STGS_DISPATCH_FLOAT(x.dtype(), "batch_norm",
                        STGS_KERNEL(x.device(), batch_norm_fwd_eval<T>,
                            y.data<T>(), mean.data<T>(), invstd.data<T>(), xc.data<T>(),
                            wc.defined() ? wc.data<T>() : nullptr, bc.defined() ? bc.data<T>() : nullptr,
                            rm.data<T>(), rv.data<T>(), N, C, S, T(eps)));
  }

  if (any_requires_grad({&x, &weight, &bias})) {
    Tensor xs = xc.detach(), ws = wc.defined() ? wc.detach() : Tensor();
    record("batch_norm", y, {&x, &weight, &bias},
           [xs, ws, mean, invstd, groups, Ng, C, S, training](const Tensor& g, GradInputs& gi) {
             Tensor gc = g.contiguous();
             // Per-group parameter gradients (groups, C), summed over the groups below.
             Tensor dx = gi.needs(0) ? empty(xs.shape(), xs.dtype(), xs.device()) : Tensor();
             Tensor dw = gi.needs(1) ? empty(Shape{groups, C}, xs.dtype(), xs.device()) : Tensor();
             Tensor db = gi.needs(2) ? empty(Shape{groups, C}, xs.dtype(), xs.device()) : Tensor();
             const int64_t slice = Ng * C * S;
             for (int64_t k = 0; k < groups; ++k)
               STGS_DISPATCH_FLOAT(xs.dtype(), "batch_norm backward",
                                   STGS_KERNEL(xs.device(), batch_norm_bwd<T>,
                                       dx.defined() ? dx.data<T>() + k * slice : nullptr,
                                       dw.defined() ? dw.data<T>() + k * C : nullptr,
                                       db.defined() ? db.data<T>() + k * C : nullptr, gc.data<T>() + k * slice,
                                       xs.data<T>() + k * slice, mean.data<T>() + k * C, invstd.data<T>() + k * C,
                                       ws.defined() ? ws.data<T>() : nullptr, Ng, C, S, training));
             if (gi.needs(0)) gi.set(0, dx);
             if (gi.needs(1)) gi.set(1, groups == 1 ? dw.reshape({C}) : sum(dw, {0}));
             if (gi.needs(2)) gi.set(2, groups == 1 ? db.reshape({C}) : sum(db, {0}));
           });
  }
  return y;
}

}  // namespace stgs
