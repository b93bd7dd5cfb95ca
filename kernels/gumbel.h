// Gumbel-softmax sampling of many categorical rows at once (the STGS architecture sampler), and its
// straight-through backward.
// defines: cpu::gumbel_softmax_fwd, cpu::gumbel_softmax_bwd (and their CUDA twins)
//
// Shapes: logits, soft, hard, grad, dlogits are (rows, K) contiguous, K >= 1 categories per row; index is
// (rows). Noise for element (r, k) is Philox counter offset + r * K + k, the mapping of uniform_fill, so
// the CPU and the GPU draw the same uniforms and a caller can reproduce or resume a stream from (seed, offset).
#pragma once

#include <cstdint>

#include "kernels/stream.h"

namespace stgs::kernels::cpu {

// Per row r:
//   z[k]     = (logits[r, k] + G[r, k]) / lambda,  G = -log(-log(u(seed, offset + r*K + k))) when `noise`, else 0
//   soft[r]  = softmax(z)
//   index[r] = argmax_k z[k], the lowest k on ties
//   hard[r]  = one_hot(index[r]); skipped when hard is null
// Consumes rows * K Philox counters from `offset` when `noise`, none otherwise. Logits must be finite (the
// op checks): a NaN makes its row's soft sample NaN and is never the argmax unless it sits at k = 0.
template <class T>
void gumbel_softmax_fwd(T* soft, T* hard, int64_t* index, const T* logits, int64_t rows, int64_t K, T lambda,
                        bool noise, uint64_t seed, uint64_t offset);

// Gradient through the soft sample y = soft, used for both outputs (for the hard one it is the
// straight-through estimator): dlogits[r] = (1 / lambda) * y[r] * (grad[r] - <grad[r], y[r]>).
template <class T>
void gumbel_softmax_bwd(T* dlogits, const T* grad, const T* soft, int64_t rows, int64_t K, T lambda);

}  // namespace stgs::kernels::cpu

namespace stgs::kernels::cuda {

// CUDA twins of the CPU functions above: the same uniforms for the same (seed, offset), device pointers,
// stream last. One launch per call for all rows. Logits are not checked on the GPU (that would cost a
// device-to-host synchronisation per sample): a NaN makes its row's soft sample NaN, and the row's index
// stays inside [0, K).
template <class T>
void gumbel_softmax_fwd(T* soft, T* hard, int64_t* index, const T* logits, int64_t rows, int64_t K, T lambda,
                        bool noise, uint64_t seed, uint64_t offset, Stream stream);
template <class T>
void gumbel_softmax_bwd(T* dlogits, const T* grad, const T* soft, int64_t rows, int64_t K, T lambda,
                        Stream stream);

}  // namespace stgs::kernels::cuda
