// Gradient clipping by the global L2 norm (PyTorch's clip_grad_norm_).
// defines: clip_grad_norm
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace stgs {

// total = sqrt(sum over params of |grad|^2) (params without a gradient are skipped); every gradient is
// scaled in place by min(1, max_norm / (total + 1e-6)). Returns total, the norm before clipping.
// A gradient that is not contiguous is first replaced by a contiguous copy.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace stgs
