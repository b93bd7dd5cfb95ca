// CPU Winograd F(2x2, 3x3) convolution (see kernels/winograd.h for the algebra and the layouts).
//
// Napkin math (ResNet-34 audio layer1, batch 8, 64 -> 64 channels at 75x64): im2col + GEMM is
// 2 * 64 * 576 * 4800 * 8 = 2.83 GFLOP; here the GEMMs are 2 * 16 * 64 * 64 * (38 * 32 * 8) = 1.27 GFLOP
// and the transforms about 0.1 GFLOP of adds, streaming V and M (16 * 64 * 9728 floats each, 40 MB per
// batch) through memory once each way: at ~250 GFLOP/s GEMM and ~20 GB/s that is ~5 ms + ~4 ms
// against ~11 ms. Measured (2-core Xeon, AVX-512, 2026-12-05): forward 10.7 ms against im2col's 20.2,
// backward to the input 10.3 against 15.6, weight gradient 13.7 against 16.0 (it transforms both x and
// dy, and its GEMMs reduce over the long tile dimension).
//
// Chunks: the batch goes through in chunks of whole images sized so that a chunk's V and M (what one
// round of transforms writes and the GEMMs read) stay within kChunkBudgetBytes of cache.
// Threading: the transforms split over (image, channel) planes, the 16 GEMMs over the threads
// (gemm_batched, one matrix per thread at a time); OpenBLAS itself stays single-threaded.
#include "kernels/winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/gemm.h"

namespace stgs::kernels::cpu {
namespace {

constexpr int64_t kTaps = 16;                                 // positions of a transformed 4x4 tile
constexpr int64_t kChunkBudgetBytes = int64_t(32) << 20;      // V + M of one chunk
constexpr int64_t kParallelGrain = 32768;                     // elements below which a transform stays serial

// Grow-only per-thread scratch of n elements of T (contents undefined); each Slot is a buffer of its own.
template <class T, int Slot>
T* scratch(size_t n) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local size_t capacity = 0;
  if (n > capacity) {
    buf.reset();
    buf.reset(new T[n]);
    capacity = n;
  }
  return buf.get();
}

// U: (16, K, C) <- the filters. Forward (flipped false): w is (K, C, 3, 3) and U[xi][k][c] = G w[k][c] G^T.
// Backward to the input (flipped true): w is the forward's (C, K, 3, 3) and the filter from input channel c
// to output channel k is w[c][k] rotated by 180 degrees.
// G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]].
// Blocks of kLanes channels c go through together, lane by lane in every array, so the arithmetic runs in
// vector registers and each of the 16 rows of U is written kLanes values at a time: the transform of
// ResNet-34's 512 x 512 filters is 16 MB written per call, and a scalar loop over it cost more than the
// 7x7 layer's GEMMs.
template <class T>
void transform_filters(T* U, const T* w, int64_t K, int64_t C, bool flipped) {
  constexpr int64_t kLanes = 16;
  const int64_t blocks = (C + kLanes - 1) / kLanes;
#pragma omp parallel for collapse(2) schedule(static) if (K * C * 9 > kParallelGrain)
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kLanes, lanes = std::min(kLanes, C - c0);
      T g[9][kLanes] = {};
      for (int64_t l = 0; l < lanes; ++l) {
        const int64_t c = c0 + l;
        const T* src = flipped ? w + (c * K + k) * 9 : w + (k * C + c) * 9;
        for (int e = 0; e < 9; ++e) g[e][l] = src[flipped ? 8 - e : e];  // 180 degrees: (i, j) -> (2 - i, 2 - j)
      }
      T t[4][3][kLanes];  // G g
      for (int j = 0; j < 3; ++j)
        for (int64_t l = 0; l < kLanes; ++l) {
          const T a = g[j][l], b = g[3 + j][l], c = g[6 + j][l];
          t[0][j][l] = a;
          t[1][j][l] = (a + b + c) * T(0.5);
          t[2][j][l] = (a - b + c) * T(0.5);
          t[3][j][l] = c;
        }
      for (int i = 0; i < 4; ++i) {  // (G g) G^T, row i
        T u[4][kLanes];
        for (int64_t l = 0; l < kLanes; ++l) {
          const T a = t[i][0][l], b = t[i][1][l], c = t[i][2][l];
          u[0][l] = a;
          u[1][l] = (a + b + c) * T(0.5);
          u[2][l] = (a - b + c) * T(0.5);
          u[3][l] = c;
        }
        for (int j = 0; j < 4; ++j) std::copy(u[j], u[j] + lanes, U + ((i * 4 + j) * K + k) * C + c0);
      }
    }
  }
}

