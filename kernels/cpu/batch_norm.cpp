// CPU reference: batch norm on x viewed as (N, C, S). Channels are independent and run in parallel;
// each channel is summed by one thread in (n, s) order with a double accumulator, so every result is
// bitwise the same for any thread count.
#include "kernels/batch_norm.h"

#include <cmath>
#include <utility>

namespace stgs::kernels::cpu {

namespace {

// Parallelise only when there is enough work to pay for the threads.
constexpr int64_t kParallelMin = 4096;

// Sum of f(s) over s in [0, S) in 8 independent double lanes, combined in a fixed order. One accumulator
// serialises on the 3-4 cycle FP-add latency (~0.3 elements per cycle, ~3x slower than streaming the
// channel from memory at ResNet sizes: 8 x 56 x 56 = 25k elements per channel); 8 lanes keep the adds in
// flight and let GCC vectorise them. The order depends only on S, never on the thread count.
template <class F>
double lane_sum(int64_t S, F f) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {};
  int64_t s = 0;
  for (; s + kLanes <= S; s += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += f(s + l);
  double tail = 0;
  for (; s < S; ++s) tail += f(s);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

// y = (x - mean) * invstd * gamma + beta over one channel, as scale * x + shift.
template <class T>
void normalise_channel(T* y, const T* x, int64_t N, int64_t C, int64_t S, int64_t c, double mean, double invstd,
                       const T* gamma, const T* beta) {
  const double scale = invstd * (gamma ? double(gamma[c]) : 1.0);
  const double shift = (beta ? double(beta[c]) : 0.0) - mean * scale;
  for (int64_t n = 0; n < N; ++n) {
    const T* xp = x + (n * C + c) * S;
    T* yp = y + (n * C + c) * S;
    for (int64_t s = 0; s < S; ++s) yp[s] = T(double(xp[s]) * scale + shift);
  }
}

// (sum(dy), sum(dy * xhat)) over one channel, xhat = (x - mu) * rs.
template <class T>
std::pair<double, double> channel_grad_sums(const T* dy, const T* x, int64_t N, int64_t C, int64_t S, int64_t c,
                                            double mu, double rs) {
  double sum_dy = 0, sum_dy_xhat = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* xp = x + (n * C + c) * S;
    const T* dyp = dy + (n * C + c) * S;
    sum_dy += lane_sum(S, [dyp](int64_t s) { return double(dyp[s]); });
    sum_dy_xhat += lane_sum(S, [xp, dyp, mu](int64_t s) { return double(dyp[s]) * (double(xp[s]) - mu); }) * rs;
  }
  return {sum_dy, sum_dy_xhat};
}

// dx = g * rs * (dy - mean_dy - xhat * mean_dy_xhat) over one channel.
template <class T>
void channel_input_grad(T* dx, const T* dy, const T* x, int64_t N, int64_t C, int64_t S, int64_t c, double mu,
                        double rs, const T* gamma, double mean_dy, double mean_dy_xhat) {
  const double scale = rs * (gamma ? double(gamma[c]) : 1.0);
  for (int64_t n = 0; n < N; ++n) {
    const T* xp = x + (n * C + c) * S;
    const T* dyp = dy + (n * C + c) * S;
    T* dxp = dx + (n * C + c) * S;
    for (int64_t s = 0; s < S; ++s) {
      const double xhat = (double(xp[s]) - mu) * rs;
      dxp[s] = T(scale * (double(dyp[s]) - mean_dy - xhat * mean_dy_xhat));
    }
  }
}

}  // namespace

template <class T>
void batch_norm_fwd_train(T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var, const T* x,
                          const T* gamma, const T* beta, int64_t N, int64_t C, int64_t S, T momentum, T eps) {
  const int64_t M = N * S;
#pragma omp parallel for schedule(static) if (N * C * S > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* xp = x + (n * C + c) * S;
      sum += lane_sum(S, [xp](int64_t s) { return double(xp[s]); });
    }
    const double mean = sum / double(M);
    double sq = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* xp = x + (n * C + c) * S;
      sq += lane_sum(S, [xp, mean](int64_t s) {
        const double d = double(xp[s]) - mean;
        return d * d;
      });
    }
    const double var = sq / double(M);  // biased
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    const double mom = double(momentum);
    if (running_mean) running_mean[c] = T((1.0 - mom) * double(running_mean[c]) + mom * mean);
    if (running_var) {
      const double unbiased = M > 1 ? var * double(M) / double(M - 1) : var;
      running_var[c] = T((1.0 - mom) * double(running_var[c]) + mom * unbiased);
    }
    normalise_channel(y, x, N, C, S, c, mean, invstd, gamma, beta);
  }
}

template <class T>
void batch_norm_fwd_eval(T* y, T* save_mean, T* save_invstd, const T* x, const T* gamma, const T* beta,
                         const T* running_mean, const T* running_var, int64_t N, int64_t C, int64_t S, T eps) {
#pragma omp parallel for schedule(static) if (N * C * S > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    const double mean = double(running_mean[c]);
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    normalise_channel(y, x, N, C, S, c, mean, invstd, gamma, beta);
  }
}

