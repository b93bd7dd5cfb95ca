// Conv2d, Conv1d and BatchNorm modules.
#include "engine/nn/conv_layers.h"

#include <cmath>

namespace stgs {
namespace {

// PyTorch's default conv init: kaiming_uniform_(a = sqrt(5)) gives the bound 1/sqrt(fan_in), and the
// bias uses the same bound.
Tensor uniform_init(const Shape& shape, int64_t fan_in, Generator* gen) {
  const double bound = 1.0 / std::sqrt(double(fan_in));
  return rand(shape, DType::F32, Device::cpu(), gen, -bound, bound);
}

}  // namespace

// ---- Conv2d -------------------------------------------------------------------------------------------

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel, const Conv2dOptions& options, Generator* gen)
    : Module("Conv2d"), options_(options) {
  STGS_CHECK(in_channels > 0 && out_channels > 0 && kernel[0] > 0 && kernel[1] > 0,
             "Conv2d: channels and kernel must be positive, got in=", in_channels, " out=", out_channels,
             " kernel=", kernel[0], "x", kernel[1]);
  STGS_CHECK(options.groups >= 1 && in_channels % options.groups == 0 && out_channels % options.groups == 0,
             "Conv2d: groups ", options.groups, " must divide in=", in_channels, " and out=", out_channels);
  const int64_t fan_in = in_channels / options.groups * kernel[0] * kernel[1];
  weight = register_parameter(
      "weight", uniform_init(Shape{out_channels, in_channels / options.groups, kernel[0], kernel[1]}, fan_in, gen));
  if (options.bias) bias = register_parameter("bias", uniform_init(Shape{out_channels}, fan_in, gen));
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, options_.stride, options_.padding, options_.dilation, options_.groups);
}

// ---- Conv1d -------------------------------------------------------------------------------------------

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding, bool with_bias,
               Generator* gen)
    : Module("Conv1d"), stride_(stride), padding_(padding) {
  STGS_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0, "Conv1d: channels and kernel must be positive, got in=",
             in_channels, " out=", out_channels, " kernel=", kernel);
  const int64_t fan_in = in_channels * kernel;
  weight = register_parameter("weight", uniform_init(Shape{out_channels, in_channels, kernel}, fan_in, gen));
  if (with_bias) bias = register_parameter("bias", uniform_init(Shape{out_channels}, fan_in, gen));
}

Tensor Conv1d::forward(const Tensor& x) { return conv1d(x, weight, bias, stride_, padding_); }

// ---- BatchNorm ----------------------------------------------------------------------------------------

BatchNorm::BatchNorm(int64_t num_features, double eps, double momentum, bool affine)
    : Module("BatchNorm"), num_features_(num_features), eps_(eps), momentum_(momentum) {
  STGS_CHECK(num_features > 0, "BatchNorm: num_features must be positive, got ", num_features);
  STGS_CHECK(eps > 0, "BatchNorm: eps must be positive, got ", eps);
  STGS_CHECK(momentum >= 0 && momentum <= 1, "BatchNorm: momentum must be in [0, 1], got ", momentum);
  if (affine) {
    weight = register_parameter("weight", ones(Shape{num_features}));
    bias = register_parameter("bias", zeros(Shape{num_features}));
  }
  running_mean = register_buffer("running_mean", zeros(Shape{num_features}));
  running_var = register_buffer("running_var", ones(Shape{num_features}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros(Shape{}, DType::I64));
}

Tensor BatchNorm::forward(const Tensor& x) { return forward(x, 1); }

Tensor BatchNorm::forward(const Tensor& x, int64_t groups) {
  STGS_CHECK(x.defined() && x.dim() >= 2 && x.size(1) == num_features_, "BatchNorm(", num_features_,
             "): input must be (N, ", num_features_, ", ...), got ", x.defined() ? x.str() : "undefined");
  Tensor y = batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum_, eps_, groups);
  if (is_training()) num_batches_tracked.fill_(double(batches_tracked_ += groups));
  return y;
}

void BatchNorm::state_loaded() { batches_tracked_ = int64_t(num_batches_tracked.item()); }

}  // namespace stgs
