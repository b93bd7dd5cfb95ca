// Elementwise kernels: unary maps with their derivatives, broadcasting binary ops, comparisons, where.
// defines: UnaryOp, BinaryOp, CompareOp, cpu::unary_fwd, cpu::unary_bwd, cpu::binary_fwd, cpu::compare,
//          cpu::where_fwd
#pragma once

#include <cstdint>

#include "kernels/stream.h"
#include "kernels/strided.h"

namespace stgs::kernels {

// alpha is the exponent of Pow, the factor of Scale and the addend of AddScalar; unused otherwise.
enum class UnaryOp { Neg, Exp, Log, Sqrt, Relu, Sigmoid, Tanh, Abs, Pow, Scale, AddScalar };
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum };
enum class CompareOp { Gt, Ge, Lt, Le, Eq, Ne };

}  // namespace stgs::kernels

namespace stgs::kernels::cpu {

// y, x: (n)
template <class T>
void unary_fwd(UnaryOp op, T* y, const T* x, int64_t n, T alpha);

// dx = dy * f'(x), using whichever of x (input) and y (saved output) the derivative needs.
template <class T>
void unary_bwd(UnaryOp op, T* dx, const T* dy, const T* x, const T* y, int64_t n, T alpha);

// out: contiguous over layout.sizes; a, b read with layout.strides[1], [2] (strides[0] unused).
template <class T>
void binary_fwd(BinaryOp op, T* out, const T* a, const T* b, const StridedLayout& layout);

// out (U8, 0/1): contiguous; a, b read with layout.strides[1], [2].
template <class T>
void compare(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedLayout& layout);

// out = cond ? a : b; cond (U8), a, b read with layout.strides[0], [1], [2].
template <class T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedLayout& layout);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above; same arguments, device pointers, stream last.
template <class T>
void unary_fwd(UnaryOp op, T* y, const T* x, int64_t n, T alpha, Stream stream);
template <class T>
void unary_bwd(UnaryOp op, T* dx, const T* dy, const T* x, const T* y, int64_t n, T alpha, Stream stream);
template <class T>
void binary_fwd(BinaryOp op, T* out, const T* a, const T* b, const StridedLayout& layout, Stream stream);
template <class T>
void compare(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedLayout& layout, Stream stream);
template <class T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedLayout& layout, Stream stream);

}  // namespace stgs::kernels::cuda
