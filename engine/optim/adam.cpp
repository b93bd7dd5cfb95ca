// Adam/AdamW: option checks, lazily created moments, the per-parameter call into the CPU update kernel and
// the per-group fused CUDA update.
#include "engine/optim/adam.h"

#include <algorithm>
#include <cmath>

#include "engine/ops/op_utils.h"
#include "kernels/optim.h"

namespace stgs {
namespace {

AdamOptions decoupled(AdamOptions options) {
  options.decoupled_weight_decay = true;
  return options;
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam("Adam", std::vector<ParamGroup>{{std::move(params)}}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options) : Adam("Adam", std::move(groups), options) {}

Adam::Adam(const char* name, std::vector<ParamGroup> groups, const AdamOptions& options)
    : Optimizer(name, options.lr, options.weight_decay, {"exp_avg", "exp_avg_sq"}), options_(options) {
  STGS_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1, name,
             ": betas must be in [0, 1), got (", options.beta1, ", ", options.beta2, ")");
  STGS_CHECK(std::isfinite(options.eps) && options.eps >= 0, name, ": eps must be finite and >= 0, got ", options.eps);
  for (ParamGroup& g : groups) add_param_group(std::move(g));
}

void Adam::update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state) {
  Tensor& m = state.buffers[0];
  Tensor& v = state.buffers[1];
  if (!m.defined()) m = zeros_like(param);
  if (!v.defined()) v = zeros_like(param);
  STGS_DISPATCH_FLOAT(param.dtype(), name().c_str(),
                      kernels::cpu::adam_update<T>(param.data<T>(), m.data<T>(), v.data<T>(), grad.data<T>(),
                                                   param.numel(), *group.lr, options_.beta1, options_.beta2,
                                                   options_.eps, *group.weight_decay,
                                                   options_.decoupled_weight_decay, state.step));
}

void Adam::update_cuda(const ParamGroup& group, std::vector<CudaUpdate>& items) {
#if defined(STGS_CUDA)
  // The bias corrections depend on each parameter's step, so one list per (dtype, step) in order of first
  // appearance; normally every parameter of the group has the same step and each dtype is one list.
  std::vector<int64_t> steps;
  for (CudaUpdate& u : items) {
    Tensor& m = u.state->buffers[0];
    Tensor& v = u.state->buffers[1];
    if (!m.defined()) m = zeros_like(u.param);
    if (!v.defined()) v = zeros_like(u.param);
    if (std::find(steps.begin(), steps.end(), u.state->step) == steps.end()) steps.push_back(u.state->step);
  }
  const kernels::Stream stream = cuda_rt::stream(items.front().param.device().index);
  for (DType dtype : {DType::F32, DType::F64}) {
    for (const int64_t step : steps) {
      STGS_DISPATCH_FLOAT(dtype, name().c_str(), {
        kernels::cuda::TensorList<T> list;
        for (const CudaUpdate& u : items) {
          if (u.param.dtype() != dtype || u.state->step != step) continue;
          list.push_back({u.param.data<T>(), u.grad.data<T>(), u.state->buffers[0].data<T>(),
                          u.state->buffers[1].data<T>(), u.param.numel()});
        }
        if (!list.empty())
          kernels::cuda::adam_update_multi<T>(list, *group.lr, options_.beta1, options_.beta2, options_.eps,
                                              *group.weight_decay, options_.decoupled_weight_decay, step, stream);
      });
    }
  }
#else
  STGS_FAIL(name(), ": parameter ", items.front().param.str(), " is on ", items.front().param.device().str(),
            ": this binary was built without CUDA");
#endif
}

AdamW::AdamW(std::vector<Tensor> params, const AdamOptions& options)
    : Adam("AdamW", std::vector<ParamGroup>{{std::move(params)}}, decoupled(options)) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Adam("AdamW", std::move(groups), decoupled(options)) {}

}  // namespace stgs
