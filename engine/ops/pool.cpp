// Max, average and adaptive pooling (2-D on NCHW, adaptive 1-D on NCL), each with a dedicated backward
// kernel. The kernels see the input as (N * C, H, W) planes; 1-D pooling runs them with H = 1. CPU and CUDA
// kernels of kernels/pool.h, dispatched by STGS_KERNEL.
#include "kernels/pool.h"

#include <string>

#include "engine/ops.h"
#include "engine/ops/op_utils.h"

namespace stgs {
namespace {

std::string pair_str(Pair p) { return detail::concat("(", p[0], ", ", p[1], ")"); }

// Checks dtype, device, rank and non-empty non-batch dimensions of a pooling input.
void check_pool_input(const char* name, const Tensor& x, int rank) {
  detail::check_float(name, x);
  STGS_CHECK(x.dim() == rank, name, ": expected x of shape ", rank == 4 ? "(N, C, H, W)" : "(N, C, L)", ", got ",
             x.str());
  for (int d = 1; d < rank; ++d)
    STGS_CHECK(x.size(d) > 0, name, ": every dimension but the batch must be non-empty, got ", x.str());
}

// What a backward closure needs: x's shape, dtype and device, and the (planes, H, W) -> (planes, Ho, Wo)
// geometry.
struct PoolSaved {
  Shape x_shape;
  DType dtype;
  Device device;
  int64_t planes, H, W, Ho, Wo;
};

Tensor window_pool(const char* name, const Tensor& x, Pair kernel, Pair stride, Pair padding, bool is_max,
                   bool count_include_pad) {
  check_pool_input(name, x, 4);
  for (int d = 0; d < 2; ++d) {
    STGS_CHECK(kernel[d] >= 1, name, ": kernel must be at least 1, got ", pair_str(kernel));
    STGS_CHECK(stride[d] >= 1, name, ": stride must be at least 1, got ", pair_str(stride));
    STGS_CHECK(padding[d] >= 0 && padding[d] <= kernel[d] / 2, name,  // (2 * padding could overflow)
               ": padding must be in [0, kernel / 2], got padding ", pair_str(padding), " for kernel ",
               pair_str(kernel));
  }
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  STGS_CHECK(H + 2 * padding[0] >= kernel[0] && W + 2 * padding[1] >= kernel[1], name, ": kernel ",
             pair_str(kernel), " with padding ", pair_str(padding), " is larger than the padded input ", x.str(),
             " (output size would be 0)");
  const int64_t Ho = (H + 2 * padding[0] - kernel[0]) / stride[0] + 1;
  const int64_t Wo = (W + 2 * padding[1] - kernel[1]) / stride[1] + 1;
  const kernels::PoolWindow win{kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
  const PoolSaved s{x.shape(), x.dtype(), x.device(), N * C, H, W, Ho, Wo};

  const Tensor xc = x.contiguous();
  Tensor y = empty(Shape{N, C, Ho, Wo}, x.dtype(), x.device());
  // The argmax is only kept for a backward; inference skips writing it (8 bytes per output).
  Tensor argmax = is_max && any_requires_grad({&x}) ? empty(y.shape(), DType::I64, x.device()) : Tensor();
  if (y.numel() > 0) {
    if (is_max) {
      STGS_DISPATCH_FLOAT(x.dtype(), name,
                          STGS_KERNEL(x.device(), max_pool2d_fwd<T>, y.data<T>(),
                                      argmax.defined() ? argmax.data<int64_t>() : nullptr,
                                      xc.data<T>(), s.planes, H, W, Ho, Wo, win));
    } else {
      STGS_DISPATCH_FLOAT(x.dtype(), name,
                          STGS_KERNEL(x.device(), avg_pool2d_fwd<T>, y.data<T>(), xc.data<T>(), s.planes, H, W, Ho,
                                      Wo, win, count_include_pad));
    }
  }
  if (any_requires_grad({&x})) {
    record(name, y, {&x}, [name, s, win, argmax, count_include_pad](const Tensor& g, GradInputs& gi) {
      const Tensor gc = g.contiguous();
      Tensor dx = empty(s.x_shape, s.dtype, s.device);
      if (dx.numel() > 0) {
        if (argmax.defined()) {
          STGS_DISPATCH_FLOAT(s.dtype, name,
                              STGS_KERNEL(s.device, max_pool2d_bwd<T>, dx.data<T>(), gc.data<T>(),
                                          argmax.data<int64_t>(), s.planes, s.H, s.W, s.Ho, s.Wo, win));
        } else {
          STGS_DISPATCH_FLOAT(s.dtype, name,
                              STGS_KERNEL(s.device, avg_pool2d_bwd<T>, dx.data<T>(), gc.data<T>(), s.planes, s.H,
                                          s.W, s.Ho, s.Wo, win, count_include_pad));
        }
      }
      gi.set(0, dx);
    });
  }
  return y;
}

// Adaptive pooling of x: (N, C, H, W) (rank 4) or (N, C, L) (rank 3, pooled as H = 1) to (Ho, Wo).
Tensor adaptive_pool(const char* name, const Tensor& x, int rank, int64_t Ho, int64_t Wo, bool is_max) {
  check_pool_input(name, x, rank);
  if (rank == 4) {
    STGS_CHECK(Ho >= 1 && Wo >= 1, name, ": output size must be at least 1, got ", pair_str({Ho, Wo}));
  } else {
    STGS_CHECK(Wo >= 1, name, ": output size must be at least 1, got ", Wo);
  }
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t H = rank == 4 ? x.size(2) : 1, W = x.size(-1);
  const PoolSaved s{x.shape(), x.dtype(), x.device(), N * C, H, W, Ho, Wo};
  const Shape out = rank == 4 ? Shape{N, C, Ho, Wo} : Shape{N, C, Wo};

  const Tensor xc = x.contiguous();
  Tensor y = empty(out, x.dtype(), x.device());
  Tensor argmax = is_max && any_requires_grad({&x}) ? empty(out, DType::I64, x.device()) : Tensor();
  if (y.numel() > 0) {
    if (is_max) {
      STGS_DISPATCH_FLOAT(x.dtype(), name,
                          STGS_KERNEL(x.device(), adaptive_max_pool2d_fwd<T>, y.data<T>(),
                                      argmax.defined() ? argmax.data<int64_t>() : nullptr,
                                      xc.data<T>(), s.planes, H, W, Ho, Wo));
    } else {
      STGS_DISPATCH_FLOAT(x.dtype(), name,
                          STGS_KERNEL(x.device(), adaptive_avg_pool2d_fwd<T>, y.data<T>(), xc.data<T>(), s.planes,
                                      H, W, Ho, Wo));
    }
  }
  if (any_requires_grad({&x})) {
    record(name, y, {&x}, [name, s, argmax](const Tensor& g, GradInputs& gi) {
      const Tensor gc = g.contiguous();
      Tensor dx = empty(s.x_shape, s.dtype, s.device);
      if (dx.numel() > 0) {
        if (argmax.defined()) {
          STGS_DISPATCH_FLOAT(s.dtype, name,
                              STGS_KERNEL(s.device, adaptive_max_pool2d_bwd<T>, dx.data<T>(), gc.data<T>(),
                                          argmax.data<int64_t>(), s.planes, s.H, s.W, s.Ho, s.Wo));
        } else {
          STGS_DISPATCH_FLOAT(s.dtype, name,
                              STGS_KERNEL(s.device, adaptive_avg_pool2d_bwd<T>, dx.data<T>(), gc.data<T>(), s.planes,
                                          s.H, s.W, s.Ho, s.Wo));
        }
      }
      gi.set(0, dx);
    });
  }
  return y;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  return window_pool("max_pool2d", x, kernel, stride, padding, true, false);
}

Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, bool count_include_pad) {
  return window_pool("avg_pool2d", x, kernel, stride, padding, false, count_include_pad);
}

Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size) {
  return adaptive_pool("adaptive_avg_pool2d", x, 4, output_size[0], output_size[1], false);
}

Tensor adaptive_max_pool2d(const Tensor& x, Pair output_size) {
  return adaptive_pool("adaptive_max_pool2d", x, 4, output_size[0], output_size[1], true);
}

Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size) {
  return adaptive_pool("adaptive_avg_pool1d", x, 3, 1, output_size, false);
}

Tensor adaptive_max_pool1d(const Tensor& x, int64_t output_size) {
  return adaptive_pool("adaptive_max_pool1d", x, 3, 1, output_size, true);
}

}  // namespace stgs
