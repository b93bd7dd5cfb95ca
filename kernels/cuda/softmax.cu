// CUDA twins of kernels/softmax.h: softmax and log-softmax (forward and backward) over one dimension of
// (outer, n, inner), and fused cross-entropy forward/backward on (N, C) logits.
// defines: cuda::softmax_fwd/bwd, cuda::log_softmax_fwd/bwd, cuda::cross_entropy_fwd/bwd
//
// Napkin math: forward reads x and writes y, 8 B per F32 element (16 B in F64); backward reads dy and y
// and writes dx, 12 B. About 10 FLOPs (one exp) per element is far below the H100's ~60 FLOP/B balance,
// so these are bandwidth-bound: 1 G floats forward = 8 GB, ~2.4 ms at 3.35 TB/s.
// Contiguous rows (inner == 1) are owned by one warp (n <= 1024) or one block, with 16-byte vector
// loads when the rows are aligned. The forward finds max and sum(exp) in a single online pass, so HBM sees
// one read and one write: the second read of a row (to write y) comes from L2, where the first pass just
// put it. Strided columns (inner > 1) are owned by one thread each, consecutive threads on consecutive i,
// looping over n like the CPU.
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/softmax.h"

namespace stgs::kernels::cuda {
namespace {

__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }
__device__ __forceinline__ float log_(float v) { return logf(v); }
__device__ __forceinline__ double log_(double v) { return log(v); }

// Running maximum m and sum s of exp(x - m), rescaled whenever m grows (online softmax).
template <class T>
struct MaxSum {
  T m, s;
};

template <class T>
__device__ __forceinline__ void add(MaxSum<T>& a, T v) {
  if (v > a.m) {
    a.s = a.s * exp_(a.m - v) + T(1);
    a.m = v;
  } else if (v != T(-INFINITY)) {  // -inf adds exp(-inf) = 0; skipping it avoids exp(-inf - -inf) = NaN
    a.s += exp_(v - a.m);
  }
}

template <class T>
__device__ __forceinline__ MaxSum<T> combine(MaxSum<T> a, MaxSum<T> b) {
  const T m = a.m > b.m ? a.m : b.m;
  if (m == T(-INFINITY)) return {m, T(0)};  // both empty (or all -inf): nothing to rescale
  return {m, a.s * exp_(a.m - m) + b.s * exp_(b.m - m)};
}

template <class T>
__device__ __forceinline__ MaxSum<T> warp_max_sum(MaxSum<T> a) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const MaxSum<T> o{__shfl_xor_sync(0xffffffffu, a.m, offset), __shfl_xor_sync(0xffffffffu, a.s, offset)};
    a = combine(a, o);
  }
  return a;
}

