// CUDA twins of kernels/random.h: Philox uniform and normal fills, dropout forward and backward.
// defines: cuda::uniform_fill, cuda::normal_fill, cuda::dropout_fwd, cuda::dropout_bwd
//
// The counters are those of the CPU versions (element i uses counter offset + i; normal value i uses
// Philox block offset / 4 + i), so uniform draws and dropout masks are bit-identical to the CPU and
// normal draws differ only by the last bits of the GPU's logf/cosf.
//
// Napkin math: one Philox4x32-10 block is ~10 x (2 wide multiplies + 4 xors/adds), about 80 integer
// instructions for four 32-bit draws. uniform_fill and dropout use all four lanes of a block (one thread
// per block, 4 elements), so ~20 instructions per element against 4 (fill) or 8 (dropout, F32) bytes:
// near bandwidth-bound on an H100. normal_fill spends a whole block plus logf/cosf/sqrtf per value,
// ~100 instructions per 4-byte output, so it is compute-bound at roughly a third of peak bandwidth;
// it only initialises weights, so that is fine.
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"
#include "kernels/random.h"

namespace stgs::kernels::cuda {
namespace {

// philox_uniform's conversion of one 32-bit draw to (0, 1).
template <class T>
__device__ __forceinline__ T uniform_of(uint32_t bits) {
  if constexpr (sizeof(T) == 4) {
    return uniform_from_bits_f32(bits);
  } else {
    return T(uniform_from_bits_f64(bits));
  }
}

// mean + scale * v and lo + (hi - lo) * u with the product rounded on its own: nvcc contracts a * b + c
// into one fma, the CPU reference (kernels/cpu/random.cpp, built with -ffp-contract=off: see the Makefile)
// does not, and the draws would differ in the last bit.
__device__ __forceinline__ float mul_add_rn(float a, float b, float c) { return __fadd_rn(__fmul_rn(a, b), c); }
__device__ __forceinline__ double mul_add_rn(double a, double b, double c) { return __dadd_rn(__dmul_rn(a, b), c); }

// philox.h's uniform_in_range with the uncontracted product (see mul_add_rn).
template <class T>
__device__ __forceinline__ T uniform_in_range_rn(T u, T lo, T hi) {
  const T v = mul_add_rn(hi - lo, u, lo);
  if constexpr (sizeof(T) == 4) {
    return v <= lo ? ::nextafterf(lo, hi) : v >= hi ? ::nextafterf(hi, lo) : v;
  } else {
    return v <= lo ? ::nextafter(lo, hi) : v >= hi ? ::nextafter(hi, lo) : v;
  }
}

// Threads walk Philox blocks: block b = offset / 4 + j holds counters 4b .. 4b + 3, i.e. elements
// i = 4j + lane - offset % 4, of which those in [0, n) are used. Blocks for n elements from offset:
__host__ __device__ int64_t philox_blocks(int64_t n, uint64_t offset) { return int64_t(((offset & 3) + uint64_t(n) + 3) / 4); }

// Grid-stride walk over the Philox blocks that cover elements [0, n) at counter offset `offset`: one
// thread draws one block (4 values) and calls f(i, u) for each of its elements i in range, u the 32 bits
// of counter offset + i; offset % 4 != 0 shifts element 0 into the middle of the first block. When
// `packed` (offset % 4 == 0 and every array aligned to 4 elements) a thread whose four elements are all in
// range passes them to f4(i, r) at once, i = 4j, to load and store them as one pack: four scalar accesses
// 16 bytes apart per thread kept the fills and dropout at 22-40% of the copy rate on an H200.
template <class F4, class F>
__device__ __forceinline__ void for_each_philox_block(int64_t n, uint64_t seed, uint64_t offset, bool packed, F4 f4,
                                                      F f) {
  const int64_t blocks = philox_blocks(n, offset);
  const int64_t skew = int64_t(offset & 3);
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < blocks; j += int64_t(gridDim.x) * blockDim.x) {
    const Philox4 r = philox_block(seed, offset / 4 + uint64_t(j));
    if (packed && 4 * j + 3 < n) {
      f4(4 * j, r);
      continue;
    }
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t i = 4 * j + lane - skew;
      if (i >= 0 && i < n) f(i, r.v[lane]);
    }
  }
}

