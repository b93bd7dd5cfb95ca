// CPU reference: conv2d by im2col + OpenBLAS GEMM, with the batch folded into the GEMM's N dimension.
//
// Chunks. The batch is walked in chunks of nc images (cols_chunk_images). im2col lays a chunk's columns side
// by side, cols: (C_in * kH * kW, nc * HWo) with image n's column p at n * HWo + p, so each group's product
// is one GEMM with N = nc * HWo rather than nc GEMMs with N = HWo. Late ResNet layers need this: at 7x7
// the per-image product (512 x 49) @ K = 4608 leaves OpenBLAS's 2-thread split half idle, the folded
// (512 x 392) runs near its peak. The GEMM result (C_out, nc * HWo) is then unfolded to NCHW (and dy folded
// the other way for the backward passes): one extra pass over an activation-sized chunk, ~1% of the GEMM.
//
// Threading: the engine's one OpenMP pool. The transforms run as OpenMP loops over rows or planes, and the
// GEMMs are split over the same threads by kernels/cpu/gemm.cpp (OpenBLAS itself single-threaded). An
// earlier version paired OpenMP transforms with OpenBLAS's own threads and ran a layer 2-4x slower than
// serial transforms: each pool's idle workers spin on the cores the other pool needs. Chunking depends only
// on the geometry and the weight gradient accumulates chunk by chunk in batch order (GEMM with beta = 1), so
// results are deterministic for a given thread count.
//
// Scratch (cols and the folded activations) lives in a per-thread buffer that only grows (kernels/cpu/scratch.h).
#include "kernels/conv.h"

#include <algorithm>
#include <type_traits>

#include "kernels/cpu/scratch.h"
#include "kernels/cpu/stride.h"
#include "kernels/gemm.h"
#include "kernels/winograd.h"

namespace stgs::kernels::cpu {
namespace {

constexpr int64_t kParallelGrain = 32768;  // elements below which a transform stays serial

// Byte budget for one chunk's cols. OpenBLAS packs B (the cols) straight after im2col writes it, so the
// chunk should still sit in the 32 MB L3 then (shared by both cores, with the weights and the output
// beside it): 8 MB keeps it there. Per image, ResNet-34 at 224 needs 7.2 MB of cols at 56x56 (576 x 3136)
// and 0.9 MB at 7x7 (4608 x 49), so the big layers run image by image and the 7x7 ones fold all 8.
constexpr int64_t kColsBudgetBytes = int64_t(8) << 20;

// ceil(a / b) for b > 0 and any sign of a.
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// Output positions o in [lo, hi) whose input index o * stride - pad + offset lies in [0, n).
void valid_range(int64_t n, int64_t n_out, int64_t stride, int64_t pad, int64_t offset, int64_t* lo, int64_t* hi) {
  *lo = std::clamp<int64_t>(ceil_div(pad - offset, stride), 0, n_out);
  *hi = std::clamp<int64_t>(ceil_div(n + pad - offset, stride), *lo, n_out);
}

// Images per chunk: as many as keep their cols within kColsBudgetBytes (images_per_chunk).
int64_t cols_chunk_images(const ConvGeometry& g, int64_t elem_bytes) {
  return images_per_chunk(g.N, g.C_in * g.kk() * g.hw_out() * elem_bytes, kColsBudgetBytes);
}

// One im2col row: out (H_out * W_out) <- tap (i, j) of one image plane (H, W), zero in the padding.
template <class T>
void im2col_row(T* out, const T* plane, int64_t i, int64_t j, const ConvGeometry& g) {
  const int64_t H_out = g.H_out, W_out = g.W_out, W = g.W;
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  valid_range(g.H, H_out, g.stride_h, g.pad_h, i * g.dil_h, &oh_lo, &oh_hi);
  valid_range(W, W_out, g.stride_w, g.pad_w, j * g.dil_w, &ow_lo, &ow_hi);
  std::fill(out, out + oh_lo * W_out, T(0));
  const int64_t iw0 = -g.pad_w + j * g.dil_w;
  with_stride(g.stride_w, [&](auto s) {
    const int64_t sw = strided<s()>(g.stride_w);
    for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
      T* orow = out + oh * W_out;
      const T* irow = plane + (oh * g.stride_h - g.pad_h + i * g.dil_h) * W;
      std::fill(orow, orow + ow_lo, T(0));
      for (int64_t ow = ow_lo; ow < ow_hi; ++ow) orow[ow] = irow[ow * sw + iw0];
      std::fill(orow + ow_hi, orow + W_out, T(0));
    }
  });
  std::fill(out + oh_hi * W_out, out + H_out * W_out, T(0));
}

// One channel of col2im: plane (H, W) += its kH * kW cols rows, row t at rows + t * ld. The taps overlap
// in the plane, so one thread owns the whole plane.
template <class T>
void col2im_plane(T* plane, const T* rows, int64_t ld, const ConvGeometry& g) {
  const int64_t W_out = g.W_out, W = g.W;
  for (int64_t i = 0; i < g.kH; ++i) {
    for (int64_t j = 0; j < g.kW; ++j) {
      const T* in = rows + (i * g.kW + j) * ld;
      int64_t oh_lo, oh_hi, ow_lo, ow_hi;
      valid_range(g.H, g.H_out, g.stride_h, g.pad_h, i * g.dil_h, &oh_lo, &oh_hi);
      valid_range(W, W_out, g.stride_w, g.pad_w, j * g.dil_w, &ow_lo, &ow_hi);
      const int64_t iw0 = -g.pad_w + j * g.dil_w;
      with_stride(g.stride_w, [&](auto s) {
        const int64_t sw = strided<s()>(g.stride_w);
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          T* irow = plane + (oh * g.stride_h - g.pad_h + i * g.dil_h) * W;
          const T* crow = in + oh * W_out;
          for (int64_t ow = ow_lo; ow < ow_hi; ++ow) irow[ow * sw + iw0] += crow[ow];
        }
      });
    }
  }
}

