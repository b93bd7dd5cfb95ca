// CUDA twins of kernels/layer_norm.h: layer normalisation over the last D elements of each row.
// defines: cuda::layer_norm_fwd, cuda::layer_norm_bwd
//
// Napkin math: forward reads x and writes y, 8 B per F32 element (gamma/beta are D elements, re-read from
// L2 per row); backward reads dy and x and writes dx, 12 B, plus another read of dy and x for the
// parameter gradients. A few FLOPs per element: bandwidth-bound, 1 G floats forward ~2.4 ms at 3.35 TB/s.
// A row is owned by one warp (D <= 1024) or one block, with 16-byte vector loads when aligned. The forward
// computes mean and variance in one Welford pass (in T: float for float, double for double), so HBM sees
// one read and one write; the second read of the row (to write y) comes from L2.
// dgamma/dbeta: one thread per column sums down the rows in order, like the CPU; many rows are first cut
// into fixed chunks summed in parallel and then combined in chunk order (deterministic, no atomics).
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/layer_norm.h"

namespace stgs::kernels::cuda {
namespace {

// With more than 4 * kRowChunk rows, dgamma/dbeta are summed in chunks of (at least) kRowChunk rows.
constexpr int64_t kRowChunk = 128;

__device__ __forceinline__ float sqrt_(float v) { return sqrtf(v); }
__device__ __forceinline__ double sqrt_(double v) { return sqrt(v); }

// Welford state: count, mean and sum of squared deviations of the elements seen so far.
template <class T>
struct Stats {
  T count, mean, m2;
};

template <class T>
__device__ __forceinline__ void add(Stats<T>& a, T v) {
  a.count += T(1);
  const T d = v - a.mean;
  a.mean += d / a.count;
  a.m2 += d * (v - a.mean);
}

// Chan et al.'s pairwise combine.
template <class T>
__device__ __forceinline__ Stats<T> combine(Stats<T> a, Stats<T> b) {
  const T count = a.count + b.count;
  if (count == T(0)) return a;  // both empty: avoid 0 / 0
  const T d = b.mean - a.mean, fb = b.count / count;
  return {count, a.mean + d * fb, a.m2 + b.m2 + d * d * a.count * fb};
}

template <class T>
__device__ __forceinline__ Stats<T> warp_stats(Stats<T> a) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Stats<T> o{__shfl_xor_sync(0xffffffffu, a.count, offset), __shfl_xor_sync(0xffffffffu, a.mean, offset),
                     __shfl_xor_sync(0xffffffffu, a.m2, offset)};
    a = combine(a, o);
  }
  return a;
}

// Same pattern as block_sum in common.cuh: fixed tree, every thread gets the result.
template <class T>
__device__ Stats<T> block_stats(Stats<T> a) {
  __shared__ T pc[32], pm[32], p2[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  a = warp_stats(a);
  __syncthreads();  // pc/pm/p2 may still be read by a previous call
  if (lane == 0) pc[warp] = a.count, pm[warp] = a.mean, p2[warp] = a.m2;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  a = lane < warps ? Stats<T>{pc[lane], pm[lane], p2[lane]} : Stats<T>{T(0), T(0), T(0)};
  return warp_stats(a);
}

// Row ownership and sums from RowGroup (common.cuh), plus this file's own reduction.
template <bool kWarp>
struct Group : RowGroup<kWarp> {
  template <class T>
  __device__ static Stats<T> stats(Stats<T> v) {
    if constexpr (kWarp) return warp_stats(v);
    else return block_stats(v);
  }
};

// y = (x - mean) * rstd * gamma + beta per row of x: (rows, D), D a multiple of V.
template <class T, int V, bool kWarp>
__global__ void layer_norm_fwd_kernel(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, int64_t rows,
                                      int64_t D, T eps) {
  using G = Group<kWarp>;
  using P = Pack<T, V>;
  const int64_t packs = D / V;
  const P* gp = reinterpret_cast<const P*>(gamma);
  const P* bp = reinterpret_cast<const P*>(beta);
  for (int64_t r = G::first(); r < rows; r += G::stride()) {
    const P* xr = reinterpret_cast<const P*>(x + r * D);
    P* yr = reinterpret_cast<P*>(y + r * D);
    Stats<T> st{T(0), T(0), T(0)};
#pragma unroll 4
    for (int64_t q = G::lane(); q < packs; q += G::size()) {
      const P a = xr[q];
#pragma unroll
      for (int k = 0; k < V; ++k) add(st, a.v[k]);
    }
    st = G::stats(st);
    const T mu = st.mean, rs = T(1) / sqrt_(st.m2 / T(D) + eps);
    if (G::lane() == 0) mean[r] = mu, rstd[r] = rs;
    // Each element is read before it is written by the same thread, so y == x (in place) is safe.
    for (int64_t q = G::lane(); q < packs; q += G::size()) {
      P a = xr[q];
      const P g = gp ? gp[q] : P{}, b = bp ? bp[q] : P{};  // P{} is zeros: beta absent adds 0, like the CPU
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const T xhat = (a.v[k] - mu) * rs;
        a.v[k] = gp ? xhat * g.v[k] + b.v[k] : xhat + b.v[k];
      }
      yr[q] = a;
    }
  }
}

