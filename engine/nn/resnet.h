// ResNet-34 (BasicBlock, layers [3, 4, 6, 3]) with a configurable width, input channels and stem, in
// torchvision's layout and parameter names.
// defines: ResNetConfig, ResNetFeatures, BasicBlock, ResNet34, kImageNetMean, kImageNetStd, imagenet_normalize
//
// Presets:
//   image: torchvision resnet34: 3-channel stem conv 7x7 stride 2 padding 3, head "fc". A torchvision
//          state_dict saved as safetensors loads with no renaming (218 entries with the 1000-class head).
//   audio: AutoSpeech's speaker ResNet-34: 1-channel stem conv 7x7 stride 2 padding 2 on (B, 1, 300, 257)
//          magnitude spectrograms (time as H, frequency as W), head "classifier".
// Feature maps for width w (channels w, 2w, 4w, 8w): image 224x224 -> 56, 28, 14, 7; audio 300x257 ->
// 75x64, 38x32, 19x16, 10x8.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "engine/nn/conv_layers.h"
#include "engine/nn/layers.h"

namespace stgs {

struct ResNetConfig {
  int64_t in_channels = 3;
  int64_t width = 64;  // channels of layer1; layer2..4 have 2x, 4x, 8x
  int64_t stem_kernel = 7, stem_stride = 2, stem_padding = 3;
  int64_t num_classes = 0;        // 0: no head (features only)
  std::string head_name = "fc";   // the head Linear's name in the state dict

  static ResNetConfig image(int64_t width = 64, int64_t num_classes = 0);
  static ResNetConfig audio(int64_t width = 64, int64_t num_classes = 0);
  // "resnet34-image" or "resnet34-audio" (the names `stgs inspect --model` takes); throws otherwise.
  static ResNetConfig preset(const std::string& name, int64_t width = 64, int64_t num_classes = 0);
};

// The four stage outputs (N, w, H/4, W/4) ... (N, 8w, H/32, W/32) and, with a head, the logits (N, classes).
struct ResNetFeatures {
  std::array<Tensor, 4> layers;
  Tensor logits;  // undefined without a head
};

// conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut (identity, or a 1x1 conv with the
// block's stride and a BN when the shape changes: "downsample.0" / "downsample.1"), then ReLU.
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm> bn1_, bn2_;
  std::shared_ptr<Sequential> downsample_;  // null for the identity shortcut
};

class ResNet34 : public Module {
 public:
  // Convolutions get torchvision's init (kaiming normal, fan_out, ReLU gain), batch norms weight 1 and
  // bias 0, the head PyTorch's Linear default; everything drawn from gen (the default generator when null).
  explicit ResNet34(const ResNetConfig& config, Generator* gen = nullptr);

  // x: (N, in_channels, H, W) -> the four stage outputs and, with a head, the logits.
  ResNetFeatures features(const Tensor& x);
  // The logits; throws when the model has no head.
  Tensor forward(const Tensor& x) override;

  const ResNetConfig& config() const { return config_; }

 private:
  ResNetConfig config_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm> bn1_;
  std::array<std::shared_ptr<Sequential>, 4> layers_;
  std::shared_ptr<Linear> head_;  // null without a head
};

// ImageNet normalisation of RGB in [0, 1], the statistics torchvision's weights were trained with.
inline constexpr std::array<double, 3> kImageNetMean{0.485, 0.456, 0.406};
inline constexpr std::array<double, 3> kImageNetStd{0.229, 0.224, 0.225};
// x: (N, 3, H, W) in [0, 1] -> (x - mean[c]) / std[c], differentiable, on x's device and dtype.
Tensor imagenet_normalize(const Tensor& x);

}  // namespace stgs
