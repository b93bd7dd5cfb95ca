// CUDA twins of kernels/reduce.h: sum and max(+argmax) over one dimension of (outer, n, inner), gather
// along it and the scatter-add backward of the gather.
// defines: cuda::sum_dim, cuda::max_dim, cuda::gather_dim, cuda::scatter_add_dim
//
// Napkin math: a reduction reads each input element once (4 B in F32, 8 B in F64) and writes outer*inner
// results, so it is bandwidth-bound: 1 G floats = 4 GB, ~1.3 ms at an H100's 3.35 TB/s. gather/scatter
// move an 8 B index plus two values per output element (16 B in F32), also bandwidth-bound.
// No atomics in the reductions: every output has one owner thread or a fixed tree, so results are
// deterministic. Contiguous rows (inner == 1) are reduced by a block with coalesced loads; columns
// (inner > 1) by one thread each, consecutive threads reading consecutive i (coalesced), or, when there are
// too few columns to fill the GPU, by one thread per (chunk of rows, column) and a second pass.
#include <algorithm>
#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace stgs::kernels::cuda {
namespace {

// A single long row is split into chunks of this many elements (one block each) whose sums are then
// combined in order by a second pass.
constexpr int64_t kChunk = 8192;

// Block size for one block per row: enough threads for the row, at most kThreads, a whole warp at least.
int row_threads(int64_t n) {
  const int64_t t = (n + 31) / 32 * 32;
  return int(t < 32 ? 32 : (t > kThreads ? kThreads : t));
}

// out[r] = sum of row r of x: (rows, n); one block per row (grid-stride over rows).
template <class T>
__global__ void sum_rows_kernel(T* out, const T* x, int64_t rows, int64_t n) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = x + r * n;
    T acc = 0;
#pragma unroll 4
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) acc += row[j];
    acc = block_sum(acc);
    if (threadIdx.x == 0) out[r] = acc;
  }
}

// partial[r, c] = sum of chunk c (kChunk elements) of row r; grid (chunks, rows).
template <class T>
__global__ void sum_chunks_kernel(T* partial, const T* x, int64_t n, int64_t chunks) {
  const int64_t r = blockIdx.y, c = blockIdx.x;
  const int64_t lo = c * kChunk, hi = lo + kChunk < n ? lo + kChunk : n;
  const T* row = x + r * n;
  T acc = 0;
#pragma unroll 4
  for (int64_t j = lo + threadIdx.x; j < hi; j += blockDim.x) acc += row[j];
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[r * chunks + c] = acc;
}

// out[o, i] = sum over j of x[o, j, i]; one thread per column, j in order (the CPU's order exactly).
template <class T>
__global__ void sum_cols_kernel(T* out, const T* x, int64_t outer, int64_t n, int64_t inner) {
  const int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    const T* col = x + (c / inner) * n * inner + c % inner;
    T acc = 0;
    for (int64_t j = 0; j < n; ++j) acc += col[j * inner];
    out[c] = acc;
  }
}

// partial[c, col] = sum over the rows j of chunk c (rows_per_chunk of them) of column col of x (outer, n,
// inner), col = o * inner + i; one thread per (chunk, column), consecutive threads on consecutive columns.
template <class T>
__global__ void sum_col_chunks_kernel(T* partial, const T* x, int64_t outer, int64_t n, int64_t inner,
                                      int64_t rows_per_chunk, int64_t chunks) {
  const int64_t cols = outer * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < chunks * cols;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = t / cols, col = t % cols;
    const T* p = x + (col / inner) * n * inner + col % inner;
    const int64_t lo = c * rows_per_chunk, hi = lo + rows_per_chunk < n ? lo + rows_per_chunk : n;
    T acc = 0;
    for (int64_t j = lo; j < hi; ++j) acc += p[j * inner];
    partial[t] = acc;
  }
}

// Whether candidate (v, at) beats the current best (bv, bat): NaN wins (the first NaN), then the larger
// value, then on ties the smaller index. The order is total, so any reduction tree gives the CPU's
// answer.
template <class T>
__device__ __forceinline__ bool beats(T v, int64_t at, T bv, int64_t bat) {
  if (isnan(bv)) return isnan(v) && at < bat;
  if (isnan(v)) return true;
  return v > bv || (v == bv && at < bat);
}

