// The straight-through Gumbel-softmax (STGS) sampler for architecture parameters (alpha, beta, gamma).
// defines: GumbelMode, GumbelSample, gumbel_softmax_st
//
// For every row of logits (..., K) at temperature lambda:
//   soft  = softmax((logits + G) / lambda),  G ~ Gumbel(0, 1) i.i.d. per element
//   index = argmax soft (the lowest index on ties),  hard = one_hot(index)
// The hard sample is exactly one-hot in the forward pass; its gradient is the soft sample's (the
// straight-through estimator): dlogits = (1/lambda) * y * (g - <g, y>), y = soft, g = the incoming gradient.
// Both directions are one fused kernel over all rows (kernels/gumbel.h), on the CPU or one launch on a GPU.
//
// Random numbers: Hard and Soft draw from `gen` (the default generator when null). Element (r, k) of the
// rows-by-K view uses Philox counter offset + r*K + k, offset = gen->offset() before the call (the counters
// of `rand`); the call advances the generator by rows*K rounded up to a multiple of 4. PlainSoftmax draws
// nothing. So restoring (seed, offset) from a checkpoint with Generator::set_state resumes the same samples.
#pragma once

#include "engine/random.h"
#include "engine/tensor.h"

namespace stgs::nas {

enum class GumbelMode {
  Hard,          // STGS / GDAS: one-hot forward, straight-through gradient
  Soft,          // the relaxed sample only (SNAS-style); no hard output
  PlainSoftmax,  // BM-NAS: softmax(logits), no noise and lambda = 1 whatever is passed; no hard output
};

struct GumbelSample {
  Tensor hard;   // one_hot(index), the logits' shape and dtype; Hard mode only (undefined otherwise)
  Tensor soft;   // the soft sample, the logits' shape and dtype
  Tensor index;  // argmax per row, I64 of the logits' shape without the last dimension; no gradient
  // The mixing weights a search network multiplies its candidate ops by: hard when sampled, else soft.
  const Tensor& weights() const { return hard.defined() ? hard : soft; }
};

// logits: F32 or F64, at least one dimension, the last (K >= 1) indexes the categories, any device. lambda
// must be finite and > 0. On the CPU non-finite logits throw; on a GPU they are not checked (see
// kernels/gumbel.h). hard and soft are differentiable when logits require a gradient.
GumbelSample gumbel_softmax_st(const Tensor& logits, double lambda, GumbelMode mode = GumbelMode::Hard,
                               Generator* gen = nullptr);

}  // namespace stgs::nas
