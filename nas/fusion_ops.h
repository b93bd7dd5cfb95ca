// The fusion operations of the second-level search (paper Table 1; BM-NAS's step ops).
// defines: FusionOpKind, kFusionOpKinds, fusion_op_name, fusion_op_from_name, FusionOp, ZeroFusion, SumFusion,
//          AttentionFusion, LinearGLUFusion, ConcatFCFusion, make_fusion_op
//
// Every op takes two node tensors x, y: (B, C, L) (C channels, L sequence positions) and returns (B, C, L).
// An op is built for one (C, L) and rejects any other shape with an error naming both shapes. The names
// ("zero", "sum", ...) are the ones genotype files store; kFusionOpKinds fixes the order of a gamma row.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "engine/nn/conv_layers.h"
#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/random.h"

namespace stgs::nas {

enum class FusionOpKind { Zero, Sum, Attention, LinearGLU, ConcatFC };

// Table 1 order: the column order of every gamma row and of the genotype's op indices.
inline constexpr std::array<FusionOpKind, 5> kFusionOpKinds = {FusionOpKind::Zero, FusionOpKind::Sum,
                                                               FusionOpKind::Attention, FusionOpKind::LinearGLU,
                                                               FusionOpKind::ConcatFC};

// "zero", "sum", "attention", "linear_glu", "concat_fc".
const char* fusion_op_name(FusionOpKind kind);
// The inverse; throws listing the valid names for anything else.
FusionOpKind fusion_op_from_name(const std::string& name);

// BM-NAS's attention step op drops with a fixed p = 0.1, independent of the network's dropout rate.
inline constexpr double kAttentionDropout = 0.1;

// A two-input module: forward(x, y) with x, y: (B, C, L) -> (B, C, L). The single-input
// Module::forward is not defined for these ops (it throws).
class FusionOp : public Module {
 public:
  FusionOpKind kind() const { return kind_; }
  int64_t channels() const { return C_; }
  int64_t length() const { return L_; }
  // groups > 1: x and y hold that many independent batches back to back (the architecture draws of a
  // search step, batched); the batch norms inside take their statistics per group.
  virtual Tensor forward(const Tensor& x, const Tensor& y, int64_t groups) = 0;
  Tensor forward(const Tensor& x, const Tensor& y) { return forward(x, y, 1); }
  Tensor operator()(const Tensor& x, const Tensor& y) { return forward(x, y, 1); }
  using Module::forward;

 protected:
  FusionOp(FusionOpKind kind, int64_t C, int64_t L);
  // Throws unless x and y are both (B, C, L) with this op's C and L and the same B.
  void check_inputs(const Tensor& x, const Tensor& y) const;

 private:
  FusionOpKind kind_;
  int64_t C_, L_;
  std::string label_;  // "LinearGLU(C=8, L=4)": names the op and its size in errors
};

// Zero(x, y) = 0: removes the step's contribution. The result is a fresh zeros tensor (x's dtype and
// device) with no autograd history, so neither input receives a gradient through it.
class ZeroFusion : public FusionOp {
 public:
  ZeroFusion(int64_t C, int64_t L) : FusionOp(FusionOpKind::Zero, C, L) {}
  Tensor forward(const Tensor& x, const Tensor& y, int64_t groups) override;
  using FusionOp::forward;
};

// Sum(x, y) = x + y (DARTS).
class SumFusion : public FusionOp {
 public:
  SumFusion(int64_t C, int64_t L) : FusionOp(FusionOpKind::Sum, C, L) {}
  Tensor forward(const Tensor& x, const Tensor& y, int64_t groups) override;
  using FusionOp::forward;
};

// Scaled dot-product attention across positions, no projections; x is the query, y the keys and values
// (paper Table 1: "a query x and key-value pairs y", Attention(x, y) = Softmax(x y^T / sqrt(C)) y, with the
// positions as rows). Exactly BM-NAS's ScaledDotAttn: with x^T, y^T: (B, L, C),
//   A = softmax(x^T y / sqrt(C)) over the key positions: (B, L, L);  out = (A y^T)^T: (B, C, L);
// then Dropout(p) and LayerNorm over (C, L) (one affine weight and bias per (c, l)).
// Children: "dropout", "ln".
class AttentionFusion : public FusionOp {
 public:
  AttentionFusion(int64_t C, int64_t L, double p = kAttentionDropout);
  Tensor forward(const Tensor& x, const Tensor& y, int64_t groups) override;
  using FusionOp::forward;

  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<LayerNorm> ln;
};

// BM-NAS LinearGLU: concat(x, y) over channels (B, 2C, L) -> 1x1 Conv1d 2C->2C -> BatchNorm(2C) -> GLU over
// channels (first C * sigmoid(last C)) -> Dropout(p). Since the conv is 1x1, its first C outputs are
// x W_1a + y W_1b and its last C are x W_2a + y W_2b: Table 1's x W_1 (.) sigmoid(y W_2) with both halves
// seeing both inputs. Children: "conv", "bn", "dropout".
class LinearGLUFusion : public FusionOp {
 public:
  LinearGLUFusion(int64_t C, int64_t L, double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x, const Tensor& y, int64_t groups) override;
  using FusionOp::forward;

  std::shared_ptr<Conv1d> conv;
  std::shared_ptr<BatchNorm> bn;
  std::shared_ptr<Dropout> dropout;
};

// BM-NAS ConcatFC: concat(x, y) over channels (B, 2C, L) -> 1x1 Conv1d 2C->C (the FC layer of Table 1,
// applied at every position) -> BatchNorm(C) -> ReLU -> Dropout(p). Children: "conv", "bn", "dropout".
class ConcatFCFusion : public FusionOp {
 public:
  ConcatFCFusion(int64_t C, int64_t L, double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x, const Tensor& y, int64_t groups) override;
  using FusionOp::forward;

  std::shared_ptr<Conv1d> conv;
  std::shared_ptr<BatchNorm> bn;
  std::shared_ptr<Dropout> dropout;
};

// Builds the op of `kind` for nodes of (B, C, L). `dropout` is the network's rate (LinearGLU, ConcatFC;
// Attention uses kAttentionDropout as BM-NAS does); `gen` draws the conv weights (the default generator
// when null). Dropout masks come from the default generator.
std::shared_ptr<FusionOp> make_fusion_op(FusionOpKind kind, int64_t C, int64_t L, double dropout,
                                         Generator* gen = nullptr);

}  // namespace stgs::nas