// folded: (C, nc * S) <- x: (nc, C, S). Gathers dy for the backward GEMMs (and is im2col of a pointwise kernel).
template <class T>
void fold_batch(T* folded, const T* x, int64_t nc, int64_t C, int64_t S) {
#pragma omp parallel for schedule(static) if (nc * C * S > kParallelGrain)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t n = 0; n < nc; ++n) std::copy(x + (n * C + c) * S, x + (n * C + c + 1) * S, folded + (c * nc + n) * S);
}

// cols: (C_in * kH * kW, ld), image n's columns at n * HWo <- x: (nc, C_in, H, W). One thread per row of cols.
// A pointwise kernel reads every input position once, where it is: im2col is then a plain regrouping of whole
// planes (the per-row bookkeeping of im2col_row dominated the fusion net's 1x1 Conv1d layers, whose planes
// are only L = 8 long).
template <class T>
void im2col_chunk(T* cols, int64_t ld, const T* x, int64_t nc, const ConvGeometry& g) {
  const int64_t rows = g.C_in * g.kk(), HWo = g.hw_out(), HW = g.hw_in();
  if (g.pointwise()) return fold_batch(cols, x, nc, g.C_in, HW);  // ld == nc * HW here
#pragma omp parallel for schedule(static) if (rows * ld > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < nc; ++n)
      im2col_row(cols + r * ld + n * HWo, x + (n * g.C_in + r / g.kk()) * HW, (r / g.kW) % g.kH, r % g.kW, g);
}

// dx: (nc, C_in, H, W) (+)= col2im of cols: (C_in * kH * kW, ld), image n's columns at n * HWo. With
// accumulate false each plane is zeroed first, in the same pass.
// One thread per image plane: the kernel taps of a plane overlap in it, different planes do not.
template <class T>
void col2im_chunk(T* dx, const T* cols, int64_t ld, int64_t nc, const ConvGeometry& g, bool accumulate) {
  const int64_t HW = g.hw_in(), HWo = g.hw_out();
#pragma omp parallel for collapse(2) schedule(static) if (g.C_in * g.kk() * ld > kParallelGrain)
  for (int64_t n = 0; n < nc; ++n) {
    for (int64_t c = 0; c < g.C_in; ++c) {
      T* plane = dx + (n * g.C_in + c) * HW;
      if (!accumulate) std::fill(plane, plane + HW, T(0));
      col2im_plane(plane, cols + c * g.kk() * ld + n * HWo, ld, g);
    }
  }
}

