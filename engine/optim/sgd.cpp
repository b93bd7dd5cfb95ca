// SGD: option checks, the per-parameter call into the CPU update kernel and the per-group fused CUDA update.
#include "engine/optim/sgd.h"

#include <cmath>

#include "engine/ops/op_utils.h"
#include "kernels/optim.h"

namespace stgs {

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{{std::move(params)}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer("SGD", options.lr, options.weight_decay, {"momentum_buffer"}), options_(options) {
  STGS_CHECK(std::isfinite(options.momentum) && options.momentum >= 0, "SGD: momentum must be finite and >= 0, got ",
             options.momentum);
  STGS_CHECK(std::isfinite(options.dampening), "SGD: dampening must be finite, got ", options.dampening);
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


void SGD::update_cuda(const ParamGroup& group, std::vector<CudaUpdate>& items) {
#if defined(STGS_CUDA)
  // A parameter's first update starts its momentum buffer from the gradient, so parameters on their first
  // update and the others go to separate launches (one list per dtype and first-step flag).
  const bool use_momentum = options_.momentum != 0;
  std::vector<char> first(items.size());
  for (size_t k = 0; k < items.size(); ++k) {
    Tensor& buf = items[k].state->buffers[0];
    first[k] = !buf.defined();
    if (use_momentum && first[k]) buf = empty(items[k].param.shape(), items[k].param.dtype(), items[k].param.device());
  }
  const kernels::Stream stream = cuda_rt::stream(items.front().param.device().index);
  for (DType dtype : {DType::F32, DType::F64}) {
    for (const bool first_step : {true, false}) {
      STGS_DISPATCH_FLOAT(dtype, "SGD", {
        kernels::cuda::TensorList<T> list;
        for (size_t k = 0; k < items.size(); ++k) {
          const CudaUpdate& u = items[k];
          if (u.param.dtype() != dtype || bool(first[k]) != first_step) continue;
          const Tensor& buf = u.state->buffers[0];
          list.push_back({u.param.data<T>(), u.grad.data<T>(), buf.defined() ? buf.data<T>() : nullptr, nullptr,
                          u.param.numel()});
        }
        if (!list.empty())
          kernels::cuda::sgd_update_multi<T>(list, *group.lr, options_.momentum, options_.dampening,
                                             *group.weight_decay, options_.nesterov, first_step, stream);
      });
    }
  }
#else
  STGS_FAIL("SGD: parameter ", items.front().param.str(), " is on ", items.front().param.device().str(),
            ": this binary was built without CUDA");
#endif
}

}  // namespace stgs
