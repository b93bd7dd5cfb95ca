// CUDA twins of kernels/copy.h: strided copies, fills, element type conversion.
// defines: cuda::strided_copy, cuda::fill, cuda::convert
//
// Napkin math: all bandwidth-bound. A copy reads and writes elem_size bytes per element (8 for F32); when
// both sides are contiguous it is one cudaMemcpyAsync (the copy engines / driver kernel run near peak
// HBM bandwidth). A strided copy is coalesced on the side whose innermost stride is 1; a transpose
// gathers on the other side and runs well below peak, which is acceptable for contiguous() calls.
// fill writes sizeof(T) bytes per element in 16-byte packs (zero fills go to cudaMemsetAsync); convert
// moves sizeof(src) + sizeof(dst) bytes per element (e.g. 6 for F32 -> BF16) and is templated on both
// types, so the per-element work is a load, a conversion and a store.
#include <cuda_fp16.h>

#include <cstring>

#include "kernels/copy.h"
#include "kernels/cuda/common.cuh"

namespace stgs::kernels::cuda {
namespace {

// ---- strided_copy ---------------------------------------------------------------------------------------

// The copy walk over as few dims as possible: size-1 dims dropped, and a dim merged into its outer
// neighbour when both dst and src step over the pair as one dim (each dim costs strided_offset a
// 64-bit divmod per element). Fully contiguous copies collapse to one dim of stride 1 on both sides.
StridedLayout collapse_copy(const StridedLayout& l) {
  StridedLayout c;
  for (int d = 0; d < l.ndim; ++d) {
    if (l.sizes[d] == 1) continue;
    const bool merge = c.ndim > 0 && c.strides[0][c.ndim - 1] == l.strides[0][d] * l.sizes[d] &&
                       c.strides[1][c.ndim - 1] == l.strides[1][d] * l.sizes[d];
    if (!merge) ++c.ndim;
    const int at = c.ndim - 1;
    c.sizes[at] = merge ? c.sizes[at] * l.sizes[d] : l.sizes[d];
    c.strides[0][at] = l.strides[0][d];
    c.strides[1][at] = l.strides[1][d];
  }
  return c;
}

// E is an unsigned integer of the element's size: the copy moves bits, whatever the dtype.
template <class E>
__global__ void strided_copy_kernel(E* dst, const E* src, StridedLayout l, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[strided_offset(l, 0, i)] = src[strided_offset(l, 1, i)];
}

template <class E>
void launch_strided_copy(void* dst, const void* src, const StridedLayout& l, int64_t n, cudaStream_t s) {
  strided_copy_kernel<<<blocks_for(n), kThreads, 0, s>>>(static_cast<E*>(dst), static_cast<const E*>(src), l, n);
  CUDA_CHECK_LAUNCH();
}

// ---- fill -----------------------------------------------------------------------------------------------

template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// V values per store (16 bytes when out is aligned, else 1), then the last n % V one per thread.
template <int V, class T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  const int64_t packs = n / V;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  Pack<T, V> pack;
#pragma unroll
  for (int k = 0; k < V; ++k) pack.v[k] = value;
  auto* po = reinterpret_cast<Pack<T, V>*>(out);
  for (int64_t p = first; p < packs; p += int64_t(gridDim.x) * blockDim.x) po[p] = pack;
  if constexpr (V > 1) {
    const int64_t i = packs * V + first;
    if (i < n) out[i] = value;
  }
}

// ---- convert --------------------------------------------------------------------------------------------

// Bit-exact device versions of copy.h's host conversions (those call memcpy/frexp and live in copy.cpp).
__device__ __forceinline__ uint16_t d_float_to_bf16(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
__device__ __forceinline__ float d_bf16_to_float(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }

// Normal and subnormal halves convert exactly; NaN becomes the same canonical quiet NaN as on the CPU.
__device__ __forceinline__ float d_f16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t magnitude;
  if (exp == 0) {
    magnitude = __float_as_uint(float(mant) * 5.9604644775390625e-08f);  // mant * 2^-24, exact
  } else if (exp == 31) {
    magnitude = mant ? 0x7fc00000u : 0x7f800000u;
  } else {
    magnitude = ((exp + 112u) << 23) | (mant << 13);  // rebias 15 -> 127
  }
  return __uint_as_float(magnitude | sign);
}

// __float2half_rn rounds to nearest even, overflows to infinity from 65520 on, and rounds subnormals
// like the CPU's nearbyint(a * 2^24); only NaN needs the CPU's canonical pattern.
__device__ __forceinline__ uint16_t d_float_to_f16(float f) {
  if (f != f) return uint16_t(((__float_as_uint(f) >> 16) & 0x8000u) | 0x7e00u);
  return __half_as_ushort(__float2half_rn(f));
}

// One struct per type code: its storage type S, the type V it computes in, and (for the integers) its
// value as int64. F32, BF16 and F16 compute in float, the others in double, and a conversion goes
// straight from the source's V to the destination's: the same single rounding as the CPU's trip
// through double (float -> double -> float is exact), exact int -> double as there, and NaN payloads
// are not sent through a double round trip (the GPU would canonicalise them, x86 does not).
template <int Code>
struct Elem;
template <>
struct Elem<0> {
  using S = float;
  using V = float;
  __device__ static V get(S v) { return v; }
  __device__ static S put(V v) { return v; }
};
template <>
struct Elem<1> {
  using S = double;
  using V = double;
  __device__ static V get(S v) { return v; }
  __device__ static S put(V v) { return v; }
};
template <>
struct Elem<2> {
  using S = uint16_t;
  using V = float;
  __device__ static V get(S v) { return d_bf16_to_float(v); }
  __device__ static S put(V v) { return d_float_to_bf16(v); }
};
template <>
struct Elem<3> {
  using S = uint16_t;
  using V = float;
  __device__ static V get(S v) { return d_f16_to_float(v); }
  __device__ static S put(V v) { return d_float_to_f16(v); }
};
template <>
struct Elem<4> {
  using S = int64_t;
  using V = double;
  __device__ static V get(S v) { return double(v); }
  __device__ static S put(V v) { return int64_t(v); }
  __device__ static int64_t get_int(S v) { return v; }
  __device__ static S put_int(int64_t v) { return v; }
};
template <>
struct Elem<5> {
  using S = int32_t;
  using V = double;
  __device__ static V get(S v) { return v; }
  __device__ static S put(V v) { return int32_t(v); }
  __device__ static int64_t get_int(S v) { return v; }
  __device__ static S put_int(int64_t v) { return int32_t(v); }  // keeps the low 32 bits
};
template <>
struct Elem<6> {
  using S = uint8_t;
  using V = double;
  __device__ static V get(S v) { return v; }
  // Saturated, NaN as 0: uint8_t(v) would convert through 32 bits and keep the low 8 (300 -> 44), unlike the
  // CPU's convert (kernels/cpu/copy.cpp) and the I32/I64 conversions, which saturate.
  __device__ static S put(V v) { return v != v || v <= 0 ? S(0) : v >= 255 ? S(255) : S(v); }
  __device__ static int64_t get_int(S v) { return v; }
  __device__ static S put_int(int64_t v) { return uint8_t(v); }  // keeps the low 8 bits
};

constexpr bool is_integer_code(int code) { return code == 4 || code == 5 || code == 6; }

// Integer to integer stays in integers (exact for all I64, narrowing wraps), as on the CPU.
template <int Dst, int Src>
__global__ void convert_kernel(typename Elem<Dst>::S* dst, const typename Elem<Src>::S* src, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if constexpr (is_integer_code(Dst) && is_integer_code(Src)) {
      dst[i] = Elem<Dst>::put_int(Elem<Src>::get_int(src[i]));
    } else {
      dst[i] = Elem<Dst>::put(typename Elem<Dst>::V(Elem<Src>::get(src[i])));
    }
  }
}

