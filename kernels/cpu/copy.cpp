// CPU reference: strided copy, fill, dtype conversion.
#include "kernels/copy.h"

#include <cmath>
#include <limits>

#include "kernels/check.h"

namespace stgs::kernels {

float f16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  float magnitude;
  if (exp == 0) {
    magnitude = std::ldexp(float(mant), -24);  // zero or subnormal
  } else if (exp == 31) {
    magnitude = mant ? NAN : INFINITY;
  } else {
    magnitude = std::ldexp(float(mant | 0x400), int(exp) - 25);
  }
  uint32_t u;
  std::memcpy(&u, &magnitude, 4);
  u |= sign;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return uint16_t(sign | 0x7e00);
  if (a >= 65520.0f) return uint16_t(sign | 0x7c00);  // rounds to infinity
  if (a < 6.103515625e-05f) {                          // subnormal range: multiples of 2^-24
    return uint16_t(sign | uint16_t(std::nearbyint(a * 16777216.0f)));
  }
  int e;
  const float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  uint32_t mant = uint32_t(std::nearbyint((m * 2.0f - 1.0f) * 1024.0f));
  int biased = e - 1 + 15;
  if (mant == 1024) {
    mant = 0;
    ++biased;
  }
  if (biased >= 31) return uint16_t(sign | 0x7c00);
  return uint16_t(sign | (biased << 10) | mant);
}

}  // namespace stgs::kernels

namespace stgs::kernels::cpu {

void strided_copy(void* dst, const void* src, const StridedLayout& layout, size_t elem_size) {
  const int nd = layout.ndim;
  const int64_t n = layout.numel();
  if (n == 0) return;
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  if (nd == 0) {
    std::memcpy(d, s, elem_size);
    return;
  }
  // Rows along the last dimension; each row's start is found by unravelling the row index, so rows
  // are independent and split across threads.
  const int64_t inner = layout.sizes[nd - 1];
  const int64_t ds = layout.strides[0][nd - 1], ss = layout.strides[1][nd - 1];
  const int64_t rows = n / inner;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, doff = 0, soff = 0;
    for (int i = nd - 2; i >= 0; --i) {
      const int64_t idx = rem % layout.sizes[i];
      rem /= layout.sizes[i];
      doff += idx * layout.strides[0][i];
      soff += idx * layout.strides[1][i];
    }
    char* drow = d + doff * int64_t(elem_size);
    const char* srow = s + soff * int64_t(elem_size);
    if (ds == 1 && ss == 1) {
      std::memcpy(drow, srow, size_t(inner) * elem_size);
      continue;
    }
    for (int64_t j = 0; j < inner; ++j)
      std::memcpy(drow + j * ds * int64_t(elem_size), srow + j * ss * int64_t(elem_size), elem_size);
  }
}

template <class T>
void fill(T* out, int64_t n, T value) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = value;
}

template void fill<float>(float*, int64_t, float);
template void fill<double>(double*, int64_t, double);
template void fill<int64_t>(int64_t*, int64_t, int64_t);
template void fill<int32_t>(int32_t*, int64_t, int32_t);
template void fill<uint8_t>(uint8_t*, int64_t, uint8_t);

namespace {

// Conversions that involve a float type go through double (exact for all of F32/BF16/F16/I32/U8 and for
// I64 up to 2^53).
double load(const void* p, int type, int64_t i) {
  switch (type) {
    case 0: return static_cast<const float*>(p)[i];
    case 1: return static_cast<const double*>(p)[i];
    case 2: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
    case 3: return f16_to_float(static_cast<const uint16_t*>(p)[i]);
    case 4: return double(static_cast<const int64_t*>(p)[i]);
    case 5: return static_cast<const int32_t*>(p)[i];
    case 6: return static_cast<const uint8_t*>(p)[i];
  }
  STGS_FAIL("convert: unknown source type code ", type);
}

// A float's integer value, saturated to I's range and NaN as 0 (C++ leaves both undefined; this is what the
// CUDA conversion instructions do, so the two backends agree).
template <class I>
I saturate(double v) {
  if (std::isnan(v)) return I(0);
  if (v <= double(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  if (v >= double(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return I(v);
}

void store(void* p, int type, int64_t i, double v) {
  switch (type) {
    case 0: static_cast<float*>(p)[i] = float(v); return;
    case 1: static_cast<double*>(p)[i] = v; return;
    case 2: static_cast<uint16_t*>(p)[i] = float_to_bf16(float(v)); return;
    case 3: static_cast<uint16_t*>(p)[i] = float_to_f16(float(v)); return;
    case 4: static_cast<int64_t*>(p)[i] = saturate<int64_t>(v); return;
    case 5: static_cast<int32_t*>(p)[i] = saturate<int32_t>(v); return;
    case 6: static_cast<uint8_t*>(p)[i] = saturate<uint8_t>(v); return;
  }
  STGS_FAIL("convert: unknown destination type code ", type);
}

// Integer to integer conversions stay in integers: exact for every I64 value, and narrowing keeps the
// low bits (two's complement wrap, as C++20 and NumPy define it) instead of an out-of-range float cast.
bool is_integer_code(int type) { return type == 4 || type == 5 || type == 6; }

int64_t load_int(const void* p, int type, int64_t i) {
  switch (type) {
    case 4: return static_cast<const int64_t*>(p)[i];
    case 5: return static_cast<const int32_t*>(p)[i];
    case 6: return static_cast<const uint8_t*>(p)[i];
  }
  STGS_FAIL("convert: unknown integer source type code ", type);
}

void store_int(void* p, int type, int64_t i, int64_t v) {
  switch (type) {
    case 4: static_cast<int64_t*>(p)[i] = v; return;
    case 5: static_cast<int32_t*>(p)[i] = int32_t(v); return;
    case 6: static_cast<uint8_t*>(p)[i] = uint8_t(v); return;
  }
  STGS_FAIL("convert: unknown integer destination type code ", type);
}

}  // namespace

void convert(void* dst, int dst_type, const void* src, int src_type, int64_t n) {
  if (is_integer_code(dst_type) && is_integer_code(src_type)) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) store_int(dst, dst_type, i, load_int(src, src_type, i));
    return;
  }
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) store(dst, dst_type, i, load(src, src_type, i));
}

}  // namespace stgs::kernels::cpu
