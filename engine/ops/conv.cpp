// 2-D and 1-D convolution (NCHW / NCL), grouped, strided, padded, dilated, with dedicated backward kernels.
// conv1d runs as conv2d on a height-1 view. CPU: im2col + BLAS; CUDA: cuDNN (kernels/cuda/conv.cu), with
// the device context's cuDNN handle and the TF32 / deterministic switches of engine/cuda/runtime.h.
#include "kernels/conv.h"

#include "engine/ops.h"
#include "engine/ops/op_utils.h"

namespace stgs {
namespace {

// STGS_CONV_KERNEL(device, fn, args...): like STGS_KERNEL, but the cuDNN twin also takes the math switches
// and the device's cuDNN handle before the stream.
#if defined(STGS_CUDA)
#define STGS_CONV_KERNEL(device, fn, ...)                                                                   \
  do {                                                                                                      \
    const ::stgs::Device stgs_conv_device_ = (device);                                                      \
    if (stgs_conv_device_.is_cuda()) {                                                                      \
      const int stgs_index_ = stgs_conv_device_.index;                                                      \
      ::stgs::kernels::cuda::fn(__VA_ARGS__, ::stgs::cuda_rt::conv_math(),                                  \
                                ::stgs::cuda_rt::cudnn(stgs_index_), ::stgs::cuda_rt::stream(stgs_index_)); \
    } else {                                                                                                \
      ::stgs::kernels::cpu::fn(__VA_ARGS__);                                                                \
    }                                                                                                       \
  } while (0)
#else
#define STGS_CONV_KERNEL(device, fn, ...) STGS_KERNEL(device, fn, __VA_ARGS__)
#endif

// Validates a convolution with `ns` spatial dims (1 or 2) given in the last ns entries of the pairs, and
// returns the geometry of the equivalent conv2d (a 1-D problem gets height 1 and a 1-tall kernel).
kernels::ConvGeometry validate(const char* name, int ns, const Tensor& x, const Tensor& weight, const Tensor& bias,
                               Pair stride, Pair padding, Pair dilation, int64_t groups) {
  detail::check_float(name, x);
  detail::check_float(name, weight);
  if (bias.defined())
    detail::check_same(name, {&x, &weight, &bias});
  else
    detail::check_same(name, {&x, &weight});
  const char* x_layout = ns == 2 ? "(N, C_in, H, W)" : "(N, C_in, L)";
  const char* w_layout = ns == 2 ? "(C_out, C_in / groups, kH, kW)" : "(C_out, C_in / groups, k)";
  STGS_CHECK(x.dim() == 2 + ns, name, ": input must be ", x_layout, ", got ", x.str());
  STGS_CHECK(weight.dim() == 2 + ns, name, ": weight must be ", w_layout, ", got ", weight.str());
  STGS_CHECK(groups >= 1, name, ": groups must be >= 1, got ", groups);
  for (int d = 2 - ns; d < 2; ++d) {
    STGS_CHECK(stride[d] >= 1, name, ": stride must be >= 1, got ", stride[d]);
    STGS_CHECK(dilation[d] >= 1, name, ": dilation must be >= 1, got ", dilation[d]);
    STGS_CHECK(padding[d] >= 0, name, ": padding must be >= 0, got ", padding[d]);
    // Far beyond any image, and small enough that conv_out_size's 2 * pad and dil * (k - 1) cannot overflow.
    constexpr int64_t kGeometryLimit = int64_t(1) << 31;
    STGS_CHECK(stride[d] <= kGeometryLimit && dilation[d] <= kGeometryLimit && padding[d] <= kGeometryLimit, name,
               ": stride ", stride[d], ", dilation ", dilation[d], " or padding ", padding[d], " is above 2^31");
  }
  const int64_t C_in = x.size(1), C_out = weight.size(0);
  STGS_CHECK(C_in % groups == 0, name, ": input channels ", C_in, " of ", x.str(), " are not divisible by groups ",
             groups);
  STGS_CHECK(C_out % groups == 0, name, ": output channels ", C_out, " of weight ", weight.str(),
             " are not divisible by groups ", groups);
  STGS_CHECK(weight.size(1) == C_in / groups, name, ": weight ", weight.str(), " must have C_in / groups = ", C_in,
             " / ", groups, " = ", C_in / groups, " input channels for input ", x.str());
  if (bias.defined())
    STGS_CHECK(bias.dim() == 1 && bias.size(0) == C_out, name, ": bias must be (", C_out, ") for weight ",
               weight.str(), ", got ", bias.str());

  kernels::ConvGeometry g;
  g.N = x.size(0);
  g.C_in = C_in;
  g.C_out = C_out;
  g.groups = groups;
  g.H = ns == 2 ? x.size(2) : 1;
  g.W = x.size(-1);
  g.kH = ns == 2 ? weight.size(2) : 1;
  g.kW = weight.size(-1);
  STGS_CHECK(g.kH >= 1 && g.kW >= 1, name, ": empty kernel in weight ", weight.str());
  g.stride_h = ns == 2 ? stride[0] : 1;
  g.stride_w = stride[1];
  g.pad_h = ns == 2 ? padding[0] : 0;
  g.pad_w = padding[1];
  g.dil_h = ns == 2 ? dilation[0] : 1;
  g.dil_w = dilation[1];
  g.H_out = kernels::conv_out_size(g.H, g.kH, g.stride_h, g.pad_h, g.dil_h);
  g.W_out = kernels::conv_out_size(g.W, g.kW, g.stride_w, g.pad_w, g.dil_w);
  STGS_CHECK(g.H_out >= 1 && g.W_out >= 1, name, ": output size would be non-positive for input ", x.str(),
             " and weight ", weight.str(), " (padding ", ns == 2 ? padding[0] : padding[1], ", dilation ",
             ns == 2 ? dilation[0] : dilation[1], "): the dilated kernel is larger than the padded input");
  return g;
}

// x: (N, C_in, H, W), weight: (C_out, C_in / groups, kH, kW), both already validated against g.
Tensor conv2d_impl(const char* name, const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const kernels::ConvGeometry& g) {
  Tensor xc = x.contiguous(), wc = weight.contiguous();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = empty(Shape{g.N, g.C_out, g.H_out, g.W_out}, x.dtype(), x.device());
  if (y.numel() > 0) {
    STGS_DISPATCH_FLOAT(x.dtype(), name,
                        STGS_CONV_KERNEL(x.device(), conv2d_fwd<T>, y.data<T>(), xc.data<T>(), wc.data<T>(),
                                         bc.defined() ? bc.data<T>() : nullptr, g));
  }
  if (any_requires_grad({&x, &weight, &bias})) {
    Tensor xs = xc.detach(), ws = wc.detach();
    const bool has_bias = bias.defined();
    record(name, y, {&x, &weight, &bias}, [name, xs, ws, has_bias, g](const Tensor& grad, GradInputs& gi) {
      Tensor gc = grad.contiguous();
      if (gi.needs(0)) {
        Tensor dx = gc.numel() > 0 ? empty(xs.shape(), xs.dtype(), xs.device()) : zeros(xs.shape(), xs.dtype(), xs.device());
        if (gc.numel() > 0 && dx.numel() > 0)
          STGS_DISPATCH_FLOAT(xs.dtype(), name,
                              STGS_CONV_KERNEL(xs.device(), conv2d_bwd_data<T>, dx.data<T>(), gc.data<T>(),
                                               ws.data<T>(), g));
        gi.set(0, dx);
      }
      if (gi.needs(1)) {
        Tensor dw = empty(ws.shape(), ws.dtype(), ws.device());
        if (dw.numel() > 0)
          STGS_DISPATCH_FLOAT(ws.dtype(), name,
                              STGS_CONV_KERNEL(ws.device(), conv2d_bwd_weight<T>, dw.data<T>(), gc.data<T>(),
                                               xs.data<T>(), g));
        gi.set(1, dw);
      }
      if (has_bias && gi.needs(2)) {
        Tensor db = zeros(Shape{g.C_out}, xs.dtype(), xs.device());
        STGS_DISPATCH_FLOAT(xs.dtype(), name,
                            STGS_KERNEL(xs.device(), conv2d_bwd_bias<T>, db.data<T>(), gc.data<T>(), g));
        gi.set(2, db);
      }
    });
  }
  return y;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding, Pair dilation,
              int64_t groups) {
  const kernels::ConvGeometry g = validate("conv2d", 2, x, weight, bias, stride, padding, dilation, groups);
  return conv2d_impl("conv2d", x, weight, bias, g);
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  const kernels::ConvGeometry g =
      validate("conv1d", 1, x, weight, bias, {1, stride}, {0, padding}, {1, dilation}, groups);
  // Height-1 views; their gradients flow back through unsqueeze/squeeze.
  return conv2d_impl("conv1d", x.unsqueeze(2), weight.unsqueeze(2), bias, g).squeeze(2);
}

}  // namespace stgs
