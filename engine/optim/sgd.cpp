// SGD: option checks and the per-parameter call into the update kernel.
#include "engine/optim/sgd.h"

#include "engine/ops/op_utils.h"
#include "kernels/optim.h"

namespace stgs {

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{{std::move(params)}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer("SGD", options.lr, options.weight_decay, {"momentum_buffer"}), options_(options) {
  STGS_CHECK(options.momentum >= 0, "SGD: momentum must be >= 0, got ", options.momentum);
  STGS_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
             "SGD: Nesterov momentum needs momentum > 0 and dampening 0, got momentum ", options.momentum,
             ", dampening ", options.dampening);
  for (ParamGroup& g : groups) add_param_group(std::move(g));
}

void SGD::update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state) {
  Tensor& buf = state.buffers[0];
  const bool first_step = !buf.defined();
  if (options_.momentum != 0 && first_step) buf = empty(param.shape(), param.dtype(), param.device());
  STGS_DISPATCH_FLOAT(param.dtype(), "SGD",
                      kernels::cpu::sgd_update<T>(param.data<T>(), buf.defined() ? buf.data<T>() : nullptr,
                                                  grad.data<T>(), param.numel(), *group.lr, options_.momentum,
                                                  options_.dampening, *group.weight_decay, options_.nesterov,
                                                  first_step));
}

}  // namespace stgs
