// CPU Winograd convolution, F(2x2, 3x3) and F(4x4, 3x3) (see kernels/winograd.h for the algebra and the
// layouts).
//
// Napkin math (ResNet-34 audio layer1, batch 8, 64 -> 64 channels at 75x64): im2col + GEMM is
// 2 * 64 * 576 * 4800 * 8 = 2.83 GFLOP. F(2x2) does 2 * 16 * 64 * 64 * (38 * 32 * 8) = 1.27 GFLOP of GEMM
// and streams V and M (16 * 64 * 9728 floats each, 40 MB per batch) through memory once each way; F(4x4)
// does 2 * 36 * 64 * 64 * (19 * 16 * 8) = 0.72 GFLOP and streams 36 / 16 * (19 * 16) / (38 * 32) = 0.56x
// as much. At ~300 GFLOP/s and ~20 GB/s: im2col ~10 ms, F(2x2) ~4 + ~4 ms, F(4x4) ~2.5 + ~2.5 ms.
// Measured (2-core Xeon, AVX-512, 2026-12-05, forward / weight gradient): im2col 20.2 / 14.3 ms, F(2x2)
// 9.8 / 11.8, F(4x4) 7.5 / 9.0. Per layer the better tile is not always the one with fewer multiplies:
// at 56x56 with 64 channels both take ~5.8 ms (the 64-deep GEMMs run below peak); at 14x14 and 10x8 the
// 4x4 tiles lose (waste past the edge, few tiles per filter transform), which winograd_tile() encodes.
//
// Transforms: each F(m x m, 3 x 3) is three constant matrices (struct Minimal). The loops below apply them
// with every index a compile-time constant once unrolled, skipping the zero entries, so each product
// becomes the few adds and scalings it really is, and the loops over a row of tiles vectorise: they carry
// `#pragma omp simd`, since GCC cannot prove the n row pointers disjoint and left them scalar without it.
// Measured (same machine, old/new builds alternating, 3 runs, img/s at batch 8): image infer 35.0 -> 37.8,
// train 11.41 -> 11.72, audio infer 28.2 -> 29.3, train 8.61 -> 8.92. Flattening the n rows of a tile row
// into one loop (to fill the vectors on 7-tile rows) and groups of 8 tiles as Lanes both measured slower.
// Chunks: the batch goes through in chunks of whole images sized so that a chunk's V and M (what one
// round of transforms writes and the GEMMs read) stay within kChunkBudgetBytes.
// Threading: the transforms split over (image, channel) planes, the n * n GEMMs over the threads
// (gemm_batched, one matrix per thread at a time); OpenBLAS itself stays single-threaded.
// Order: each thread takes its planes channel-major, the chunk's images of one channel in a row. A plane's
// tiles are a run of `tiles` columns in each of the n*n matrices, and the images of one channel are
// consecutive runs, so in this order every matrix row of V (or M, dM) is written (read) front to back;
// image-major, each plane wrote n*n short runs into rows that the next image of that channel finished only
// C planes later. Input transform at 128ch 28x28 (batch 8): 1.26 -> 0.65 ms; output-gradient transform
// 1.22 -> 0.69 ms. stgs_bench (old/new alternating, 3 runs, img/s): image infer 39.2/39.8/39.6 ->
// 41.8/42.3/43.8, train 12.19/12.31/12.38 -> 13.44/13.45/13.73, audio infer 30.8/31.5/32.0 -> 32.7/33.5/33.5,
// train 9.05/9.08/9.35 -> 10.26/9.79/10.05.
#include "kernels/winograd.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/scratch.h"
#include "kernels/gemm.h"

