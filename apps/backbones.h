// The two frozen backbones as `stgs extract` and `stgs detect` run them: a backbone file checked from its header
// (kind, width, head, SHA-256), the network loaded in eval mode, and a batch of decoded clips turned into the
// eight pooled features the feature cache stores. Both commands go through run_backbones, so a clip scored by
// detect takes exactly the computation its row of the cache took.
// defines: BackboneFile, inspect_backbone, load_backbone, BackboneOutputs, run_backbones
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/clip_batch.h"
#include "engine/nn/resnet.h"

namespace stgs::apps {

// A backbone file as far as its header tells: the configuration (width and head size from the tensors' shapes,
// the kind checked against the stem: 3 input channels image, 1 audio, so swapped files are caught), its
// metadata and its SHA-256.
struct BackboneFile {
  std::string path;
  bool image = true;
  ResNetConfig config;
  std::map<std::string, std::string> metadata;
  std::string sha256;

  const char* option() const { return image ? "--image-backbone" : "--audio-backbone"; }
};

// Throws, prefixed with `command` ("stgs extract"), naming the option and the file when it is missing, is not a
// ResNet-34 state dict, or has the other kind's stem.
BackboneFile inspect_backbone(const std::string& path, bool image, const std::string& command);

// The network with the file's weights, in eval mode on `device`; a load error names the file.
std::unique_ptr<ResNet34> load_backbone(const BackboneFile& file, Device device, const std::string& command);

// One batch of B clips through both backbones.
struct BackboneOutputs {
  std::vector<Tensor> features;  // data::kFeatureNames order, each (B, C_i, L) F32 on the CPU (nas/reshape.h)
  Tensor image_logits;           // (B, classes) on the CPU: the image head's mean over the K frames (as it was
                                 // pretrained); undefined when the backbone has no head
  Tensor audio_logits;           // (B, classes) of the centred window; undefined without a head
};

// batch.frames (B, K, 3, S, S) and batch.spectrograms (B, 1, 300, 257) -> the backbones' outputs, without
// gradients. Image maps are pooled by a spatial max per frame with the K frames as the sequence, audio maps by a
// max over frequency with time as the sequence, both then by adaptive max pooling to L.
BackboneOutputs run_backbones(ResNet34& image, ResNet34& audio, const data::ClipBatch& batch, int64_t L,
                              Device device);

}  // namespace stgs::apps
