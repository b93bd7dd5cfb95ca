// CUDA twins of kernels/glu.h: gated linear unit over one dimension, forward and backward.
// defines: cuda::glu_fwd, cuda::glu_bwd
//
// Napkin math: x is (outer, 2h, inner), y is (outer, h, inner); with half = h * inner the forward reads
// 2 and writes 1 value per output (12 bytes F32), the backward reads 3 and writes 2 (20 bytes F32):
// bandwidth-bound, one expf per output. Each thread handles V consecutive outputs of one row (V = 16
// bytes of values when half is a multiple of V and the pointers are 16-byte aligned, else 1), so the
// row/column split (a 64-bit divmod) is paid once per pack, and every access is a coalesced pack.
#include "kernels/cuda/common.cuh"
#include "kernels/glu.h"

namespace stgs::kernels::cuda {
namespace {

template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

__device__ __forceinline__ float d_exp(float v) { return ::expf(v); }
__device__ __forceinline__ double d_exp(double v) { return ::exp(v); }

template <class T, int V>
__device__ __forceinline__ Pack<T, V> load(const T* p) {
  return *reinterpret_cast<const Pack<T, V>*>(p);
}
template <class T, int V>
__device__ __forceinline__ void store(T* p, const Pack<T, V>& v) {
  *reinterpret_cast<Pack<T, V>*>(p) = v;
}

// Pack t covers outputs [t * V, t * V + V) of the flat (outer, half) output; half % V == 0, so a pack
// never straddles two rows.
template <int V, class T>
__global__ void glu_fwd_kernel(T* y, const T* x, int64_t outer, int64_t half) {
  const int64_t row_packs = half / V, packs = outer * row_packs;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < packs; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = t / row_packs, j = (t - o * row_packs) * V;
    const T* a = x + o * 2 * half + j;
    const Pack<T, V> pa = load<T, V>(a), pb = load<T, V>(a + half);
    Pack<T, V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) out.v[k] = pa.v[k] / (T(1) + d_exp(-pb.v[k]));
    store(y + t * V, out);
  }
}

template <int V, class T>
__global__ void glu_bwd_kernel(T* dx, const T* dy, const T* x, int64_t outer, int64_t half) {
  const int64_t row_packs = half / V, packs = outer * row_packs;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < packs; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = t / row_packs, j = (t - o * row_packs) * V;
    const int64_t at = o * 2 * half + j;
    const Pack<T, V> pa = load<T, V>(x + at), pb = load<T, V>(x + at + half), g = load<T, V>(dy + t * V);
    Pack<T, V> da, db;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const T s = T(1) / (T(1) + d_exp(-pb.v[k]));
      da.v[k] = g.v[k] * s;
      db.v[k] = g.v[k] * pa.v[k] * s * (T(1) - s);
    }
    store(dx + at, da);
    store(dx + at + half, db);
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

template <class T>
void glu_fwd(T* y, const T* x, int64_t outer, int64_t h, int64_t inner, Stream stream) {
  cudaStream_t s = stream;
  const int64_t half = h * inner, n = outer * half;
  if (n == 0) return;
  constexpr int V = int(16 / sizeof(T));
  // half % V == 0 also keeps the b half (x + half) and every row start 16-byte aligned.
  if (half % V == 0 && aligned16(y) && aligned16(x)) {
    glu_fwd_kernel<V><<<blocks_for(n / V), kThreads, 0, s>>>(y, x, outer, half);
  } else {
    glu_fwd_kernel<1><<<blocks_for(n), kThreads, 0, s>>>(y, x, outer, half);
  }
  CUDA_CHECK_LAUNCH();
}

template <class T>
void glu_bwd(T* dx, const T* dy, const T* x, int64_t outer, int64_t h, int64_t inner, Stream stream) {
  cudaStream_t s = stream;
  const int64_t half = h * inner, n = outer * half;
  if (n == 0) return;
  constexpr int V = int(16 / sizeof(T));
  if (half % V == 0 && aligned16(dx) && aligned16(dy) && aligned16(x)) {
    glu_bwd_kernel<V><<<blocks_for(n / V), kThreads, 0, s>>>(dx, dy, x, outer, half);
  } else {
    glu_bwd_kernel<1><<<blocks_for(n), kThreads, 0, s>>>(dx, dy, x, outer, half);
  }
  CUDA_CHECK_LAUNCH();
}

template void glu_fwd<float>(float*, const float*, int64_t, int64_t, int64_t, Stream);
template void glu_fwd<double>(double*, const double*, int64_t, int64_t, int64_t, Stream);
template void glu_bwd<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, Stream);
template void glu_bwd<double>(double*, const double*, const double*, int64_t, int64_t, int64_t, Stream);

}  // namespace stgs::kernels::cuda
