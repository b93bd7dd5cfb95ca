// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay (PyTorch semantics).
// defines: SGDOptions, SGD
//
// Per parameter (see kernels/optim.h for the exact recurrence):
//   g = grad + wd * param;  buf = g on the first step, else momentum * buf + (1 - dampening) * g;
//   param -= lr * (nesterov ? g + momentum * buf : buf)       (momentum 0: param -= lr * g)
#pragma once

#include "engine/optim/optimizer.h"

namespace stgs {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;  // default for groups that do not set their own
  bool nesterov = false;    // needs momentum > 0 and dampening == 0
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  const SGDOptions& options() const { return options_; }

 private:
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state) override;
  void update_cuda(const ParamGroup& group, std::vector<CudaUpdate>& items) override;
  SGDOptions options_;
};

}  // namespace stgs