namespace stgs::kernels::cpu {
namespace {

constexpr int64_t kChunkBudgetBytes = int64_t(8) << 20;  // V + M of one chunk
constexpr int64_t kParallelGrain = 32768;                // elements below which a transform stays serial
// F(4x4) needs this many tiles over the batch per call to amortise its filter transform (36 K C values).
constexpr int64_t kMinTilesF4 = 128;

// F(m x m, 3 x 3) with input tiles of n = m + 2: Y = A^T [(G g G^T) . (B^T d B)] A (Lavin & Gray's
// interpolation points 0, +-1, (+-2,) infinity).
template <int M>
struct Minimal;

template <>
struct Minimal<2> {
  static constexpr int m = 2, n = 4;
  static constexpr double BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr double AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

template <>
struct Minimal<4> {
  static constexpr int m = 4, n = 6;
  static constexpr double BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                      {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  static constexpr double AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// out[r] = sum over c of mat(r, c) * in(c), for r < R and c < C; mat(r, c) must be a constant expression
// once the loops are unrolled (it is, for the constant arrays above): zero entries cost nothing, ones no
// multiply.
template <int R, int C, class Mat, class In, class Out>
inline void apply(Mat mat, In in, Out out) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    bool first = true;
    auto acc = decltype(in(0))(0);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const double k = mat(r, c);
      if (k == 0) continue;
      const auto v = k == 1 ? in(c) : k == -1 ? -in(c) : decltype(in(0))(k) * in(c);
      acc = first ? v : acc + v;
      first = false;
    }
    out(r, acc);
  }
}

// kLanes values that the arithmetic of apply() treats as one: each operator is a loop over the lanes, which
// the compiler turns into vector instructions (a loop over lanes around apply() itself does not vectorise:
// GCC 12 does not unroll the transform's inner loops first).
template <class T, int kLanes>
struct Lanes {
  T v[kLanes];
  Lanes() = default;
  explicit Lanes(double s) {
    for (int l = 0; l < kLanes; ++l) v[l] = T(s);
  }
  friend Lanes operator+(Lanes a, const Lanes& b) {
    for (int l = 0; l < kLanes; ++l) a.v[l] += b.v[l];
    return a;
  }
  friend Lanes operator-(Lanes a) {
    for (int l = 0; l < kLanes; ++l) a.v[l] = -a.v[l];
    return a;
  }
  friend Lanes operator*(Lanes a, const Lanes& b) {
    for (int l = 0; l < kLanes; ++l) a.v[l] *= b.v[l];
    return a;
  }
};

// Copies the `lanes` used values of a block of kFull: a full block with a compile-time length (inline vector
// moves; a run-time length is a memmove call per row, which cost the filter transforms about a quarter).
template <int kFull, class T>
inline void copy_lanes(const T* src, int64_t lanes, T* dst) {
  if (lanes == kFull)
    std::copy_n(src, kFull, dst);
  else
    std::copy_n(src, lanes, dst);
}

// U: (n*n, K, C) <- the filters. Forward (flipped false): w is (K, C, 3, 3) and U[xi][k][c] = G w[k][c] G^T.
// Backward to the input (flipped true): w is the forward's (C, K, 3, 3) and the filter from input channel c
// to output channel k is w[c][k] rotated by 180 degrees.
// Blocks of kLanes channels c go through together (Lanes), so the arithmetic runs in vector registers and
// each row of U is written kLanes values at a time (ResNet-34's 512 x 512 filters are 16 MB of U in F(2x2),
// 37 MB in F(4x4), per call).
template <int Mt, class T>
void transform_filters(T* U, const T* w, int64_t K, int64_t C, bool flipped) {
  using W = Minimal<Mt>;
  constexpr int n = W::n;
  constexpr int kLanes = 16;
  using V = Lanes<T, kLanes>;
  const int64_t blocks = (C + kLanes - 1) / kLanes;
#pragma omp parallel for collapse(2) schedule(static) if (K * C * 9 > kParallelGrain)
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kLanes, lanes = std::min<int64_t>(kLanes, C - c0);
      V g[3][3] = {};
      for (int64_t l = 0; l < lanes; ++l) {
        const int64_t c = c0 + l;
        const T* src = flipped ? w + (c * K + k) * 9 : w + (k * C + c) * 9;
        for (int e = 0; e < 9; ++e) g[e / 3][e % 3].v[l] = src[flipped ? 8 - e : e];  // 180 degrees
      }
      V t[n][3];  // G g
      V u[n][n];  // (G g) G^T
      for (int j = 0; j < 3; ++j)
        apply<n, 3>([](int r, int c) { return W::G[r][c]; }, [&](int c) { return g[c][j]; },
                    [&](int r, const V& v) { t[r][j] = v; });
      for (int i = 0; i < n; ++i)
        apply<n, 3>([](int r, int c) { return W::G[r][c]; }, [&](int c) { return t[i][c]; },
                    [&](int r, const V& v) { u[i][r] = v; });
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) copy_lanes<kLanes>(u[i][j].v, lanes, U + ((i * n + j) * K + k) * C + c0);
    }
  }
}