// y: (nc, C, S) <- folded: (C, nc * S) (+ bias[c] when bias is not null). Scatters a folded GEMM result.
template <class T>
void unfold_batch(T* y, const T* folded, int64_t nc, int64_t C, int64_t S, const T* bias) {
#pragma omp parallel for collapse(2) schedule(static) if (nc * C * S > kParallelGrain)
  for (int64_t n = 0; n < nc; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const T* src = folded + (c * nc + n) * S;
      T* dst = y + (n * C + c) * S;
      if (bias == nullptr) {
        std::copy(src, src + S, dst);
      } else {
        const T b = bias[c];
        for (int64_t s = 0; s < S; ++s) dst[s] = src[s] + b;
      }
    }
  }
}

// Geometry of the plain transforms on one image of C channels.
ConvGeometry single_image(int64_t C, int64_t H, int64_t W, int64_t kH, int64_t kW, int64_t stride_h, int64_t stride_w,
                          int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w) {
  ConvGeometry g;
  g.N = 1;
  g.C_in = g.C_out = C;
  g.H = H;
  g.W = W;
  g.kH = kH;
  g.kW = kW;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_h = pad_h;
  g.pad_w = pad_w;
  g.dil_h = dil_h;
  g.dil_w = dil_w;
  g.H_out = conv_out_size(H, kH, stride_h, pad_h, dil_h);
  g.W_out = conv_out_size(W, kW, stride_w, pad_w, dil_w);
  return g;
}

}  // namespace

template <class T>
void im2col(T* cols, const T* im, int64_t C, int64_t H, int64_t W, int64_t kH, int64_t kW, int64_t stride_h,
            int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w) {
  const ConvGeometry g = single_image(C, H, W, kH, kW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w);
  im2col_chunk(cols, g.hw_out(), im, 1, g);
}

template <class T>
void col2im(T* im, const T* cols, int64_t C, int64_t H, int64_t W, int64_t kH, int64_t kW, int64_t stride_h,
            int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w) {
  const ConvGeometry g = single_image(C, H, W, kH, kW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w);
  col2im_chunk(im, cols, g.hw_out(), 1, g, /*accumulate=*/true);
}

template <class T>
void conv2d_fwd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g) {
  if constexpr (std::is_same_v<T, float>)
    if (const int m = winograd_tile(g)) return conv2d_fwd_winograd(y, x, w, bias, g, m);
  const int64_t K = g.cin_g() * g.kk(), HWo = g.hw_out(), Mg = g.cout_g();
  const int64_t nb = cols_chunk_images(g, sizeof(T));
  // Scratch: cols (C_in * kk, nb * HWo), then the folded output (C_out, nb * HWo).
  T* cols_buf = thread_scratch<T>(size_t((g.C_in * g.kk() + g.C_out) * nb * HWo));
  T* out_buf = cols_buf + g.C_in * g.kk() * nb * HWo;
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nc = std::min(nb, g.N - n0), ld = nc * HWo;
    const T* xn = x + n0 * g.C_in * g.hw_in();
    T* yn = y + n0 * g.C_out * HWo;
    const T* cols = xn;  // a pointwise kernel on one image: cols is the image itself
    if (!(g.pointwise() && nc == 1)) {
      im2col_chunk(cols_buf, ld, xn, nc, g);
      cols = cols_buf;
    }
    // One image writes y directly (bias pre-filled, beta = 1); a folded chunk goes through out_buf.
    T* out = nc == 1 ? yn : out_buf;
    if (nc == 1 && bias != nullptr)
#pragma omp parallel for schedule(static) if (g.C_out * HWo > kParallelGrain)
      for (int64_t co = 0; co < g.C_out; ++co) std::fill(yn + co * HWo, yn + (co + 1) * HWo, bias[co]);
    // Per group: out_g (Mg, nc * HWo) = w_g (Mg, K) @ cols_g (K, nc * HWo).
    gemm_batched<T>(false, false, Mg, ld, K, T(1), w, K, Mg * K, cols, ld, K * ld, nc == 1 && bias ? T(1) : T(0), out,
                    ld, Mg * ld, g.groups);
    if (nc > 1) unfold_batch(yn, out_buf, nc, g.C_out, HWo, bias);
  }
}