// Shape of one problem as the tile loops see it: input planes (H, W), padding, output (H_out, W_out) and
// tiles_h x tiles_w 2x2 output tiles per image.
struct Tiling {
  int64_t H, W, pad_h, pad_w, H_out, W_out, tiles_h, tiles_w;
  int64_t tiles() const { return tiles_h * tiles_w; }
};

// One input plane's tiles into V: column col of each of the 16 matrices (stride xi_stride apart) for tile
// (a, b) at col + a * tiles_w + b. B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].
// row: scratch of 4 * (2 * tiles_w + 2) elements.
template <class T>
void transform_input_plane(T* V, int64_t xi_stride, const T* plane, const Tiling& t, T* row) {
  const int64_t L = 2 * t.tiles_w + 2;  // the input columns a tile row reads, padding included
  T* d[4] = {row, row + L, row + 2 * L, row + 3 * L};
  const int64_t lo = std::min<int64_t>(t.pad_w, L), hi = std::clamp<int64_t>(t.W + t.pad_w, lo, L);
  for (int64_t a = 0; a < t.tiles_h; ++a) {
    for (int i = 0; i < 4; ++i) {  // d[i]: input row 2a - pad_h + i, column j - pad_w at j, zero outside
      const int64_t r = 2 * a - t.pad_h + i;
      if (r < 0 || r >= t.H) {
        std::fill(d[i], d[i] + L, T(0));
        continue;
      }
      std::fill(d[i], d[i] + lo, T(0));
      std::copy(plane + r * t.W + (lo - t.pad_w), plane + r * t.W + (hi - t.pad_w), d[i] + lo);
      std::fill(d[i] + hi, d[i] + L, T(0));
    }
    for (int64_t j = 0; j < L; ++j) {  // B^T d, in place: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3
      const T d0 = d[0][j], d1 = d[1][j], d2 = d[2][j], d3 = d[3][j];
      d[0][j] = d0 - d2;
      d[1][j] = d1 + d2;
      d[2][j] = d2 - d1;
      d[3][j] = d1 - d3;
    }
    const int64_t col = a * t.tiles_w;
    for (int i = 0; i < 4; ++i) {  // (B^T d) B, row i: columns e0 - e1, o0 + e1, e1 - o0, o0 - o1
      const T* s = d[i];
      T* v0 = V + (i * 4 + 0) * xi_stride + col;
      T* v1 = V + (i * 4 + 1) * xi_stride + col;
      T* v2 = V + (i * 4 + 2) * xi_stride + col;
      T* v3 = V + (i * 4 + 3) * xi_stride + col;
      for (int64_t b = 0; b < t.tiles_w; ++b) {
        const T e0 = s[2 * b], o0 = s[2 * b + 1], e1 = s[2 * b + 2], o1 = s[2 * b + 3];
        v0[b] = e0 - e1;
        v1[b] = o0 + e1;
        v2[b] = e1 - o0;
        v3[b] = o0 - o1;
      }
    }
  }
}