// dw: (K, C, 3, 3) <- dU: (n*n, K, C), the adjoint of transform_filters: dw[k][c] = G^T dU[k][c] G. Blocks of
// kLanes channels as Lanes, as in transform_filters (256 x 256 filters in F(4x4): 0.83 -> 0.37 ms).
template <int Mt, class T>
void transform_filter_grads(T* dw, const T* dU, int64_t K, int64_t C) {
  using W = Minimal<Mt>;
  constexpr int n = W::n;
  constexpr int kLanes = 16;
  using V = Lanes<T, kLanes>;
  const int64_t blocks = (C + kLanes - 1) / kLanes;
#pragma omp parallel for collapse(2) schedule(static) if (K * C * n * n > kParallelGrain)
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kLanes, lanes = std::min<int64_t>(kLanes, C - c0);
      V u[n][n] = {};
      for (int q = 0; q < n; ++q)
        for (int j = 0; j < n; ++j) copy_lanes<kLanes>(dU + ((q * n + j) * K + k) * C + c0, lanes, u[q][j].v);
      V t[3][n];  // G^T u
      for (int j = 0; j < n; ++j)
        apply<3, n>([](int r, int q) { return W::G[q][r]; }, [&](int q) { return u[q][j]; },
                    [&](int r, const V& v) { t[r][j] = v; });
      V g[3][3];  // (G^T u) G
      for (int i = 0; i < 3; ++i)
        apply<3, n>([](int r, int q) { return W::G[q][r]; }, [&](int q) { return t[i][q]; },
                    [&](int r, const V& v) { g[i][r] = v; });
      T* out = dw + (k * C + c0) * 9;  // the block's filters are consecutive: (lanes, 3, 3)
      for (int64_t l = 0; l < lanes; ++l)
        for (int e = 0; e < 9; ++e) out[l * 9 + e] = g[e / 3][e % 3].v[l];
    }
  }
}

// Shape of one problem as the tile loops see it: input planes (H, W), padding, output (H_out, W_out) and
// tiles_h x tiles_w m x m output tiles per image.
struct Tiling {
  int64_t H, W, pad_h, pad_w, H_out, W_out, tiles_h, tiles_w;
  int64_t tiles() const { return tiles_h * tiles_w; }
};

Tiling tiling(int m, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w) {
  Tiling t{H, W, pad_h, pad_w, H + 2 * pad_h - 2, W + 2 * pad_w - 2, 0, 0};
  t.tiles_h = (t.H_out + m - 1) / m;
  t.tiles_w = (t.W_out + m - 1) / m;
  return t;
}

