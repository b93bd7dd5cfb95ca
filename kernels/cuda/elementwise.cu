// CUDA twins of kernels/elementwise.h: unary maps and their derivatives, broadcasting binary ops,
// comparisons, where.
// defines: cuda::unary_fwd, cuda::unary_bwd, cuda::binary_fwd, cuda::compare, cuda::where_fwd
//
// Napkin math: every kernel here is bandwidth-bound. unary_fwd moves 8 bytes per F32 element (read x,
// write y), unary_bwd 8-12, binary 12, compare 9, where 13. At ~3.3 TB/s (H100 SXM HBM3) a 16M-element
// F32 binary op (192 MB) should take ~60 us; even exp/tanh cost a handful of instructions per element,
// far below the ~100 instructions per element the SMs could spend at that bandwidth. The contiguous
// paths load and store 16-byte packs (float4 / double2) when every pointer is 16-byte aligned, so each
// warp moves 512 contiguous bytes per instruction. The op is a template parameter of each kernel: one
// switch on the host, none per element.
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"

namespace stgs::kernels::cuda {
namespace {

// ---- device math by type: the float overloads call the single-precision functions ----------------------

__device__ __forceinline__ float d_exp(float v) { return ::expf(v); }
__device__ __forceinline__ double d_exp(double v) { return ::exp(v); }
__device__ __forceinline__ float d_log(float v) { return ::logf(v); }
__device__ __forceinline__ double d_log(double v) { return ::log(v); }
__device__ __forceinline__ float d_sqrt(float v) { return ::sqrtf(v); }
__device__ __forceinline__ double d_sqrt(double v) { return ::sqrt(v); }
__device__ __forceinline__ float d_tanh(float v) { return ::tanhf(v); }
__device__ __forceinline__ double d_tanh(double v) { return ::tanh(v); }
__device__ __forceinline__ float d_abs(float v) { return ::fabsf(v); }
__device__ __forceinline__ double d_abs(double v) { return ::fabs(v); }
__device__ __forceinline__ float d_pow(float a, float b) { return ::powf(a, b); }
__device__ __forceinline__ double d_pow(double a, double b) { return ::pow(a, b); }
// A product rounded on its own: nvcc would contract `c - a * b` into an fma, which the CPU reference
// (kernels/cpu/elementwise.cpp, built with -ffp-contract=off: see the Makefile) does not, and the results
// would differ in the last bit.
__device__ __forceinline__ float d_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double d_mul(double a, double b) { return __dmul_rn(a, b); }

// ---- per-op functors (the formulas of kernels/cpu/elementwise.cpp) -------------------------------------

template <UnaryOp Op, class T>
struct UnaryFwd {
  T alpha;
  __device__ T operator()(T v) const {
    if constexpr (Op == UnaryOp::Neg) return -v;
    else if constexpr (Op == UnaryOp::Exp) return d_exp(v);
    else if constexpr (Op == UnaryOp::Log) return d_log(v);
    else if constexpr (Op == UnaryOp::Sqrt) return d_sqrt(v);
    else if constexpr (Op == UnaryOp::Relu) return v < T(0) ? T(0) : v;  // NaN stays NaN
    else if constexpr (Op == UnaryOp::Sigmoid) return T(1) / (T(1) + d_exp(-v));
    else if constexpr (Op == UnaryOp::Tanh) return d_tanh(v);
    else if constexpr (Op == UnaryOp::Abs) return d_abs(v);
    else if constexpr (Op == UnaryOp::Pow) return d_pow(v, alpha);
    else if constexpr (Op == UnaryOp::Scale) return v * alpha;
    else return v + alpha;  // AddScalar
  }
};

// dx = dy * f'(v), v being x or the saved output y as the op needs (see unary_bwd).
template <UnaryOp Op, class T>
struct UnaryBwd {
  T alpha;
  __device__ T operator()(T g, T v) const {
    if constexpr (Op == UnaryOp::Exp) return g * v;
    else if constexpr (Op == UnaryOp::Log) return g * (T(1) / v);
    else if constexpr (Op == UnaryOp::Sqrt) return g * (T(0.5) / v);
    else if constexpr (Op == UnaryOp::Relu) return g * (v > T(0) ? T(1) : T(0));
    else if constexpr (Op == UnaryOp::Sigmoid) return g * (v * (T(1) - v));
    else if constexpr (Op == UnaryOp::Tanh) return g * (T(1) - d_mul(v, v));
    else if constexpr (Op == UnaryOp::Abs) return g * (v > T(0) ? T(1) : v < T(0) ? T(-1) : T(0));
    else {
      static_assert(Op == UnaryOp::Pow, "ops with a constant derivative use MulBy");
      return g * (alpha == T(0) ? T(0) : alpha * d_pow(v, alpha - T(1)));  // x^0 is constant
    }
  }
};

// Ops whose derivative is a constant (Neg, Scale, AddScalar) read only dy: x may not even be passed.
template <class T>
struct MulBy {
  T c;
  __device__ T operator()(T g) const { return g * c; }
};

template <BinaryOp Op, class T>
struct Binary {
  __device__ T operator()(T a, T b) const {
    if constexpr (Op == BinaryOp::Add) return a + b;
    else if constexpr (Op == BinaryOp::Sub) return a - b;
    else if constexpr (Op == BinaryOp::Mul) return a * b;
    else if constexpr (Op == BinaryOp::Div) return a / b;
    else if constexpr (Op == BinaryOp::Pow) return d_pow(a, b);
    else if constexpr (Op == BinaryOp::Maximum) return a > b || a != a ? a : b;  // NaN on either side wins
    else return a < b || a != a ? a : b;  // Minimum
  }
};

template <CompareOp Op, class T>
__device__ __forceinline__ bool compare_op(T u, T v) {
  if constexpr (Op == CompareOp::Gt) return u > v;
  else if constexpr (Op == CompareOp::Ge) return u >= v;
  else if constexpr (Op == CompareOp::Lt) return u < v;
  else if constexpr (Op == CompareOp::Le) return u <= v;
  else if constexpr (Op == CompareOp::Eq) return u == v;
  else return u != v;  // Ne
}

// ---- contiguous maps: V elements per pack (16 bytes when aligned, else 1) ------------------------------

template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <class T>
constexpr int kPack = int(16 / sizeof(T));

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// out[i] = f(a[i]). Packs in a grid-stride loop, then the last n % V elements one per thread.
template <int V, class T, class F>
__global__ void map1_kernel(T* out, const T* a, int64_t n, F f) {
  const int64_t packs = n / V;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const auto* pa = reinterpret_cast<const Pack<T, V>*>(a);
  auto* po = reinterpret_cast<Pack<T, V>*>(out);
  for (int64_t p = first; p < packs; p += stride) {
    Pack<T, V> x = pa[p];
#pragma unroll
    for (int k = 0; k < V; ++k) x.v[k] = f(x.v[k]);
    po[p] = x;
  }
  if constexpr (V > 1) {
    const int64_t i = packs * V + first;
    if (i < n) out[i] = f(a[i]);
  }
}

// out[i] = f(a[i], b[i]).
template <int V, class T, class F>
__global__ void map2_kernel(T* out, const T* a, const T* b, int64_t n, F f) {
  const int64_t packs = n / V;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const auto* pa = reinterpret_cast<const Pack<T, V>*>(a);
  const auto* pb = reinterpret_cast<const Pack<T, V>*>(b);
  auto* po = reinterpret_cast<Pack<T, V>*>(out);
  for (int64_t p = first; p < packs; p += stride) {
    Pack<T, V> x = pa[p];
    const Pack<T, V> y = pb[p];
#pragma unroll
    for (int k = 0; k < V; ++k) x.v[k] = f(x.v[k], y.v[k]);
    po[p] = x;
  }
  if constexpr (V > 1) {
    const int64_t i = packs * V + first;
    if (i < n) out[i] = f(a[i], b[i]);
  }
}

template <class T, class F>
void launch_map1(T* out, const T* a, int64_t n, F f, cudaStream_t s) {
  if (n == 0) return;
  constexpr int V = kPack<T>;
  if (aligned16(out) && aligned16(a)) {
    map1_kernel<V><<<blocks_for((n + V - 1) / V), kThreads, 0, s>>>(out, a, n, f);
  } else {
    map1_kernel<1><<<blocks_for(n), kThreads, 0, s>>>(out, a, n, f);
  }
  CUDA_CHECK_LAUNCH();
}

template <class T, class F>
void launch_map2(T* out, const T* a, const T* b, int64_t n, F f, cudaStream_t s) {
  if (n == 0) return;
  constexpr int V = kPack<T>;
  if (aligned16(out) && aligned16(a) && aligned16(b)) {
    map2_kernel<V><<<blocks_for((n + V - 1) / V), kThreads, 0, s>>>(out, a, b, n, f);
  } else {
    map2_kernel<1><<<blocks_for(n), kThreads, 0, s>>>(out, a, b, n, f);
  }
  CUDA_CHECK_LAUNCH();
}

// ---- strided walks --------------------------------------------------------------------------------------

// The same walk over fewer dimensions: size-1 dims dropped, and a dim merged into its outer neighbour
// when operands first..last all step over the pair as one dim. strided_offset costs one 64-bit divmod
// per dim and operand, so a (N, C, H, W) + (1, C, 1, 1) bias add walks (N, C, H*W) instead.
// The strides of the other operands are left 0: the output (operand 0 of binary_fwd and compare) is
// contiguous and indexed by the flat position.
StridedLayout collapse(const StridedLayout& l, int first, int last) {
  StridedLayout c;
  for (int d = 0; d < l.ndim; ++d) {
    if (l.sizes[d] == 1) continue;
    bool merge = c.ndim > 0;
    for (int k = first; k <= last && merge; ++k) merge = c.strides[k][c.ndim - 1] == l.strides[k][d] * l.sizes[d];
    if (!merge) ++c.ndim;
    const int at = c.ndim - 1;
    c.sizes[at] = merge ? c.sizes[at] * l.sizes[d] : l.sizes[d];
    for (int k = first; k <= last; ++k) c.strides[k][at] = l.strides[k][d];
  }
  return c;
}

template <BinaryOp Op, class Index, class T>
__global__ void binary_strided_kernel(T* out, const T* a, const T* b, StridedLayout l, Index n) {
  const Binary<Op, T> f;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
    int64_t off[2];
    strided_offsets<1, 2>(l, i, off);
    out[i] = f(a[off[0]], b[off[1]]);
  }
}

template <CompareOp Op, class Index, class T>
__global__ void compare_kernel(uint8_t* out, const T* a, const T* b, StridedLayout l, Index n) {
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
    int64_t off[2];
    strided_offsets<1, 2>(l, i, off);
    out[i] = compare_op<Op>(a[off[0]], b[off[1]]) ? 1 : 0;
  }
}

