// CUDA twins of kernels/batch_norm.h: batch norm over x viewed as (N, C, S).
// defines: cuda::batch_norm_fwd_train, cuda::batch_norm_fwd_eval, cuda::batch_norm_bwd, cuda::batch_norm_moment_sums,
//          cuda::batch_norm_fwd_stats, cuda::batch_norm_grad_sums, cuda::batch_norm_bwd_input
//
// Three steps per call, all deterministic (no atomics):
//   1. partial sums: channel c's M = N * S elements are cut into `parts` fixed chunks; block (c, part) sums
//      its chunk in double, threads striding through it and a fixed tree combining them;
//   2. per channel, one thread adds the chunk sums in chunk order and derives the statistics, the
//      running-stat update and the per-channel coefficients of step 3;
//   3. an elementwise pass writes y (or dx) from x (and dy) and those coefficients, in double like the CPU.
// Forward statistics use shifted sums: with K = the channel's first element, sum(x - K) and
// sum((x - K)^2) give mean = K + sum(x - K) / M and var = (sum((x - K)^2) - sum(x - K)^2 / M) / M, so the
// one-pass variance does not cancel catastrophically when |mean| >> std (K is within the data's spread).
// Napkin math (F32): forward reads x twice and writes y (12 B per element; ideal 8), backward reads dy and
// x twice and writes dx (20 B; ideal 12). ResNet-34's first BN (64 x 64 x 112 x 112) moves ~0.6 GB
// forward: ~0.2 ms at 3 TB/s.
#include <cstdint>

#include "kernels/batch_norm.h"
#include "kernels/cuda/common.cuh"

