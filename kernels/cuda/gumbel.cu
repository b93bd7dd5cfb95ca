// CUDA twins of kernels/gumbel.h: Gumbel-softmax forward (noise, argmax, softmax, one-hot) and backward.
// defines: cuda::gumbel_softmax_fwd, cuda::gumbel_softmax_bwd
//
// One launch per call, for all rows, in one of two shapes:
//  * K <= kTileK (the search space has K = 2 and 5): a block owns a tile of 256 consecutive rows, whose
//    rows * K elements are contiguous. The block stages them through shared memory with coalesced loads;
//    in the forward one thread per Philox block draws 4 consecutive elements' noise (one Philox evaluation
//    per 4 draws, as in uniform_fill, whatever rows they belong to). Then one thread per row does its
//    argmax/softmax (or dot product) in shared memory, and the block writes the tile back coalesced.
//  * K > kTileK: a warp per row, lanes striding over k, with one Philox evaluation per element (4x the
//    integer work, acceptable off the search's shapes); z is parked in the soft output between passes.
// The arithmetic follows the CPU reference step by step (the same z, shift, sum order within a row in the
// tile shape, 1/sum then multiply), so the GPU draws the same uniforms and the same argmax, and the soft
// values differ only by the last bits of logf/expf (and the warp shape's summation order).
//
// Napkin math (F32, K = 5, many rows): the forward reads 4 B and writes 8 B (soft, hard) per element plus
// 8 B of index per row: 13.6 B per element, 285 MB for 21M elements, ~90 us at 3.2 TB/s. Its arithmetic is
// a quarter Philox block (~20 integer instructions), two logf, one expf and a division: ~80 instructions
// per element, ~60 us at ~30 T instructions/s on an H100, so the kernel sits near the balance point and
// should reach most of the copy bandwidth. The backward reads grad and soft and writes dlogits (12 B per
// element) with a handful of FLOPs: bandwidth-bound.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/gumbel.h"
#include "kernels/philox.h"

namespace stgs::kernels::cuda {
namespace {

constexpr int kTileRows = kThreads;  // one thread per row of the tile
constexpr int kTileK = 8;            // tile shape up to K = 8: at most 2048 elements per tile array
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float exp_(float v) { return ::expf(v); }
__device__ __forceinline__ double exp_(double v) { return ::exp(v); }

// philox_gumbel's transform of one 32-bit draw: -log(-log(u)), u strictly inside (0, 1), so finite.
template <class T>
__device__ __forceinline__ T gumbel_of(uint32_t bits) {
  if constexpr (sizeof(T) == 4) {
    return -::logf(-::logf(uniform_from_bits_f32(bits)));
  } else {
    return T(-::log(-::log(uniform_from_bits_f64(bits))));
  }
}

// Rows [row0, row0 + nrows) of a tile and their elements [base, base + count) in the (rows, K) arrays.
struct Tile {
  int64_t row0, base;
  int nrows, count;
};

__device__ __forceinline__ Tile tile_at(int64_t tile, int64_t rows, int K) {
  const int64_t row0 = tile * kTileRows;
  const int nrows = int(rows - row0 < kTileRows ? rows - row0 : kTileRows);
  return {row0, row0 * K, nrows, nrows * K};
}

// Forward, tile shape (K <= kTileK). z and onehot hold the tile's (nrows, K) elements in shared memory.
template <class T>
__global__ void gumbel_fwd_tile_kernel(T* soft, T* hard, int64_t* index, const T* logits, int64_t rows, int K,
                                       T lambda, bool noise, uint64_t seed, uint64_t offset) {
  __shared__ T z[kTileRows * kTileK], onehot[kTileRows * kTileK];
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const Tile t = tile_at(tile, rows, K);
    // 1. z = (logits + G) / lambda. Tile element i uses counter first + i; Philox block b covers counters
    //    4b .. 4b + 3, so block (first / 4 + j) holds elements 4j + lane - skew.
    if (noise) {
      const uint64_t first = offset + uint64_t(t.base);
      const int skew = int(first & 3);
      const int blocks = (skew + t.count + 3) / 4;
      for (int j = threadIdx.x; j < blocks; j += blockDim.x) {
        const Philox4 u = philox_block(seed, first / 4 + uint64_t(j));
#pragma unroll
        for (int lane = 0; lane < 4; ++lane) {
          const int i = 4 * j + lane - skew;
          if (i >= 0 && i < t.count) z[i] = (logits[t.base + i] + gumbel_of<T>(u.v[lane])) / lambda;
        }
      }
    } else {
      for (int i = threadIdx.x; i < t.count; i += blockDim.x) z[i] = logits[t.base + i] / lambda;
    }
    __syncthreads();
    // 2. One thread per row: argmax (lowest index on ties), then softmax in place, as on the CPU.
    if (const int r = threadIdx.x; r < t.nrows) {
      T* zr = z + r * K;
      int best = 0;
      for (int k = 1; k < K; ++k)
        if (zr[k] > zr[best]) best = k;
      const T m = zr[best];
      T sum = 0;
      for (int k = 0; k < K; ++k) {
        zr[k] = exp_(zr[k] - m);
        sum += zr[k];
      }
      const T inv = T(1) / sum;
      for (int k = 0; k < K; ++k) {
        zr[k] *= inv;
        onehot[r * K + k] = k == best ? T(1) : T(0);
      }
      index[t.row0 + r] = best;
    }
    __syncthreads();
    // 3. Coalesced write-back.
    for (int i = threadIdx.x; i < t.count; i += blockDim.x) {
      soft[t.base + i] = z[i];
      if (hard) hard[t.base + i] = onehot[i];
    }
    __syncthreads();  // z and onehot are refilled by the next tile
  }
}

// Forward, warp shape (K > kTileK): three passes over the row (z, exp and sum, scale), z kept in soft.
template <class T>
__global__ void gumbel_fwd_rows_kernel(T* soft, T* hard, int64_t* index, const T* logits, int64_t rows, int64_t K,
                                       T lambda, bool noise, uint64_t seed, uint64_t offset) {
  using G = RowGroup<true>;
  const int lane = G::lane();
  for (int64_t r = G::first(); r < rows; r += G::stride()) {
    const T* x = logits + r * K;
    T* y = soft + r * K;
    // This lane's maximum and its lowest index; a lane without elements keeps (-inf, K).
    T m = T(-INFINITY);
    int64_t best = K;
    for (int64_t k = lane; k < K; k += 32) {
      const T g = noise ? philox_gumbel<T>(seed, offset + uint64_t(r * K + k)) : T(0);
      const T z = (x[k] + g) / lambda;
      y[k] = z;
      if (best == K || z > m) m = z, best = k;
    }
    // Lane 0 gathers the row's maximum, lowest index on ties, and shares it. It starts from a real element
    // (k = 0) and a lane's (-inf, K) never wins, so the index stays inside [0, K) even with NaNs.
    for (int o = 16; o > 0; o >>= 1) {
      const T om = __shfl_down_sync(kFullMask, m, o);
      const int64_t ob = __shfl_down_sync(kFullMask, best, o);
      if (om > m || (om == m && ob < best)) m = om, best = ob;
    }
    m = __shfl_sync(kFullMask, m, 0);
    best = __shfl_sync(kFullMask, best, 0);
    T sum = 0;
    for (int64_t k = lane; k < K; k += 32) {
      y[k] = exp_(y[k] - m);
      sum += y[k];
    }
    const T inv = T(1) / warp_sum(sum);
    for (int64_t k = lane; k < K; k += 32) {
      y[k] *= inv;
      if (hard) hard[r * K + k] = k == best ? T(1) : T(0);
    }
    if (lane == 0) index[r] = best;
  }
}

// Backward, tile shape: g and y staged in shared memory, dlogits computed in place of g.
template <class T>
__global__ void gumbel_bwd_tile_kernel(T* dlogits, const T* grad, const T* soft, int64_t rows, int K, T lambda) {
  __shared__ T g[kTileRows * kTileK], y[kTileRows * kTileK];
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const Tile t = tile_at(tile, rows, K);
    for (int i = threadIdx.x; i < t.count; i += blockDim.x) {
      g[i] = grad[t.base + i];
      y[i] = soft[t.base + i];
    }
    __syncthreads();
    if (const int r = threadIdx.x; r < t.nrows) {
      T* gr = g + r * K;
      const T* yr = y + r * K;
      T dot = 0;
      for (int k = 0; k < K; ++k) dot += gr[k] * yr[k];
      for (int k = 0; k < K; ++k) gr[k] = yr[k] * (gr[k] - dot) / lambda;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < t.count; i += blockDim.x) dlogits[t.base + i] = g[i];
    __syncthreads();  // g and y are refilled by the next tile
  }
}