// One input plane's tiles into V: column col of each of the n*n matrices (xi_stride apart) for tile (a, b)
// at col + a * tiles_w + b. row: scratch of n * (m * tiles_w + 2) elements; zeros: W zeros (the rows
// above and below the plane). B^T d is taken straight from the plane rows (no copy of them first).
template <int Mt, class T>
void transform_input_plane(T* V, int64_t xi_stride, const T* plane, const Tiling& t, T* row, const T* zeros) {
  using W = Minimal<Mt>;
  constexpr int m = W::m, n = W::n;
  const int64_t L = m * t.tiles_w + 2;  // the input columns a tile row reads, padding included
  T* d[n];
  for (int i = 0; i < n; ++i) d[i] = row + i * L;
  // Column j of a tile row reads input column j - pad_w; [lo, hi) lie inside the plane, the rest is zero.
  const int64_t lo = std::min<int64_t>(t.pad_w, L), hi = std::clamp<int64_t>(t.W + t.pad_w, lo, L);
  for (int i = 0; i < n; ++i) {
    std::fill(d[i], d[i] + lo, T(0));
    std::fill(d[i] + hi, d[i] + L, T(0));
  }
  for (int64_t a = 0; a < t.tiles_h; ++a) {
    const T* src[n];  // input rows m a - pad_h + i (zeros outside the plane), indexed by tile-row column
    for (int i = 0; i < n; ++i) {
      const int64_t r = m * a - t.pad_h + i;
      src[i] = (r < 0 || r >= t.H ? zeros : plane + r * t.W) - t.pad_w;
    }
#pragma omp simd
    for (int64_t j = lo; j < hi; ++j)  // B^T d, straight from the plane's rows
      apply<n, n>([](int r, int c) { return W::BT[r][c]; }, [&](int c) { return src[c][j]; },
                  [&](int r, T v) { d[r][j] = v; });
    const int64_t col0 = a * t.tiles_w;
    for (int i = 0; i < n; ++i) {  // (B^T d) B, row i: tile b reads columns m b .. m b + n - 1
      const T* s = d[i];
      T* v = V + i * n * xi_stride + col0;
#pragma omp simd
      for (int64_t b = 0; b < t.tiles_w; ++b)
        apply<n, n>([](int r, int c) { return W::BT[r][c]; }, [&](int c) { return s[m * b + c]; },
                    [&](int r, T x) { v[r * xi_stride + b] = x; });
    }
  }
}

// One output plane (H_out, W_out) from its row of M: tile (a, b) at column a * tiles_w + b of each of the
// n*n matrices (xi_stride apart), plus bias. Across each tile's columns first (u = s A, one tile row of
// the n x n values at a time), then down the rows a whole output row at once (A^T u), as
// transform_input_plane does in the other order. row: (n + m) * m * tiles_w elements.
template <int Mt, class T>
void transform_output_plane(T* plane, const T* Mm, int64_t xi_stride, T bias, const Tiling& t, T* row) {
  using W = Minimal<Mt>;
  constexpr int m = W::m, n = W::n;
  const int64_t tw = t.tiles_w, L = m * tw;
  T* u = row;          // (n, L): row k of every tile times A
  T* y = row + n * L;  // (m, L): the tile row's m output rows
  for (int64_t a = 0; a < t.tiles_h; ++a) {
    const T* src = Mm + a * tw;
    for (int k = 0; k < n; ++k) {
      const T* s = src + k * n * xi_stride;
      T* uk = u + k * L;
#pragma omp simd
      for (int64_t b = 0; b < tw; ++b)
        apply<m, n>([](int j, int c) { return W::AT[j][c]; }, [&](int c) { return s[c * xi_stride + b]; },
                    [&](int j, T v) { uk[m * b + j] = v; });
    }
#pragma omp simd
    for (int64_t x = 0; x < L; ++x)
      apply<m, n>([](int i, int k) { return W::AT[i][k]; }, [&](int k) { return u[k * L + x]; },
                  [&](int i, T v) { y[i * L + x] = v + bias; });
    for (int i = 0; i < m && m * a + i < t.H_out; ++i)
      std::copy(y + i * L, y + i * L + t.W_out, plane + (m * a + i) * t.W_out);
  }
}

