// ResNet-34 and its BasicBlock.
#include "engine/nn/resnet.h"

#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace stgs {
namespace {

// torchvision's conv init: kaiming_normal_(mode = "fan_out", nonlinearity = "relu"): std = sqrt(2 / fan_out)
// with fan_out = C_out * kH * kW.
std::shared_ptr<Conv2d> make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                                  Generator* gen) {
  Conv2dOptions options;
  options.stride = {stride, stride};
  options.padding = {padding, padding};
  options.bias = false;
  auto conv = std::make_shared<Conv2d>(in, out, Pair{kernel, kernel}, options, gen);
  const double std_dev = std::sqrt(2.0 / double(out * kernel * kernel));
  NoGradGuard no_grad;
  conv->weight.copy_(randn(conv->weight.shape(), DType::F32, Device::cpu(), gen, 0.0, std_dev));
  return conv;
}

}  // namespace

// ---- presets ------------------------------------------------------------------------------------------

ResNetConfig ResNetConfig::image(int64_t width, int64_t num_classes) {
  ResNetConfig c;
  c.in_channels = 3;
  c.width = width;
  c.stem_kernel = 7, c.stem_stride = 2, c.stem_padding = 3;
  c.num_classes = num_classes;
  c.head_name = "fc";
  return c;
}

ResNetConfig ResNetConfig::audio(int64_t width, int64_t num_classes) {
  ResNetConfig c;
  c.in_channels = 1;
  c.width = width;
  c.stem_kernel = 7, c.stem_stride = 2, c.stem_padding = 2;  // AutoSpeech pads the stem by 2, not 3
  c.num_classes = num_classes;
  c.head_name = "classifier";
  return c;
}

ResNetConfig ResNetConfig::preset(const std::string& name, int64_t width, int64_t num_classes) {
  if (name == "resnet34-image") return image(width, num_classes);
  if (name == "resnet34-audio") return audio(width, num_classes);
  STGS_FAIL("unknown model '", name, "': expected resnet34-image or resnet34-audio");
}

// ---- BasicBlock ---------------------------------------------------------------------------------------

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride, Generator* gen)
    : Module("BasicBlock") {
  conv1_ = register_module("conv1", make_conv(in_channels, out_channels, 3, stride, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm>(out_channels));
  conv2_ = register_module("conv2", make_conv(out_channels, out_channels, 3, 1, 1, gen));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm>(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    downsample_ = register_module("downsample", std::make_shared<Sequential>());
    downsample_->add(make_conv(in_channels, out_channels, 1, stride, 0, gen));
    downsample_->add(std::make_shared<BatchNorm>(out_channels));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = relu((*bn1_)((*conv1_)(x)));
  out = (*bn2_)((*conv2_)(out));
  const Tensor shortcut = downsample_ ? (*downsample_)(x) : x;
  return relu(out + shortcut);
}

// ---- ResNet34 -----------------------------------------------------------------------------------------

ResNet34::ResNet34(const ResNetConfig& config, Generator* gen) : Module("ResNet34"), config_(config) {
  STGS_CHECK(config.in_channels > 0, "ResNet34: in_channels must be positive, got ", config.in_channels);
  STGS_CHECK(config.width > 0, "ResNet34: width must be positive, got ", config.width);
  STGS_CHECK(config.num_classes >= 0, "ResNet34: num_classes must be >= 0, got ", config.num_classes);
  STGS_CHECK(config.stem_kernel > 0 && config.stem_stride > 0 && config.stem_padding >= 0,
             "ResNet34: bad stem kernel ", config.stem_kernel, " stride ", config.stem_stride, " padding ",
             config.stem_padding);
  const int64_t w = config.width;
  conv1_ = register_module("conv1", make_conv(config.in_channels, w, config.stem_kernel, config.stem_stride,
                                              config.stem_padding, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm>(w));
  constexpr std::array<int, 4> kBlocks{3, 4, 6, 3};
  int64_t in = w;
  for (int l = 0; l < 4; ++l) {
    const int64_t out = w << l;
    auto layer = std::make_shared<Sequential>();
    for (int b = 0; b < kBlocks[l]; ++b) {
      layer->add(std::make_shared<BasicBlock>(in, out, b == 0 && l > 0 ? 2 : 1, gen));
      in = out;
    }
    layers_[l] = register_module("layer" + std::to_string(l + 1), layer);
  }
  if (config.num_classes > 0)
    head_ = register_module(config.head_name, std::make_shared<Linear>(8 * w, config.num_classes, true, gen));
}

ResNetFeatures ResNet34::features(const Tensor& x) {
  STGS_CHECK(x.defined() && x.dim() == 4 && x.size(1) == config_.in_channels, "ResNet34: input must be (N, ",
             config_.in_channels, ", H, W), got ", x.defined() ? x.str() : "undefined");
  ResNetFeatures f;
  Tensor h = relu((*bn1_)((*conv1_)(x)));
  h = max_pool2d(h, {3, 3}, {2, 2}, {1, 1});
  for (int l = 0; l < 4; ++l) h = f.layers[l] = (*layers_[l])(h);
  if (head_) f.logits = (*head_)(adaptive_avg_pool2d(h, {1, 1}).flatten(1));
  return f;
}

Tensor ResNet34::forward(const Tensor& x) {
  STGS_CHECK(head_ != nullptr, "ResNet34::forward: the model has no head (num_classes = 0); use features()");
  return features(x).logits;
}

// ---- normalisation ------------------------------------------------------------------------------------

Tensor imagenet_normalize(const Tensor& x) {
  STGS_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 3, "imagenet_normalize: input must be (N, 3, H, W), got ",
             x.defined() ? x.str() : "undefined");
  const std::vector<double> mean(kImageNetMean.begin(), kImageNetMean.end());
  std::vector<double> inv_std;
  for (double s : kImageNetStd) inv_std.push_back(1.0 / s);
  const Tensor m = from_vector(mean, Shape{1, 3, 1, 1}).to(x.dtype()).to(x.device());
  const Tensor r = from_vector(inv_std, Shape{1, 3, 1, 1}).to(x.dtype()).to(x.device());
  return (x - m) * r;
}

}  // namespace stgs