namespace stgs::kernels::cuda {
namespace {

// Per-channel coefficients of the elementwise passes.
struct Affine {  // forward: y = x * scale + shift
  double scale, shift;
};
struct BwdCoef {  // backward: dx = scale * (dy - mean_dy - (x - mean) * invstd * mean_dy_xhat)
  double scale, mean, invstd, mean_dy, mean_dy_xhat;
};

// Terms summed per channel by the partial-sum kernel; prepare() runs once per block for its channel.
template <class T>
struct MomentTerms {  // (x - K, (x - K)^2), K = the channel's first element
  const T* x;
  int64_t S;
  double K = 0;
  __device__ void prepare(int64_t c, int64_t M) { K = M > 0 ? double(x[c * S]) : 0.0; }
  __device__ double2 operator()(int64_t i) const {
    const double d = double(x[i]) - K;
    return make_double2(d, d * d);
  }
};

template <class T>
struct RawMomentTerms {  // (x, x^2): unshifted, so that sums from several processes add up
  const T* x;
  __device__ void prepare(int64_t, int64_t) {}
  __device__ double2 operator()(int64_t i) const {
    const double v = double(x[i]);
    return make_double2(v, v * v);
  }
};

template <class T>
struct GradTerms {  // (dy, dy * (x - mean))
  const T* dy;
  const T* x;
  const T* mean;
  double mu = 0;
  __device__ void prepare(int64_t c, int64_t) { mu = double(mean[c]); }
  __device__ double2 operator()(int64_t i) const {
    const double g = double(dy[i]);
    return make_double2(g, g * (double(x[i]) - mu));
  }
};

// Step 1. Block b = c * parts + part sums the terms over chunk `part` of channel c: flat indices
// m = n * S + s in [part * chunk, (part + 1) * chunk) of the channel, element (n * C + c) * S + s.
// partial: (C, parts).
template <class Terms>
__global__ void channel_partials(double2* partial, Terms terms, int64_t N, int64_t C, int64_t S, int64_t parts) {
  const int64_t c = blockIdx.x / parts, part = blockIdx.x % parts;
  const int64_t M = N * S, chunk = (M + parts - 1) / parts;
  const int64_t end = min(M, (part + 1) * chunk);
  terms.prepare(c, M);
  double a = 0, b = 0;
  int64_t m = part * chunk + threadIdx.x;
  if (m < end) {
    // (n, s) of the thread's first element, then advanced by blockDim.x with a carry: no division per element.
    int64_t n = m / S, s = m % S;
    const int64_t step_n = blockDim.x / S, step_s = blockDim.x % S;
    for (; m < end; m += blockDim.x) {
      const double2 t = terms((n * C + c) * S + s);
      a += t.x;
      b += t.y;
      n += step_n;
      s += step_s;
      if (s >= S) {
        s -= S;
        ++n;
      }
    }
  }
  a = block_sum(a);
  b = block_sum(b);
  if (threadIdx.x == 0) partial[blockIdx.x] = make_double2(a, b);
}

// The chunk sums of channel c, added in chunk order.
__device__ double2 channel_total(const double2* partial, int64_t c, int64_t parts) {
  double a = 0, b = 0;
  for (int64_t p = 0; p < parts; ++p) {
    a += partial[c * parts + p].x;
    b += partial[c * parts + p].y;
  }
  return make_double2(a, b);
}

// Step 2, training forward: statistics, running-stat update (unbiased variance), affine coefficients.
template <class T>
__global__ void finish_train(Affine* coef, T* save_mean, T* save_invstd, T* running_mean, T* running_var,
                             const double2* partial, const T* x, const T* gamma, const T* beta, int64_t C, int64_t S,
                             int64_t M, int64_t parts, double momentum, double eps) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    const double2 t = channel_total(partial, c, parts);
    const double K = M > 0 ? double(x[c * S]) : 0.0;
    const double mean = K + t.x / double(M);  // M == 0: NaN, as on the CPU
    double var = (t.y - t.x * t.x / double(M)) / double(M);  // biased
    if (var < 0) var = 0;                                   // rounding only; a NaN stays NaN
    const double invstd = 1.0 / sqrt(var + eps);
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    if (running_mean) running_mean[c] = T((1.0 - momentum) * double(running_mean[c]) + momentum * mean);
    if (running_var) {
      const double unbiased = M > 1 ? var * double(M) / double(M - 1) : var;
      running_var[c] = T((1.0 - momentum) * double(running_var[c]) + momentum * unbiased);
    }
    const double scale = invstd * (gamma ? double(gamma[c]) : 1.0);
    coef[c] = {scale, (beta ? double(beta[c]) : 0.0) - mean * scale};
  }
}

// Step 2, eval forward: the running statistics as mean and invstd.
template <class T>
__global__ void finish_eval(Affine* coef, T* save_mean, T* save_invstd, const T* running_mean, const T* running_var,
                            const T* gamma, const T* beta, int64_t C, double eps) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    const double mean = double(running_mean[c]);
    const double invstd = 1.0 / sqrt(double(running_var[c]) + eps);
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    const double scale = invstd * (gamma ? double(gamma[c]) : 1.0);
    coef[c] = {scale, (beta ? double(beta[c]) : 0.0) - mean * scale};
  }
}

// Step 2, backward: dbeta, dgamma and the coefficients of dx. partial is null when no sums were taken
// (eval mode without parameter gradients).
template <class T>
__global__ void finish_bwd(BwdCoef* coef, T* dgamma, T* dbeta, const double2* partial, const T* mean,
                           const T* invstd, const T* gamma, int64_t C, int64_t M, int64_t parts, bool training) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    const double rs = double(invstd[c]);
    const double2 t = partial ? channel_total(partial, c, parts) : make_double2(0.0, 0.0);
    const double sum_dy = t.x, sum_dy_xhat = t.y * rs;
    if (dbeta) dbeta[c] = T(sum_dy);
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    const bool centre = training && M > 0;
    coef[c] = {rs * (gamma ? double(gamma[c]) : 1.0), double(mean[c]), rs, centre ? sum_dy / double(M) : 0.0,
               centre ? sum_dy_xhat / double(M) : 0.0};
  }
}