template <class Index, class T>
__global__ void where_kernel(T* out, const uint8_t* cond, const T* a, const T* b, StridedLayout l, Index n) {
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
    int64_t off[3];
    strided_offsets<0, 3>(l, i, off);
    out[i] = cond[off[0]] ? a[off[1]] : b[off[2]];
  }
}

// out (rows, cols) = f(a, b) where each operand is either a full (rows, cols) matrix or one (cols) row
// repeated (row stride 0), both contiguous along cols, cols a multiple of V and every pointer pack-aligned:
// the bias add of every Linear and LayerNorm. One division per pack of V instead of one per element, and
// 16-byte loads of both operands.
template <BinaryOp Op, int V, class T>
__global__ void binary_rows_kernel(T* out, const T* a, const T* b, uint32_t rows, uint32_t cols, uint32_t a_row,
                                   uint32_t b_row) {
  const Binary<Op, T> f;
  const uint32_t packs_per_row = cols / V, packs = rows * packs_per_row;
  for (uint32_t p = blockIdx.x * blockDim.x + threadIdx.x; p < packs; p += gridDim.x * blockDim.x) {
    const uint32_t r = p / packs_per_row, c = (p - r * packs_per_row) * V;
    Pack<T, V> x = *reinterpret_cast<const Pack<T, V>*>(a + size_t(r) * a_row + c);
    const Pack<T, V> y = *reinterpret_cast<const Pack<T, V>*>(b + size_t(r) * b_row + c);
#pragma unroll
    for (int k = 0; k < V; ++k) x.v[k] = f(x.v[k], y.v[k]);
    *reinterpret_cast<Pack<T, V>*>(out + size_t(r) * cols + c) = x;
  }
}