// Same pattern as block_sum in common.cuh: fixed tree, every thread gets the result.
template <class T>
__device__ MaxSum<T> block_max_sum(MaxSum<T> a) {
  __shared__ T pm[32], ps[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  a = warp_max_sum(a);
  __syncthreads();  // pm/ps may still be read by a previous call
  if (lane == 0) pm[warp] = a.m, ps[warp] = a.s;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  a = lane < warps ? MaxSum<T>{pm[lane], ps[lane]} : MaxSum<T>{T(-INFINITY), T(0)};
  return warp_max_sum(a);
}

// Row ownership and sums from RowGroup (common.cuh), plus this file's own reduction.
template <bool kWarp>
struct Group : RowGroup<kWarp> {
  template <class T>
  __device__ static MaxSum<T> max_sum(MaxSum<T> v) {
    if constexpr (kWarp) return warp_max_sum(v);
    else return block_max_sum(v);
  }
};

// Max and sum(exp(x - max)) of a row of `packs` packs, reduced over the group.
template <class T, int V, bool kWarp>
__device__ __forceinline__ MaxSum<T> row_max_sum(const Pack<T, V>* row, int64_t packs) {
  using G = Group<kWarp>;
  MaxSum<T> ms{T(-INFINITY), T(0)};
#pragma unroll 4
  for (int64_t q = G::lane(); q < packs; q += G::size()) {
    const Pack<T, V> a = row[q];
#pragma unroll
    for (int k = 0; k < V; ++k) add(ms, a.v[k]);
  }
  return G::max_sum(ms);
}

// y = softmax(x) (or log_softmax with kLog) over each row of x: (rows, n), n a multiple of V.
template <class T, int V, bool kWarp, bool kLog>
__global__ void softmax_rows_kernel(T* y, const T* x, int64_t rows, int64_t n) {
  using G = Group<kWarp>;
  using P = Pack<T, V>;
  const int64_t packs = n / V;
  for (int64_t r = G::first(); r < rows; r += G::stride()) {
    const P* xr = reinterpret_cast<const P*>(x + r * n);
    P* yr = reinterpret_cast<P*>(y + r * n);
    const MaxSum<T> ms = row_max_sum<T, V, kWarp>(xr, packs);
    const T lse = ms.m + log_(ms.s), inv = T(1) / ms.s;
    // Each element is read before it is written by the same thread, so y == x (in place) is safe.
    for (int64_t q = G::lane(); q < packs; q += G::size()) {
      P a = xr[q];
#pragma unroll
      for (int k = 0; k < V; ++k) a.v[k] = kLog ? a.v[k] - lse : exp_(a.v[k] - ms.m) * inv;
      yr[q] = a;
    }
  }
}

// The same for rows of at most 1024 elements, n a multiple of V, each held in one warp's registers
// (kSlots packs per lane): the row is read from memory once (the online kernel above reads it a second
// time, from L2) and exp is evaluated once per element instead of twice. Max, then the sum of exp(x - max)
// over the kept values, then the scaled write: the CPU's three passes.
template <class T, int V, bool kLog>
__global__ void softmax_rows_regs_kernel(T* y, const T* x, int64_t rows, int64_t n) {
  using G = Group<true>;
  using P = Pack<T, V>;
  constexpr int kSlots = 1024 / (32 * V);
  const int64_t packs = n / V;
  for (int64_t r = G::first(); r < rows; r += G::stride()) {
    const P* xr = reinterpret_cast<const P*>(x + r * n);
    P* yr = reinterpret_cast<P*>(y + r * n);
    P a[kSlots];
    T m = T(-INFINITY);
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      const int64_t q = G::lane() + 32 * j;
      if (q < packs) {
        a[j] = xr[q];
#pragma unroll
        for (int k = 0; k < V; ++k) m = a[j].v[k] > m ? a[j].v[k] : m;
      }
    }
    m = warp_max(m);
    T sum = 0;
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      if (G::lane() + 32 * j < packs) {
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const T e = exp_(a[j].v[k] - m);
          sum += e;
          if constexpr (!kLog) a[j].v[k] = e;
        }
      }
    }
    sum = warp_sum(sum);
    const T lse = m + log_(sum), inv = T(1) / sum;
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      const int64_t q = G::lane() + 32 * j;
      if (q < packs) {
#pragma unroll
        for (int k = 0; k < V; ++k) a[j].v[k] = kLog ? a[j].v[k] - lse : a[j].v[k] * inv;
        yr[q] = a[j];
      }
    }
  }
}

// Softmax backward over rows: dx = y * (dy - sum(dy * y)); with kLog, dx = dy - exp(y) * sum(dy).
template <class T, int V, bool kWarp, bool kLog>
__global__ void softmax_bwd_rows_kernel(T* dx, const T* dy, const T* y, int64_t rows, int64_t n) {
  using G = Group<kWarp>;
  using P = Pack<T, V>;
  const int64_t packs = n / V;
  for (int64_t r = G::first(); r < rows; r += G::stride()) {
    const P* dyr = reinterpret_cast<const P*>(dy + r * n);
    const P* yr = reinterpret_cast<const P*>(y + r * n);
    P* dxr = reinterpret_cast<P*>(dx + r * n);
    T acc = 0;
#pragma unroll 4
    for (int64_t q = G::lane(); q < packs; q += G::size()) {
      const P g = dyr[q];
      if constexpr (kLog) {
#pragma unroll
        for (int k = 0; k < V; ++k) acc += g.v[k];
      } else {
        const P b = yr[q];
#pragma unroll
        for (int k = 0; k < V; ++k) acc += g.v[k] * b.v[k];
      }
    }
    acc = G::sum(acc);
    for (int64_t q = G::lane(); q < packs; q += G::size()) {
      const P g = dyr[q], b = yr[q];
      P d;
#pragma unroll
      for (int k = 0; k < V; ++k) d.v[k] = kLog ? g.v[k] - exp_(b.v[k]) * acc : b.v[k] * (g.v[k] - acc);
      dxr[q] = d;
    }
  }
}