template <class T>
bool pack_aligned(const T* p) {
  return (reinterpret_cast<uintptr_t>(p) % sizeof(Pack<T, 4>)) == 0;
}

template <class T>
__global__ void uniform_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, T lo, T hi, bool packed) {
  for_each_philox_block(
      n, seed, offset, packed,
      [&](int64_t i, const Philox4& r) {
        Pack<T, 4> v;
#pragma unroll
        for (int lane = 0; lane < 4; ++lane) v.v[lane] = uniform_in_range_rn(uniform_of<T>(r.v[lane]), lo, hi);
        *reinterpret_cast<Pack<T, 4>*>(out + i) = v;
      },
      [&](int64_t i, uint32_t bits) { out[i] = uniform_in_range_rn(uniform_of<T>(bits), lo, hi); });
}

template <class T>
__global__ void normal_kernel(T* out, int64_t n, uint64_t seed, uint64_t first_block, T mean, T std) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = mul_add_rn(std, philox_normal<T>(seed, first_block + uint64_t(i)), mean);
}

// y = u >= p ? x * scale : 0 (scale = 1 / (1 - p) computed on the host, as on the CPU).
template <class T>
__global__ void dropout_kernel(T* y, const T* x, int64_t n, T p, T scale, uint64_t seed, uint64_t offset,
                               bool packed) {
  for_each_philox_block(
      n, seed, offset, packed,
      [&](int64_t i, const Philox4& r) {
        Pack<T, 4> v = *reinterpret_cast<const Pack<T, 4>*>(x + i);
#pragma unroll
        for (int lane = 0; lane < 4; ++lane) v.v[lane] = uniform_of<T>(r.v[lane]) >= p ? v.v[lane] * scale : T(0);
        *reinterpret_cast<Pack<T, 4>*>(y + i) = v;
      },
      [&](int64_t i, uint32_t bits) { y[i] = uniform_of<T>(bits) >= p ? x[i] * scale : T(0); });
}

}  // namespace

template <class T>
void uniform_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T lo, T hi, Stream stream) {
  cudaStream_t s = stream;
  if (n == 0) return;
  const bool packed = (offset & 3) == 0 && pack_aligned(out);
  uniform_kernel<<<blocks_for(philox_blocks(n, offset)), kThreads, 0, s>>>(out, n, seed, offset, lo, hi, packed);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void normal_fill(T* out, int64_t n, uint64_t seed, uint64_t offset, T mean, T std, Stream stream) {
  cudaStream_t s = stream;
  if (n == 0) return;
  normal_kernel<<<blocks_for(n), kThreads, 0, s>>>(out, n, seed, offset / 4, mean, std);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void dropout_fwd(T* y, const T* x, int64_t n, T p, uint64_t seed, uint64_t offset, Stream stream) {
  cudaStream_t s = stream;
  if (n == 0) return;
  const T scale = T(1) / (T(1) - p);
  const bool packed = (offset & 3) == 0 && pack_aligned(y) && pack_aligned(x);
  dropout_kernel<<<blocks_for(philox_blocks(n, offset)), kThreads, 0, s>>>(y, x, n, p, scale, seed, offset, packed);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void dropout_bwd(T* dx, const T* dy, int64_t n, T p, uint64_t seed, uint64_t offset, Stream stream) {
  dropout_fwd(dx, dy, n, p, seed, offset, stream);  // the same mask and scale apply to the gradient
}

#define STGS_INSTANTIATE(T)                                                            \
  template void uniform_fill<T>(T*, int64_t, uint64_t, uint64_t, T, T, Stream);        \
  template void normal_fill<T>(T*, int64_t, uint64_t, uint64_t, T, T, Stream);         \
  template void dropout_fwd<T>(T*, const T*, int64_t, T, uint64_t, uint64_t, Stream); \
  template void dropout_bwd<T>(T*, const T*, int64_t, T, uint64_t, uint64_t, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