// out[r], argmax[r] = max of row r of x: (rows, n); one block per row.
template <class T>
__global__ void max_rows_kernel(T* out, int64_t* argmax, const T* x, int64_t rows, int64_t n) {
  __shared__ T best_v[32];
  __shared__ int64_t best_at[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = x + r * n;
    // Threads without elements hold (-inf, INT64_MAX), which loses to any real element.
    T bv = T(-INFINITY);
    int64_t bat = INT64_MAX;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      if (beats(row[j], j, bv, bat)) bv = row[j], bat = j;
    for (int offset = 16; offset > 0; offset >>= 1) {
      const T v = __shfl_xor_sync(0xffffffffu, bv, offset);
      const int64_t at = __shfl_xor_sync(0xffffffffu, bat, offset);
      if (beats(v, at, bv, bat)) bv = v, bat = at;
    }
    __syncthreads();  // the previous row's readers are done with best_v/best_at
    if (lane == 0) best_v[warp] = bv, best_at[warp] = bat;
    __syncthreads();
    if (warp == 0) {
      bv = lane < warps ? best_v[lane] : T(-INFINITY);
      bat = lane < warps ? best_at[lane] : INT64_MAX;
      for (int offset = 16; offset > 0; offset >>= 1) {
        const T v = __shfl_xor_sync(0xffffffffu, bv, offset);
        const int64_t at = __shfl_xor_sync(0xffffffffu, bat, offset);
        if (beats(v, at, bv, bat)) bv = v, bat = at;
      }
      if (lane == 0) out[r] = bv, argmax[r] = bat;
    }
  }
}

// Column max: one thread per (o, i), the CPU's loop exactly (stops at the first NaN).
template <class T>
__global__ void max_cols_kernel(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t n, int64_t inner) {
  const int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    const T* col = x + (c / inner) * n * inner + c % inner;
    T best = col[0];
    int64_t at = 0;
    for (int64_t j = 1; j < n && !isnan(best); ++j) {
      const T v = col[j * inner];
      if (v > best || isnan(v)) best = v, at = j;
    }
    out[c] = best;
    argmax[c] = at;
  }
}

// out[p] = x[o, index[p], i] for p = (o, j, i); a bad index records its position in *bad (smallest wins).
template <class T>
__global__ void gather_kernel(T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t k,
                              int64_t inner, unsigned long long* bad) {
  const int64_t total = outer * k * inner;
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < total; p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t at = index[p];
    if (at < 0 || at >= n) {
      atomicMin(bad, static_cast<unsigned long long>(p));  // error path only: the result is reported, not summed
      continue;
    }
    out[p] = x[((p / (k * inner)) * n + at) * inner + p % inner];
  }
}

// dx[o, index[o, j, i], i] += dy[o, j, i]; one thread per (o, i) column, j in order: race-free and
// deterministic because a column's targets are only ever touched by its own thread.
template <class T>
__global__ void scatter_add_kernel(T* dx, const T* dy, const int64_t* index, int64_t outer, int64_t n, int64_t k,
                                   int64_t inner) {
  const int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = c / inner, i = c % inner;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t p = (o * k + j) * inner + i;
      dx[(o * n + index[p]) * inner + i] += dy[p];
    }
  }
}

}  // namespace