// The adjoint of transform_output_plane (bias aside): one output-gradient plane dy: (H_out, W_out) into dM,
// tile (a, b) at column a * tiles_w + b of each of the n*n matrices (xi_stride apart); dM = A dY A^T, the
// outputs past the edge counting as 0. Shaped like transform_input_plane: A along the rows first, a whole
// row of columns at once, then A^T across each tile's columns. row: (m + n) * m * tiles_w elements.
template <int Mt, class T>
void transform_output_grad_plane(T* dM, int64_t xi_stride, const T* dy, const Tiling& t, T* row) {
  using W = Minimal<Mt>;
  constexpr int m = W::m, n = W::n;
  const int64_t tw = t.tiles_w, L = m * tw;
  T* r = row;          // dy rows m a .. m a + m - 1, zero past H_out and W_out: (m, L)
  T* q = row + m * L;  // A dY, column by column: (n, L)
  for (int64_t a = 0; a < t.tiles_h; ++a) {
    std::fill(r, r + m * L, T(0));
    for (int i = 0; i < m && m * a + i < t.H_out; ++i)
      std::copy(dy + (m * a + i) * t.W_out, dy + (m * a + i + 1) * t.W_out, r + i * L);
#pragma omp simd
    for (int64_t j = 0; j < L; ++j)
      apply<n, m>([](int k, int c) { return W::AT[c][k]; }, [&](int c) { return r[c * L + j]; },
                  [&](int k, T v) { q[k * L + j] = v; });
    const int64_t col0 = a * tw;
    for (int k = 0; k < n; ++k) {  // (A dY) A^T, row k: tile b reads columns m b .. m b + m - 1
      const T* s = q + k * L;
      T* dst = dM + k * n * xi_stride + col0;
#pragma omp simd
      for (int64_t b = 0; b < tw; ++b)
        apply<n, m>([](int l, int c) { return W::AT[c][l]; }, [&](int c) { return s[m * b + c]; },
                    [&](int l, T v) { dst[l * xi_stride + b] = v; });
    }
  }
}

// Images per chunk: as many as keep a chunk's taps x (C + K) x tiles matrices (V and M) within
// kChunkBudgetBytes (images_per_chunk).
int64_t tile_chunk_images(int64_t taps, int64_t N, int64_t C, int64_t K, int64_t tiles, int64_t elem_bytes) {
  return images_per_chunk(N, taps * (C + K) * tiles * elem_bytes, kChunkBudgetBytes);
}

// V: (n*n, C, ld) <- the tiles of images [n0, n0 + nc) of x: (N, C, H, W), image n's at column n * tiles.
template <int Mt, class T>
void transform_input_chunk(T* V, int64_t ld, const T* x, int64_t n0, int64_t nc, int64_t C, const Tiling& t) {
  const int64_t plane = t.H * t.W;
#pragma omp parallel if (nc * C * plane > kParallelGrain)
  {
    const size_t rows = size_t(Minimal<Mt>::n * (Mt * t.tiles_w + 2));
    std::vector<T> row(rows + size_t(t.W));  // the tile row's B^T d, then a row of zeros
#pragma omp for collapse(2) schedule(static)
    for (int64_t c = 0; c < C; ++c)  // channel-major: see the file comment
      for (int64_t n = 0; n < nc; ++n)
        transform_input_plane<Mt>(V + c * ld + n * t.tiles(), C * ld, x + ((n0 + n) * C + c) * plane, t, row.data(),
                                  row.data() + rows);
  }
}

// y: (N, K, H_out, W_out) = the convolution of x: (N, C, H, W) by the transformed filters U: (n*n, K, C),
// plus bias (may be null).
template <int Mt, class T>
void winograd_conv(T* y, const T* x, const T* U, const T* bias, int64_t N, int64_t C, int64_t K, const Tiling& t) {
  constexpr int64_t taps = Minimal<Mt>::n * Minimal<Mt>::n;
  const int64_t tiles = t.tiles(), nb = tile_chunk_images(taps, N, C, K, tiles, sizeof(T));
  T* V = thread_scratch<T, 1>(size_t(taps * (C + K) * nb * tiles));
  T* M = V + taps * C * nb * tiles;
  const int64_t out_plane = t.H_out * t.W_out;
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t nc = std::min(nb, N - n0), ld = nc * tiles;
    transform_input_chunk<Mt>(V, ld, x, n0, nc, C, t);
    // Per tile position xi: M[xi] (K, ld) = U[xi] (K, C) @ V[xi] (C, ld).
    gemm_batched<T>(false, false, K, ld, C, T(1), U, C, K * C, V, ld, C * ld, T(0), M, ld, K * ld, taps);
#pragma omp parallel if (nc * K * out_plane > kParallelGrain)
    {
      std::vector<T> row(size_t((Minimal<Mt>::n + Mt) * Mt * t.tiles_w));
#pragma omp for collapse(2) schedule(static)
      for (int64_t k = 0; k < K; ++k)  // channel-major: see the file comment
        for (int64_t n = 0; n < nc; ++n)
          transform_output_plane<Mt>(y + ((n0 + n) * K + k) * out_plane, M + k * ld + n * tiles, K * ld,
                                     bias ? bias[k] : T(0), t, row.data());
    }
  }
}

