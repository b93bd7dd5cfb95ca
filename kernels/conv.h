// 2-D convolution (NCHW, grouped, strided, padded, dilated) by im2col + GEMM, forward and backward.
// defines: ConvGeometry, conv_out_size, DnnHandle, ConvMath, cpu::im2col, cpu::col2im, cpu::conv2d_fwd,
//          cpu::conv2d_bwd_data, cpu::conv2d_bwd_weight, cpu::conv2d_bwd_bias, and the cuda:: twins of the
//          conv2d_* functions (cuDNN)
//
// Column layout: an image (C, H, W) becomes cols (C * kH * kW, H_out * W_out), row (c, i, j) holding
// x[c, oh * stride_h - pad_h + i * dil_h, ow * stride_w - pad_w + j * dil_w] (0 outside the image) at
// column oh * W_out + ow. With weights viewed as (C_out, C_in / groups * kH * kW) per group, one image's
// convolution is then one GEMM per group: y_g (C_out/g, HW_out) = w_g @ cols_g.
// The CUDA twins run cuDNN's convolutions on the same NCHW layouts (kernels/cuda/conv.cu).
#pragma once

#include <cstdint>

#include "kernels/stream.h"

struct cudnnContext;

namespace stgs::kernels {

// H_out = (H + 2 pad - dil (k - 1) - 1) / stride + 1; may be <= 0 for invalid geometries (callers check).
inline int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// Everything that fixes a conv2d problem. Sizes already validated: groups divides C_in and C_out,
// stride, dil >= 1, pad >= 0, H_out, W_out >= 1.
struct ConvGeometry {
  int64_t N = 0, C_in = 0, H = 0, W = 0;
  int64_t C_out = 0, kH = 1, kW = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  int64_t H_out = 0, W_out = 0;

  int64_t cin_g() const { return C_in / groups; }
  int64_t cout_g() const { return C_out / groups; }
  int64_t kk() const { return kH * kW; }
  int64_t hw_in() const { return H * W; }
  int64_t hw_out() const { return H_out * W_out; }
  // True when cols == image: a 1x1 kernel with unit stride and no padding.
  bool pointwise() const {
    return kH == 1 && kW == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

using DnnHandle = cudnnContext*;  // cudnnHandle_t, declared without the cuDNN headers

// How cuDNN may compute a convolution. allow_tf32: F32 convolutions may use TF32 tensor cores (off: FMA
// kernels only, so CPU parity is exact to F32 rounding). deterministic: only algorithms whose results are
// bitwise reproducible run to run (no atomics in the reductions), possibly slower.
// benchmark: choose each geometry's algorithm by timing the candidates once on the GPU (cudnnFind*Ex,
// PyTorch's cudnn.benchmark) instead of by cuDNN's heuristics; faster kernels for some shapes, but the pick
// may differ run to run (see kernels/cuda/conv.cu).
struct ConvMath {
  bool allow_tf32 = false;
  bool deterministic = false;
  bool benchmark = false;
};

}  // namespace stgs::kernels

namespace stgs::kernels::cpu {

// cols: (C * kH * kW, H_out * W_out) <- im: (C, H, W); zero where the window reaches into the padding.
template <class T>
void im2col(T* cols, const T* im, int64_t C, int64_t H, int64_t W, int64_t kH, int64_t kW, int64_t stride_h,
            int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w);

// im: (C, H, W) += the columns cols: (C * kH * kW, H_out * W_out) scattered back (the adjoint of im2col);
// accumulates, so zero im first for a plain transform. Entries falling into the padding are dropped.
template <class T>
void col2im(T* im, const T* cols, int64_t C, int64_t H, int64_t W, int64_t kH, int64_t kW, int64_t stride_h,
            int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w);

// y: (N, C_out, H_out, W_out) = conv(x: (N, C_in, H, W), w: (C_out, C_in / groups, kH, kW)) + bias: (C_out)
// (bias may be null).
template <class T>
void conv2d_fwd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g);

// dx: (N, C_in, H, W) = col2im(w_g^T @ dy_g) per image and group; dy: (N, C_out, H_out, W_out).
template <class T>
void conv2d_bwd_data(T* dx, const T* dy, const T* w, const ConvGeometry& g);

// dw: (C_out, C_in / groups, kH, kW) = sum over n, in batch order, of dy_g @ cols_g^T.
template <class T>
void conv2d_bwd_weight(T* dw, const T* dy, const T* x, const ConvGeometry& g);

// db: (C_out) = sum of dy over N, H_out, W_out.
template <class T>
void conv2d_bwd_bias(T* db, const T* dy, const ConvGeometry& g);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the conv2d_* functions above: same layouts and results (up to summation order), device
// pointers, cuDNN's legacy convolution API on `handle` (a cuDNN handle of the current device). The
// algorithm of each (direction, geometry, dtype, math) is chosen once and cached; its workspace comes
// from the device's stream-ordered pool (cudaMallocAsync on `stream`). Sizes must fit cuDNN's int
// descriptors (every dimension, and every tensor, below 2^31 elements); a larger problem throws.
template <class T>
void conv2d_fwd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g, ConvMath math, DnnHandle handle,
                Stream stream);
template <class T>
void conv2d_bwd_data(T* dx, const T* dy, const T* w, const ConvGeometry& g, ConvMath math, DnnHandle handle,
                     Stream stream);
template <class T>
void conv2d_bwd_weight(T* dw, const T* dy, const T* x, const ConvGeometry& g, ConvMath math, DnnHandle handle,
                       Stream stream);
// db: (C_out) = sum of dy over N, H_out, W_out; an own kernel (one block per channel, fixed order), no cuDNN.
template <class T>
void conv2d_bwd_bias(T* db, const T* dy, const ConvGeometry& g, Stream stream);

}  // namespace stgs::kernels::cuda
