// The per-bin spectrogram statistics of a dataset: computed over the training split's clips (the audio
// backbone's normalisation, which training and feature extraction must both apply).
// defines: compute_spectrogram_stats
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "data/manifest.h"
#include "data/spectrogram.h"

namespace stgs::data {

// SpectrogramStats over the spectrograms (load_raw_clip's waveform -> clip_spectrogram, no augmentation) of
// manifest.rows[indices[i]]. Clips are decoded on `threads` OpenMP threads (0: OpenMP's default) in fixed
// blocks whose F64 sums merge in block order, so the result does not depend on the thread count. Errors name
// the manifest line and clip. progress(done, total) is called from one thread at a time.
SpectrogramStats compute_spectrogram_stats(const Manifest& manifest, const std::vector<int64_t>& indices,
                                           int threads = 0, const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace stgs::data
