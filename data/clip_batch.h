// A batch of clips of a manifest, decoded through the clip pipeline (data/clip.h) and stacked: what a loader
// worker builds for the search, training and evaluation loops, and for the feature extraction, which may
// pass each clip through one augmentation (data/augment.h) on the way.
// defines: ClipBatch, ClipItem, ClipBatchOptions, load_clip_batch, augmentation_seed, for_each_clip_batch
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/clip.h"

namespace stgs::data {

struct ClipBatch {
  Tensor frames;                 // (B, K, 3, S, S) F32, ImageNet-normalised
  Tensor spectrograms;           // (B, 1, 300, 257) F32, per-bin normalised windows
  Tensor labels;                 // (B) I64: 0 real, 1 fake
  std::vector<std::string> ids;  // the manifest's, "<id>#<augmentation>" for an augmented copy
  std::vector<int64_t> rows;     // B: the manifest row of each clip
  // With ClipBatchOptions::skip_bad, the clips left out because they could not be decoded: (id, error).
  std::vector<std::pair<std::string, std::string>> skipped;
};

// The clips manifest.rows[indices[i]], in order. In training (`train`) clip i's spectrogram window is random,
// drawn from a Generator seeded with batch_seed + i, so a batch is reproduced from its seed; otherwise the
// window is centred and batch_seed is unused. Errors name the manifest line and clip (load_raw_clip); an
// index outside the manifest throws naming it.
ClipBatch load_clip_batch(const Manifest& manifest, const std::vector<int64_t>& indices, const ClipOptions& options,
                          const SpectrogramStats& stats, bool train, uint64_t batch_seed);

// One clip: a manifest row as it is, or through one augmentation, applied between the stages of data/clip.h
// (frames and waveform after load_raw_clip, the spectrogram after clip_spectrogram, before normalisation).
struct ClipItem {
  int64_t index = 0;                           // into manifest.rows
  const Augmentation* augmentation = nullptr;  // a catalogue entry (find_augmentation); null: none
};

struct ClipBatchOptions {
  ClipOptions clip;
  const SpectrogramStats* stats = nullptr;  // null: no audio (spectrograms stays undefined)
  bool frames = true;                       // false: no frames (frames stays undefined)
  bool train = false;                       // a random spectrogram window (see above)
  // An augmented copy's parameters come from the seed (augment_seed, id, augmentation name): the same copy
  // whatever batch it lands in.
  uint64_t augment_seed = 0;
  // A clip that cannot be decoded (corrupt or missing file) is left out and listed in ClipBatch::skipped
  // instead of failing the batch; B is then the number decoded (possibly 0).
  bool skip_bad = false;
};

// The seed of one augmented copy: the first 8 bytes of SHA-256("<base>:<id>#<augmentation>"), so a copy
// is the same in every batch and every tool (stgs extract, stgs show-input) given the same base seed.
uint64_t augmentation_seed(uint64_t base, const std::string& id, const std::string& augmentation);

// The general form: any items, either modality. The form above is {frames and audio, no augmentation}.
ClipBatch load_clip_batch(const Manifest& manifest, const std::vector<ClipItem>& items, const ClipBatchOptions& options,
                          uint64_t batch_seed);

// Every item in order, in batches of batch_size clips decoded by `workers` loader threads (data/loader.h) while
// `consume(batch, first)` runs on the previous batch; `first` is the position in `items` of the batch's first
// clip. The feature extraction and `stgs detect --manifest` stream a manifest through their backbones this way.
void for_each_clip_batch(const Manifest& manifest, const std::vector<ClipItem>& items, const ClipBatchOptions& options,
                         int workers, int64_t batch_size,
                         const std::function<void(const ClipBatch& batch, int64_t first)>& consume);

}  // namespace stgs::data
