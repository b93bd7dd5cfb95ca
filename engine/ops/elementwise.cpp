// Elementwise ops: unary maps, broadcasting binary arithmetic, comparisons, where, GLU.
#include "kernels/elementwise.h"

#include "engine/ops.h"
#include "engine/ops/op_utils.h"
#include "kernels/glu.h"

namespace stgs {
namespace {

using kernels::BinaryOp;
using kernels::CompareOp;
using kernels::UnaryOp;

Tensor unary(const char* name, UnaryOp op, const Tensor& x, double alpha = 0) {
  detail::check_float(name, x);
  Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  STGS_DISPATCH_FLOAT(x.dtype(), name,
                      STGS_KERNEL(x.device(), unary_fwd<T>, op, y.data<T>(), xc.data<T>(), y.numel(), T(alpha)));
  if (any_requires_grad({&x})) {
    Tensor xs = xc.detach(), ys = y.detach();
    record(name, y, {&x}, [name, op, alpha, xs, ys](const Tensor& g, GradInputs& gi) {
      Tensor gc = g.contiguous();
      Tensor dx = empty(xs.shape(), xs.dtype(), xs.device());
      STGS_DISPATCH_FLOAT(xs.dtype(), name,
                          STGS_KERNEL(xs.device(), unary_bwd<T>, op, dx.data<T>(), gc.data<T>(), xs.data<T>(),
                                      ys.data<T>(), dx.numel(), T(alpha)));
      gi.set(0, dx);
    });
  }
  return y;
}

Tensor binary(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
  detail::check_same(name, {&a, &b});
  const Shape out_shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor y = empty(out_shape, a.dtype(), a.device());
  const kernels::StridedLayout layout = detail::broadcast_layout(out_shape, {&y, &a, &b});
  STGS_DISPATCH_FLOAT(a.dtype(), name,
                      STGS_KERNEL(a.device(), binary_fwd<T>, op, y.data<T>(), a.data<T>(), b.data<T>(), layout));
  if (!any_requires_grad({&a, &b})) return y;

  if (op == BinaryOp::Add || op == BinaryOp::Sub) {
    // The gradients need only the input shapes: keep no tensors alive (and skip three detach() calls,
    // a third of the cost of a tiny op).
    const Shape sa = a.shape(), sb = b.shape();
    const bool subtract = op == BinaryOp::Sub;
    record(name, y, {&a, &b}, [sa, sb, subtract](const Tensor& g, GradInputs& gi) {
      if (gi.needs(0)) gi.set(0, sum_to(g, sa));
      if (gi.needs(1)) gi.set(1, sum_to(subtract ? neg(g) : g, sb));
    });
    return y;
  }
  Tensor as = a.detach(), bs = b.detach(), ys = op == BinaryOp::Div || op == BinaryOp::Pow ? y.detach() : Tensor();
  record(name, y, {&a, &b}, [op, as, bs, ys](const Tensor& g, GradInputs& gi) {
    const Shape& sa = as.shape();
    const Shape& sb = bs.shape();
    switch (op) {
      case BinaryOp::Add:
      case BinaryOp::Sub:
        break;  // handled above
      case BinaryOp::Mul:
        if (gi.needs(0)) gi.set(0, sum_to(g * bs, sa));
        if (gi.needs(1)) gi.set(1, sum_to(g * as, sb));
        break;
      case BinaryOp::Div:
        if (gi.needs(0)) gi.set(0, sum_to(g / bs, sa));
        if (gi.needs(1)) gi.set(1, sum_to(neg(g * ys / bs), sb));
        break;
      case BinaryOp::Pow:
        if (gi.needs(0)) {  // where b == 0, a^b is constant in a: 0, not b * a^(b - 1) (NaN at a = 0)
          const Tensor zero = scalar(0, g.dtype(), g.device());
          gi.set(0, sum_to(where(eq(bs, zero), zero, g * bs * pow(as, bs - 1.0)), sa));
        }
        if (gi.needs(1)) gi.set(1, sum_to(g * ys * log(as), sb));
        break;
      case BinaryOp::Maximum:
      case BinaryOp::Minimum: {
        // The gradient follows the forward's pick: a when it wins or is NaN (kernels/cpu/elementwise.cpp).
        const Tensor to_a = op == BinaryOp::Maximum ? ge(as, bs) : le(as, bs), a_nan = ne(as, as);
        const Tensor zero = scalar(0, g.dtype(), g.device());
        if (gi.needs(0)) gi.set(0, sum_to(where(a_nan, g, where(to_a, g, zero)), sa));
        if (gi.needs(1)) gi.set(1, sum_to(where(a_nan, zero, where(to_a, zero, g)), sb));
        break;
      }
    }
  });
  return y;
}

Tensor compare(const char* name, CompareOp op, const Tensor& a, const Tensor& b) {
  detail::check_same(name, {&a, &b});
  const Shape out_shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor y = empty(out_shape, DType::U8, a.device());
  const kernels::StridedLayout layout = detail::broadcast_layout(out_shape, {&y, &a, &b});
  STGS_DISPATCH_FLOAT(a.dtype(), name,
                      STGS_KERNEL(a.device(), compare<T>, op, y.data<uint8_t>(), a.data<T>(), b.data<T>(), layout));
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary("div", BinaryOp::Div, a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary("pow", BinaryOp::Pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary("maximum", BinaryOp::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary("minimum", BinaryOp::Minimum, a, b); }
Tensor add(const Tensor& a, double s) { return unary("add_scalar", UnaryOp::AddScalar, a, s); }
Tensor mul(const Tensor& a, double s) { return unary("mul_scalar", UnaryOp::Scale, a, s); }
Tensor pow(const Tensor& a, double e) { return unary("pow_scalar", UnaryOp::Pow, a, e); }

Tensor neg(const Tensor& x) { return unary("neg", UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary("exp", UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary("log", UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary("sqrt", UnaryOp::Sqrt, x); }
Tensor abs(const Tensor& x) { return unary("abs", UnaryOp::Abs, x); }
Tensor relu(const Tensor& x) { return unary("relu", UnaryOp::Relu, x); }
Tensor sigmoid(const Tensor& x) { return unary("sigmoid", UnaryOp::Sigmoid, x); }
Tensor tanh(const Tensor& x) { return unary("tanh", UnaryOp::Tanh, x); }

Tensor gt(const Tensor& a, const Tensor& b) { return compare("gt", CompareOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare("ge", CompareOp::Ge, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare("lt", CompareOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare("le", CompareOp::Le, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return compare("eq", CompareOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", CompareOp::Ne, a, b); }
Tensor gt(const Tensor& a, double s) { return gt(a, scalar(s, a.dtype(), a.device())); }
Tensor lt(const Tensor& a, double s) { return lt(a, scalar(s, a.dtype(), a.device())); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined("where", cond);
  STGS_CHECK(cond.dtype() == DType::U8, "where: the condition must be a U8 mask, got ", cond.str());
  detail::check_same("where", {&a, &b});
  STGS_CHECK(cond.device() == a.device(), "where: condition on ", cond.device().str(), ", values on ",
             a.device().str());
  const Shape out_shape = broadcast_shapes("where", broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  Tensor y = empty(out_shape, a.dtype(), a.device());
  const kernels::StridedLayout layout = detail::broadcast_layout(out_shape, {&cond, &a, &b});
  STGS_DISPATCH_FLOAT(a.dtype(), "where",
                      STGS_KERNEL(a.device(), where_fwd<T>, y.data<T>(), cond.data<uint8_t>(), a.data<T>(),
                                  b.data<T>(), layout));
  if (any_requires_grad({&a, &b})) {
    Tensor cs = cond.detach();
    const Shape sa = a.shape(), sb = b.shape();
    record("where", y, {&a, &b}, [cs, sa, sb](const Tensor& g, GradInputs& gi) {
      const Tensor zero = scalar(0, g.dtype(), g.device());
      if (gi.needs(0)) gi.set(0, sum_to(where(cs, g, zero), sa));
      if (gi.needs(1)) gi.set(1, sum_to(where(cs, zero, g), sb));
    });
  }
  return y;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  detail::check_float("masked_fill", x);
  return where(mask, scalar(value, x.dtype(), x.device()), x);
}

Tensor glu(const Tensor& x, int dim) {
  detail::check_float("glu", x);
  dim = wrap_dim("glu", dim, x.dim());
  STGS_CHECK(x.shape()[dim] % 2 == 0, "glu: dimension ", dim, " of ", x.str(), " must have an even size");
  Tensor xc = x.contiguous();
  Shape out_shape = x.shape();
  out_shape[dim] /= 2;
  Tensor y = empty(out_shape, x.dtype(), x.device());
  const detail::DimSplit s = detail::split_at(out_shape, dim);
  STGS_DISPATCH_FLOAT(x.dtype(), "glu",
                      STGS_KERNEL(x.device(), glu_fwd<T>, y.data<T>(), xc.data<T>(), s.outer, s.n, s.inner));
  if (any_requires_grad({&x})) {
    Tensor xs = xc.detach();
    record("glu", y, {&x}, [xs, s](const Tensor& g, GradInputs& gi) {
      Tensor gc = g.contiguous();
      Tensor dx = empty(xs.shape(), xs.dtype(), xs.device());
      STGS_DISPATCH_FLOAT(xs.dtype(), "glu backward",
                          STGS_KERNEL(xs.device(), glu_bwd<T>, dx.data<T>(), gc.data<T>(), xs.data<T>(), s.outer,
                                      s.n, s.inner));
      gi.set(0, dx);
    });
  }
  return y;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
Tensor operator+(double s, const Tensor& a) { return add(a, s); }
Tensor operator-(double s, const Tensor& a) { return add(neg(a), s); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }

}  // namespace stgs