// Whether a walk of n elements indexes in 32 bits (with room for the grid-stride step past the end).
bool fits_u32(int64_t n) { return n < (int64_t(1) << 31); }

template <BinaryOp Op, class T>
void launch_binary(T* out, const T* a, const T* b, const StridedLayout& l, cudaStream_t s) {
  const int64_t n = l.numel();
  if (n == 0) return;
  if (l.contiguous(1, 2)) return launch_map2(out, a, b, n, Binary<Op, T>{}, s);
  const StridedLayout c = collapse(l, 1, 2);
  constexpr int V = kPack<T>;
  if (c.ndim == 2 && fits_u32(n) && c.sizes[1] % V == 0 && c.strides[1][1] == 1 && c.strides[2][1] == 1 &&
      (c.strides[1][0] == 0 || c.strides[1][0] == c.sizes[1]) && (c.strides[2][0] == 0 || c.strides[2][0] == c.sizes[1]) &&
      aligned16(out) && aligned16(a) && aligned16(b)) {
    binary_rows_kernel<Op, V><<<blocks_for(n / V), kThreads, 0, s>>>(out, a, b, uint32_t(c.sizes[0]),
                                                                     uint32_t(c.sizes[1]), uint32_t(c.strides[1][0]),
                                                                     uint32_t(c.strides[2][0]));
    CUDA_CHECK_LAUNCH();
    return;
  }
  if (fits_u32(n))
    binary_strided_kernel<Op, uint32_t><<<blocks_for(n), kThreads, 0, s>>>(out, a, b, c, uint32_t(n));
  else
    binary_strided_kernel<Op, int64_t><<<blocks_for(n), kThreads, 0, s>>>(out, a, b, c, n);
  CUDA_CHECK_LAUNCH();
}

