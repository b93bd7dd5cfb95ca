// CPU reference: conv2d by im2col + OpenBLAS GEMM.
//
// Threading: OpenBLAS (the pthread build) threads each GEMM itself, so the batch is walked in order, one
// image at a time, and OpenMP parallelises only the im2col/col2im transforms and the bias sums, each
// thread owning whole rows or channels. Calling BLAS from inside an OpenMP region would oversubscribe the
// cores. The weight gradient accumulates image by image in batch order (GEMM with beta = 1), so results
// are deterministic for a given thread count.
#include "kernels/conv.h"

#include <algorithm>
#include <vector>

#include "kernels/gemm.h"

namespace stgs::kernels::cpu {
namespace {

constexpr int64_t kParallelGrain = 32768;  // elements below which the transforms stay serial

// ceil(a / b) for b > 0 and any sign of a.
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// Output positions o in [lo, hi) whose input index o * stride - pad + offset lies in [0, n).
void valid_range(int64_t n, int64_t n_out, int64_t stride, int64_t pad, int64_t offset, int64_t* lo, int64_t* hi) {
  *lo = std::clamp<int64_t>(ceil_div(pad - offset, stride), 0, n_out);
  *hi = std::clamp<int64_t>(ceil_div(n + pad - offset, stride), *lo, n_out);
}

}  // namespace

template <class T>
void im2col(T* cols, const T* im, int64_t C, int64_t H, int64_t W, int64_t kH, int64_t kW, int64_t stride_h,
            int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w) {
  const int64_t H_out = conv_out_size(H, kH, stride_h, pad_h, dil_h);
  const int64_t W_out = conv_out_size(W, kW, stride_w, pad_w, dil_w);
  const int64_t rows = C * kH * kW;
#pragma omp parallel for schedule(static) if (rows * H_out * W_out > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (kH * kW), i = (r / kW) % kH, j = r % kW;
    const T* plane = im + c * H * W;
    T* out = cols + r * H_out * W_out;
    int64_t oh_lo, oh_hi, ow_lo, ow_hi;
    valid_range(H, H_out, stride_h, pad_h, i * dil_h, &oh_lo, &oh_hi);
    valid_range(W, W_out, stride_w, pad_w, j * dil_w, &ow_lo, &ow_hi);
    std::fill(out, out + oh_lo * W_out, T(0));
    for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
      T* orow = out + oh * W_out;
      const T* irow = plane + (oh * stride_h - pad_h + i * dil_h) * W;
      const int64_t iw0 = -pad_w + j * dil_w;
      std::fill(orow, orow + ow_lo, T(0));
      if (stride_w == 1) {
        std::copy(irow + ow_lo + iw0, irow + ow_hi + iw0, orow + ow_lo);
      } else {
        for (int64_t ow = ow_lo; ow < ow_hi; ++ow) orow[ow] = irow[ow * stride_w + iw0];
      }
      std::fill(orow + ow_hi, orow + W_out, T(0));
    }
    std::fill(out + oh_hi * W_out, out + H_out * W_out, T(0));
  }
}

template <class T>
void col2im(T* im, const T* cols, int64_t C, int64_t H, int64_t W, int64_t kH, int64_t kW, int64_t stride_h,
            int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w) {
  const int64_t H_out = conv_out_size(H, kH, stride_h, pad_h, dil_h);
  const int64_t W_out = conv_out_size(W, kW, stride_w, pad_w, dil_w);
  // One thread per channel: the kernel taps (i, j) of a channel overlap in the image, the channels do not.
#pragma omp parallel for schedule(static) if (C * kH * kW * H_out * W_out > kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    T* plane = im + c * H * W;
    for (int64_t i = 0; i < kH; ++i) {
      for (int64_t j = 0; j < kW; ++j) {
        const T* in = cols + ((c * kH + i) * kW + j) * H_out * W_out;
        int64_t oh_lo, oh_hi, ow_lo, ow_hi;
        valid_range(H, H_out, stride_h, pad_h, i * dil_h, &oh_lo, &oh_hi);
        valid_range(W, W_out, stride_w, pad_w, j * dil_w, &ow_lo, &ow_hi);
        const int64_t iw0 = -pad_w + j * dil_w;
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          T* irow = plane + (oh * stride_h - pad_h + i * dil_h) * W;
          const T* crow = in + oh * W_out;
          for (int64_t ow = ow_lo; ow < ow_hi; ++ow) irow[ow * stride_w + iw0] += crow[ow];
        }
      }
    }
  }
}

namespace {

template <class T>
void to_cols(T* cols, const T* im, const ConvGeometry& g) {
  im2col(cols, im, g.C_in, g.H, g.W, g.kH, g.kW, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dil_h, g.dil_w);
}

}  // namespace

