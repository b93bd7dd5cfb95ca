// 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) on the CPU (Lavin & Gray, 2015).
// defines: cpu::winograd_enabled, cpu::winograd_applies, cpu::conv2d_fwd_winograd, cpu::conv2d_bwd_data_winograd,
//          cpu::conv2d_bwd_weight_winograd
//
// Each 2x2 output tile comes from a 4x4 input tile d and a 3x3 filter g as Y = A^T [(G g G^T) . (B^T d B)] A:
// 16 multiplies per tile and input channel instead of im2col's 36, so the GEMM work of such a layer drops
// 2.25x. Over a batch the products become 16 independent GEMMs, one per position xi of the 4x4 tile:
//   U: (16, K, C)   transformed filters, U[xi][k][c] = (G w[k][c] G^T)[xi]
//   V: (16, C, P)   transformed input tiles, P = images x tile rows x tile columns
//   M: (16, K, P) = U[xi] @ V[xi], then every tile's 2x2 outputs are A^T M A.
// The backward pass to the input of a 3x3 stride-1 convolution with padding p is itself one: dy convolved
// with the filters rotated by 180 degrees and transposed (C_out <-> C_in), padding 2 - p.
// The transforms add and halve only (no division of large values): in F32 the results differ from
// im2col's by a few units of rounding of the largest partial sums (tests/test_conv.cpp bounds it).
// The im2col path in kernels/cpu/conv.cpp stays the reference; conv2d_fwd, conv2d_bwd_data and
// conv2d_bwd_weight route F32 problems that winograd_applies() accepts here.
#pragma once

#include "kernels/conv.h"

namespace stgs::kernels::cpu {

// False when the environment sets STGS_CONV_WINOGRAD=0 (read once): every convolution then takes im2col.
bool winograd_enabled();

// True (and winograd_enabled()) for the geometries these kernels take and where they pay: a 3x3 kernel, stride 1, dilation 1, one
// group, padding <= 2 on each side, at least 16 input and 16 output channels (below that the transforms
// cost more than the GEMM saves), and at most a quarter more outputs computed than kept (odd sizes).
bool winograd_applies(const ConvGeometry& g);

// y: (N, C_out, H_out, W_out) = conv(x: (N, C_in, H, W), w: (C_out, C_in, 3, 3)) + bias (may be null).
// Requires the geometry winograd_applies() checks, the channel minimums aside.
template <class T>
void conv2d_fwd_winograd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g);

// dx: (N, C_in, H, W) = the gradient of that convolution with respect to x, from dy: (N, C_out, H_out, W_out).
template <class T>
void conv2d_bwd_data_winograd(T* dx, const T* dy, const T* w, const ConvGeometry& g);

// dw: (C_out, C_in, 3, 3) = the gradient with respect to w, as the adjoint of the forward's algebra:
// dU[xi] = sum over tiles of (A dY A^T)[xi] V[xi]^T (16 GEMMs), then dw = G^T dU G.
template <class T>
void conv2d_bwd_weight_winograd(T* dw, const T* dy, const T* x, const ConvGeometry& g);

}  // namespace stgs::kernels::cpu