// Backward, warp shape.
template <class T>
__global__ void gumbel_bwd_rows_kernel(T* dlogits, const T* grad, const T* soft, int64_t rows, int64_t K, T lambda) {
  using G = RowGroup<true>;
  for (int64_t r = G::first(); r < rows; r += G::stride()) {
    const T* g = grad + r * K;
    const T* y = soft + r * K;
    T dot = 0;
    for (int64_t k = G::lane(); k < K; k += 32) dot += g[k] * y[k];
    dot = warp_sum(dot);
    for (int64_t k = G::lane(); k < K; k += 32) dlogits[r * K + k] = y[k] * (g[k] - dot) / lambda;
  }
}

}  // namespace

template <class T>
void gumbel_softmax_fwd(T* soft, T* hard, int64_t* index, const T* logits, int64_t rows, int64_t K, T lambda,
                        bool noise, uint64_t seed, uint64_t offset, Stream stream) {
  cudaStream_t s = stream;
  if (rows == 0) return;
  if (K <= kTileK) {
    gumbel_fwd_tile_kernel<T><<<blocks_for(rows, kTileRows), kTileRows, 0, s>>>(soft, hard, index, logits, rows,
                                                                                  int(K), lambda, noise, seed, offset);
  } else {
    gumbel_fwd_rows_kernel<T><<<blocks_for(rows, kThreads / 32), kThreads, 0, s>>>(soft, hard, index, logits, rows, K,
                                                                                     lambda, noise, seed, offset);
  }
  CUDA_CHECK_LAUNCH();
}

template <class T>
void gumbel_softmax_bwd(T* dlogits, const T* grad, const T* soft, int64_t rows, int64_t K, T lambda, Stream stream) {
  cudaStream_t s = stream;
  if (rows == 0) return;
  if (K <= kTileK) {
    gumbel_bwd_tile_kernel<T><<<blocks_for(rows, kTileRows), kTileRows, 0, s>>>(dlogits, grad, soft, rows, int(K),
                                                                                  lambda);
  } else {
    gumbel_bwd_rows_kernel<T><<<blocks_for(rows, kThreads / 32), kThreads, 0, s>>>(dlogits, grad, soft, rows, K,
                                                                                     lambda);
  }
  CUDA_CHECK_LAUNCH();
}

#define STGS_INSTANTIATE(T)                                                                                 \
  template void gumbel_softmax_fwd<T>(T*, T*, int64_t*, const T*, int64_t, int64_t, T, bool, uint64_t,     \
                                      uint64_t, Stream);                                                    \
  template void gumbel_softmax_bwd<T>(T*, const T*, const T*, int64_t, int64_t, T, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
