// Adam/AdamW: option checks, lazily created moments and the per-parameter call into the update kernel.
#include "engine/optim/adam.h"

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
  STGS_CHECK(options.eps >= 0, name, ": eps must be >= 0, got ", options.eps);
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

AdamW::AdamW(std::vector<Tensor> params, const AdamOptions& options)
    : Adam("AdamW", std::vector<ParamGroup>{{std::move(params)}}, decoupled(options)) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Adam("AdamW", std::move(groups), decoupled(options)) {}

}  // namespace stgs
