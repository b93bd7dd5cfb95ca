// Gradient clipping by the global L2 norm (PyTorch's clip_grad_norm_).
// defines: clip_grad_norm
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace stgs {

// total = sqrt(sum over params of |grad|^2) (params without a gradient are skipped); every gradient is
// scaled in place by min(1, max_norm / (total + 1e-6)). Returns total, the norm before clipping.
// A gradient that is not contiguous is first replaced by a contiguous copy. Gradients may be on any
// devices: CPU ones are summed tensor by tensor, CUDA ones by one fused deterministic sum per (device,
// dtype), so a CUDA norm equals the CPU one up to rounding (summation order), not bit for bit.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace stgs
