#include "apps/backbones.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "engine/autograd.h"
#include "engine/io/safetensors.h"
#include "engine/io/sha256.h"
#include "kernels/check.h"
#include "nas/backbone_pretrain.h"
#include "nas/reshape.h"

namespace stgs::apps {
namespace {

template <class T>
bool all_finite(const T* values, int64_t n) {
  return std::all_of(values, values + n, [](T v) { return std::isfinite(v); });
}

// The tensor (contiguous on the CPU, as loaded) holds no NaN or infinity; integer tensors always pass.
bool all_finite(const Tensor& t) {
  if (t.dtype() == DType::F32) return all_finite(t.data<float>(), t.numel());
  if (t.dtype() == DType::F64) return all_finite(t.data<double>(), t.numel());
  return true;
}

}  // namespace

BackboneFile inspect_backbone(const std::string& path, bool image, const std::string& command) {
  BackboneFile f{path, image, {}, {}, {}};
  STGS_CHECK(std::filesystem::is_regular_file(path), command, ": ", f.option(), ": backbone file '", path,
             "' does not exist");
  const SafetensorsHeader header = read_safetensors_header(path);
  std::map<std::string, Shape> shapes;
  for (const SafetensorsHeader::Entry& e : header.tensors) shapes[e.name] = e.shape;
  STGS_CHECK(shapes.count("conv1.weight"), command, ": ", f.option(), " '", path,
             "' has no conv1.weight; not a ResNet-34 state dict");
  const Shape& stem = shapes["conv1.weight"];
  const int64_t in_channels = image ? 3 : 1;
  STGS_CHECK(stem.size() == 4 && stem[1] == in_channels, command, ": ", f.option(), " '", path, "': conv1.weight is ",
             stem.str(), ", expected [W, ", in_channels, ", 7, 7] for the ", image ? "image" : "audio", " backbone",
             stem.size() == 4 && stem[1] == 4 - in_channels ? " (the two backbones swapped?)" : "");
  f.config = image ? ResNetConfig::image(stem[0]) : ResNetConfig::audio(stem[0]);
  const std::string head = f.config.head_name + ".weight";
  if (shapes.count(head)) f.config.num_classes = shapes[head][0];
  f.metadata = header.metadata;
  f.sha256 = sha256_file(path);
  return f;
}

std::unique_ptr<ResNet34> load_backbone(const BackboneFile& file, Device device, const std::string& command) {
  auto net = std::make_unique<ResNet34>(file.config);
  try {
    const SafetensorsFile loaded = load_safetensors(file.path);
    // A corrupt or diverged checkpoint would turn every feature into NaN without a word.
    for (const auto& [name, t] : loaded.tensors)
      STGS_CHECK(all_finite(t), "tensor \"", name, "\" holds non-finite values (a diverged or corrupt checkpoint)");
    net->load_state_dict(StateDict(loaded.tensors));
  } catch (const Error& e) {
    throw Error(command + ": " + file.option() + " '" + file.path + "': " + e.what());
  }
  net->to(device);
  net->eval();
  return net;
}

BackboneOutputs run_backbones(ResNet34& image, ResNet34& audio, const data::ClipBatch& batch, int64_t L,
                              Device device) {
  NoGradGuard no_grad;
  const int64_t B = batch.frames.size(0), K = batch.frames.size(1), S = batch.frames.size(3);
  const Tensor frames = batch.frames.reshape({B * K, 3, S, S});  // clip-major: rows 0..K-1 are clip 0
  const ResNetFeatures fi = image.features(frames.to(device));
  const ResNetFeatures fa = audio.features(batch.spectrograms.to(device));
  BackboneOutputs out;
  for (int i = 0; i < 8; ++i) {
    const Tensor pooled = i < 4 ? nas::image_features_to_sequence(fi.layers[size_t(i)], K, L)
                                : nas::audio_features_to_sequence(fa.layers[size_t(i - 4)], L);  // (B, C_i, L)
    out.features.push_back(pooled.to(Device::cpu()));
  }
  if (fi.logits.defined()) out.image_logits = nas::clip_logits(fi.logits, K).to(Device::cpu());
  if (fa.logits.defined()) out.audio_logits = fa.logits.to(Device::cpu());
  return out;
}

}  // namespace stgs::apps
