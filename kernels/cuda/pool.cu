// CUDA twins of kernels/pool.h: window and adaptive max/avg pooling over (planes, H, W), forward and backward.
// defines: cuda::max_pool2d_fwd/bwd, cuda::avg_pool2d_fwd/bwd, cuda::adaptive_max_pool2d_fwd/bwd,
//          cuda::adaptive_avg_pool2d_fwd/bwd
//
// Forward: one thread per output element walks its window in row-major order, like the CPU (same first
// maximum on ties, same NaN rule, same summation order). Backward gathers: one thread per dx element
// loops over the outputs whose window covers it, in output order, and sums their contributions (for max
// pools, only the outputs whose argmax is this element). No atomics, so the result is deterministic, and
// the CPU adds the same terms to the same element in the same order, so the two agree bitwise.
// Napkin math: ResNet-34's stem max pool (3x3 s2 p1, 64 x 64 x 112 x 112 -> 56 x 56) reads 205 MB and
// writes 51 MB of F32 (+103 MB of I64 argmax): ~0.1 ms at 3 TB/s.
#include <cstdint>
#include <limits>

#include "kernels/cuda/common.cuh"
#include "kernels/pool.h"

namespace stgs::kernels::cuda {
namespace {

// Half-open index range [lo, hi).
struct Span {
  int64_t lo, hi;
};

// Window o of a window pool along one dimension of length L, clipped to [0, L); *full is its length
// counting padding (the window stops at L + pad, as on the CPU).
__device__ __forceinline__ Span window_span(int64_t o, int64_t k, int64_t s, int64_t p, int64_t L, int64_t* full) {
  const int64_t b = o * s - p, e = min(b + k, L + p);
  *full = e - b;
  return {max(b, int64_t(0)), min(e, L)};
}

// The outputs of a window pool whose window covers input index i: o * s - p <= i < o * s - p + k.
__device__ __forceinline__ Span covering_windows(int64_t i, int64_t k, int64_t s, int64_t p, int64_t n_out) {
  const int64_t first = i + p - k + 1;  // o * s >= first
  return {first <= 0 ? 0 : (first + s - 1) / s, min(n_out - 1, (i + p) / s) + 1};
}

// The adaptive bins of n over L that cover input index i: begin(o) <= i < end(o) (see adaptive_begin/end).
__device__ __forceinline__ Span covering_bins(int64_t i, int64_t n, int64_t L) {
  return {(i * n) / L, min(n - 1, ((i + 1) * n - 1) / L) + 1};
}

// The window (rows hs, columns ws) of output (oh, ow); *count is the divisor of an average pool.
template <bool kAdaptive>
__device__ __forceinline__ void output_window(int64_t oh, int64_t ow, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                              const PoolWindow& k, bool count_include_pad, Span* hs, Span* ws,
                                              int64_t* count) {
  if constexpr (kAdaptive) {
    *hs = {adaptive_begin(oh, Ho, H), adaptive_end(oh, Ho, H)};
    *ws = {adaptive_begin(ow, Wo, W), adaptive_end(ow, Wo, W)};
    *count = (hs->hi - hs->lo) * (ws->hi - ws->lo);
  } else {
    int64_t full_h = 0, full_w = 0;
    *hs = window_span(oh, k.kh, k.sh, k.ph, H, &full_h);
    *ws = window_span(ow, k.kw, k.sw, k.pw, W, &full_w);
    *count = count_include_pad ? full_h * full_w : (hs->hi - hs->lo) * (ws->hi - ws->lo);
  }
}

// The outputs (rows, columns) whose window covers input (h, w).
template <bool kAdaptive>
__device__ __forceinline__ void covering_outputs(int64_t h, int64_t w, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                                 const PoolWindow& k, Span* hs, Span* ws) {
  if constexpr (kAdaptive) {
    *hs = covering_bins(h, Ho, H);
    *ws = covering_bins(w, Wo, W);
  } else {
    *hs = covering_windows(h, k.kh, k.sh, k.ph, Ho);
    *ws = covering_windows(w, k.kw, k.sw, k.pw, Wo);
  }
}

// y, argmax: (planes, Ho, Wo) <- x: (planes, H, W); first maximum wins, the first NaN stops the walk.
template <class T, bool kAdaptive>
__global__ void max_fwd_kernel(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                               int64_t Wo, PoolWindow win) {
  const int64_t n = planes * Ho * Wo;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < n; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = o / (Ho * Wo), r = o % (Ho * Wo);
    Span hs, ws;
    int64_t count;
    output_window<kAdaptive>(r / Wo, r % Wo, H, W, Ho, Wo, win, false, &hs, &ws, &count);
    const T* xp = x + p * H * W;
    T m = -std::numeric_limits<T>::infinity();
    int64_t a = hs.lo * W + ws.lo;
    bool nan = false;
    for (int64_t h = hs.lo; h < hs.hi && !nan; ++h) {
      for (int64_t w = ws.lo; w < ws.hi; ++w) {
        const T v = xp[h * W + w];
        if (v > m || v != v) {
          m = v;
          a = h * W + w;
          if (v != v) {
            nan = true;
            break;
          }
        }
      }
    }
    y[o] = m;
    if (argmax != nullptr) argmax[o] = a;
  }
}

// dx: (planes, H, W) = the sum of dy over the outputs whose argmax is this element, in output order.
template <class T, bool kAdaptive>
__global__ void max_bwd_kernel(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W,
                               int64_t Ho, int64_t Wo, PoolWindow win) {
  const int64_t n = planes * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i / (H * W), at = i % (H * W);
    Span hs, ws;
    covering_outputs<kAdaptive>(at / W, at % W, H, W, Ho, Wo, win, &hs, &ws);
    const T* dyp = dy + p * Ho * Wo;
    const int64_t* ap = argmax + p * Ho * Wo;
    T sum = 0;
    for (int64_t oh = hs.lo; oh < hs.hi; ++oh)
      for (int64_t ow = ws.lo; ow < ws.hi; ++ow)
        if (ap[oh * Wo + ow] == at) sum += dyp[oh * Wo + ow];
    dx[i] = sum;
  }
}