// The geometry the kernels require (the choice of winograd_tile aside).
bool supported(const ConvGeometry& g) {
  return g.kH == 3 && g.kW == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dil_h == 1 && g.dil_w == 1 &&
         g.groups == 1 && g.pad_h <= 2 && g.pad_w <= 2 && g.H_out >= 1 && g.W_out >= 1;
}

// y: (N, K, H + 2 pad_h - 2, W + 2 pad_w - 2) = the convolution of x: (N, C, H, W) by the filters w (flipped:
// see transform_filters), plus bias (may be null), in tiles of Mt.
template <int Mt, class T>
void convolve(T* y, const T* x, const T* w, const T* bias, int64_t N, int64_t C, int64_t K, int64_t H, int64_t W,
              int64_t pad_h, int64_t pad_w, bool flipped) {
  constexpr int64_t taps = Minimal<Mt>::n * Minimal<Mt>::n;
  T* U = thread_scratch<T, 0>(size_t(taps * K * C));
  transform_filters<Mt>(U, w, K, C, flipped);
  winograd_conv<Mt>(y, x, U, bias, N, C, K, tiling(Mt, H, W, pad_h, pad_w));
}

template <int Mt, class T>
void bwd_weight(T* dw, const T* dy, const T* x, const ConvGeometry& g) {
  constexpr int64_t taps = Minimal<Mt>::n * Minimal<Mt>::n;
  const int64_t C = g.C_in, K = g.C_out;
  const Tiling t = tiling(Mt, g.H, g.W, g.pad_h, g.pad_w);
  const int64_t tiles = t.tiles(), nb = tile_chunk_images(taps, g.N, C, K, tiles, sizeof(T));
  T* dU = thread_scratch<T, 0>(size_t(taps * K * C));
  T* V = thread_scratch<T, 1>(size_t(taps * (C + K) * nb * tiles));
  T* dM = V + taps * C * nb * tiles;
  if (g.N == 0) std::fill(dU, dU + taps * K * C, T(0));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nc = std::min(nb, g.N - n0), ld = nc * tiles;
    transform_input_chunk<Mt>(V, ld, x, n0, nc, C, t);
#pragma omp parallel if (nc * K * g.hw_out() > kParallelGrain)
    {
      std::vector<T> row(size_t((Mt + Minimal<Mt>::n) * Mt * t.tiles_w));
#pragma omp for collapse(2) schedule(static)
      for (int64_t k = 0; k < K; ++k)  // channel-major: see the file comment
        for (int64_t n = 0; n < nc; ++n)
          transform_output_grad_plane<Mt>(dM + k * ld + n * tiles, K * ld, dy + ((n0 + n) * K + k) * g.hw_out(), t,
                                          row.data());
    }
    // Per tile position xi: dU[xi] (K, C) (+)= dM[xi] (K, ld) @ V[xi]^T (ld, C), chunk by chunk in batch order.
    gemm_batched<T>(false, true, K, C, ld, T(1), dM, ld, K * ld, V, ld, C * ld, n0 == 0 ? T(0) : T(1), dU, C, K * C,
                    taps);
  }
  transform_filter_grads<Mt>(dw, dU, K, C);
}