// The per-channel totals as (C, 2) doubles; the second scaled by invstd[c] when given (sum(dy * xhat)).
template <class T>
__global__ void write_sums(double* sums, const double2* partial, const T* invstd, int64_t C, int64_t parts) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    const double2 t = channel_total(partial, c, parts);
    sums[2 * c] = t.x;
    sums[2 * c + 1] = invstd ? t.y * double(invstd[c]) : t.y;
  }
}

// Forward coefficients from given statistics: stats (C, 2) = (mean, biased variance) in double.
template <class T>
__global__ void finish_stats(Affine* coef, T* save_mean, T* save_invstd, const double* stats, const T* gamma,
                             const T* beta, int64_t C, double eps) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    const double mean = stats[2 * c], invstd = 1.0 / sqrt(stats[2 * c + 1] + eps);
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    const double scale = invstd * (gamma ? double(gamma[c]) : 1.0);
    coef[c] = {scale, (beta ? double(beta[c]) : 0.0) - mean * scale};
  }
}

// Coefficients of the training-mode dx from sums over every process (M elements per channel in all).
template <class T>
__global__ void coef_from_sums(BwdCoef* coef, const double* sums, const T* mean, const T* invstd, const T* gamma,
                               int64_t C, int64_t M) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    const double rs = double(invstd[c]);
    coef[c] = {rs * (gamma ? double(gamma[c]) : 1.0), double(mean[c]), rs, M > 0 ? sums[2 * c] / double(M) : 0.0,
               M > 0 ? sums[2 * c + 1] / double(M) : 0.0};
  }
}

// Step 3. Index is uint32_t when every index fits (cheaper divisions), else int64_t.
template <class T, class Index>
__global__ void normalise(T* y, const T* x, const Affine* coef, Index n, Index C, Index S) {
  for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
    const Affine k = coef[(i / S) % C];
    y[i] = T(double(x[i]) * k.scale + k.shift);
  }
}

template <class T, class Index>
__global__ void input_grad(T* dx, const T* dy, const T* x, const BwdCoef* coef, Index n, Index C, Index S) {
  for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
    const BwdCoef k = coef[(i / S) % C];
    const double xhat = (double(x[i]) - k.mean) * k.invstd;
    dx[i] = T(k.scale * (double(dy[i]) - k.mean_dy - xhat * k.mean_dy_xhat));
  }
}

// Chunks per channel: enough blocks to fill the GPU (~1024 in all), but at least ~4096 elements a block.
int64_t parts_for(int64_t C, int64_t M) {
  const int64_t fill = (1024 + C - 1) / C, by_size = M / (int64_t(kThreads) * 16);
  const int64_t parts = fill < by_size ? fill : by_size;
  return parts < 1 ? 1 : parts;
}

// Scratch from the stream-ordered pool: (C, parts) partial sums, then C coefficients of type Coef.
// Freed stream-ordered on scope exit (after the kernels queued before it).
template <class Coef>
class Scratch {
 public:
  Scratch(int64_t C, int64_t parts, bool with_partials, cudaStream_t s) : s_(s) {
    const size_t partial_bytes = with_partials ? size_t(C * parts) * sizeof(double2) : 0;
    CUDA_CHECK(cudaMallocAsync(&p_, partial_bytes + size_t(C) * sizeof(Coef), s));
    partial_ = with_partials ? static_cast<double2*>(p_) : nullptr;  // 16-byte aligned: the block's start
    coef_ = reinterpret_cast<Coef*>(static_cast<char*>(p_) + partial_bytes);
  }
  ~Scratch() { cudaFreeAsync(p_, s_); }  // destructor path: never throws
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  double2* partial() const { return partial_; }
  Coef* coef() const { return coef_; }

 private:
  void* p_ = nullptr;
  cudaStream_t s_;
  double2* partial_ = nullptr;
  Coef* coef_ = nullptr;
};

