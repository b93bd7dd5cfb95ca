// 2-D pooling over (planes, H, W) = (N * C, H, W) planes, PyTorch semantics; 1-D pooling is H = 1.
// defines: PoolWindow, cpu::max_pool2d_fwd/bwd, cpu::avg_pool2d_fwd/bwd, cpu::adaptive_max_pool2d_fwd/bwd,
//          cpu::adaptive_avg_pool2d_fwd/bwd, adaptive_begin, adaptive_end, and the cuda:: twins of the pools
//
// Window pools: output (oh, ow) covers rows [oh sh - ph, oh sh - ph + kh) and columns likewise, clipped to
// the plane. Max: padding acts as -inf, the first maximum wins ties, a NaN propagates (the first NaN is
// the argmax). Avg: the sum over the clipped window is divided by kh * kw (count_include_pad) or by the
// number of in-plane elements. Adaptive pools: output bin i of n over an input length L covers
// [floor(i L / n), ceil((i + 1) L / n)) in each dimension (windows of varying size, possibly overlapping).
// Backward kernels overwrite dx (zero, then accumulate); each plane is handled by one thread in a fixed
// order, so results are deterministic. The CUDA twins gather instead (each dx element sums the outputs
// whose window covers it, in output order): no atomics, and the same sums in the same order as the CPU.
#pragma once

#include <cstdint>

#include "kernels/stream.h"

#if !defined(STGS_HD)
#if defined(__CUDACC__)
#define STGS_HD __host__ __device__ __forceinline__
#else
#define STGS_HD inline
#endif
#endif

namespace stgs::kernels {

// Kernel (kh, kw), stride (sh, sw) and padding (ph, pw) of a window pool; the caller guarantees
// k >= 1, s >= 1 and 0 <= p <= k / 2, so every window holds at least one in-plane element.
struct PoolWindow {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
};

// First and one-past-last input index of adaptive bin i of n over an input of length L.
STGS_HD int64_t adaptive_begin(int64_t i, int64_t n, int64_t L) { return (i * L) / n; }
STGS_HD int64_t adaptive_end(int64_t i, int64_t n, int64_t L) { return ((i + 1) * L + n - 1) / n; }

}  // namespace stgs::kernels

namespace stgs::kernels::cpu {

// x: (planes, H, W) -> y, argmax: (planes, Ho, Wo); argmax holds the flat index h * W + w within the plane,
// or is null when no backward will need it (inference), and then it is not written.
template <class T>
void max_pool2d_fwd(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo, PoolWindow win);
// dy, argmax: (planes, Ho, Wo) -> dx: (planes, H, W);  dx[argmax] += dy
template <class T>
void max_pool2d_bwd(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo, PoolWindow win);

// x: (planes, H, W) -> y: (planes, Ho, Wo);  y = sum(window) / count
template <class T>
void avg_pool2d_fwd(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, PoolWindow win,
                    bool count_include_pad);
// dy: (planes, Ho, Wo) -> dx: (planes, H, W);  every element of a window gets dy / count
template <class T>
void avg_pool2d_bwd(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, PoolWindow win,
                    bool count_include_pad);

// x: (planes, H, W) -> y, argmax: (planes, Ho, Wo), adaptive bins; argmax as for max_pool2d_fwd.
template <class T>
void adaptive_max_pool2d_fwd(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                             int64_t Wo);
// dy, argmax: (planes, Ho, Wo) -> dx: (planes, H, W);  dx[argmax] += dy
template <class T>
void adaptive_max_pool2d_bwd(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W,
                             int64_t Ho, int64_t Wo);

// x: (planes, H, W) -> y: (planes, Ho, Wo);  y = mean over the bin
template <class T>
void adaptive_avg_pool2d_fwd(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo);
// dy: (planes, Ho, Wo) -> dx: (planes, H, W);  every element of a bin gets dy / (bin size)
template <class T>
void adaptive_avg_pool2d_bwd(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above; same arguments, device pointers, stream last.
template <class T>
void max_pool2d_fwd(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo, PoolWindow win, Stream stream);
template <class T>
void max_pool2d_bwd(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo, PoolWindow win, Stream stream);
template <class T>
void avg_pool2d_fwd(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, PoolWindow win,
                    bool count_include_pad, Stream stream);
template <class T>
void avg_pool2d_bwd(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, PoolWindow win,
                    bool count_include_pad, Stream stream);
template <class T>
void adaptive_max_pool2d_fwd(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                             int64_t Wo, Stream stream);
template <class T>
void adaptive_max_pool2d_bwd(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W,
                             int64_t Ho, int64_t Wo, Stream stream);
template <class T>
void adaptive_avg_pool2d_fwd(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                             Stream stream);
template <class T>
void adaptive_avg_pool2d_bwd(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                             Stream stream);

}  // namespace stgs::kernels::cuda
