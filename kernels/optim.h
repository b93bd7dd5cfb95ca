// Optimizer update kernels and the two pieces of gradient clipping, on flat contiguous arrays.
// defines: cpu::sgd_update, cpu::adam_update, cpu::sum_squares, cpu::scale_inplace,
//          cuda::OptimTensor, cuda::TensorList, cuda::sgd_update_multi, cuda::adam_update_multi,
//          cuda::sum_squares_multi, cuda::scale_multi
//
// One call updates one parameter tensor in place (all arrays (n), contiguous). Hyperparameters come in
// as double and the per-element arithmetic runs in T, as PyTorch's single-tensor path does. Updates are
// elementwise, so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/stream.h"

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

namespace stgs::kernels::cuda {

// Fused multi-tensor twins of the CPU functions above (apex's multi_tensor_apply scheme): the tensors of
// one list are cut into fixed chunks, and one launch updates up to a few dozen tensors / a few hundred
// chunks (one block per chunk), their pointers and the chunk table passed by value as kernel arguments
// (under the 4 KB parameter limit); longer lists take several launches. Device pointers, contiguous
// arrays; tensors with n == 0 are skipped. Hyperparameters are shared by the whole list (the caller groups
// tensors by param group, dtype and step).
//
// The per-element arithmetic is the CPU kernels' formula, in T, operation by operation, each operation
// rounded on its own (no fused multiply-add). The CPU build (g++ -O3 -march=native) may contract a*b + c
// into an FMA, so CPU and CUDA results agree to a few ulps rather than bit for bit.

// One tensor of a list. Which pointers are used depends on the launcher (see below); others may be null.
template <class T>
struct OptimTensor {
  T* param = nullptr;
  const T* grad = nullptr;
  T* state1 = nullptr;  // SGD: momentum buffer (null when momentum == 0); Adam: exp_avg
  T* state2 = nullptr;  // Adam: exp_avg_sq
  int64_t n = 0;
};
template <class T>
using TensorList = std::vector<OptimTensor<T>>;

// cpu::sgd_update on every tensor of the list (param, grad, state1 = momentum buffer).
template <class T>
void sgd_update_multi(const TensorList<T>& list, double lr, double momentum, double dampening, double weight_decay,
                      bool nesterov, bool first_step, Stream stream);

// cpu::adam_update on every tensor of the list (param, grad, state1 = m, state2 = v); `step` as there.
template <class T>
void adam_update_multi(const TensorList<T>& list, double lr, double beta1, double beta2, double eps,
                       double weight_decay, bool decoupled, int64_t step, Stream stream);

// out_host[0] = sum over all arrays xs[k] (ns[k] elements each) of x[i]^2, accumulated in double: fixed
// chunks, one partial per chunk in a device buffer, then one ordered combine (no atomics), so the result
// depends only on the arrays, not on scheduling. Not the CPU's summation order: equal to it up to
// rounding. Synchronises the stream (the value is on the host on return).
template <class T>
void sum_squares_multi(double* out_host, const std::vector<const T*>& xs, const std::vector<int64_t>& ns,
                       Stream stream);

// x = x * T(s) on every array xs[k] (ns[k] elements), as cpu::scale_inplace.
template <class T>
void scale_multi(const std::vector<T*>& xs, const std::vector<int64_t>& ns, double s, Stream stream);

}  // namespace stgs::kernels::cuda