// The same for rows of at most 1024 elements, D a multiple of V, each held in one warp's registers (kSlots
// packs per lane): the row is read once, and mean and variance come from two exact passes over the
// registers (sum, then the sum of squared deviations) instead of Welford's division per element, which
// made the streaming kernel above compute-bound at ~72% of the copy rate.
template <class T, int V>
__global__ void layer_norm_fwd_regs_kernel(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta,
                                           int64_t rows, int64_t D, T eps) {
  using G = Group<true>;
  using P = Pack<T, V>;
  constexpr int kSlots = 1024 / (32 * V);
  const int64_t packs = D / V;
  const P* gp = reinterpret_cast<const P*>(gamma);
  const P* bp = reinterpret_cast<const P*>(beta);
  for (int64_t r = G::first(); r < rows; r += G::stride()) {
    const P* xr = reinterpret_cast<const P*>(x + r * D);
    P* yr = reinterpret_cast<P*>(y + r * D);
    P a[kSlots];
    T sum = 0;
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      const int64_t q = G::lane() + 32 * j;
      if (q < packs) {
        a[j] = xr[q];
#pragma unroll
        for (int k = 0; k < V; ++k) sum += a[j].v[k];
      }
    }
    const T mu = warp_sum(sum) / T(D);
    T sq = 0;
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      if (G::lane() + 32 * j < packs) {
#pragma unroll
        for (int k = 0; k < V; ++k) sq += (a[j].v[k] - mu) * (a[j].v[k] - mu);
      }
    }
    const T rs = T(1) / sqrt_(warp_sum(sq) / T(D) + eps);
    if (G::lane() == 0) mean[r] = mu, rstd[r] = rs;
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      const int64_t q = G::lane() + 32 * j;
      if (q < packs) {
        const P g = gp ? gp[q] : P{}, b = bp ? bp[q] : P{};  // P{} is zeros: beta absent adds 0, like the CPU
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const T xhat = (a[j].v[k] - mu) * rs;
          a[j].v[k] = gp ? xhat * g.v[k] + b.v[k] : xhat + b.v[k];
        }
        yr[q] = a[j];
      }
    }
  }
}