template <CompareOp Op, class T>
void launch_compare(uint8_t* out, const T* a, const T* b, const StridedLayout& l, cudaStream_t s) {
  const int64_t n = l.numel();
  if (n == 0) return;
  if (fits_u32(n))
    compare_kernel<Op, uint32_t><<<blocks_for(n), kThreads, 0, s>>>(out, a, b, collapse(l, 1, 2), uint32_t(n));
  else
    compare_kernel<Op, int64_t><<<blocks_for(n), kThreads, 0, s>>>(out, a, b, collapse(l, 1, 2), n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

template <class T>
void unary_fwd(UnaryOp op, T* y, const T* x, int64_t n, T alpha, Stream stream) {
  cudaStream_t s = stream;
  switch (op) {
    case UnaryOp::Neg: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Neg, T>{alpha}, s);
    case UnaryOp::Exp: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Exp, T>{alpha}, s);
    case UnaryOp::Log: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Log, T>{alpha}, s);
    case UnaryOp::Sqrt: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Sqrt, T>{alpha}, s);
    case UnaryOp::Relu: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Relu, T>{alpha}, s);
    case UnaryOp::Sigmoid: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Sigmoid, T>{alpha}, s);
    case UnaryOp::Tanh: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Tanh, T>{alpha}, s);
    case UnaryOp::Abs: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Abs, T>{alpha}, s);
    case UnaryOp::Pow: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Pow, T>{alpha}, s);
    case UnaryOp::Scale: return launch_map1(y, x, n, UnaryFwd<UnaryOp::Scale, T>{alpha}, s);
    case UnaryOp::AddScalar: return launch_map1(y, x, n, UnaryFwd<UnaryOp::AddScalar, T>{alpha}, s);
  }
  STGS_FAIL("unary_fwd: unknown op ", int(op));
}

