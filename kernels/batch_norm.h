// Batch normalisation over dim 1 of x viewed as (N, C, S): S is the spatial size (H * W, L, or 1).
// defines: cpu::batch_norm_fwd_train, cpu::batch_norm_fwd_eval, cpu::batch_norm_bwd, cpu::batch_norm_moment_sums,
//          cpu::batch_norm_fwd_stats, cpu::batch_norm_grad_sums, cpu::batch_norm_bwd_input and their cuda:: twins
#pragma once

#include <cstdint>

#include "kernels/stream.h"

namespace stgs::kernels::cpu {

// Element (n, c, s) of x, y, dy, dx sits at (n * C + c) * S + s. Per channel c, over the M = N * S
// elements of that channel:
//   mean = sum(x) / M,  var = sum((x - mean)^2) / M (biased),  invstd = 1 / sqrt(var + eps)
//   y = (x - mean) * invstd * gamma + beta
// Sums run in a fixed order (n, then s) with a double accumulator, so results do not depend on the
// thread count.

// Training forward. y: (N, C, S); save_mean, save_invstd: (C), written (kept for backward).
// gamma, beta: (C) or null (gamma 1, beta 0). running_mean, running_var: (C) or null; when non-null they
// are updated in place: r = (1 - momentum) r + momentum * stat, running_var with the unbiased variance
// var * M / (M - 1). Requires M >= 2 (the op checks).
template <class T>
void batch_norm_fwd_train(T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var, const T* x,
                          const T* gamma, const T* beta, int64_t N, int64_t C, int64_t S, T momentum, T eps);

// Eval forward with the running statistics: mean = running_mean, invstd = 1 / sqrt(running_var + eps).
// y: (N, C, S); save_mean, save_invstd: (C), written (the statistics used, kept for backward).
template <class T>
void batch_norm_fwd_eval(T* y, T* save_mean, T* save_invstd, const T* x, const T* gamma, const T* beta,
                         const T* running_mean, const T* running_var, int64_t N, int64_t C, int64_t S, T eps);

// Backward. dx: (N, C, S); dgamma, dbeta: (C); each written when non-null. mean, invstd: (C) from the
// forward. With xhat = (x - mean) * invstd, g = gamma (1 when null), sums over the M elements of a channel:
//   dbeta = sum(dy),  dgamma = sum(dy * xhat)
//   training (mean and invstd depend on x):  dx = g * invstd * (dy - dbeta / M - xhat * dgamma / M)
//   eval (mean and invstd are constants):    dx = g * invstd * dy
template <class T>
void batch_norm_bwd(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* invstd,
                    const T* gamma, int64_t N, int64_t C, int64_t S, bool training);

// Statistics over several processes' batches (synchronised batch norm, engine/distributed/batch_norm_group.h):
// each process sums its part, the sums are added over the processes, and the totals drive the normalisation
// (batch_norm_fwd_stats) and the backward below.
// sums: (C, 2) doubles, [c][0] = sum(x), [c][1] = sum(x^2) over this process's N * S elements of channel c.
template <class T>
void batch_norm_moment_sums(double* sums, const T* x, int64_t N, int64_t C, int64_t S);

// Forward with given statistics: stats (C, 2) doubles, [c][0] = mean, [c][1] = biased variance; as the
// training forward after its statistics (double mean and invstd in the normalisation: a mean rounded to T would
// shift xhat by its rounding error over the standard deviation, large when the mean dwarfs the spread).
// y: (N, C, S); save_mean, save_invstd: (C), written.
template <class T>
void batch_norm_fwd_stats(T* y, T* save_mean, T* save_invstd, const T* x, const T* gamma, const T* beta,
                          const double* stats, int64_t N, int64_t C, int64_t S, T eps);

// sums: (C, 2) doubles, [c][0] = sum(dy), [c][1] = sum(dy * xhat), xhat = (x - mean) * invstd.
template <class T>
void batch_norm_grad_sums(double* sums, const T* dy, const T* x, const T* mean, const T* invstd, int64_t N, int64_t C,
                          int64_t S);

// Training-mode dx from sums over all processes (M elements per channel in all):
//   dx = g * invstd * (dy - sums[c][0] / M - xhat * sums[c][1] / M).
template <class T>
void batch_norm_bwd_input(T* dx, const T* dy, const T* x, const T* mean, const T* invstd, const T* gamma,
                          const double* sums, int64_t M, int64_t N, int64_t C, int64_t S);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above: same arguments and semantics (double accumulation, running stats
// with the unbiased variance), device pointers, stream last. Per-channel sums are deterministic: fixed
// chunks of each channel are summed by fixed trees, then combined in chunk order (no atomics).
template <class T>
void batch_norm_fwd_train(T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var, const T* x,
                          const T* gamma, const T* beta, int64_t N, int64_t C, int64_t S, T momentum, T eps,
                          Stream stream);
template <class T>
void batch_norm_fwd_eval(T* y, T* save_mean, T* save_invstd, const T* x, const T* gamma, const T* beta,
                         const T* running_mean, const T* running_var, int64_t N, int64_t C, int64_t S, T eps,
                         Stream stream);
template <class T>
void batch_norm_bwd(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* invstd,
                    const T* gamma, int64_t N, int64_t C, int64_t S, bool training, Stream stream);
// sums, stats: device pointers, (C, 2) doubles as on the CPU.
template <class T>
void batch_norm_moment_sums(double* sums, const T* x, int64_t N, int64_t C, int64_t S, Stream stream);
template <class T>
void batch_norm_fwd_stats(T* y, T* save_mean, T* save_invstd, const T* x, const T* gamma, const T* beta,
                          const double* stats, int64_t N, int64_t C, int64_t S, T eps, Stream stream);
template <class T>
void batch_norm_grad_sums(double* sums, const T* dy, const T* x, const T* mean, const T* invstd, int64_t N, int64_t C,
                          int64_t S, Stream stream);
template <class T>
void batch_norm_bwd_input(T* dx, const T* dy, const T* x, const T* mean, const T* invstd, const T* gamma,
                          const double* sums, int64_t M, int64_t N, int64_t C, int64_t S, Stream stream);

}  // namespace stgs::kernels::cuda