// dx = rstd * (g - mean_D(g) - xhat * mean_D(g * xhat)) with g = dy * gamma, per row.
template <class T, int V, bool kWarp>
__global__ void layer_norm_bwd_dx_kernel(T* dx, const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma,
                                         int64_t rows, int64_t D) {
  using G = Group<kWarp>;
  using P = Pack<T, V>;
  const int64_t packs = D / V;
  const P* gp = reinterpret_cast<const P*>(gamma);
  for (int64_t r = G::first(); r < rows; r += G::stride()) {
    const P* xr = reinterpret_cast<const P*>(x + r * D);
    const P* dyr = reinterpret_cast<const P*>(dy + r * D);
    P* dxr = reinterpret_cast<P*>(dx + r * D);
    const T mu = mean[r], rs = rstd[r];
    T sum_g = 0, sum_gx = 0;
#pragma unroll 4
    for (int64_t q = G::lane(); q < packs; q += G::size()) {
      const P a = xr[q], d = dyr[q];
      const P gm = gp ? gp[q] : P{};
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const T g = d.v[k] * (gp ? gm.v[k] : T(1));
        sum_g += g;
        sum_gx += g * (a.v[k] - mu) * rs;
      }
    }
    const T mean_g = G::sum(sum_g) / T(D), mean_gx = G::sum(sum_gx) / T(D);
    for (int64_t q = G::lane(); q < packs; q += G::size()) {
      const P a = xr[q], d = dyr[q];
      const P gm = gp ? gp[q] : P{};
      P o;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const T g = d.v[k] * (gp ? gm.v[k] : T(1));
        const T xhat = (a.v[k] - mu) * rs;
        o.v[k] = rs * (g - mean_g - xhat * mean_gx);
      }
      dxr[q] = o;
    }
  }
}

// For each column j and each chunk c (blockIdx.y) of rows_per_chunk rows, in row order:
//   dg[c, j] = sum dy * xhat,  db[c, j] = sum dy   (either output may be null).
// One thread per column, consecutive threads on consecutive j (coalesced).
template <class T>
__global__ void layer_norm_param_kernel(T* dg, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                                        int64_t rows, int64_t D, int64_t rows_per_chunk) {
  const int64_t c = blockIdx.y;
  const int64_t lo = c * rows_per_chunk, hi = lo + rows_per_chunk < rows ? lo + rows_per_chunk : rows;
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < D; j += int64_t(gridDim.x) * blockDim.x) {
    T sg = 0, sb = 0;
    int64_t r = lo;
    // Four rows' loads are issued before their sums (still added in row order): a thread walking its column
    // one dependent load at a time left this kernel latency-bound at ~40% of the copy rate.
    constexpr int kAhead = 4;
    for (; r + kAhead <= hi; r += kAhead) {
      T d[kAhead], xv[kAhead], mu[kAhead], rs[kAhead];
#pragma unroll
      for (int k = 0; k < kAhead; ++k) {
        d[k] = dy[(r + k) * D + j];
        xv[k] = x[(r + k) * D + j];
        mu[k] = mean[r + k];
        rs[k] = rstd[r + k];
      }
#pragma unroll
      for (int k = 0; k < kAhead; ++k) {
        sg += d[k] * (xv[k] - mu[k]) * rs[k];
        sb += d[k];
      }
    }
    for (; r < hi; ++r) {
      const T d = dy[r * D + j];
      sg += d * (x[r * D + j] - mean[r]) * rstd[r];
      sb += d;
    }
    if (dg) dg[c * D + j] = sg;
    if (db) db[c * D + j] = sb;
  }
}

// dg[j], db[j] = sums over c of pg[c, j], pb[c, j], c in order (dg or db may be null).
template <class T>
__global__ void sum_chunks_kernel(T* dg, T* db, const T* pg, const T* pb, int64_t chunks, int64_t D) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < D; j += int64_t(gridDim.x) * blockDim.x) {
    T sg = 0, sb = 0;
    for (int64_t c = 0; c < chunks; ++c) sg += pg[c * D + j], sb += pb[c * D + j];
    if (dg) dg[j] = sg;
    if (db) db[j] = sb;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }  // null counts as aligned

// Launches a row kernel: launch(V, kWarp, grid) with V = 16 bytes of T when every row of every operand
// starts 16-byte aligned (else 1), and kWarp when rows are at most 1024 elements (a warp per row).
template <class T, class Launch>
void dispatch_rows(int64_t rows, int64_t D, bool aligned, Launch launch) {
  constexpr int kVec = 16 / sizeof(T);
  auto with_width = [&](auto v) {
    if (D <= 1024) launch(v, std::true_type{}, blocks_for(rows, kThreads / 32));
    else launch(v, std::false_type{}, blocks_for(rows, 1));
  };
  if (aligned && D % kVec == 0) with_width(std::integral_constant<int, kVec>{});
  else with_width(std::integral_constant<int, 1>{});
}

}  // namespace