template <int Dst, int Src>
void launch_convert(void* dst, const void* src, int64_t n, cudaStream_t s) {
  convert_kernel<Dst, Src><<<blocks_for(n), kThreads, 0, s>>>(static_cast<typename Elem<Dst>::S*>(dst),
                                                               static_cast<const typename Elem<Src>::S*>(src), n);
  CUDA_CHECK_LAUNCH();
}

template <int Dst>
void convert_from(void* dst, const void* src, int src_type, int64_t n, cudaStream_t s) {
  switch (src_type) {
    case 0: return launch_convert<Dst, 0>(dst, src, n, s);
    case 1: return launch_convert<Dst, 1>(dst, src, n, s);
    case 2: return launch_convert<Dst, 2>(dst, src, n, s);
    case 3: return launch_convert<Dst, 3>(dst, src, n, s);
    case 4: return launch_convert<Dst, 4>(dst, src, n, s);
    case 5: return launch_convert<Dst, 5>(dst, src, n, s);
    case 6: return launch_convert<Dst, 6>(dst, src, n, s);
  }
  STGS_FAIL("convert: unknown source type code ", src_type);
}

}  // namespace

void strided_copy(void* dst, const void* src, const StridedLayout& layout, size_t elem_size, Stream stream) {
  cudaStream_t s = stream;
  const int64_t n = layout.numel();
  if (n == 0) return;
  const StridedLayout l = collapse_copy(layout);
  if (l.ndim == 0 || (l.ndim == 1 && l.strides[0][0] == 1 && l.strides[1][0] == 1)) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * elem_size, cudaMemcpyDeviceToDevice, s));
    return;
  }
  switch (elem_size) {
    case 1: return launch_strided_copy<uint8_t>(dst, src, l, n, s);
    case 2: return launch_strided_copy<uint16_t>(dst, src, l, n, s);
    case 4: return launch_strided_copy<uint32_t>(dst, src, l, n, s);
    case 8: return launch_strided_copy<uint64_t>(dst, src, l, n, s);
  }
  STGS_FAIL("strided_copy: unsupported element size ", elem_size, " (1, 2, 4 or 8 bytes)");
}

