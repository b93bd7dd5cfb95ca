// Layer norm and dropout (inside a dist::BatchShardScope, with this rank's part of the global batch's mask).
#include "kernels/layer_norm.h"

#include <cmath>
#include <vector>

#include "engine/distributed/batch_shard.h"
#include "engine/ops.h"
#include "engine/ops/op_utils.h"
#include "kernels/random.h"

namespace stgs {

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  detail::check_float("layer_norm", x);
  STGS_CHECK(std::isfinite(eps) && eps >= 0, "layer_norm: eps must be finite and >= 0, got ", eps);
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

namespace {

// One run of elements of a dropout input and the Philox counter of its first element.
struct MaskSegment {
  int64_t start, count;
  uint64_t counter;
};

// The counters of x's elements: one run from a fresh reservation, or, inside a dist::BatchShardScope, each
// block of the shard's rows at the counters those rows have in the global batch (whose counters are reserved
// whole, so every rank's generator stays where the single-process run's is).
std::vector<MaskSegment> mask_segments(const Tensor& x, Generator& g) {
  const dist::BatchShard* shard = dist::current_batch_shard();
  const int64_t n = x.numel();
  if (shard == nullptr || x.dim() == 0 || x.size(0) == 0 || x.size(0) % shard->rows != 0)
    return {{0, n, g.reserve(uint64_t(n))}};
  const int64_t blocks = x.size(0) / shard->rows, row = n / x.size(0);
  const uint64_t base = g.reserve(uint64_t(blocks * shard->global_rows * row));
  std::vector<MaskSegment> segments;
  for (int64_t d = 0; d < blocks; ++d)
    segments.push_back({d * shard->rows * row, shard->rows * row,
                        base + uint64_t((d * shard->global_rows + shard->first_row) * row)});
  return segments;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  detail::check_float("dropout", x);
  STGS_CHECK(p >= 0 && p < 1, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0) return x;
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed();
  const std::vector<MaskSegment> segments = mask_segments(x, g);
  Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  for (const MaskSegment& s : segments)
    STGS_DISPATCH_FLOAT(x.dtype(), "dropout",
                        STGS_KERNEL(x.device(), dropout_fwd<T>, y.data<T>() + s.start, xc.data<T>() + s.start,
                                    s.count, T(p), seed, s.counter));
  if (any_requires_grad({&x})) {
    record("dropout", y, {&x}, [p, seed, segments](const Tensor& grad, GradInputs& gi) {
      Tensor gc = grad.contiguous();
      Tensor dx = empty(gc.shape(), gc.dtype(), gc.device());
      for (const MaskSegment& s : segments)
        STGS_DISPATCH_FLOAT(gc.dtype(), "dropout backward",
                            STGS_KERNEL(gc.device(), dropout_bwd<T>, dx.data<T>() + s.start, gc.data<T>() + s.start,
                                        s.count, T(p), seed, s.counter));
      gi.set(0, dx);
    });
  }
  return y;
}

}  // namespace stgs