// One output plane (H_out, W_out) from its row of M: tile (a, b) at column col + a * tiles_w + b of each of
// the 16 matrices (xi_stride apart), plus bias. A^T = [[1, 1, 1, 0], [0, 1, -1, -1]].
// row: scratch of 2 * 2 * tiles_w elements.
template <class T>
void transform_output_plane(T* plane, const T* M, int64_t xi_stride, T bias, const Tiling& t, T* row) {
  const int64_t tw = t.tiles_w;
  T* out0 = row;           // output row 2a, 2 * tiles_w columns
  T* out1 = row + 2 * tw;  // output row 2a + 1
  for (int64_t a = 0; a < t.tiles_h; ++a) {
    const T* m[16];
    for (int xi = 0; xi < 16; ++xi) m[xi] = M + xi * xi_stride + a * tw;
    for (int64_t b = 0; b < tw; ++b) {
      T s0[4], s1[4];  // A^T m: rows m0 + m1 + m2 and m1 - m2 - m3, column j
      for (int j = 0; j < 4; ++j) {
        s0[j] = m[j][b] + m[4 + j][b] + m[8 + j][b];
        s1[j] = m[4 + j][b] - m[8 + j][b] - m[12 + j][b];
      }
      out0[2 * b] = s0[0] + s0[1] + s0[2] + bias;
      out0[2 * b + 1] = s0[1] - s0[2] - s0[3] + bias;
      out1[2 * b] = s1[0] + s1[1] + s1[2] + bias;
      out1[2 * b + 1] = s1[1] - s1[2] - s1[3] + bias;
    }
    std::copy(out0, out0 + t.W_out, plane + 2 * a * t.W_out);
    if (2 * a + 1 < t.H_out) std::copy(out1, out1 + t.W_out, plane + (2 * a + 1) * t.W_out);
  }
}

// Images per chunk: as many as keep a chunk's 16 x (C + K) x tiles matrices within kChunkBudgetBytes (at
// least 1), evened out over the chunks.
int64_t images_per_chunk(int64_t N, int64_t C, int64_t K, int64_t tiles, int64_t elem_bytes) {
  const int64_t per_image = std::max<int64_t>(1, kTaps * (C + K) * tiles * elem_bytes);
  const int64_t fit = std::clamp<int64_t>(kChunkBudgetBytes / per_image, 1, std::max<int64_t>(N, 1));
  const int64_t chunks = (N + fit - 1) / fit;
  return chunks == 0 ? 1 : (N + chunks - 1) / chunks;
}

// V: (16, C, ld) <- the tiles of images [n0, n0 + nc) of x: (N, C, H, W), image n's at column n * tiles.
template <class T>
void transform_input_chunk(T* V, int64_t ld, const T* x, int64_t n0, int64_t nc, int64_t C, const Tiling& t) {
  const int64_t plane = t.H * t.W;
#pragma omp parallel if (nc * C * plane > kParallelGrain)
  {
    std::vector<T> row(size_t(4 * (2 * t.tiles_w + 2)));
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < nc; ++n)
      for (int64_t c = 0; c < C; ++c)
        transform_input_plane(V + c * ld + n * t.tiles(), C * ld, x + ((n0 + n) * C + c) * plane, t, row.data());
  }
}

// y: (N, K, H_out, W_out) = the convolution of x: (N, C, H, W) by the transformed filters U: (16, K, C),
// plus bias (may be null).
template <class T>
void winograd_conv(T* y, const T* x, const T* U, const T* bias, int64_t N, int64_t C, int64_t K, const Tiling& t) {
  const int64_t tiles = t.tiles(), nb = images_per_chunk(N, C, K, tiles, sizeof(T));
  T* V = scratch<T, 1>(size_t(kTaps * (C + K) * nb * tiles));
  T* M = V + kTaps * C * nb * tiles;
  const int64_t out_plane = t.H_out * t.W_out;
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t nc = std::min(nb, N - n0), ld = nc * tiles;
    transform_input_chunk(V, ld, x, n0, nc, C, t);
    // Per tile position xi: M[xi] (K, ld) = U[xi] (K, C) @ V[xi] (C, ld).
    gemm_batched<T>(false, false, K, ld, C, T(1), U, C, K * C, V, ld, C * ld, T(0), M, ld, K * ld, kTaps);
#pragma omp parallel if (nc * K * out_plane > kParallelGrain)
    {
      std::vector<T> row(size_t(4 * t.tiles_w));
#pragma omp for collapse(2) schedule(static)
      for (int64_t n = 0; n < nc; ++n)
        for (int64_t k = 0; k < K; ++k)
          transform_output_plane(y + ((n0 + n) * K + k) * out_plane, M + k * ld + n * tiles, K * ld,
                                 bias ? bias[k] : T(0), t, row.data());
    }
  }
}

