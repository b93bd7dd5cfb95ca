// Softmax family over one dimension of (outer, n, inner), and fused cross-entropy on (N, C) logits.
// defines: cpu::softmax_fwd/bwd, cpu::log_softmax_fwd/bwd, cpu::cross_entropy_fwd/bwd
#pragma once

#include <cstdint>

#include "kernels/stream.h"

namespace stgs::kernels::cpu {

// y = exp(x - max) / sum(exp(x - max)) along n;  x, y: (outer, n, inner)
template <class T>
void softmax_fwd(T* y, const T* x, int64_t outer, int64_t n, int64_t inner);
// dx = y * (dy - sum(dy * y))
template <class T>
void softmax_bwd(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner);

// y = x - max - log(sum(exp(x - max)))
template <class T>
void log_softmax_fwd(T* y, const T* x, int64_t outer, int64_t n, int64_t inner);
// dx = dy - exp(y) * sum(dy)
template <class T>
void log_softmax_bwd(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner);

// loss: (N) = logsumexp(logits[r]) - logits[r, target[r]];  logits: (N, C); targets already validated.
template <class T>
void cross_entropy_fwd(T* loss, const T* logits, const int64_t* target, int64_t N, int64_t C);
// dlogits[r] = (softmax(logits[r]) - onehot(target[r])) * dloss[r];  dloss: (N)
template <class T>
void cross_entropy_bwd(T* dlogits, const T* dloss, const T* logits, const int64_t* target, int64_t N, int64_t C);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above; same arguments, device pointers, stream last.
template <class T>
void softmax_fwd(T* y, const T* x, int64_t outer, int64_t n, int64_t inner, Stream stream);
template <class T>
void softmax_bwd(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner, Stream stream);
template <class T>
void log_softmax_fwd(T* y, const T* x, int64_t outer, int64_t n, int64_t inner, Stream stream);
template <class T>
void log_softmax_bwd(T* dx, const T* dy, const T* y, int64_t outer, int64_t n, int64_t inner, Stream stream);
template <class T>
void cross_entropy_fwd(T* loss, const T* logits, const int64_t* target, int64_t N, int64_t C, Stream stream);
template <class T>
void cross_entropy_bwd(T* dlogits, const T* dloss, const T* logits, const int64_t* target, int64_t N, int64_t C,
                       Stream stream);

}  // namespace stgs::kernels::cuda
