// Batch norm (1-D and 2-D, PyTorch semantics) on the CPU or CUDA kernels of kernels/batch_norm.h; in training
// mode inside a dist::BatchNormGroupScope, with statistics over every rank's batch.
#include "kernels/batch_norm.h"

#include <algorithm>
#include <cmath>

#include "engine/distributed/batch_norm_group.h"
#include "engine/ops.h"
#include "engine/ops/op_utils.h"

namespace stgs {
namespace {

// Training-mode statistics over every rank of `group`: per group g and channel c, the sums of x and x^2 and
// the element count are all-reduced, then mean and biased variance give y (batch_norm_fwd_stats), save_mean and
// save_invstd; the running statistics move as the kernel would move them with
// the global statistics. Returns the element count per channel and group over all ranks.
int64_t synced_forward(dist::Communicator& group, const Tensor& xc, const Tensor& wc, const Tensor& bc, Tensor& y,
                       Tensor& mean, Tensor& invstd, const Tensor& running_mean, const Tensor& running_var,
                       int64_t groups, int64_t Ng, int64_t C, int64_t S, double momentum, double eps) {
  const int64_t slice = Ng * C * S;
  Tensor sums = empty(Shape{groups * C * 2}, DType::F64, xc.device());
  for (int64_t g = 0; g < groups; ++g)
    STGS_DISPATCH_FLOAT(xc.dtype(), "batch_norm",
                        STGS_KERNEL(xc.device(), batch_norm_moment_sums<T>, sums.data<double>() + g * C * 2,
                                    xc.data<T>() + g * slice, Ng, C, S));
  std::vector<double> total = sums.to_vector<double>();  // (groups, C, 2), then this rank's count: one all-reduce
  total.push_back(double(Ng * S));
  dist::all_reduce_sum_doubles(group, total);
  const int64_t M = int64_t(total.back());
  STGS_CHECK(M > 1, "batch_norm: expected more than 1 value per channel over all ranks when training, got ", M);

  std::vector<double> stats(size_t(groups * C * 2));  // (groups, C, 2): mean, biased variance
  for (size_t k = 0; k < size_t(groups * C); ++k) {
    const double mu = total[2 * k] / double(M);
    stats[2 * k] = mu;
    stats[2 * k + 1] = std::max(0.0, total[2 * k + 1] / double(M) - mu * mu);
  }
  const Tensor stats_t = from_vector(stats, Shape{groups * C * 2}).to(xc.device());
  for (int64_t g = 0; g < groups; ++g)
    STGS_DISPATCH_FLOAT(xc.dtype(), "batch_norm",
                        STGS_KERNEL(xc.device(), batch_norm_fwd_stats<T>, y.data<T>() + g * slice,
                                    mean.data<T>() + g * C, invstd.data<T>() + g * C, xc.data<T>() + g * slice,
                                    wc.defined() ? wc.data<T>() : nullptr, bc.defined() ? bc.data<T>() : nullptr,
                                    stats_t.data<double>() + g * C * 2, Ng, C, S, T(eps)));
  if (running_mean.defined()) {
    // Group by group, as the kernel updates them; rounded to the buffers' dtype after every group.
    std::vector<double> rm = running_mean.to_vector<double>(), rv = running_var.to_vector<double>();
    const bool f32 = running_mean.dtype() == DType::F32;
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t c = 0; c < C; ++c) {
        const size_t k = size_t(g * C + c);
        const double m = (1.0 - momentum) * rm[size_t(c)] + momentum * stats[2 * k];
        const double v = (1.0 - momentum) * rv[size_t(c)] + momentum * stats[2 * k + 1] * double(M) / double(M - 1);
        rm[size_t(c)] = f32 ? double(float(m)) : m;
        rv[size_t(c)] = f32 ? double(float(v)) : v;
      }
    NoGradGuard no_grad;
    Tensor mean_dst = running_mean, var_dst = running_var;  // handles onto the caller's buffers
    mean_dst.copy_(from_vector(rm, Shape{C}));
    var_dst.copy_(from_vector(rv, Shape{C}));
  }
  return M;
}

// Backward of synced_forward: the sums of dy and dy * xhat over every rank drive dx; the parameter gradients are
// this rank's own sums (the data-parallel gradient reduction adds them over the ranks).
void synced_backward(dist::Communicator& group, GradInputs& gi, const Tensor& gc, const Tensor& xs, const Tensor& ws,
                     const Tensor& mean, const Tensor& invstd, int64_t groups, int64_t Ng, int64_t C, int64_t S,
                     int64_t M_all) {
  const int64_t slice = Ng * C * S;
  Tensor sums = empty(Shape{groups * C * 2}, DType::F64, xs.device());
  for (int64_t k = 0; k < groups; ++k)
    STGS_DISPATCH_FLOAT(xs.dtype(), "batch_norm backward",
                        STGS_KERNEL(xs.device(), batch_norm_grad_sums<T>, sums.data<double>() + k * C * 2,
                                    gc.data<T>() + k * slice, xs.data<T>() + k * slice, mean.data<T>() + k * C,
                                    invstd.data<T>() + k * C, Ng, C, S));
  std::vector<double> total = sums.to_vector<double>();  // (groups, C, 2)
  std::vector<double> dbeta(size_t(C), 0.0), dgamma(size_t(C), 0.0);  // this rank's, summed over the groups
  for (int64_t k = 0; k < groups; ++k)
    for (int64_t c = 0; c < C; ++c) {
      dbeta[size_t(c)] += total[size_t((k * C + c) * 2)];
      dgamma[size_t(c)] += total[size_t((k * C + c) * 2 + 1)];
    }
  if (gi.needs(1)) gi.set(1, from_vector(dgamma, Shape{C}).to(xs.dtype()).to(xs.device()));
  if (gi.needs(2)) gi.set(2, from_vector(dbeta, Shape{C}).to(xs.dtype()).to(xs.device()));
  if (!gi.needs(0)) return;
  dist::all_reduce_sum_doubles(group, total);
  sums = from_vector(total, Shape{groups * C * 2}).to(xs.device());
  Tensor dx = empty(xs.shape(), xs.dtype(), xs.device());
  for (int64_t k = 0; k < groups; ++k)
    STGS_DISPATCH_FLOAT(xs.dtype(), "batch_norm backward",
                        STGS_KERNEL(xs.device(), batch_norm_bwd_input<T>, dx.data<T>() + k * slice,
                                    gc.data<T>() + k * slice, xs.data<T>() + k * slice, mean.data<T>() + k * C,
                                    invstd.data<T>() + k * C, ws.defined() ? ws.data<T>() : nullptr,
                                    sums.data<double>() + k * C * 2, M_all, Ng, C, S));
  gi.set(0, dx);
}

}  // namespace

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
  STGS_CHECK(!training || M != 1 || dist::batch_norm_group() != nullptr,
             "batch_norm: expected more than 1 value per channel when training, got input ",
             x.str());
  STGS_CHECK(std::isfinite(eps) && eps >= 0, "batch_norm: eps must be finite and >= 0, got ", eps);
  // Outside [0, 1] the running statistics would extrapolate (a negative running variance at momentum 5).
  STGS_CHECK(momentum >= 0 && momentum <= 1, "batch_norm: momentum must be in [0, 1], got ", momentum);

  Tensor xc = x.contiguous();
  Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  Tensor mean = empty(Shape{groups * C}, x.dtype(), x.device());    // per group and channel
  Tensor invstd = empty(Shape{groups * C}, x.dtype(), x.device());
  dist::Communicator* group = training ? dist::batch_norm_group() : nullptr;
  int64_t M_all = M;  // values per channel and group over every rank

  if (group != nullptr) {
    M_all = synced_forward(*group, xc, wc, bc, y, mean, invstd, running_mean, running_var, groups, Ng, C, S, momentum,
                           eps);
  } else if (training) {
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
           [xs, ws, mean, invstd, groups, Ng, C, S, training, group, M_all](const Tensor& g, GradInputs& gi) {
             Tensor gc = g.contiguous();
             if (group != nullptr)
               return synced_backward(*group, gi, gc, xs, ws, mean, invstd, groups, Ng, C, S, M_all);
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
