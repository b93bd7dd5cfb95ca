// Fusion operations (paper Table 1, BM-NAS step ops) on (B, C, L) node tensors.
#include "nas/fusion_ops.h"

#include <cmath>

#include "engine/ops.h"

namespace stgs::nas {
namespace {

// One row per kind: the genotype name and the module's type name (used in errors).
struct KindInfo {
  FusionOpKind kind;
  const char* name;
  const char* type;
};
constexpr std::array<KindInfo, 5> kInfo = {{{FusionOpKind::Zero, "zero", "Zero"},
                                            {FusionOpKind::Sum, "sum", "Sum"},
                                            {FusionOpKind::Attention, "attention", "Attention"},
                                            {FusionOpKind::LinearGLU, "linear_glu", "LinearGLU"},
                                            {FusionOpKind::ConcatFC, "concat_fc", "ConcatFC"}}};
static_assert(kInfo.size() == kFusionOpKinds.size(), "every fusion op needs a row");

const KindInfo& info(FusionOpKind kind) {
  for (const KindInfo& e : kInfo)
    if (e.kind == kind) return e;
  STGS_FAIL("fusion op: invalid kind ", int(kind));
}

// conv(concat(x, y)) for a 1x1 Conv1d over the channel concatenation. When x and y are one tensor (every
// step of a search cell: both inner inputs are its t) that equals (W[:, :C] + W[:, C:]) x + b: half the GEMM
// work forward and backward and no concatenated copy, for one weight-sized addition (and its backward) per
// call, which pays once a call carries the M draws of a search step.
Tensor conv_of_pair(Conv1d& conv, const Tensor& x, const Tensor& y) {
  if (x.impl() != y.impl()) return conv.forward(concat({x, y}, 1));
  const int64_t C = x.size(1);
  const Tensor folded = add(conv.weight.narrow(1, 0, C), conv.weight.narrow(1, C, C));  // (C_out, C, 1)
  return conv1d(x, folded, conv.bias);
}

}  // namespace

const char* fusion_op_name(FusionOpKind kind) { return info(kind).name; }

FusionOpKind fusion_op_from_name(const std::string& name) {
  for (const KindInfo& e : kInfo)
    if (name == e.name) return e.kind;
  STGS_FAIL("unknown fusion op '", name, "': expected one of zero, sum, attention, linear_glu, concat_fc");
}

// ---- FusionOp -----------------------------------------------------------------------------------------

FusionOp::FusionOp(FusionOpKind kind, int64_t C, int64_t L)
    : Module(info(kind).type), kind_(kind), C_(C), L_(L),
      label_(detail::concat(type_name(), "(C=", C, ", L=", L, ")")) {
  STGS_CHECK(C > 0 && L > 0, label_, ": C and L must be positive");
}

void FusionOp::check_inputs(const Tensor& x, const Tensor& y) const {
  auto check_one = [&](const Tensor& t, const char* name) {
    STGS_CHECK(t.defined() && t.dim() == 3 && t.size(1) == C_ && t.size(2) == L_, label_, ": input ", name,
               " must be (B, ", C_, ", ", L_, "), got ", t.str());
  };
  check_one(x, "x");
  check_one(y, "y");
  STGS_CHECK(x.size(0) == y.size(0), label_, ": x and y must have the same batch size, got ", x.str(), " and ",
             y.str());
}

// ---- Zero, Sum ----------------------------------------------------------------------------------------

Tensor ZeroFusion::forward(const Tensor& x, const Tensor& y, int64_t groups) {
  check_inputs(x, y);
  return zeros(x.shape(), x.dtype(), x.device());
}

Tensor SumFusion::forward(const Tensor& x, const Tensor& y, int64_t groups) {
  check_inputs(x, y);
  return add(x, y);
}

// ---- Attention ----------------------------------------------------------------------------------------

AttentionFusion::AttentionFusion(int64_t C, int64_t L, double p) : FusionOp(FusionOpKind::Attention, C, L) {
  dropout = register_module("dropout", std::make_shared<Dropout>(p));
  ln = register_module("ln", std::make_shared<LayerNorm>(Shape{C, L}));
}

Tensor AttentionFusion::forward(const Tensor& x, const Tensor& y, int64_t groups) {
  check_inputs(x, y);
  // Positions attend to positions; d_k = C since there are no projections.
  const Tensor q = x.transpose(1, 2);                                             // (B, L, C)
  const Tensor scores = mul(matmul(q, y), 1.0 / std::sqrt(double(channels())));  // (B, L, L): query i, key j
  const Tensor attn = softmax(scores, -1);                                        // rows sum to 1 over keys
  const Tensor out = matmul(attn, y.transpose(1, 2)).transpose(1, 2);              // (B, L, C) -> (B, C, L)
  return ln->forward(dropout->forward(out));
}

// ---- LinearGLU, ConcatFC ------------------------------------------------------------------------------

LinearGLUFusion::LinearGLUFusion(int64_t C, int64_t L, double p, Generator* gen)
    : FusionOp(FusionOpKind::LinearGLU, C, L) {
  conv = register_module("conv", std::make_shared<Conv1d>(2 * C, 2 * C, 1, 1, 0, true, gen));
  bn = register_module("bn", std::make_shared<BatchNorm>(2 * C));
  dropout = register_module("dropout", std::make_shared<Dropout>(p));
}

Tensor LinearGLUFusion::forward(const Tensor& x, const Tensor& y, int64_t groups) {
  check_inputs(x, y);
  const Tensor h = bn->forward(conv_of_pair(*conv, x, y), groups);  // (B, 2C, L)
  return dropout->forward(glu(h, 1));                              // (B, C, L)
}

ConcatFCFusion::ConcatFCFusion(int64_t C, int64_t L, double p, Generator* gen)
    : FusionOp(FusionOpKind::ConcatFC, C, L) {
  conv = register_module("conv", std::make_shared<Conv1d>(2 * C, C, 1, 1, 0, true, gen));
  bn = register_module("bn", std::make_shared<BatchNorm>(C));
  dropout = register_module("dropout", std::make_shared<Dropout>(p));
}

Tensor ConcatFCFusion::forward(const Tensor& x, const Tensor& y, int64_t groups) {
  check_inputs(x, y);
  const Tensor h = bn->forward(conv_of_pair(*conv, x, y), groups);  // (B, C, L)
  return dropout->forward(relu(h));
}

// ---- factory ------------------------------------------------------------------------------------------

std::shared_ptr<FusionOp> make_fusion_op(FusionOpKind kind, int64_t C, int64_t L, double dropout, Generator* gen) {
  // Checked here too, so a bad rate is caught whichever op the search happens to build first.
  STGS_CHECK(dropout >= 0 && dropout < 1, "make_fusion_op: dropout must be in [0, 1), got ", dropout);
  switch (kind) {
    case FusionOpKind::Zero: return std::make_shared<ZeroFusion>(C, L);
    case FusionOpKind::Sum: return std::make_shared<SumFusion>(C, L);
    case FusionOpKind::Attention: return std::make_shared<AttentionFusion>(C, L, kAttentionDropout);
    case FusionOpKind::LinearGLU: return std::make_shared<LinearGLUFusion>(C, L, dropout, gen);
    case FusionOpKind::ConcatFC: return std::make_shared<ConcatFCFusion>(C, L, dropout, gen);
  }
  STGS_FAIL("make_fusion_op: invalid kind ", int(kind));
}

}  // namespace stgs::nas