// The adjoint of transform_output_plane (bias aside): one output-gradient plane dy: (H_out, W_out) into dM,
// tile (a, b) at column a * tiles_w + b of each of the 16 matrices (xi_stride apart); dM = A dY A^T with
// A = [[1, 0], [1, 1], [1, -1], [0, -1]], the outputs past the edge counting as 0. row: 4 * tiles_w elements.
template <class T>
void transform_output_grad_plane(T* dM, int64_t xi_stride, const T* dy, const Tiling& t, T* row) {
  const int64_t tw = t.tiles_w, L = 2 * tw;
  T* r0 = row;      // dy row 2a, zero past W_out
  T* r1 = row + L;  // dy row 2a + 1, zero past H_out or W_out
  for (int64_t a = 0; a < t.tiles_h; ++a) {
    std::fill(r0, r0 + 2 * L, T(0));
    std::copy(dy + 2 * a * t.W_out, dy + (2 * a + 1) * t.W_out, r0);
    if (2 * a + 1 < t.H_out) std::copy(dy + (2 * a + 1) * t.W_out, dy + (2 * a + 2) * t.W_out, r1);
    const int64_t col = a * tw;
    for (int i = 0; i < 4; ++i) {  // rows of A dY: r0, r0 + r1, r0 - r1, -r1; then (A dY) A^T by columns
      T* m0 = dM + (i * 4 + 0) * xi_stride + col;
      T* m1 = dM + (i * 4 + 1) * xi_stride + col;
      T* m2 = dM + (i * 4 + 2) * xi_stride + col;
      T* m3 = dM + (i * 4 + 3) * xi_stride + col;
      for (int64_t b = 0; b < tw; ++b) {
        const T a0 = r0[2 * b], a1 = r0[2 * b + 1], c0 = r1[2 * b], c1 = r1[2 * b + 1];
        const T e = i == 0 ? a0 : i == 1 ? a0 + c0 : i == 2 ? a0 - c0 : -c0;
        const T o = i == 0 ? a1 : i == 1 ? a1 + c1 : i == 2 ? a1 - c1 : -c1;
        m0[b] = e;
        m1[b] = e + o;
        m2[b] = e - o;
        m3[b] = -o;
      }
    }
  }
}

// dw: (K, C, 3, 3) <- dU: (16, K, C), the adjoint of transform_filters: dw[k][c] = G^T dU[k][c] G.
template <class T>
void transform_filter_grads(T* dw, const T* dU, int64_t K, int64_t C) {
#pragma omp parallel for schedule(static) if (K * C * 16 > kParallelGrain)
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t c = 0; c < C; ++c) {
      T u[4][4];
      for (int xi = 0; xi < 16; ++xi) u[xi / 4][xi % 4] = dU[(xi * K + k) * C + c];
      T t[3][4];  // G^T u, G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2, 0], [0, 1/2, 1/2, 1]]
      for (int j = 0; j < 4; ++j) {
        t[0][j] = u[0][j] + (u[1][j] + u[2][j]) * T(0.5);
        t[1][j] = (u[1][j] - u[2][j]) * T(0.5);
        t[2][j] = (u[1][j] + u[2][j]) * T(0.5) + u[3][j];
      }
      T* out = dw + (k * C + c) * 9;
      for (int i = 0; i < 3; ++i) {  // (G^T u) G
        out[i * 3 + 0] = t[i][0] + (t[i][1] + t[i][2]) * T(0.5);
        out[i * 3 + 1] = (t[i][1] - t[i][2]) * T(0.5);
        out[i * 3 + 2] = (t[i][1] + t[i][2]) * T(0.5) + t[i][3];
      }
    }
  }
}

Tiling tiling(int64_t H, int64_t W, int64_t pad_h, int64_t pad_w) {
  Tiling t{H, W, pad_h, pad_w, H + 2 * pad_h - 2, W + 2 * pad_w - 2, 0, 0};
  t.tiles_h = (t.H_out + 1) / 2;
  t.tiles_w = (t.W_out + 1) / 2;
  return t;
}

