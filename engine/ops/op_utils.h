// Helpers shared by the op implementations (not a public header).
// defines: STGS_DISPATCH_FLOAT, STGS_KERNEL, check_float, check_same, broadcast_layout, DimSplit,
//          split_at
#pragma once

#include <initializer_list>

#include "engine/autograd.h"
#include "engine/cuda/runtime.h"
#include "engine/tensor.h"
#include "kernels/strided.h"

namespace stgs::detail {

static_assert(kMaxDims == kernels::kMaxDims, "engine and kernels must agree on the maximum rank");

// Runs the statement with T bound to the C++ type of a floating dtype.
#define STGS_DISPATCH_FLOAT(dtype, op_name, ...)                                                         \
  do {                                                                                                   \
    if ((dtype) == ::stgs::DType::F32) {                                                                 \
      using T = float;                                                                                   \
      __VA_ARGS__;                                                                                       \
    } else if ((dtype) == ::stgs::DType::F64) {                                                          \
      using T = double;                                                                                  \
      __VA_ARGS__;                                                                                       \
    } else {                                                                                             \
      STGS_FAIL(op_name, ": expected an F32 or F64 tensor, got ", ::stgs::dtype_name(dtype));           \
    }                                                                                                    \
  } while (0)

// STGS_KERNEL(device, fn, args...) runs kernels::cpu::fn(args...) for a CPU device and
// kernels::cuda::fn(args..., stream) on the device's stream for a GPU; fn may carry template arguments.
#if defined(STGS_CUDA)
#define STGS_KERNEL(device, fn, ...)                                                               \
  do {                                                                                             \
    const ::stgs::Device stgs_device_ = (device);                                                  \
    if (stgs_device_.is_cuda()) {                                                                  \
      ::stgs::kernels::cuda::fn(__VA_ARGS__, ::stgs::cuda_rt::stream(stgs_device_.index));         \
    } else {                                                                                       \
      ::stgs::kernels::cpu::fn(__VA_ARGS__);                                                       \
    }                                                                                              \
  } while (0)
#else
#define STGS_KERNEL(device, fn, ...)                                                               \
  do {                                                                                             \
    const ::stgs::Device stgs_device_ = (device);                                                  \
    STGS_CHECK(stgs_device_.is_cpu(), #fn " on ", stgs_device_.str(), ": this binary was built without CUDA"); \
    ::stgs::kernels::cpu::fn(__VA_ARGS__);                                                         \
  } while (0)
#endif

inline void check_defined(const char* op, const Tensor& t) {
  STGS_CHECK(t.defined(), op, ": got an undefined tensor");
}

inline void check_float(const char* op, const Tensor& t) {
  check_defined(op, t);
  STGS_CHECK(is_floating(t.dtype()), op, ": expected an F32 or F64 tensor, got ", t.str());
}

// Same dtype and device for all floating inputs of an op.
inline void check_same(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor& first = **ts.begin();
  check_float(op, first);
  for (const Tensor* t : ts) {
    check_float(op, *t);
    STGS_CHECK(t->dtype() == first.dtype(), op, ": dtype mismatch, ", first.str(), " vs ", t->str());
    STGS_CHECK(t->device() == first.device(), op, ": device mismatch, ", first.str(), " vs ", t->str());
  }
}

// Layout for an output of shape `out` reading up to three operands broadcast to it (strides 0 there).
inline kernels::StridedLayout broadcast_layout(const Shape& out, std::initializer_list<const Tensor*> operands) {
  kernels::StridedLayout l;
  l.ndim = out.size();
  for (int i = 0; i < out.size(); ++i) l.sizes[i] = out[i];
  int k = 0;
  for (const Tensor* t : operands) {
    const int shift = out.size() - t->dim();
    for (int i = 0; i < out.size(); ++i) {
      const int j = i - shift;
      l.strides[k][i] = (j < 0 || t->shape()[j] == 1) ? 0 : t->strides()[j];
    }
    ++k;
  }
  return l;
}

// A shape viewed as (outer, n, inner) around one dimension.
struct DimSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
inline DimSplit split_at(const Shape& s, int dim) {
  DimSplit d;
  for (int i = 0; i < dim; ++i) d.outer *= s[i];
  d.n = s[dim];
  for (int i = dim + 1; i < s.size(); ++i) d.inner *= s[i];
  return d;
}

}  // namespace stgs::detail