// The tile size as a compile-time constant: f(std::integral_constant<int, 4>) or f(... 2).
template <class F>
void with_tile(int m, F f) {
  if (m == 4)
    f(std::integral_constant<int, 4>{});
  else
    f(std::integral_constant<int, 2>{});
}

std::atomic<int> g_winograd{-1};  // -1: not yet read from the environment

}  // namespace

bool winograd_enabled() {
  int v = g_winograd.load();
  if (v < 0) {
    const char* env = std::getenv("STGS_CONV_WINOGRAD");
    v = env == nullptr || std::strcmp(env, "0") != 0 ? 1 : 0;
    g_winograd.store(v);
  }
  return v == 1;
}

void set_winograd_enabled(bool on) { g_winograd.store(on ? 1 : 0); }

int winograd_tile(const ConvGeometry& g) {
  if (!winograd_enabled() || !supported(g) || g.C_in < 16 || g.C_out < 16) return 0;
  // Outputs computed per output kept with m x m tiles, over the forward's output (H_out, W_out) and the
  // backward's (H, W) (the same size at padding 1): past a quarter more, the tiles lost to im2col in
  // measurements (see kernels/winograd.h). 4x4 tiles need 2.25 multiplies per output and channel pair
  // against 2x2's 4, so within that rule they always win, once the batch has enough of them.
  auto waste = [&](int m) {
    auto over = [m](int64_t h, int64_t w) {
      return double(m * m * ((h + m - 1) / m) * ((w + m - 1) / m)) / double(h * w);
    };
    return std::max(over(g.H_out, g.W_out), over(g.H, g.W));
  };
  if (waste(4) <= 1.25 && g.N * tiling(4, g.H, g.W, g.pad_h, g.pad_w).tiles() >= kMinTilesF4) return 4;
  if (waste(2) <= 1.25) return 2;
  return 0;
}

namespace {

// The tile size to run: m if given (2 or 4), else winograd_tile's choice, 2 where that is 0.
int checked_tile(const ConvGeometry& g, int m) {
  STGS_CHECK(supported(g), "Winograd convolution: expected a 3x3 kernel, stride 1, dilation 1, one group and "
             "padding <= 2, got kernel ", g.kH, "x", g.kW, ", stride ", g.stride_h, ",", g.stride_w, ", dilation ",
             g.dil_h, ",", g.dil_w, ", groups ", g.groups, ", padding ", g.pad_h, ",", g.pad_w);
  STGS_CHECK(m == 0 || m == 2 || m == 4, "Winograd convolution: tiles of ", m, " (expected 2, 4, or 0 to choose)");
  return m != 0 ? m : std::max(2, winograd_tile(g));
}

}  // namespace

template <class T>
void conv2d_fwd_winograd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g, int m) {
  with_tile(checked_tile(g, m), [&](auto tile) {
    convolve<tile()>(y, x, w, bias, g.N, g.C_in, g.C_out, g.H, g.W, g.pad_h, g.pad_w, /*flipped=*/false);
  });
}

template <class T>
void conv2d_bwd_data_winograd(T* dx, const T* dy, const T* w, const ConvGeometry& g, int m) {
  with_tile(checked_tile(g, m), [&](auto tile) {
    convolve<tile()>(dx, dy, w, static_cast<const T*>(nullptr), g.N, g.C_out, g.C_in, g.H_out, g.W_out,
                     2 - g.pad_h, 2 - g.pad_w, /*flipped=*/true);
  });
}

template <class T>
void conv2d_bwd_weight_winograd(T* dw, const T* dy, const T* x, const ConvGeometry& g, int m) {
  with_tile(checked_tile(g, m), [&](auto tile) { bwd_weight<tile()>(dw, dy, x, g); });
}

#define STGS_INSTANTIATE(T)                                                                               \
  template void conv2d_fwd_winograd<T>(T*, const T*, const T*, const T*, const ConvGeometry&, int);       \
  template void conv2d_bwd_data_winograd<T>(T*, const T*, const T*, const ConvGeometry&, int);            \
  template void conv2d_bwd_weight_winograd<T>(T*, const T*, const T*, const ConvGeometry&, int);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
