// 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) and F(4x4, 3x3) on the CPU
// (Lavin & Gray, 2015).
// defines: cpu::winograd_enabled, cpu::set_winograd_enabled, cpu::winograd_tile, cpu::conv2d_fwd_winograd,
//          cpu::conv2d_bwd_data_winograd, cpu::conv2d_bwd_weight_winograd
//
// Each m x m output tile (m = 2 or 4) comes from an n x n input tile d (n = m + 2) and a 3x3 filter g as
// Y = A^T [(G g G^T) . (B^T d B)] A: n^2 multiplies per tile and input channel instead of im2col's 9 m^2,
// so the GEMM work of such a layer drops 2.25x (m = 2) or 4x (m = 4). Over a batch the products become
// n^2 independent GEMMs, one per position xi of the n x n tile:
//   U: (n^2, K, C)   transformed filters, U[xi][k][c] = (G w[k][c] G^T)[xi]
//   V: (n^2, C, P)   transformed input tiles, P = images x tile rows x tile columns
//   M: (n^2, K, P) = U[xi] @ V[xi], then every tile's m x m outputs are A^T M A.
// The backward pass to the input of a 3x3 stride-1 convolution with padding p is itself one: dy convolved
// with the filters rotated by 180 degrees and transposed (C_out <-> C_in), padding 2 - p. The weight
// gradient is the adjoint of the forward's algebra: dU[xi] = sum over tiles of (A dY A^T)[xi] V[xi]^T,
// then dw = G^T dU G.
// Rounding: F(2x2)'s transforms add and halve only, and its F32 results differ from im2col's by a few
// units of rounding of the largest partial sums; F(4x4)'s use the points +-2 (constants up to 8 in A and
// 5 in B), which costs about one more decimal digit (tests/test_conv.cpp bounds both). In F64 both equal
// im2col to 1e-12.
// Non-finite inputs: a transform mixes every value of an input tile into every output of its tile, so one
// NaN or infinity in x turns the whole m x m output tile (of every output channel) NaN, where im2col keeps
// the outputs whose windows miss it finite (an infinity there gives +-inf or NaN). Finite inputs near the
// F32 limit can overflow in the transforms (gains up to ~100 with 4x4 tiles). Training stops on a NaN loss
// either way; STGS_CONV_WINOGRAD=0 gives im2col's behaviour.
// The im2col path in kernels/cpu/conv.cpp stays the reference; conv2d_fwd, conv2d_bwd_data and
// conv2d_bwd_weight route F32 problems for which winograd_tile() is not 0 here.
#pragma once

#include "kernels/conv.h"

namespace stgs::kernels::cpu {

// False when the environment sets STGS_CONV_WINOGRAD=0 (read once) or set_winograd_enabled(false) was
// called: every convolution then takes im2col (the CUDA parity tests compare cuDNN with that reference).
bool winograd_enabled();
void set_winograd_enabled(bool on);

// The output tile size (4 or 2) these kernels would use for g, or 0 where they do not apply or do not pay:
// they need a 3x3 kernel, stride 1, dilation 1, one group, padding <= 2 on each side and at least 16 input
// and 16 output channels (below that the transforms cost more than the GEMM saves). Tiles of m compute
// outputs past the edge of sizes m does not divide; a size is taken only where that is at most a quarter
// more than kept, for the forward's output and for the backward's (at 7x7 neither size passes; measured
// there, F(2x2) only matched im2col). 4 is preferred (2.25 GEMM multiplies per output and channel pair
// against 4) where the batch also has at least 128 tiles to amortise its filter transform (36 values per
// filter): ResNet-34's 56x56 and 28x28 maps and the audio preset's 75x64, 38x32 and 19x16 at batch 8.
int winograd_tile(const ConvGeometry& g);

// y: (N, C_out, H_out, W_out) = conv(x: (N, C_in, H, W), w: (C_out, C_in, 3, 3)) + bias (may be null),
// with tiles of m (2 or 4; 0: winograd_tile's choice, 2 where that is 0). Requires the geometry
// winograd_tile() checks, the channel minimums and the waste rules aside.
template <class T>
void conv2d_fwd_winograd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g, int m = 0);

// dx: (N, C_in, H, W) = the gradient of that convolution with respect to x, from dy: (N, C_out, H_out, W_out).
template <class T>
void conv2d_bwd_data_winograd(T* dx, const T* dy, const T* w, const ConvGeometry& g, int m = 0);

// dw: (C_out, C_in, 3, 3) = the gradient with respect to w.
template <class T>
void conv2d_bwd_weight_winograd(T* dw, const T* dy, const T* x, const ConvGeometry& g, int m = 0);

}  // namespace stgs::kernels::cpu