// y: (planes, Ho, Wo) = window sum / count.
template <class T, bool kAdaptive>
__global__ void avg_fwd_kernel(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                               PoolWindow win, bool count_include_pad) {
  const int64_t n = planes * Ho * Wo;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < n; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = o / (Ho * Wo), r = o % (Ho * Wo);
    Span hs, ws;
    int64_t count;
    output_window<kAdaptive>(r / Wo, r % Wo, H, W, Ho, Wo, win, count_include_pad, &hs, &ws, &count);
    const T* xp = x + p * H * W;
    T sum = 0;
    for (int64_t h = hs.lo; h < hs.hi; ++h)
      for (int64_t w = ws.lo; w < ws.hi; ++w) sum += xp[h * W + w];
    y[o] = sum / T(count);
  }
}

// dx: (planes, H, W) = the sum of dy / count over the outputs whose window covers this element.
template <class T, bool kAdaptive>
__global__ void avg_bwd_kernel(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                               PoolWindow win, bool count_include_pad) {
  const int64_t n = planes * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i / (H * W), at = i % (H * W);
    Span hs, ws;
    covering_outputs<kAdaptive>(at / W, at % W, H, W, Ho, Wo, win, &hs, &ws);
    const T* dyp = dy + p * Ho * Wo;
    T sum = 0;
    for (int64_t oh = hs.lo; oh < hs.hi; ++oh) {
      for (int64_t ow = ws.lo; ow < ws.hi; ++ow) {
        Span wh, ww;
        int64_t count;
        output_window<kAdaptive>(oh, ow, H, W, Ho, Wo, win, count_include_pad, &wh, &ww, &count);
        sum += dyp[oh * Wo + ow] / T(count);
      }
    }
    dx[i] = sum;
  }
}

}  // namespace

template <class T>
void max_pool2d_fwd(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo, PoolWindow win, Stream stream) {
  const int64_t n = planes * Ho * Wo;
  if (n == 0) return;
  max_fwd_kernel<T, false><<<blocks_for(n), kThreads, 0, stream>>>(y, argmax, x, planes, H, W, Ho, Wo, win);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void max_pool2d_bwd(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo, PoolWindow win, Stream stream) {
  const int64_t n = planes * H * W;
  if (n == 0) return;
  max_bwd_kernel<T, false><<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, argmax, planes, H, W, Ho, Wo, win);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void avg_pool2d_fwd(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, PoolWindow win,
                    bool count_include_pad, Stream stream) {
  const int64_t n = planes * Ho * Wo;
  if (n == 0) return;
  avg_fwd_kernel<T, false><<<blocks_for(n), kThreads, 0, stream>>>(y, x, planes, H, W, Ho, Wo, win, count_include_pad);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void avg_pool2d_bwd(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, PoolWindow win,
                    bool count_include_pad, Stream stream) {
  const int64_t n = planes * H * W;
  if (n == 0) return;
  avg_bwd_kernel<T, false><<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, planes, H, W, Ho, Wo, win,
                                                                   count_include_pad);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void adaptive_max_pool2d_fwd(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                             int64_t Wo, Stream stream) {
  const int64_t n = planes * Ho * Wo;
  if (n == 0) return;
  max_fwd_kernel<T, true><<<blocks_for(n), kThreads, 0, stream>>>(y, argmax, x, planes, H, W, Ho, Wo, PoolWindow{});
  CUDA_CHECK_LAUNCH();
}

template <class T>
void adaptive_max_pool2d_bwd(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W,
                             int64_t Ho, int64_t Wo, Stream stream) {
  const int64_t n = planes * H * W;
  if (n == 0) return;
  max_bwd_kernel<T, true><<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, argmax, planes, H, W, Ho, Wo,
                                                                  PoolWindow{});
  CUDA_CHECK_LAUNCH();
}

template <class T>
void adaptive_avg_pool2d_fwd(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                             Stream stream) {
  const int64_t n = planes * Ho * Wo;
  if (n == 0) return;
  avg_fwd_kernel<T, true><<<blocks_for(n), kThreads, 0, stream>>>(y, x, planes, H, W, Ho, Wo, PoolWindow{}, false);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void adaptive_avg_pool2d_bwd(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                             Stream stream) {
  const int64_t n = planes * H * W;
  if (n == 0) return;
  avg_bwd_kernel<T, true><<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, planes, H, W, Ho, Wo, PoolWindow{}, false);
  CUDA_CHECK_LAUNCH();
}

#define STGS_INSTANTIATE(T)                                                                                       \
  template void max_pool2d_fwd<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,            \
                                  PoolWindow, Stream);                                                            \
  template void max_pool2d_bwd<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t,      \
                                  PoolWindow, Stream);                                                            \
  template void avg_pool2d_fwd<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, PoolWindow, bool,    \
                                  Stream);                                                                        \
  template void avg_pool2d_bwd<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, PoolWindow, bool,    \
                                  Stream);                                                                        \
  template void adaptive_max_pool2d_fwd<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                           Stream);                                                               \
  template void adaptive_max_pool2d_bwd<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t,      \
                                           int64_t, Stream);                                                      \
  template void adaptive_avg_pool2d_fwd<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, Stream);    \
  template void adaptive_avg_pool2d_bwd<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
