// Optimizer update kernels and the two pieces of gradient clipping, on flat contiguous arrays.
// defines: cpu::sgd_update, cpu::adam_update, cpu::sum_squares, cpu::scale_inplace
//
// One call updates one parameter tensor in place (all arrays (n), contiguous). Hyperparameters come in
// as double and the per-element arithmetic runs in T, as PyTorch's single-tensor path does. Updates are
// elementwise, so results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace stgs::kernels::cpu {

// SGD with PyTorch semantics (g = grad):
//   g   = g + weight_decay * param
//   buf = first_step ? g : momentum * buf + (1 - dampening) * g        (only when momentum != 0)
//   g   = nesterov ? g + momentum * buf : buf                          (only when momentum != 0)
//   param = param - lr * g
// momentum_buf may be null when momentum == 0.
template <class T>
void sgd_update(T* param, T* momentum_buf, const T* grad, int64_t n, double lr, double momentum, double dampening,
                double weight_decay, bool nesterov, bool first_step);

// Adam / AdamW with PyTorch semantics; `step` counts this update (1 on the first):
//   decoupled (AdamW): param = param * (1 - lr * weight_decay)
//   else (Adam, L2):   g = g + weight_decay * param
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   param = param - (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// m and v start at zero.
template <class T>
void adam_update(T* param, T* m, T* v, const T* grad, int64_t n, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step);

// out[0] = sum of x[i]^2, accumulated in double over fixed 4096-element blocks combined in order
// (independent of the thread count).
template <class T>
void sum_squares(double* out, const T* x, int64_t n);

// x = x * s
template <class T>
void scale_inplace(T* x, int64_t n, double s);

}  // namespace stgs::kernels::cpu