// loss[r] = logsumexp(logits[r]) - logits[r, target[r]] over rows of (N, C).
template <class T, int V, bool kWarp>
__global__ void cross_entropy_fwd_kernel(T* loss, const T* logits, const int64_t* target, int64_t N, int64_t C) {
  using G = Group<kWarp>;
  for (int64_t r = G::first(); r < N; r += G::stride()) {
    const T* row = logits + r * C;
    const MaxSum<T> ms = row_max_sum<T, V, kWarp>(reinterpret_cast<const Pack<T, V>*>(row), C / V);
    if (G::lane() == 0) loss[r] = ms.m + log_(ms.s) - row[target[r]];
  }
}

// dlogits[r] = (softmax(logits[r]) - onehot(target[r])) * dloss[r].
template <class T, int V, bool kWarp>
__global__ void cross_entropy_bwd_kernel(T* dlogits, const T* dloss, const T* logits, const int64_t* target,
                                         int64_t N, int64_t C) {
  using G = Group<kWarp>;
  using P = Pack<T, V>;
  const int64_t packs = C / V;
  for (int64_t r = G::first(); r < N; r += G::stride()) {
    const P* row = reinterpret_cast<const P*>(logits + r * C);
    P* drow = reinterpret_cast<P*>(dlogits + r * C);
    const MaxSum<T> ms = row_max_sum<T, V, kWarp>(row, packs);
    const T d = dloss[r], scale = d / ms.s;
    const int64_t t = target[r];
    for (int64_t q = G::lane(); q < packs; q += G::size()) {
      P a = row[q];
#pragma unroll
      for (int k = 0; k < V; ++k) {
        a.v[k] = exp_(a.v[k] - ms.m) * scale;
        if (q * V + k == t) a.v[k] -= d;  // the CPU subtracts after scaling too: same rounding
      }
      drow[q] = a;
    }
  }
}

// Column softmax (inner > 1): one thread per (o, i), the CPU's three loops (max, sum, write).
template <class T, bool kLog>
__global__ void softmax_cols_kernel(T* y, const T* x, int64_t outer, int64_t n, int64_t inner) {
  const int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (c / inner) * n * inner + c % inner;
    const T* xc = x + base;
    T* yc = y + base;
    T m = xc[0];
    for (int64_t j = 1; j < n; ++j) m = xc[j * inner] > m ? xc[j * inner] : m;
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += exp_(xc[j * inner] - m);
    const T lse = m + log_(sum), inv = T(1) / sum;
    for (int64_t j = 0; j < n; ++j) yc[j * inner] = kLog ? xc[j * inner] - lse : exp_(xc[j * inner] - m) * inv;
  }
}

