// Backbone maps -> (B, C_i, L) sequences, and the trainable C_i -> C reshape layer.
#include "nas/reshape.h"

#include "engine/ops.h"

namespace stgs::nas {

Tensor image_features_to_sequence(const Tensor& maps, int64_t frames_per_clip, int64_t L) {
  STGS_CHECK(frames_per_clip > 0 && L > 0, "image_features_to_sequence: frames_per_clip and L must be positive, got ",
             frames_per_clip, " and ", L);
  STGS_CHECK(maps.defined() && maps.dim() == 4, "image_features_to_sequence: maps must be (B * K, C, H, W), got ",
             maps.str());
  const int64_t frames = maps.size(0), C = maps.size(1);
  STGS_CHECK(frames > 0 && frames % frames_per_clip == 0, "image_features_to_sequence: ", frames,
             " frames in ", maps.str(), " are not a whole number of clips of K=", frames_per_clip, " frames");
  const int64_t B = frames / frames_per_clip;
  const Tensor per_frame = max(maps, {2, 3});                                           // (B * K, C)
  const Tensor seq = per_frame.reshape(Shape{B, frames_per_clip, C}).transpose(1, 2);  // (B, C, K)
  // A fresh contiguous (B, C, L) either way, ready to be cached.
  return frames_per_clip == L ? seq.contiguous() : adaptive_max_pool1d(seq, L);
}

Tensor audio_features_to_sequence(const Tensor& maps, int64_t L) {
  STGS_CHECK(L > 0, "audio_features_to_sequence: L must be positive, got ", L);
  STGS_CHECK(maps.defined() && maps.dim() == 4, "audio_features_to_sequence: maps must be (B, C, T, F), got ",
             maps.str());
  const Tensor seq = max(maps, 3);  // (B, C, T)
  return seq.size(2) == L ? seq : adaptive_max_pool1d(seq, L);
}

ReshapeLayer::ReshapeLayer(int64_t in_channels, int64_t out_channels, double p, Generator* gen)
    : Module("ReshapeLayer"), in_(in_channels), out_(out_channels) {
  STGS_CHECK(in_channels > 0 && out_channels > 0, "ReshapeLayer: channels must be positive, got ", in_channels,
             " -> ", out_channels);
  conv = register_module("conv", std::make_shared<Conv1d>(in_channels, out_channels, 1, 1, 0, true, gen));
  bn = register_module("bn", std::make_shared<BatchNorm>(out_channels));
  dropout = register_module("dropout", std::make_shared<Dropout>(p));
}

Tensor ReshapeLayer::forward(const Tensor& x) {
  STGS_CHECK(x.defined() && x.dim() == 3 && x.size(1) == in_, "ReshapeLayer(", in_, " -> ", out_,
             "): input must be (B, ", in_, ", L), got ", x.str());
  return dropout->forward(relu(bn->forward(conv->forward(x))));  // (B, C, L)
}

}  // namespace stgs::nas