template <class T>
void fill(T* out, int64_t n, T value, Stream stream) {
  cudaStream_t s = stream;
  if (n == 0) return;
  // All-zero bytes (0, 0.0, but not -0.0): the driver's memset is as fast as a fill can be.
  const T zero{};
  if (std::memcmp(&value, &zero, sizeof(T)) == 0) {
    CUDA_CHECK(cudaMemsetAsync(out, 0, size_t(n) * sizeof(T), s));
    return;
  }
  constexpr int V = int(16 / sizeof(T));
  if ((reinterpret_cast<uintptr_t>(out) & 15u) == 0) {
    fill_kernel<V><<<blocks_for((n + V - 1) / V), kThreads, 0, s>>>(out, n, value);
  } else {
    fill_kernel<1><<<blocks_for(n), kThreads, 0, s>>>(out, n, value);
  }
  CUDA_CHECK_LAUNCH();
}

template void fill<float>(float*, int64_t, float, Stream);
template void fill<double>(double*, int64_t, double, Stream);
template void fill<int64_t>(int64_t*, int64_t, int64_t, Stream);
template void fill<int32_t>(int32_t*, int64_t, int32_t, Stream);
template void fill<uint8_t>(uint8_t*, int64_t, uint8_t, Stream);

void convert(void* dst, int dst_type, const void* src, int src_type, int64_t n, Stream stream) {
  cudaStream_t s = stream;
  if (n == 0) return;
  switch (dst_type) {
    case 0: return convert_from<0>(dst, src, src_type, n, s);
    case 1: return convert_from<1>(dst, src, src_type, n, s);
    case 2: return convert_from<2>(dst, src, src_type, n, s);
    case 3: return convert_from<3>(dst, src, src_type, n, s);
    case 4: return convert_from<4>(dst, src, src_type, n, s);
    case 5: return convert_from<5>(dst, src, src_type, n, s);
    case 6: return convert_from<6>(dst, src, src_type, n, s);
  }
  STGS_FAIL("convert: unknown destination type code ", dst_type);
}

}  // namespace stgs::kernels::cuda
