// The augmentation catalogue and name lookup (see augment.h); the transforms are in augment_visual.cpp and
// augment_audio.cpp.
#include "data/augment.h"

#include "data/augment_ops.h"
#include "kernels/check.h"

namespace stgs::data {

using namespace augment_detail;

const std::vector<Augmentation>& augmentation_catalogue() {
  static const std::vector<Augmentation> catalogue = [] {
    std::vector<Augmentation> all;
    for (const FrameOp& op : frame_ops()) all.push_back(op.info);
    for (const WaveformOp& op : waveform_ops()) all.push_back(op.info);
    for (const SpectrogramOp& op : spectrogram_ops()) all.push_back(op.info);
    return all;
  }();
  return catalogue;
}

const Augmentation& find_augmentation(const std::string& name) {
  const std::vector<Augmentation>& catalogue = augmentation_catalogue();
  for (const Augmentation& a : catalogue)
    if (a.name == name) return a;
  std::string names;
  for (const Augmentation& a : catalogue) names += (names.empty() ? "" : ", ") + a.name;
  STGS_FAIL("unknown augmentation '", name, "'; the ", catalogue.size(), " augmentations are: ", names,
            " (`stgs augment --list` describes them)");
}

const char* augment_target_name(AugmentTarget target) {
  switch (target) {
    case AugmentTarget::Frames: return "frames";
    case AugmentTarget::Waveform: return "waveform";
    case AugmentTarget::Spectrogram: return "spectrogram";
  }
  return "?";
}

}  // namespace stgs::data