template <class T, bool kLog>
__global__ void softmax_bwd_cols_kernel(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner) {
  const int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (c / inner) * n * inner + c % inner;
    T acc = 0;
    for (int64_t j = 0; j < n; ++j) acc += kLog ? dy[base + j * inner] : dy[base + j * inner] * y[base + j * inner];
    for (int64_t j = 0; j < n; ++j) {
      const T g = dy[base + j * inner], b = y[base + j * inner];
      dx[base + j * inner] = kLog ? g - exp_(b) * acc : b * (g - acc);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Launches a row kernel: launch(V, kWarp, grid) with V = 16 bytes of T when every row of every operand
// starts 16-byte aligned (else 1), and kWarp when rows are at most 1024 elements (a warp per row).
template <class T, class Launch>
void dispatch_rows(int64_t rows, int64_t n, bool aligned, Launch launch) {
  constexpr int kVec = 16 / sizeof(T);
  auto with_width = [&](auto v) {
    if (n <= 1024) launch(v, std::true_type{}, blocks_for(rows, kThreads / 32));
    else launch(v, std::false_type{}, blocks_for(rows, 1));
  };
  if (aligned && n % kVec == 0) with_width(std::integral_constant<int, kVec>{});
  else with_width(std::integral_constant<int, 1>{});
}

template <class T, bool kLog>
void softmax_fwd_any(T* y, const T* x, int64_t outer, int64_t n, int64_t inner, cudaStream_t s) {
  if (outer == 0 || n == 0 || inner == 0) return;
  constexpr int kVec = 16 / sizeof(T);
  if (inner == 1 && n <= 1024 && n % kVec == 0 && aligned16(y) && aligned16(x)) {
    softmax_rows_regs_kernel<T, kVec, kLog><<<blocks_for(outer, kThreads / 32), kThreads, 0, s>>>(y, x, outer, n);
  } else if (inner == 1) {
    dispatch_rows<T>(outer, n, aligned16(y) && aligned16(x), [&](auto v, auto warp, unsigned grid) {
      softmax_rows_kernel<T, decltype(v)::value, decltype(warp)::value, kLog><<<grid, kThreads, 0, s>>>(y, x, outer, n);
    });
  } else {
    softmax_cols_kernel<T, kLog><<<blocks_for(outer * inner), kThreads, 0, s>>>(y, x, outer, n, inner);
  }
  CUDA_CHECK_LAUNCH();
}

template <class T, bool kLog>
void softmax_bwd_any(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner, cudaStream_t s) {
  if (outer == 0 || n == 0 || inner == 0) return;
  if (inner == 1) {
    dispatch_rows<T>(outer, n, aligned16(dx) && aligned16(dy) && aligned16(y), [&](auto v, auto warp, unsigned grid) {
      softmax_bwd_rows_kernel<T, decltype(v)::value, decltype(warp)::value, kLog>
          <<<grid, kThreads, 0, s>>>(dx, dy, y, outer, n);
    });
  } else {
    softmax_bwd_cols_kernel<T, kLog><<<blocks_for(outer * inner), kThreads, 0, s>>>(dx, dy, y, outer, n, inner);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

template <class T>
void softmax_fwd(T* y, const T* x, int64_t outer, int64_t n, int64_t inner, Stream stream) {
  softmax_fwd_any<T, false>(y, x, outer, n, inner, stream);
}

template <class T>
void softmax_bwd(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner, Stream stream) {
  softmax_bwd_any<T, false>(dx, dy, y, outer, n, inner, stream);
}

template <class T>
void log_softmax_fwd(T* y, const T* x, int64_t outer, int64_t n, int64_t inner, Stream stream) {
  softmax_fwd_any<T, true>(y, x, outer, n, inner, stream);
}

template <class T>
void log_softmax_bwd(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner, Stream stream) {
  softmax_bwd_any<T, true>(dx, dy, y, outer, n, inner, stream);
}

template <class T>
void cross_entropy_fwd(T* loss, const T* logits, const int64_t* target, int64_t N, int64_t C, Stream stream) {
  cudaStream_t s = stream;
  if (N == 0 || C == 0) return;
  dispatch_rows<T>(N, C, aligned16(logits), [&](auto v, auto warp, unsigned grid) {
    cross_entropy_fwd_kernel<T, decltype(v)::value, decltype(warp)::value>
        <<<grid, kThreads, 0, s>>>(loss, logits, target, N, C);
  });
  CUDA_CHECK_LAUNCH();
}

template <class T>
void cross_entropy_bwd(T* dlogits, const T* dloss, const T* logits, const int64_t* target, int64_t N, int64_t C,
                       Stream stream) {
  cudaStream_t s = stream;
  if (N == 0 || C == 0) return;
  dispatch_rows<T>(N, C, aligned16(dlogits) && aligned16(logits), [&](auto v, auto warp, unsigned grid) {
    cross_entropy_bwd_kernel<T, decltype(v)::value, decltype(warp)::value>
        <<<grid, kThreads, 0, s>>>(dlogits, dloss, logits, target, N, C);
  });
  CUDA_CHECK_LAUNCH();
}

#define STGS_INSTANTIATE(T)                                                                                 \
  template void softmax_fwd<T>(T*, const T*, int64_t, int64_t, int64_t, Stream);                            \
  template void softmax_bwd<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, Stream);                  \
  template void log_softmax_fwd<T>(T*, const T*, int64_t, int64_t, int64_t, Stream);                        \
  template void log_softmax_bwd<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, Stream);              \
  template void cross_entropy_fwd<T>(T*, const T*, const int64_t*, int64_t, int64_t, Stream);               \
  template void cross_entropy_bwd<T>(T*, const T*, const T*, const int64_t*, int64_t, int64_t, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
