// clip_grad_norm: sums of squares in a fixed order and one in-place scale; CPU gradients tensor by tensor,
// CUDA gradients through fused multi-tensor kernels, one list per (device, dtype).
#include "engine/optim/clip.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/op_utils.h"
#include "kernels/optim.h"

namespace stgs {
namespace {

// CUDA gradients sharing a device and a dtype, in parameter order.
struct CudaBucket {
  Device device;
  DType dtype;
  std::vector<Tensor> grads;
};

double cuda_sum_squares(const CudaBucket& b) {
  double sq = 0;
#if defined(STGS_CUDA)
  STGS_DISPATCH_FLOAT(b.dtype, "clip_grad_norm", {
    std::vector<const T*> xs;
    std::vector<int64_t> ns;
    for (const Tensor& g : b.grads) {
      xs.push_back(g.data<T>());
      ns.push_back(g.numel());
    }
    kernels::cuda::sum_squares_multi<T>(&sq, xs, ns, cuda_rt::stream(b.device.index));
  });
#else
  STGS_FAIL("clip_grad_norm: gradient ", b.grads.front().str(), " is on ", b.device.str(),
            ": this binary was built without CUDA");
#endif
  return sq;
}

void cuda_scale(const CudaBucket& b, double coef) {
#if defined(STGS_CUDA)
  STGS_DISPATCH_FLOAT(b.dtype, "clip_grad_norm", {
    std::vector<T*> xs;
    std::vector<int64_t> ns;
    for (const Tensor& g : b.grads) {
      xs.push_back(g.data<T>());
      ns.push_back(g.numel());
    }
    kernels::cuda::scale_multi<T>(xs, ns, coef, cuda_rt::stream(b.device.index));
  });
#else
  STGS_FAIL("clip_grad_norm: gradient ", b.grads.front().str(), " is on ", b.device.str(),
            ": this binary was built without CUDA");
#endif
}

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  STGS_CHECK(max_norm >= 0, "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> cpu_grads;
  std::vector<CudaBucket> buckets;  // in order of first appearance
  for (size_t i = 0; i < params.size(); ++i) {
    STGS_CHECK(params[i].defined(), "clip_grad_norm: parameter ", i, " is undefined");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    STGS_CHECK(is_floating(g.dtype()), "clip_grad_norm: gradient of parameter ", i, " is ", g.str(),
               ": expected F32 or F64");
    if (!g.is_contiguous()) {
      g = g.contiguous();
      params[i].set_grad(g);
    }
    if (g.device().is_cpu()) {
      cpu_grads.push_back(g);
      continue;
    }
    CudaBucket* bucket = nullptr;
    for (CudaBucket& b : buckets)
      if (b.device == g.device() && b.dtype == g.dtype()) bucket = &b;
    if (bucket == nullptr) bucket = &buckets.emplace_back(CudaBucket{g.device(), g.dtype(), {}});
    bucket->grads.push_back(g);
  }
  // Sum of squares in double: CPU tensors one by one in order, then each CUDA bucket (its fixed-chunk sum)
  // in order: deterministic for a fixed parameter list.
  double total_sq = 0;
  for (const Tensor& g : cpu_grads) {
    double sq = 0;
    STGS_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm", kernels::cpu::sum_squares<T>(&sq, g.data<T>(), g.numel()));
    total_sq += sq;
  }
  for (const CudaBucket& b : buckets) total_sq += cuda_sum_squares(b);
  const double total = std::sqrt(total_sq);
  // PyTorch's rule: scale by min(1, max_norm / (total + 1e-6)); a factor of 1 is skipped here.
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1) {
    for (const Tensor& g : cpu_grads)
      STGS_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm", kernels::cpu::scale_inplace<T>(g.data<T>(), g.numel(), coef));
    for (const CudaBucket& b : buckets) cuda_scale(b, coef);
  }
  return total;
}

}  // namespace stgs
