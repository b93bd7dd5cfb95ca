// Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay), PyTorch semantics.
// defines: AdamOptions, Adam, AdamW
//
// Per parameter, with step t counting its updates from 1 (see kernels/optim.h for the exact recurrence):
//   AdamW: param *= 1 - lr * wd            Adam: g = grad + wd * param
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include "engine/optim/optimizer.h"

namespace stgs {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;              // default for groups that do not set their own (PyTorch's AdamW: 1e-2)
  bool decoupled_weight_decay = false;  // true: AdamW
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options = {});
  const AdamOptions& options() const { return options_; }

 protected:
  Adam(const char* name, std::vector<ParamGroup> groups, const AdamOptions& options);

 private:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state) override;
  void update_cuda(const ParamGroup& group, std::vector<CudaUpdate>& items) override;
  AdamOptions options_;
};

// Adam with decoupled weight decay whatever options.decoupled_weight_decay says.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamOptions& options = {});
  AdamW(std::vector<ParamGroup> groups, const AdamOptions& options = {});
};

}  // namespace stgs