template <class T>
void conv2d_fwd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g) {
  const int64_t K = g.cin_g() * g.kk(), HWo = g.hw_out(), Mg = g.cout_g();
  std::vector<T> buffer(g.pointwise() ? 0 : size_t(g.C_in * g.kk() * HWo));
  for (int64_t n = 0; n < g.N; ++n) {
    const T* xn = x + n * g.C_in * g.hw_in();
    T* yn = y + n * g.C_out * HWo;
    const T* cols = xn;
    if (!g.pointwise()) {
      to_cols(buffer.data(), xn, g);
      cols = buffer.data();
    }
    if (bias != nullptr)
      for (int64_t co = 0; co < g.C_out; ++co) std::fill(yn + co * HWo, yn + (co + 1) * HWo, bias[co]);
    // Per group: y_g (Mg, HWo) = w_g (Mg, K) @ cols_g (K, HWo).
    gemm_batched<T>(false, false, Mg, HWo, K, T(1), w, K, Mg * K, cols, HWo, K * HWo, bias ? T(1) : T(0), yn, HWo,
                    Mg * HWo, g.groups);
  }
}

template <class T>
void conv2d_bwd_data(T* dx, const T* dy, const T* w, const ConvGeometry& g) {
  const int64_t K = g.cin_g() * g.kk(), HWo = g.hw_out(), Mg = g.cout_g();
  std::vector<T> buffer(g.pointwise() ? 0 : size_t(g.C_in * g.kk() * HWo));
  for (int64_t n = 0; n < g.N; ++n) {
    T* dxn = dx + n * g.C_in * g.hw_in();
    const T* dyn = dy + n * g.C_out * HWo;
    // Per group: dcols_g (K, HWo) = w_g^T (K, Mg) @ dy_g (Mg, HWo); for a pointwise kernel dcols is dx.
    T* dcols = g.pointwise() ? dxn : buffer.data();
    gemm_batched<T>(true, false, K, HWo, Mg, T(1), w, K, Mg * K, dyn, HWo, Mg * HWo, T(0), dcols, HWo, K * HWo,
                    g.groups);
    if (!g.pointwise()) {
      std::fill(dxn, dxn + g.C_in * g.hw_in(), T(0));
      col2im(dxn, dcols, g.C_in, g.H, g.W, g.kH, g.kW, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dil_h, g.dil_w);
    }
  }
}

template <class T>
void conv2d_bwd_weight(T* dw, const T* dy, const T* x, const ConvGeometry& g) {
  const int64_t K = g.cin_g() * g.kk(), HWo = g.hw_out(), Mg = g.cout_g();
  if (g.N == 0) {
    std::fill(dw, dw + g.C_out * K, T(0));
    return;
  }
  std::vector<T> buffer(g.pointwise() ? 0 : size_t(g.C_in * g.kk() * HWo));
  for (int64_t n = 0; n < g.N; ++n) {
    const T* xn = x + n * g.C_in * g.hw_in();
    const T* dyn = dy + n * g.C_out * HWo;
    const T* cols = xn;
    if (!g.pointwise()) {
      to_cols(buffer.data(), xn, g);
      cols = buffer.data();
    }
    // Per group: dw_g (Mg, K) (+)= dy_g (Mg, HWo) @ cols_g^T (HWo, K), in batch order.
    gemm_batched<T>(false, true, Mg, K, HWo, T(1), dyn, HWo, Mg * HWo, cols, HWo, K * HWo, n == 0 ? T(0) : T(1), dw,
                    K, Mg * K, g.groups);
  }
}

template <class T>
void conv2d_bwd_bias(T* db, const T* dy, const ConvGeometry& g) {
  const int64_t HWo = g.hw_out();
#pragma omp parallel for schedule(static) if (g.N * g.C_out * HWo > kParallelGrain)
  for (int64_t co = 0; co < g.C_out; ++co) {
    T sum = 0;
    for (int64_t n = 0; n < g.N; ++n) {
      const T* p = dy + (n * g.C_out + co) * HWo;
      for (int64_t k = 0; k < HWo; ++k) sum += p[k];
    }
    db[co] = sum;
  }
}

#define STGS_INSTANTIATE(T)                                                                                         \
  template void im2col<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,     \
                          int64_t, int64_t, int64_t);                                                              \
  template void col2im<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,     \
                          int64_t, int64_t, int64_t);                                                              \
  template void conv2d_fwd<T>(T*, const T*, const T*, const T*, const ConvGeometry&);                               \
  template void conv2d_bwd_data<T>(T*, const T*, const T*, const ConvGeometry&);                                    \
  template void conv2d_bwd_weight<T>(T*, const T*, const T*, const ConvGeometry&);                                  \
  template void conv2d_bwd_bias<T>(T*, const T*, const ConvGeometry&);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
