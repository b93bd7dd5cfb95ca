#include "data/clip_batch.h"

#include "engine/random.h"
#include "kernels/check.h"

namespace stgs::data {

ClipBatch load_clip_batch(const Manifest& manifest, const std::vector<int64_t>& indices, const ClipOptions& options,
                          const SpectrogramStats& stats, bool train, uint64_t batch_seed) {
  const auto b = int64_t(indices.size());
  STGS_CHECK(b >= 1, "load_clip_batch: no indices");
  const auto rows = int64_t(manifest.rows.size());
  ClipBatch batch;
  batch.frames = empty({b, options.frames, 3, options.size, options.size});
  batch.spectrograms = empty({b, 1, kWindowFrames, kFreqBins});
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t index = indices[size_t(i)];
    STGS_CHECK(index >= 0 && index < rows, "load_clip_batch: index ", index, " outside manifest '", manifest.path,
               "' of ", rows, " clips");
    const ManifestRow& row = manifest.rows[size_t(index)];
    const RawClip raw = load_raw_clip(row, manifest.path, options);
    Generator gen(batch_seed + uint64_t(i));
    const ClipInput input = make_clip_input(raw.frames, clip_spectrogram(raw), stats, train ? &gen : nullptr);
    batch.frames.select(0, i).copy_(input.frames);
    batch.spectrograms.select(0, i).copy_(input.spectrogram);
    labels.push_back(int64_t(row.label));
    batch.ids.push_back(row.id);
  }
  batch.labels = from_vector(labels, {b});
  return batch;
}

}  // namespace stgs::data
