// From backbone feature maps to the common (B, C, L) node tensors of the fusion network.
// defines: image_features_to_sequence, audio_features_to_sequence, ReshapeLayer
//
// Two stages, as in BM-NAS's ReshapeInputLayer: a parameter-free pooling that turns a feature map into a
// sequence of L positions with its own channel count C_i (the feature cache stores these, so a search never
// runs a backbone), then a trainable ReshapeLayer that maps C_i channels to the network's C.
#pragma once

#include <memory>

#include "engine/nn/conv_layers.h"
#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/random.h"

namespace stgs::nas {

// Image features: maps (B * K, C, H, W) from a 2-D backbone run on K frames per clip, clip-major (frames
// 0..K-1 of clip 0 first) -> (B, C, L). Each frame is reduced to its spatial maximum, the frames become the
// sequence (B, C, K), and adaptive max pooling brings K to L when they differ (for K < L the bins overlap,
// so frames repeat). Throws when the frame count is not a multiple of K.
Tensor image_features_to_sequence(const Tensor& maps, int64_t frames_per_clip, int64_t L);

// Audio features: maps (B, C, T, F) from a 2-D backbone on a (time, frequency) spectrogram -> (B, C, L):
// the maximum over frequency, then adaptive max pooling over time from T to L (when T != L).
Tensor audio_features_to_sequence(const Tensor& maps, int64_t L);

// x: (B, C_in, L) -> 1x1 Conv1d C_in->C -> BatchNorm(C) -> ReLU -> Dropout(p) -> (B, C, L).
// Children (state-dict names): "conv", "bn", "dropout". `gen` draws the conv weights (the default
// generator when null); dropout masks come from the default generator.
class ReshapeLayer : public Module {
 public:
  ReshapeLayer(int64_t in_channels, int64_t out_channels, double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  std::shared_ptr<Conv1d> conv;
  std::shared_ptr<BatchNorm> bn;
  std::shared_ptr<Dropout> dropout;

 private:
  int64_t in_, out_;
};

}  // namespace stgs::nas