template <class T>
void unary_bwd(UnaryOp op, T* dx, const T* dy, const T* x, const T* y, int64_t n, T alpha, Stream stream) {
  cudaStream_t s = stream;
  switch (op) {
    case UnaryOp::Neg: return launch_map1(dx, dy, n, MulBy<T>{T(-1)}, s);
    case UnaryOp::Exp: return launch_map2(dx, dy, y, n, UnaryBwd<UnaryOp::Exp, T>{alpha}, s);
    case UnaryOp::Log: return launch_map2(dx, dy, x, n, UnaryBwd<UnaryOp::Log, T>{alpha}, s);
    case UnaryOp::Sqrt: return launch_map2(dx, dy, y, n, UnaryBwd<UnaryOp::Sqrt, T>{alpha}, s);
    case UnaryOp::Relu: return launch_map2(dx, dy, x, n, UnaryBwd<UnaryOp::Relu, T>{alpha}, s);
    case UnaryOp::Sigmoid: return launch_map2(dx, dy, y, n, UnaryBwd<UnaryOp::Sigmoid, T>{alpha}, s);
    case UnaryOp::Tanh: return launch_map2(dx, dy, y, n, UnaryBwd<UnaryOp::Tanh, T>{alpha}, s);
    case UnaryOp::Abs: return launch_map2(dx, dy, x, n, UnaryBwd<UnaryOp::Abs, T>{alpha}, s);
    case UnaryOp::Pow: return launch_map2(dx, dy, x, n, UnaryBwd<UnaryOp::Pow, T>{alpha}, s);
    case UnaryOp::Scale: return launch_map1(dx, dy, n, MulBy<T>{alpha}, s);
    case UnaryOp::AddScalar: return launch_map1(dx, dy, n, MulBy<T>{T(1)}, s);
  }
  STGS_FAIL("unary_bwd: unknown op ", int(op));
}

template <class T>
void binary_fwd(BinaryOp op, T* out, const T* a, const T* b, const StridedLayout& layout, Stream stream) {
  cudaStream_t s = stream;
  switch (op) {
    case BinaryOp::Add: return launch_binary<BinaryOp::Add>(out, a, b, layout, s);
    case BinaryOp::Sub: return launch_binary<BinaryOp::Sub>(out, a, b, layout, s);
    case BinaryOp::Mul: return launch_binary<BinaryOp::Mul>(out, a, b, layout, s);
    case BinaryOp::Div: return launch_binary<BinaryOp::Div>(out, a, b, layout, s);
    case BinaryOp::Pow: return launch_binary<BinaryOp::Pow>(out, a, b, layout, s);
    case BinaryOp::Maximum: return launch_binary<BinaryOp::Maximum>(out, a, b, layout, s);
    case BinaryOp::Minimum: return launch_binary<BinaryOp::Minimum>(out, a, b, layout, s);
  }
  STGS_FAIL("binary_fwd: unknown op ", int(op));
}

template <class T>
void compare(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedLayout& layout, Stream stream) {
  cudaStream_t s = stream;
  switch (op) {
    case CompareOp::Gt: return launch_compare<CompareOp::Gt>(out, a, b, layout, s);
    case CompareOp::Ge: return launch_compare<CompareOp::Ge>(out, a, b, layout, s);
    case CompareOp::Lt: return launch_compare<CompareOp::Lt>(out, a, b, layout, s);
    case CompareOp::Le: return launch_compare<CompareOp::Le>(out, a, b, layout, s);
    case CompareOp::Eq: return launch_compare<CompareOp::Eq>(out, a, b, layout, s);
    case CompareOp::Ne: return launch_compare<CompareOp::Ne>(out, a, b, layout, s);
  }
  STGS_FAIL("compare: unknown op ", int(op));
}

template <class T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedLayout& layout, Stream stream) {
  cudaStream_t s = stream;
  const int64_t n = layout.numel();
  if (n == 0) return;
  if (fits_u32(n))
    where_kernel<uint32_t><<<blocks_for(n), kThreads, 0, s>>>(out, cond, a, b, collapse(layout, 0, 2), uint32_t(n));
  else
    where_kernel<int64_t><<<blocks_for(n), kThreads, 0, s>>>(out, cond, a, b, collapse(layout, 0, 2), n);
  CUDA_CHECK_LAUNCH();
}

#define STGS_INSTANTIATE(T)                                                                                 \
  template void unary_fwd<T>(UnaryOp, T*, const T*, int64_t, T, Stream);                                    \
  template void unary_bwd<T>(UnaryOp, T*, const T*, const T*, const T*, int64_t, T, Stream);                \
  template void binary_fwd<T>(BinaryOp, T*, const T*, const T*, const StridedLayout&, Stream);              \
  template void compare<T>(CompareOp, uint8_t*, const T*, const T*, const StridedLayout&, Stream);          \
  template void where_fwd<T>(T*, const uint8_t*, const T*, const T*, const StridedLayout&, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
