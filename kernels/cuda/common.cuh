// Shared pieces of the CUDA kernels: launch geometry, warp/block reductions, strided index walks.
// defines: kThreads, blocks_for, warp_sum, warp_max, block_sum, block_max, Pack, RowGroup, strided_offset,
//          strided_offsets
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/check.h"
#include "kernels/cuda/check.cuh"
#include "kernels/strided.h"

namespace stgs::kernels::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the GPU (a few waves of 256-thread
// blocks), never more than the work needs.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t needed = (n + threads - 1) / threads;
  const int64_t cap = 132 * 32;  // 132 SMs (H100 SXM) x 32 blocks: saturates any current GPU
  return unsigned(needed < 1 ? 1 : (needed < cap ? needed : cap));
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <class T>
__device__ __forceinline__ T warp_max(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const T o = __shfl_xor_sync(0xffffffffu, v, offset);
    v = o > v ? o : v;
  }
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// The tree is fixed, so the result does not depend on scheduling.
template <class T>
__device__ T block_sum(T v) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? partial[lane] : T(0);
  return warp_sum(v);
}

template <class T>
__device__ T block_max(T v, T lowest) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? partial[lane] : lowest;
  return warp_max(v);
}

// V consecutive elements loaded or stored as one 16-byte (or, for V == 1, scalar) access.
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// The threads that own one row: a warp (kWarp, short rows: a block would mostly idle) or the whole block.
// Rows are walked grid-stride; in block mode the loop is uniform across the block, as the
// __syncthreads in the block reductions require. Kernels derive from it to add their own reductions.
template <bool kWarp>
struct RowGroup {
  __device__ static int lane() { return kWarp ? threadIdx.x & 31 : threadIdx.x; }
  __device__ static int size() { return kWarp ? 32 : blockDim.x; }
  __device__ static int64_t first() {
    return kWarp ? int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5) : int64_t(blockIdx.x);
  }
  __device__ static int64_t stride() { return kWarp ? int64_t(gridDim.x) * (blockDim.x >> 5) : int64_t(gridDim.x); }
  template <class T>
  __device__ static T sum(T v) {
    if constexpr (kWarp) return warp_sum(v);
    else return block_sum(v);
  }
};

// Element offset of operand k for the row-major output index i of a StridedLayout.
__device__ __forceinline__ int64_t strided_offset(const StridedLayout& l, int k, int64_t i) {
  int64_t off = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const int64_t size = l.sizes[d];
    off += (i % size) * l.strides[k][d];
    i /= size;
  }
  return off;
}

// Element offsets of operands First..First+N-1 for the row-major output index i, from one decomposition of i
// shared by all of them (strided_offset repeats it per operand). Index is uint32_t when the walk has fewer
// than 2^31 elements (fits_u32), where a 32-bit divide costs a fraction of a 64-bit one; the outermost needs
// no divide at all. Used by the broadcasting kernels, whose (N, C) + (C) bias adds are all divide.
template <int First, int N, class Index>
__device__ __forceinline__ void strided_offsets(const StridedLayout& l, Index i, int64_t (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = l.ndim - 1; d > 0; --d) {
    const Index size = Index(l.sizes[d]);
    const Index q = i / size;
    const int64_t r = int64_t(i - q * size);
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += r * l.strides[First + k][d];
    i = q;
  }
  if (l.ndim > 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += int64_t(i) * l.strides[First + k][0];
  }
}

}  // namespace stgs::kernels::cuda