// The geometry both kernels require (the channel minimums of winograd_applies aside).
bool supported(const ConvGeometry& g) {
  return g.kH == 3 && g.kW == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dil_h == 1 && g.dil_w == 1 &&
         g.groups == 1 && g.pad_h <= 2 && g.pad_w <= 2 && g.H_out >= 1 && g.W_out >= 1;
}

}  // namespace

bool winograd_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("STGS_CONV_WINOGRAD");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

bool winograd_applies(const ConvGeometry& g) {
  if (!winograd_enabled() || !supported(g) || g.C_in < 16 || g.C_out < 16) return false;
  // Odd output sizes compute tiles that hang over the edge; at 7x7 (16 tiles, 64 outputs for 49) that waste
  // and the per-call filter transform ate the gain (ResNet-34's 512-channel layer: 8.0 ms either way,
  // batch 8). The backward's tiles cover (H, W), the same size at padding 1.
  const int64_t computed = 4 * ((g.H_out + 1) / 2) * ((g.W_out + 1) / 2);
  return 4 * computed <= 5 * g.hw_out();
}

template <class T>
void conv2d_fwd_winograd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g) {
  T* U = scratch<T, 0>(size_t(kTaps * g.C_out * g.C_in));
  transform_filters(U, w, g.C_out, g.C_in, /*flipped=*/false);
  winograd_conv(y, x, U, bias, g.N, g.C_in, g.C_out, tiling(g.H, g.W, g.pad_h, g.pad_w));
}

template <class T>
void conv2d_bwd_data_winograd(T* dx, const T* dy, const T* w, const ConvGeometry& g) {
  T* U = scratch<T, 0>(size_t(kTaps * g.C_out * g.C_in));
  transform_filters(U, w, g.C_in, g.C_out, /*flipped=*/true);
  winograd_conv(dx, dy, U, static_cast<const T*>(nullptr), g.N, g.C_out, g.C_in,
                tiling(g.H_out, g.W_out, 2 - g.pad_h, 2 - g.pad_w));
}

template <class T>
void conv2d_bwd_weight_winograd(T* dw, const T* dy, const T* x, const ConvGeometry& g) {
  const int64_t C = g.C_in, K = g.C_out;
  const Tiling t = tiling(g.H, g.W, g.pad_h, g.pad_w);
  const int64_t tiles = t.tiles(), nb = images_per_chunk(g.N, C, K, tiles, sizeof(T));
  T* dU = scratch<T, 0>(size_t(kTaps * K * C));
  T* V = scratch<T, 1>(size_t(kTaps * (C + K) * nb * tiles));
  T* dM = V + kTaps * C * nb * tiles;
  if (g.N == 0) std::fill(dU, dU + kTaps * K * C, T(0));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nc = std::min(nb, g.N - n0), ld = nc * tiles;
    transform_input_chunk(V, ld, x, n0, nc, C, t);
#pragma omp parallel if (nc * K * g.hw_out() > kParallelGrain)
    {
      std::vector<T> row(size_t(4 * t.tiles_w));
#pragma omp for collapse(2) schedule(static)
      for (int64_t n = 0; n < nc; ++n)
        for (int64_t k = 0; k < K; ++k)
          transform_output_grad_plane(dM + k * ld + n * tiles, K * ld, dy + ((n0 + n) * K + k) * g.hw_out(), t,
                                      row.data());
    }
    // Per tile position xi: dU[xi] (K, C) (+)= dM[xi] (K, ld) @ V[xi]^T (ld, C), chunk by chunk in batch order.
    gemm_batched<T>(false, true, K, C, ld, T(1), dM, ld, K * ld, V, ld, C * ld, n0 == 0 ? T(0) : T(1), dU, C, K * C,
                    kTaps);
  }
  transform_filter_grads(dw, dU, K, C);
}

#define STGS_INSTANTIATE(T)                                                                               \
  template void conv2d_fwd_winograd<T>(T*, const T*, const T*, const T*, const ConvGeometry&);            \
  template void conv2d_bwd_data_winograd<T>(T*, const T*, const T*, const ConvGeometry&);                 \
  template void conv2d_bwd_weight_winograd<T>(T*, const T*, const T*, const ConvGeometry&);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
