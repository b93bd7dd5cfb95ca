// The optimizer base: parameter groups, per-parameter state, zero_grad, and state dicts for resuming.
// defines: ParamGroup, Optimizer
//
// Each group has its own lr and weight decay (schedulers write the lr); other hyperparameters belong to
// the concrete optimizer's options. Per-parameter state is a step count plus named tensors (momentum
// buffer; Adam's moments), created on the parameter's first update, on the parameter's device. Updates run
// under NoGradGuard on the raw data: on the CPU one parameter at a time, on CUDA one parameter group at a
// time through fused multi-tensor kernels (kernels/optim.h). All parameters that get updated must be on
// one device.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace stgs {

struct ParamGroup {
  std::vector<Tensor> params;
  // Unset: the optimizer's default. Always set once the group belongs to an optimizer.
  std::optional<double> lr = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  const std::string& name() const { return name_; }

  // Parameters must be defined leaf F32/F64 tensors, each in at most one group.
  void add_param_group(ParamGroup group);
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }

  // Drops the gradient of every parameter.
  void zero_grad();
  // One update of every parameter that has a gradient (parameters without one are skipped). All of them
  // are checked first (contiguous, gradient of the same dtype/shape/device, one device for the whole
  // optimizer), so a failed check throws before anything is updated.
  void step();

  // Keys: "param_groups.<g>.lr", "param_groups.<g>.weight_decay" (F64 scalars), and for every parameter
  // updated at least once "state.<g>.<i>.step" (I64 scalar) and "state.<g>.<i>.<buffer>" (the buffers
  // share storage with the live state: save or clone() before the next step).
  StateDict state_dict() const;
  // Restores groups' lr/weight decay and all per-parameter state (copied, so the dict stays independent).
  // Throws on a group/parameter count mismatch, a shape mismatch, a missing or an unexpected key.
  void load_state_dict(const StateDict& dict);

 protected:
  // Per-parameter state; buffers are indexed like buffer_names() and undefined until created.
  struct ParamState {
    int64_t step = 0;
    std::vector<Tensor> buffers;
  };

  Optimizer(std::string name, double default_lr, double default_weight_decay, std::vector<std::string> buffer_names);

  // One CUDA parameter to update: its contiguous gradient (same dtype/shape) and its state, whose step
  // already counts this update and whose buffers are sized like buffer_names().
  struct CudaUpdate {
    Tensor param;
    Tensor grad;
    ParamState* state;
  };

  // Updates one CPU parameter whose gradient is defined; grad is contiguous, same dtype/shape as param.
  virtual void update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state) = 0;
  // Updates the parameters of one group that have a gradient, all on the same CUDA device (dtypes and
  // steps may differ). The default throws.
  virtual void update_cuda(const ParamGroup& group, std::vector<CudaUpdate>& items);
  // A zero tensor shaped like param (for lazily created buffers).
  static Tensor zeros_like(const Tensor& param);

 private:
  std::string name_;
  double default_lr_, default_weight_decay_;
  std::vector<std::string> buffer_names_;
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]
};

}  // namespace stgs
