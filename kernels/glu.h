// Gated linear unit over one dimension: the first half gates through the sigmoid of the second half.
// defines: cpu::glu_fwd, cpu::glu_bwd
#pragma once

#include <cstdint>

#include "kernels/stream.h"

namespace stgs::kernels::cpu {

// x: (outer, 2h, inner), y: (outer, h, inner);  y = a * sigmoid(b), a = x[:, :h], b = x[:, h:]
template <class T>
void glu_fwd(T* y, const T* x, int64_t outer, int64_t h, int64_t inner);
// dx[:, :h] = dy * sigmoid(b);  dx[:, h:] = dy * a * s * (1 - s)
template <class T>
void glu_bwd(T* dx, const T* dy, const T* x, int64_t outer, int64_t h, int64_t inner);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above; same arguments, device pointers, stream last.
template <class T>
void glu_fwd(T* y, const T* x, int64_t outer, int64_t h, int64_t inner, Stream stream);
template <class T>
void glu_bwd(T* dx, const T* dy, const T* x, int64_t outer, int64_t h, int64_t inner, Stream stream);

}  // namespace stgs::kernels::cuda
