// Reductions: sum, mean, max, argmax over dimensions; sum_to for broadcasting backward passes.
#include "kernels/reduce.h"

#include <algorithm>

#include "engine/ops.h"
#include "engine/ops/op_utils.h"

namespace stgs {
namespace {

// Sorted, unique, wrapped dimensions.
std::vector<int> normalize_dims(const char* op, const std::vector<int>& dims, int ndim) {
  std::vector<int> out;
  for (int d : dims) out.push_back(wrap_dim(op, d, ndim));
  std::sort(out.begin(), out.end());
  STGS_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, ": a dimension is listed twice");
  return out;
}

Shape reduced_shape(const Shape& s, const std::vector<int>& dims, bool keepdim) {
  Shape out;
  for (int i = 0; i < s.size(); ++i) {
    const bool reduced = std::find(dims.begin(), dims.end(), i) != dims.end();
    if (!reduced) out.push_back(s[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// Sum of a contiguous tensor over one dimension, keeping it (size 1). No autograd.
Tensor sum_one_dim(const Tensor& xc, int dim) {
  Shape out_shape = xc.shape();
  out_shape[dim] = 1;
  Tensor y = empty(out_shape, xc.dtype(), xc.device());
  const detail::DimSplit s = detail::split_at(xc.shape(), dim);
  STGS_DISPATCH_FLOAT(xc.dtype(), "sum",
                      STGS_KERNEL(xc.device(), sum_dim<T>, y.data<T>(), xc.data<T>(), s.outer, s.n, s.inner));
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  detail::check_float("sum", x);
  const std::vector<int> dims = normalize_dims("sum", dims_in, x.dim());
  Tensor y;
  {
    NoGradGuard no_grad;
    y = x.contiguous();
    if (dims.size() == size_t(x.dim()) && x.dim() > 0) {
      y = sum_one_dim(y.reshape(Shape{y.numel()}), 0);  // everything at once: one long row
    } else {
      for (auto it = dims.rbegin(); it != dims.rend(); ++it) y = sum_one_dim(y, *it);
    }
    y = y.reshape(reduced_shape(x.shape(), dims, keepdim));
  }
  if (any_requires_grad({&x})) {
    const Shape source = x.shape(), kept = reduced_shape(x.shape(), dims, true);
    Tensor out = y.detach();
    record("sum", out, {&x}, [source, kept](const Tensor& g, GradInputs& gi) {
      gi.set(0, g.reshape(kept).expand(source));
    });
    return out;
  }
  return y;
}

Tensor sum(const Tensor& x) {
  std::vector<int> all(size_t(x.dim()));
  for (int i = 0; i < x.dim(); ++i) all[size_t(i)] = i;
  return sum(x, all, false);
}

Tensor mean(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  detail::check_float("mean", x);
  const std::vector<int> dims = normalize_dims("mean", dims_in, x.dim());
  int64_t count = 1;
  for (int d : dims) count *= x.shape()[d];
  STGS_CHECK(count > 0, "mean over an empty dimension of ", x.str());
  return mul(sum(x, dims, keepdim), 1.0 / double(count));
}

Tensor mean(const Tensor& x) {
  std::vector<int> all(size_t(x.dim()));
  for (int i = 0; i < x.dim(); ++i) all[size_t(i)] = i;
  return mean(x, all, false);
}

namespace {

// Values and I64 indices of the maximum over one dimension, keepdim shape. No autograd.
std::pair<Tensor, Tensor> max_with_index(const char* op, const Tensor& x, int dim) {
  detail::check_float(op, x);
  STGS_CHECK(x.dim() > 0 && x.shape()[dim] > 0, op, ": cannot reduce an empty dimension of ", x.str());
  Tensor xc = x.contiguous();
  Shape kept = x.shape();
  kept[dim] = 1;
  Tensor values = empty(kept, x.dtype(), x.device());
  Tensor index = empty(kept, DType::I64, x.device());
  const detail::DimSplit s = detail::split_at(x.shape(), dim);
  STGS_DISPATCH_FLOAT(x.dtype(), op,
                      STGS_KERNEL(x.device(), max_dim<T>, values.data<T>(), index.data<int64_t>(), xc.data<T>(),
                                  s.outer, s.n, s.inner));
  return {values, index};
}

}  // namespace

Tensor max(const Tensor& x, int dim, bool keepdim) {
  detail::check_float("max", x);
  dim = wrap_dim("max", dim, x.dim());
  auto [values, index] = max_with_index("max", x, dim);
  if (any_requires_grad({&x})) {
    const Shape source = x.shape();
    const detail::DimSplit s = detail::split_at(source, dim);
    record("max", values, {&x}, [source, s, index](const Tensor& g, GradInputs& gi) {
      Tensor gc = g.contiguous();
      Tensor dx = zeros(source, g.dtype(), g.device());
      STGS_DISPATCH_FLOAT(g.dtype(), "max backward",
                          STGS_KERNEL(g.device(), scatter_add_dim<T>, dx.data<T>(), gc.data<T>(),
                                      index.data<int64_t>(), s.outer, s.n, 1, s.inner));
      gi.set(0, dx);
    });
  }
  return keepdim ? values : values.squeeze(dim);
}

Tensor max(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  detail::check_float("max", x);
  const std::vector<int> dims = normalize_dims("max", dims_in, x.dim());
  STGS_CHECK(!dims.empty(), "max: no dimensions given");
  if (dims.size() == 1) return max(x, dims[0], keepdim);
  // Move the reduced dims to the end, merge them, and reduce once: one maximum, one gradient target.
  std::vector<int> order;
  for (int i = 0; i < x.dim(); ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) order.push_back(i);
  for (int d : dims) order.push_back(d);
  Shape merged;
  for (size_t i = 0; i + dims.size() < order.size(); ++i) merged.push_back(x.shape()[order[i]]);
  merged.push_back(-1);
  Tensor y = max(x.permute(order).reshape(merged), -1, false);
  return y.reshape(reduced_shape(x.shape(), dims, keepdim));
}

Tensor argmax(const Tensor& x, int dim, bool keepdim) {
  dim = wrap_dim("argmax", dim, x.dim());
  NoGradGuard no_grad;
  Tensor index = max_with_index("argmax", x, dim).second;
  return keepdim ? index : index.squeeze(dim);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  STGS_CHECK(x.dim() >= shape.size(), "sum_to: ", x.str(), " cannot be summed to ", shape.str());
  const int lead = x.dim() - shape.size();
  std::vector<int> dims;
  for (int i = 0; i < x.dim(); ++i) {
    if (i < lead) {
      dims.push_back(i);
    } else if (shape[i - lead] == 1 && x.shape()[i] != 1) {
      dims.push_back(i);
    } else {
      STGS_CHECK(shape[i - lead] == x.shape()[i], "sum_to: ", x.str(), " cannot be summed to ", shape.str());
    }
  }
  return sum(x, dims, true).reshape(shape);
}

}  // namespace stgs