template <class T>
void layer_norm_fwd(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, int64_t rows, int64_t D,
                    T eps, Stream stream) {
  cudaStream_t s = stream;
  if (rows == 0 || D == 0) return;  // D == 0 has no mean (the op rejects it)
  const bool aligned = aligned16(y) && aligned16(x) && aligned16(gamma) && aligned16(beta);
  constexpr int kVec = 16 / sizeof(T);
  if (aligned && D <= 1024 && D % kVec == 0) {
    layer_norm_fwd_regs_kernel<T, kVec>
        <<<blocks_for(rows, kThreads / 32), kThreads, 0, s>>>(y, mean, rstd, x, gamma, beta, rows, D, eps);
  } else {
    dispatch_rows<T>(rows, D, aligned, [&](auto v, auto warp, unsigned grid) {
      layer_norm_fwd_kernel<T, decltype(v)::value, decltype(warp)::value>
          <<<grid, kThreads, 0, s>>>(y, mean, rstd, x, gamma, beta, rows, D, eps);
    });
  }
  CUDA_CHECK_LAUNCH();
}

template <class T>
void layer_norm_bwd(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                    const T* gamma, int64_t rows, int64_t D, Stream stream) {
  cudaStream_t s = stream;
  if (D == 0) return;
  if (rows > 0) {
    const bool aligned = aligned16(dx) && aligned16(dy) && aligned16(x) && aligned16(gamma);
    dispatch_rows<T>(rows, D, aligned, [&](auto v, auto warp, unsigned grid) {
      layer_norm_bwd_dx_kernel<T, decltype(v)::value, decltype(warp)::value>
          <<<grid, kThreads, 0, s>>>(dx, dy, x, mean, rstd, gamma, rows, D);
    });
    CUDA_CHECK_LAUNCH();
  }
  if (dgamma == nullptr && dbeta == nullptr) return;
  const unsigned col_blocks = unsigned((D + kThreads - 1) / kThreads);
  if (rows <= 4 * kRowChunk) {
    // Few rows: one pass in the CPU's exact order (rows == 0 writes zeros, like the CPU).
    layer_norm_param_kernel<T><<<col_blocks, kThreads, 0, s>>>(dgamma, dbeta, dy, x, mean, rstd, rows, D, rows);
    CUDA_CHECK_LAUNCH();
    return;
  }
  // Many rows: a thread per column alone would walk all rows serially on a few warps, so chunks of rows
  // are summed in parallel (grid.y, at most 65535 chunks) and then combined in chunk order.
  const int64_t min_per_chunk = (rows + 65534) / 65535;
  const int64_t per_chunk = kRowChunk > min_per_chunk ? kRowChunk : min_per_chunk;
  const int64_t chunks = (rows + per_chunk - 1) / per_chunk;
  T* partial = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial), size_t(2 * chunks * D) * sizeof(T), s));
  layer_norm_param_kernel<T><<<dim3(col_blocks, unsigned(chunks)), kThreads, 0, s>>>(
      partial, partial + chunks * D, dy, x, mean, rstd, rows, D, per_chunk);
  CUDA_CHECK_LAUNCH();
  sum_chunks_kernel<T><<<col_blocks, kThreads, 0, s>>>(dgamma, dbeta, partial, partial + chunks * D, chunks, D);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaFreeAsync(partial, s));
}

template void layer_norm_fwd<float>(float*, float*, float*, const float*, const float*, const float*, int64_t,
                                    int64_t, float, Stream);
template void layer_norm_fwd<double>(double*, double*, double*, const double*, const double*, const double*, int64_t,
                                     int64_t, double, Stream);
template void layer_norm_bwd<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                    const float*, int64_t, int64_t, Stream);
template void layer_norm_bwd<double>(double*, double*, double*, const double*, const double*, const double*,
                                     const double*, const double*, int64_t, int64_t, Stream);

}  // namespace stgs::kernels::cuda
