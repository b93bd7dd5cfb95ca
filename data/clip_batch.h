// A batch of clips of a manifest, decoded through the clip pipeline (data/clip.h) and stacked: what a loader
// worker builds for the search, training and evaluation loops.
// defines: ClipBatch, load_clip_batch
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/clip.h"

namespace stgs::data {

struct ClipBatch {
  Tensor frames;        // (B, K, 3, S, S) F32, ImageNet-normalised
  Tensor spectrograms;  // (B, 1, 300, 257) F32, per-bin normalised windows
  Tensor labels;        // (B) I64: 0 real, 1 fake
  std::vector<std::string> ids;
};

// The clips manifest.rows[indices[i]], in order. In training (`train`) clip i's spectrogram window is random,
// drawn from a Generator seeded with batch_seed + i, so a batch is reproduced from its seed; otherwise the
// window is centred and batch_seed is unused. Errors name the manifest line and clip (load_raw_clip); an
// index outside the manifest throws naming it.
ClipBatch load_clip_batch(const Manifest& manifest, const std::vector<int64_t>& indices, const ClipOptions& options,
                          const SpectrogramStats& stats, bool train, uint64_t batch_seed);

}  // namespace stgs::data