template <class T>
void sum_dim(T* out, const T* x, int64_t outer, int64_t n, int64_t inner, Stream stream) {
  cudaStream_t s = stream;
  if (outer == 0 || inner == 0) return;  // n == 0 still writes zeros, like the CPU
  if (inner > 1) {
    // Few columns over many rows (a bias gradient: (32768, 1024) -> 1024) would give one thread per column
    // and leave the GPU nearly idle: cut the rows into fixed chunks, one thread per (chunk, column), then
    // sum each column's chunk sums in order (deterministic, no atomics).
    const int64_t cols = outer * inner, wanted_threads = int64_t(132) * 2048;
    const int64_t chunks = std::min(std::max<int64_t>(wanted_threads / cols, 1), n / 16);
    if (chunks > 1) {
      const int64_t rows_per_chunk = (n + chunks - 1) / chunks, used = (n + rows_per_chunk - 1) / rows_per_chunk;
      T* partial = nullptr;
      CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial), size_t(used * cols) * sizeof(T), s));
      sum_col_chunks_kernel<T><<<blocks_for(used * cols), kThreads, 0, s>>>(partial, x, outer, n, inner,
                                                                             rows_per_chunk, used);
      CUDA_CHECK_LAUNCH();
      // partial is (used, cols): a column sum over `used` rows with inner = cols.
      sum_cols_kernel<T><<<blocks_for(cols), kThreads, 0, s>>>(out, partial, 1, used, cols);
      CUDA_CHECK_LAUNCH();
      CUDA_CHECK(cudaFreeAsync(partial, s));
      return;
    }
    sum_cols_kernel<T><<<blocks_for(cols), kThreads, 0, s>>>(out, x, outer, n, inner);
    CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  // Few long rows would leave most SMs idle with one block per row: split them into fixed chunks and
  // combine the chunk sums in order in a second pass (deterministic, no atomics).
  if (chunks > 4 && outer < 2 * 132) {
    T* partial = nullptr;
    CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial), size_t(outer * chunks) * sizeof(T), s));
    sum_chunks_kernel<T><<<dim3(unsigned(chunks), unsigned(outer)), kThreads, 0, s>>>(partial, x, n, chunks);
    CUDA_CHECK_LAUNCH();
    sum_rows_kernel<T><<<blocks_for(outer, 1), row_threads(chunks), 0, s>>>(out, partial, outer, chunks);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaFreeAsync(partial, s));
    return;
  }
  sum_rows_kernel<T><<<blocks_for(outer, 1), row_threads(n), 0, s>>>(out, x, outer, n);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void max_dim(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t n, int64_t inner, Stream stream) {
  cudaStream_t s = stream;
  if (outer == 0 || n == 0 || inner == 0) return;  // n == 0 has no maximum (the op rejects it)
  if (inner == 1)
    max_rows_kernel<T><<<blocks_for(outer, 1), row_threads(n), 0, s>>>(out, argmax, x, outer, n);
  else
    max_cols_kernel<T><<<blocks_for(outer * inner), kThreads, 0, s>>>(out, argmax, x, outer, n, inner);
  CUDA_CHECK_LAUNCH();
}

template <class T>
int64_t gather_dim(T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t k, int64_t inner,
                   Stream stream) {
  cudaStream_t s = stream;
  const int64_t total = outer * k * inner;
  if (total == 0) return -1;
  unsigned long long* bad = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&bad), sizeof(*bad), s));
  CUDA_CHECK(cudaMemsetAsync(bad, 0xff, sizeof(*bad), s));  // ULLONG_MAX: no bad index yet
  gather_kernel<T><<<blocks_for(total), kThreads, 0, s>>>(out, x, index, outer, n, k, inner, bad);
  CUDA_CHECK_LAUNCH();
  unsigned long long first_bad = 0;
  CUDA_CHECK(cudaMemcpyAsync(&first_bad, bad, sizeof(first_bad), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaFreeAsync(bad, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  return first_bad == ULLONG_MAX ? -1 : int64_t(first_bad);
}

template <class T>
void scatter_add_dim(T* dx, const T* dy, const int64_t* index, int64_t outer, int64_t n, int64_t k, int64_t inner,
                     Stream stream) {
  cudaStream_t s = stream;
  if (outer == 0 || k == 0 || inner == 0) return;
  scatter_add_kernel<T><<<blocks_for(outer * inner), kThreads, 0, s>>>(dx, dy, index, outer, n, k, inner);
  CUDA_CHECK_LAUNCH();
}

#define STGS_INSTANTIATE(T)                                                                                   \
  template void sum_dim<T>(T*, const T*, int64_t, int64_t, int64_t, Stream);                                  \
  template void max_dim<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, Stream);                        \
  template int64_t gather_dim<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t, Stream);   \
  template void scatter_add_dim<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
