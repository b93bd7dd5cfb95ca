// clip_grad_norm: per-tensor sums of squares (fixed order) and one in-place scale.
#include "engine/optim/clip.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/op_utils.h"
#include "kernels/optim.h"

namespace stgs {

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  STGS_CHECK(max_norm >= 0, "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    STGS_CHECK(params[i].defined(), "clip_grad_norm: parameter ", i, " is undefined");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    STGS_CHECK(g.device().is_cpu(), "clip_grad_norm: gradient of parameter ", i, " (", g.str(),
               ") is on ", g.device().str(), ": no CUDA kernel yet");
    if (!g.is_contiguous()) {
      g = g.contiguous();
      params[i].set_grad(g);
    }
    grads.push_back(g);
  }
  // Sum of squares in double, tensor by tensor in order: deterministic for a fixed parameter list.
  double total_sq = 0;
  for (const Tensor& g : grads) {
    double sq = 0;
    STGS_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm", kernels::cpu::sum_squares<T>(&sq, g.data<T>(), g.numel()));
    total_sq += sq;
  }
  const double total = std::sqrt(total_sq);
  // PyTorch's rule: scale by min(1, max_norm / (total + 1e-6)); a factor of 1 is skipped here.
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1)
    for (const Tensor& g : grads)
      STGS_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm", kernels::cpu::scale_inplace<T>(g.data<T>(), g.numel(), coef));
  return total;
}

}  // namespace stgs