template <class T>
void batch_norm_bwd(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* invstd,
                    const T* gamma, int64_t N, int64_t C, int64_t S, bool training) {
  const int64_t M = N * S;
#pragma omp parallel for schedule(static) if (N * C * S > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    const auto [sum_dy, sum_dy_xhat] = channel_grad_sums(dy, x, N, C, S, c, double(mean[c]), double(invstd[c]));
    if (dbeta) dbeta[c] = T(sum_dy);
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (!dx) continue;
    const double mean_dy = training && M > 0 ? sum_dy / double(M) : 0.0;
    const double mean_dy_xhat = training && M > 0 ? sum_dy_xhat / double(M) : 0.0;
    channel_input_grad(dx, dy, x, N, C, S, c, double(mean[c]), double(invstd[c]), gamma, mean_dy, mean_dy_xhat);
  }
}

template <class T>
void batch_norm_moment_sums(double* sums, const T* x, int64_t N, int64_t C, int64_t S) {
#pragma omp parallel for schedule(static) if (N * C * S > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* xp = x + (n * C + c) * S;
      sum += lane_sum(S, [xp](int64_t s) { return double(xp[s]); });
      sq += lane_sum(S, [xp](int64_t s) { return double(xp[s]) * double(xp[s]); });
    }
    sums[2 * c] = sum;
    sums[2 * c + 1] = sq;
  }
}

template <class T>
void batch_norm_fwd_stats(T* y, T* save_mean, T* save_invstd, const T* x, const T* gamma, const T* beta,
                          const double* stats, int64_t N, int64_t C, int64_t S, T eps) {
#pragma omp parallel for schedule(static) if (N * C * S > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    const double mean = stats[2 * c], invstd = 1.0 / std::sqrt(stats[2 * c + 1] + double(eps));
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    normalise_channel(y, x, N, C, S, c, mean, invstd, gamma, beta);
  }
}

template <class T>
void batch_norm_grad_sums(double* sums, const T* dy, const T* x, const T* mean, const T* invstd, int64_t N, int64_t C,
                          int64_t S) {
#pragma omp parallel for schedule(static) if (N * C * S > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    const auto [sum_dy, sum_dy_xhat] = channel_grad_sums(dy, x, N, C, S, c, double(mean[c]), double(invstd[c]));
    sums[2 * c] = sum_dy;
    sums[2 * c + 1] = sum_dy_xhat;
  }
}

template <class T>
void batch_norm_bwd_input(T* dx, const T* dy, const T* x, const T* mean, const T* invstd, const T* gamma,
                          const double* sums, int64_t M, int64_t N, int64_t C, int64_t S) {
#pragma omp parallel for schedule(static) if (N * C * S > kParallelMin)
  for (int64_t c = 0; c < C; ++c)
    channel_input_grad(dx, dy, x, N, C, S, c, double(mean[c]), double(invstd[c]), gamma,
                       M > 0 ? sums[2 * c] / double(M) : 0.0, M > 0 ? sums[2 * c + 1] / double(M) : 0.0);
}

template void batch_norm_fwd_train<float>(float*, float*, float*, float*, float*, const float*, const float*,
                                          const float*, int64_t, int64_t, int64_t, float, float);
template void batch_norm_fwd_train<double>(double*, double*, double*, double*, double*, const double*, const double*,
                                           const double*, int64_t, int64_t, int64_t, double, double);
template void batch_norm_fwd_eval<float>(float*, float*, float*, const float*, const float*, const float*,
                                         const float*, const float*, int64_t, int64_t, int64_t, float);
template void batch_norm_fwd_eval<double>(double*, double*, double*, const double*, const double*, const double*,
                                          const double*, const double*, int64_t, int64_t, int64_t, double);
template void batch_norm_bwd<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                    const float*, int64_t, int64_t, int64_t, bool);
template void batch_norm_bwd<double>(double*, double*, double*, const double*, const double*, const double*,
                                     const double*, const double*, int64_t, int64_t, int64_t, bool);
#define STGS_INSTANTIATE_SUMS(T)                                                                                  \
  template void batch_norm_moment_sums<T>(double*, const T*, int64_t, int64_t, int64_t);                         \
  template void batch_norm_fwd_stats<T>(T*, T*, T*, const T*, const T*, const T*, const double*, int64_t, int64_t, \
                                        int64_t, T);                                                             \
  template void batch_norm_grad_sums<T>(double*, const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t); \
  template void batch_norm_bwd_input<T>(T*, const T*, const T*, const T*, const T*, const T*, const double*, int64_t, \
                                        int64_t, int64_t, int64_t);
STGS_INSTANTIATE_SUMS(float)
STGS_INSTANTIATE_SUMS(double)
#undef STGS_INSTANTIATE_SUMS

}  // namespace stgs::kernels::cpu