unsigned channel_blocks(int64_t C) { return blocks_for(C); }

template <class T>
void launch_normalise(T* y, const T* x, const Affine* coef, int64_t N, int64_t C, int64_t S, cudaStream_t s) {
  const int64_t n = N * C * S;
  if (n == 0) return;
  if (n <= INT32_MAX) {
    normalise<T, uint32_t><<<blocks_for(n), kThreads, 0, s>>>(y, x, coef, uint32_t(n), uint32_t(C), uint32_t(S));
  } else {
    normalise<T, int64_t><<<blocks_for(n), kThreads, 0, s>>>(y, x, coef, n, C, S);
  }
  CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_input_grad(T* dx, const T* dy, const T* x, const BwdCoef* coef, int64_t N, int64_t C, int64_t S,
                       cudaStream_t s) {
  const int64_t n = N * C * S;
  if (dx == nullptr || n == 0) return;
  if (n <= INT32_MAX) {
    input_grad<T, uint32_t><<<blocks_for(n), kThreads, 0, s>>>(dx, dy, x, coef, uint32_t(n), uint32_t(C), uint32_t(S));
  } else {
    input_grad<T, int64_t><<<blocks_for(n), kThreads, 0, s>>>(dx, dy, x, coef, n, C, S);
  }
  CUDA_CHECK_LAUNCH();
}

// Partial sums of `terms` over every channel, then their totals into sums (C, 2).
template <class T, class Terms>
void channel_sums(double* sums, Terms terms, const T* invstd, int64_t N, int64_t C, int64_t S, cudaStream_t s) {
  const int64_t parts = parts_for(C, N * S);
  const Scratch<Affine> scratch(C, parts, true, s);
  channel_partials<<<unsigned(C * parts), kThreads, 0, s>>>(scratch.partial(), terms, N, C, S, parts);
  CUDA_CHECK_LAUNCH();
  write_sums<T><<<channel_blocks(C), kThreads, 0, s>>>(sums, scratch.partial(), invstd, C, parts);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

template <class T>
void batch_norm_fwd_train(T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var, const T* x,
                          const T* gamma, const T* beta, int64_t N, int64_t C, int64_t S, T momentum, T eps,
                          Stream stream) {
  if (C == 0) return;
  const int64_t M = N * S, parts = parts_for(C, M);
  const Scratch<Affine> scratch(C, parts, true, stream);
  channel_partials<<<unsigned(C * parts), kThreads, 0, stream>>>(scratch.partial(), MomentTerms<T>{x, S}, N, C, S,
                                                                 parts);
  CUDA_CHECK_LAUNCH();
  finish_train<T><<<channel_blocks(C), kThreads, 0, stream>>>(scratch.coef(), save_mean, save_invstd, running_mean,
                                                              running_var, scratch.partial(), x, gamma, beta, C, S,
                                                              M, parts, double(momentum), double(eps));
  CUDA_CHECK_LAUNCH();
  launch_normalise(y, x, scratch.coef(), N, C, S, stream);
}

template <class T>
void batch_norm_fwd_eval(T* y, T* save_mean, T* save_invstd, const T* x, const T* gamma, const T* beta,
                         const T* running_mean, const T* running_var, int64_t N, int64_t C, int64_t S, T eps,
                         Stream stream) {
  if (C == 0) return;
  const Scratch<Affine> scratch(C, 0, false, stream);
  finish_eval<T><<<channel_blocks(C), kThreads, 0, stream>>>(scratch.coef(), save_mean, save_invstd, running_mean,
                                                             running_var, gamma, beta, C, double(eps));
  CUDA_CHECK_LAUNCH();
  launch_normalise(y, x, scratch.coef(), N, C, S, stream);
}

template <class T>
void batch_norm_bwd(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* invstd,
                    const T* gamma, int64_t N, int64_t C, int64_t S, bool training, Stream stream) {
  if (C == 0) return;
  const int64_t M = N * S, parts = parts_for(C, M);
  // The sums feed dgamma, dbeta and the training-mode dx; eval-mode dx alone needs none.
  const bool sums = training || dgamma != nullptr || dbeta != nullptr;
  const Scratch<BwdCoef> scratch(C, parts, sums, stream);
  if (sums) {
    channel_partials<<<unsigned(C * parts), kThreads, 0, stream>>>(scratch.partial(), GradTerms<T>{dy, x, mean}, N,
                                                                   C, S, parts);
    CUDA_CHECK_LAUNCH();
  }
  finish_bwd<T><<<channel_blocks(C), kThreads, 0, stream>>>(scratch.coef(), dgamma, dbeta, scratch.partial(), mean,
                                                            invstd, gamma, C, M, parts, training);
  CUDA_CHECK_LAUNCH();
  launch_input_grad(dx, dy, x, scratch.coef(), N, C, S, stream);
}

template <class T>
void batch_norm_moment_sums(double* sums, const T* x, int64_t N, int64_t C, int64_t S, Stream stream) {
  if (C == 0) return;
  channel_sums<T>(sums, RawMomentTerms<T>{x}, static_cast<const T*>(nullptr), N, C, S, stream);
}

template <class T>
void batch_norm_fwd_stats(T* y, T* save_mean, T* save_invstd, const T* x, const T* gamma, const T* beta,
                          const double* stats, int64_t N, int64_t C, int64_t S, T eps, Stream stream) {
  if (C == 0) return;
  const Scratch<Affine> scratch(C, 0, false, stream);
  finish_stats<T><<<channel_blocks(C), kThreads, 0, stream>>>(scratch.coef(), save_mean, save_invstd, stats, gamma,
                                                              beta, C, double(eps));
  CUDA_CHECK_LAUNCH();
  launch_normalise(y, x, scratch.coef(), N, C, S, stream);
}

template <class T>
void batch_norm_grad_sums(double* sums, const T* dy, const T* x, const T* mean, const T* invstd, int64_t N, int64_t C,
                          int64_t S, Stream stream) {
  if (C == 0) return;
  channel_sums<T>(sums, GradTerms<T>{dy, x, mean}, invstd, N, C, S, stream);
}

template <class T>
void batch_norm_bwd_input(T* dx, const T* dy, const T* x, const T* mean, const T* invstd, const T* gamma,
                          const double* sums, int64_t M, int64_t N, int64_t C, int64_t S, Stream stream) {
  if (C == 0) return;
  const Scratch<BwdCoef> scratch(C, 0, false, stream);
  coef_from_sums<T><<<channel_blocks(C), kThreads, 0, stream>>>(scratch.coef(), sums, mean, invstd, gamma, C, M);
  CUDA_CHECK_LAUNCH();
  launch_input_grad(dx, dy, x, scratch.coef(), N, C, S, stream);
}

#define STGS_INSTANTIATE(T)                                                                                        \
  template void batch_norm_fwd_train<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t,       \
                                        int64_t, T, T, Stream);                                                    \
  template void batch_norm_fwd_eval<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t,     \
                                       int64_t, int64_t, T, Stream);                                               \
  template void batch_norm_bwd<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, \
                                  int64_t, bool, Stream);                                                         \
  template void batch_norm_moment_sums<T>(double*, const T*, int64_t, int64_t, int64_t, Stream);                \
  template void batch_norm_fwd_stats<T>(T*, T*, T*, const T*, const T*, const T*, const double*, int64_t, int64_t, \
                                        int64_t, T, Stream);                                                       \
  template void batch_norm_grad_sums<T>(double*, const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                        Stream);                                                                   \
  template void batch_norm_bwd_input<T>(T*, const T*, const T*, const T*, const T*, const T*, const double*,       \
                                        int64_t, int64_t, int64_t, int64_t, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
