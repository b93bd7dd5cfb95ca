// Layer norm and dropout.
#include "kernels/layer_norm.h"

#include "engine/ops.h"
#include "engine/ops/op_utils.h"
#include "kernels/random.h"

namespace stgs {

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  detail::check_float("layer_norm", x);
  const int k = normalized_shape.size();
  STGS_CHECK(k >= 1 && x.dim() >= k, "layer_norm: normalized_shape ", normalized_shape.str(),
             " does not fit input ", x.str());
  for (int i = 0; i < k; ++i)
    STGS_CHECK(x.shape()[x.dim() - k + i] == normalized_shape[i], "layer_norm: input ", x.str(),
               " does not end with normalized_shape ", normalized_shape.str());
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    detail::check_same("layer_norm", {&x, p});
    STGS_CHECK(p->shape() == normalized_shape, "layer_norm: weight/bias ", p->str(), " must have shape ",
               normalized_shape.str());
  }
  const int64_t D = normalized_shape.numel();
  const int64_t rows = D > 0 ? x.numel() / D : 0;
  Tensor xc = x.contiguous();
  Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  Tensor mean = empty(Shape{rows}, x.dtype(), x.device());
  Tensor rstd = empty(Shape{rows}, x.dtype(), x.device());
  STGS_DISPATCH_FLOAT(x.dtype(), "layer_norm",
                      STGS_KERNEL(x.device(), layer_norm_fwd<T>, y.data<T>(), mean.data<T>(), rstd.data<T>(),
                                  xc.data<T>(), wc.defined() ? wc.data<T>() : nullptr,
                                  bc.defined() ? bc.data<T>() : nullptr, rows, D, T(eps)));
  if (any_requires_grad({&x, &weight, &bias})) {
    Tensor xs = xc.detach(), ws = wc.defined() ? wc.detach() : Tensor();
    record("layer_norm", y, {&x, &weight, &bias},
           [xs, ws, mean, rstd, rows, D, normalized_shape](const Tensor& g, GradInputs& gi) {
             Tensor gc = g.contiguous();
             Tensor dx = empty(xs.shape(), xs.dtype(), xs.device());
             Tensor dw = gi.needs(1) ? empty(normalized_shape, xs.dtype(), xs.device()) : Tensor();
             Tensor db = gi.needs(2) ? empty(normalized_shape, xs.dtype(), xs.device()) : Tensor();
             STGS_DISPATCH_FLOAT(xs.dtype(), "layer_norm backward",
                                 STGS_KERNEL(xs.device(), layer_norm_bwd<T>,
                                     dx.data<T>(), dw.defined() ? dw.data<T>() : nullptr,
                                     db.defined() ? db.data<T>() : nullptr, gc.data<T>(), xs.data<T>(),
                                     mean.data<T>(), rstd.data<T>(), ws.defined() ? ws.data<T>() : nullptr, rows, D));
             if (gi.needs(0)) gi.set(0, dx);
             if (gi.needs(1)) gi.set(1, dw);
             if (gi.needs(2)) gi.set(2, db);
           });
  }
  return y;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  detail::check_float("dropout", x);
  STGS_CHECK(p >= 0 && p < 1, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0) return x;
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed();
  const uint64_t offset = g.reserve(uint64_t(x.numel()));
  Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  STGS_DISPATCH_FLOAT(x.dtype(), "dropout",
                      STGS_KERNEL(x.device(), dropout_fwd<T>, y.data<T>(), xc.data<T>(), y.numel(), T(p), seed,
                                  offset));
  if (any_requires_grad({&x})) {
    record("dropout", y, {&x}, [p, seed, offset](const Tensor& grad, GradInputs& gi) {
      Tensor gc = grad.contiguous();
      Tensor dx = empty(gc.shape(), gc.dtype(), gc.device());
      STGS_DISPATCH_FLOAT(gc.dtype(), "dropout backward",
                          STGS_KERNEL(gc.device(), dropout_bwd<T>, dx.data<T>(), gc.data<T>(), dx.numel(), T(p),
                                      seed, offset));
      gi.set(0, dx);
    });
  }
  return y;
}

}  // namespace stgs
