// Joining, splitting and indexing: concat, split, chunk, gather.
#include "engine/ops.h"
#include "engine/ops/op_utils.h"
#include "kernels/copy.h"
#include "kernels/reduce.h"

namespace stgs {
namespace {

// gather_dim returns the first bad index position, so it cannot go through STGS_KERNEL.
template <class T>
int64_t gather_kernel(Device device, T* out, const T* x, const int64_t* index, int64_t outer, int64_t n, int64_t k,
                      int64_t inner) {
#if defined(STGS_CUDA)
  if (device.is_cuda())
    return kernels::cuda::gather_dim<T>(out, x, index, outer, n, k, inner, cuda_rt::stream(device.index));
#endif
  STGS_CHECK(device.is_cpu(), "gather on ", device.str(), ": this binary was built without CUDA");
  return kernels::cpu::gather_dim<T>(out, x, index, outer, n, k, inner);
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  STGS_CHECK(!xs.empty(), "concat: no tensors given");
  const Tensor& first = xs[0];
  detail::check_defined("concat", first);
  dim = wrap_dim("concat", dim, first.dim());
  Shape out_shape = first.shape();
  out_shape[dim] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    detail::check_defined("concat", t);
    STGS_CHECK(t.dtype() == first.dtype() && t.device() == first.device(), "concat: tensor ", i, " is ", t.str(),
               ", tensor 0 is ", first.str());
    STGS_CHECK(t.dim() == first.dim(), "concat: tensor ", i, " has shape ", t.shape().str(), ", tensor 0 has ",
               first.shape().str());
    for (int d = 0; d < t.dim(); ++d)
      STGS_CHECK(d == dim || t.shape()[d] == first.shape()[d], "concat along ", dim, ": tensor ", i, " has shape ",
                 t.shape().str(), ", tensor 0 has ", first.shape().str());
    out_shape[dim] += t.shape()[dim];
  }
  Tensor y = empty(out_shape, first.dtype(), first.device());
  int64_t at = 0;
  std::vector<int64_t> sizes;
  {
    NoGradGuard no_grad;
    for (const Tensor& t : xs) {
      const int64_t len = t.shape()[dim];
      Tensor dst = y.narrow(dim, at, len);
      kernels::StridedLayout l;
      l.ndim = t.dim();
      for (int d = 0; d < t.dim(); ++d) {
        l.sizes[d] = t.shape()[d];
        l.strides[0][d] = dst.strides()[d];
        l.strides[1][d] = t.strides()[d];
      }
      STGS_KERNEL(t.device(), strided_copy, dst.raw_data(), t.raw_data(), l, dtype_size(t.dtype()));
      sizes.push_back(len);
      at += len;
    }
  }
  if (any_requires_grad(xs)) {
    record("concat", y, xs, [sizes, dim](const Tensor& g, GradInputs& gi) {
      int64_t start = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (gi.needs(i)) gi.set(i, g.narrow(dim, start, sizes[i]));
        start += sizes[i];
      }
    });
  }
  return y;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  detail::check_defined("split", x);
  dim = wrap_dim("split", dim, x.dim());
  int64_t total = 0;
  for (int64_t s : sizes) {
    STGS_CHECK(s >= 0, "split: negative size ", s);
    total += s;
  }
  STGS_CHECK(total == x.shape()[dim], "split: sizes add up to ", total, " but dimension ", dim, " of ", x.str(),
             " has ", x.shape()[dim]);
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, at, s));
    at += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int chunks, int dim) {
  detail::check_defined("chunk", x);
  STGS_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks);
  dim = wrap_dim("chunk", dim, x.dim());
  const int64_t n = x.shape()[dim];
  const int64_t each = (n + chunks - 1) / chunks;
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += each) sizes.push_back(at + each <= n ? each : n - at);
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

Tensor gather(const Tensor& x, int dim, const Tensor& index) {
  detail::check_float("gather", x);
  detail::check_defined("gather", index);
  dim = wrap_dim("gather", dim, x.dim());
  STGS_CHECK(index.dtype() == DType::I64, "gather: index must be I64, got ", index.str());
  STGS_CHECK(index.dim() == x.dim(), "gather: index ", index.str(), " must have the rank of input ", x.str());
  for (int d = 0; d < x.dim(); ++d)
    STGS_CHECK(d == dim || index.shape()[d] == x.shape()[d], "gather along ", dim, ": index ",
               index.shape().str(), " must match input ", x.shape().str(), " except in that dimension");
  Tensor xc = x.contiguous(), ic = index.contiguous();
  Tensor y = empty(index.shape(), x.dtype(), x.device());
  const detail::DimSplit s = detail::split_at(x.shape(), dim);
  const int64_t k = index.shape()[dim];
  int64_t bad = -1;
  STGS_DISPATCH_FLOAT(x.dtype(), "gather",
                      bad = gather_kernel<T>(x.device(), y.data<T>(), xc.data<T>(), ic.data<int64_t>(), s.outer, s.n,
                                             k, s.inner));
  STGS_CHECK(bad < 0, "gather: index value ", (bad < 0 ? 0 : ic.to(Device::cpu()).data<int64_t>()[bad]),
             " at flat position ", bad, " is outside [0, ", s.n, ") for dimension ", dim, " of ", x.str());
  if (any_requires_grad({&x})) {
    const Shape source = x.shape();
    record("gather", y, {&x}, [source, ic, s, k](const Tensor& g, GradInputs& gi) {
      Tensor gc = g.contiguous();
      Tensor dx = zeros(source, g.dtype(), g.device());
      STGS_DISPATCH_FLOAT(g.dtype(), "gather backward",
                          STGS_KERNEL(g.device(), scatter_add_dim<T>, dx.data<T>(), gc.data<T>(),
                                      ic.data<int64_t>(), s.outer, s.n, k, s.inner));
      gi.set(0, dx);
    });
  }
  return y;
}

}  // namespace stgs
