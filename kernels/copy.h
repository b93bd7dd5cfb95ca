// Layout and type movement: strided copies (contiguous(), concat, slice backward), fills, casts.
// defines: cpu::strided_copy, cpu::fill, cpu::convert, half/bfloat16 bit conversions
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/stream.h"
#include "kernels/strided.h"

namespace stgs::kernels {

// bfloat16 and IEEE half <-> float, bit-exact round-to-nearest-even; NaN stays NaN.
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);

}  // namespace stgs::kernels

namespace stgs::kernels::cpu {

// dst[i] = src[i] over `layout.sizes`, elements of elem_size bytes; layout.strides[0] are dst strides,
// layout.strides[1] src strides (both in elements). Works for any dtype, as bytes.
void strided_copy(void* dst, const void* src, const StridedLayout& layout, size_t elem_size);

template <class T>
void fill(T* out, int64_t n, T value);

// Element type conversion of n contiguous elements; type codes are those of engine DType order:
// 0 F32, 1 F64, 2 BF16, 3 F16, 4 I64, 5 I32, 6 U8.
void convert(void* dst, int dst_type, const void* src, int src_type, int64_t n);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above; same arguments, device pointers, stream last.
void strided_copy(void* dst, const void* src, const StridedLayout& layout, size_t elem_size, Stream stream);
template <class T>
void fill(T* out, int64_t n, T value, Stream stream);
void convert(void* dst, int dst_type, const void* src, int src_type, int64_t n, Stream stream);

}  // namespace stgs::kernels::cuda