template <class T>
void conv2d_bwd_data(T* dx, const T* dy, const T* w, const ConvGeometry& g) {
  if constexpr (std::is_same_v<T, float>)
    if (const int m = winograd_tile(g)) return conv2d_bwd_data_winograd(dx, dy, w, g, m);
  const int64_t K = g.cin_g() * g.kk(), HWo = g.hw_out(), Mg = g.cout_g();
  const int64_t nb = cols_chunk_images(g, sizeof(T));
  // Scratch: dcols (C_in * kk, nb * HWo), then the folded dy (C_out, nb * HWo).
  T* dcols_buf = thread_scratch<T>(size_t((g.C_in * g.kk() + g.C_out) * nb * HWo));
  T* dy_buf = dcols_buf + g.C_in * g.kk() * nb * HWo;
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nc = std::min(nb, g.N - n0), ld = nc * HWo;
    T* dxn = dx + n0 * g.C_in * g.hw_in();
    const T* dyn = dy + n0 * g.C_out * HWo;
    if (nc > 1) fold_batch(dy_buf, dyn, nc, g.C_out, HWo);
    // Per group: dcols_g (K, nc * HWo) = w_g^T (K, Mg) @ dy_g (Mg, nc * HWo); for a pointwise kernel on one
    // image dcols is dx itself.
    T* dcols = g.pointwise() && nc == 1 ? dxn : dcols_buf;
    gemm_batched<T>(true, false, K, ld, Mg, T(1), w, K, Mg * K, nc == 1 ? dyn : dy_buf, ld, Mg * ld, T(0), dcols, ld,
                    K * ld, g.groups);
    if (g.pointwise()) {
      if (nc > 1) unfold_batch<T>(dxn, dcols_buf, nc, g.C_in, HWo, nullptr);
    } else {
      col2im_chunk(dxn, dcols_buf, ld, nc, g, /*accumulate=*/false);
    }
  }
}

template <class T>
void conv2d_bwd_weight(T* dw, const T* dy, const T* x, const ConvGeometry& g) {
  if constexpr (std::is_same_v<T, float>)
    if (const int m = winograd_tile(g)) return conv2d_bwd_weight_winograd(dw, dy, x, g, m);
  const int64_t K = g.cin_g() * g.kk(), HWo = g.hw_out(), Mg = g.cout_g();
  if (g.N == 0) {
    std::fill(dw, dw + g.C_out * K, T(0));
    return;
  }
  const int64_t nb = cols_chunk_images(g, sizeof(T));
  // Scratch: cols (C_in * kk, nb * HWo), then the folded dy (C_out, nb * HWo).
  T* cols_buf = thread_scratch<T>(size_t((g.C_in * g.kk() + g.C_out) * nb * HWo));
  T* dy_buf = cols_buf + g.C_in * g.kk() * nb * HWo;
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nc = std::min(nb, g.N - n0), ld = nc * HWo;
    const T* xn = x + n0 * g.C_in * g.hw_in();
    const T* dyn = dy + n0 * g.C_out * HWo;
    const T* cols = xn;
    if (!(g.pointwise() && nc == 1)) {
      im2col_chunk(cols_buf, ld, xn, nc, g);
      cols = cols_buf;
    }
    if (nc > 1) fold_batch(dy_buf, dyn, nc, g.C_out, HWo);
    // Per group: dw_g (Mg, K) (+)= dy_g (Mg, nc * HWo) @ cols_g^T (nc * HWo, K), chunk by chunk in batch order.
    gemm_batched<T>(false, true, Mg, K, ld, T(1), nc == 1 ? dyn : dy_buf, ld, Mg * ld, cols, ld, K * ld,
                    n0 == 0 ? T(0) : T(1), dw, K, Mg * K, g.groups);
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
