#include "data/clip_batch.h"

#include "data/loader.h"
#include "engine/io/sha256.h"
#include "engine/nn/resnet.h"
#include "engine/random.h"
#include "kernels/check.h"

namespace stgs::data {

uint64_t augmentation_seed(uint64_t base, const std::string& id, const std::string& augmentation) {
  return std::stoull(sha256_hex(std::to_string(base) + ":" + id + "#" + augmentation).substr(0, 16), nullptr, 16);
}

ClipBatch load_clip_batch(const Manifest& manifest, const std::vector<int64_t>& indices, const ClipOptions& options,
                          const SpectrogramStats& stats, bool train, uint64_t batch_seed) {
  std::vector<ClipItem> items;
  for (int64_t index : indices) items.push_back({index});
  ClipBatchOptions o;
  o.clip = options;
  o.stats = &stats;
  o.train = train;
  return load_clip_batch(manifest, items, o, batch_seed);
}

ClipBatch load_clip_batch(const Manifest& manifest, const std::vector<ClipItem>& items, const ClipBatchOptions& options,
                          uint64_t batch_seed) {
  const auto b = int64_t(items.size());
  STGS_CHECK(b >= 1, "load_clip_batch: no indices");
  STGS_CHECK(options.frames || options.stats, "load_clip_batch: neither frames nor audio asked for");
  const auto rows = int64_t(manifest.rows.size());
  const ClipOptions& clip = options.clip;
  ClipBatch batch;
  if (options.frames) batch.frames = empty({b, clip.frames, 3, clip.size, clip.size});
  if (options.stats) batch.spectrograms = empty({b, 1, kWindowFrames, kFreqBins});
  std::vector<int64_t> labels;
  int64_t kept = 0;  // rows of the batch filled so far
  for (int64_t i = 0; i < b; ++i) {
    const int64_t index = items[size_t(i)].index;
    STGS_CHECK(index >= 0 && index < rows, "load_clip_batch: index ", index, " outside manifest '", manifest.path,
               "' of ", rows, " clips");
    const ManifestRow& row = manifest.rows[size_t(index)];
    const Augmentation* aug = items[size_t(i)].augmentation;
    try {  // every stage of one clip: with skip_bad a failure anywhere leaves just this clip out
      RawClip raw = load_raw_clip(row, manifest.path, clip);
      const uint64_t aug_seed = aug ? augmentation_seed(options.augment_seed, row.id, aug->name) : 0;
      if (aug && aug->target == AugmentTarget::Frames) raw.frames = augment_frames(*aug, raw.frames, aug_seed);
      if (aug && aug->target == AugmentTarget::Waveform) raw.wav = augment_waveform(*aug, raw.wav, aug_seed);
      if (options.frames) batch.frames.select(0, kept).copy_(imagenet_normalize(raw.frames));
      if (options.stats) {
        Tensor spec = clip_spectrogram(raw);  // (T, 257)
        if (aug && aug->target == AugmentTarget::Spectrogram) spec = augment_spectrogram(*aug, spec, aug_seed);
        Generator gen(batch_seed + uint64_t(i));  // by position in the request: the same window whatever is skipped
        const Tensor window = crop_window(spec, kWindowFrames, options.train ? &gen : nullptr);  // (300, 257)
        batch.spectrograms.select(0, kept).copy_(
            options.stats->normalize(window).reshape({1, kWindowFrames, kFreqBins}));
      }
    } catch (const Error& e) {
      if (!options.skip_bad) throw;
      batch.skipped.push_back({row.id, e.what()});
      continue;
    }
    labels.push_back(int64_t(row.label));
    batch.ids.push_back(aug ? row.id + "#" + aug->name : row.id);
    batch.rows.push_back(index);
    ++kept;
  }
  if (kept < b) {  // clips were skipped
    if (options.frames) batch.frames = batch.frames.narrow(0, 0, kept).contiguous();
    if (options.stats) batch.spectrograms = batch.spectrograms.narrow(0, 0, kept).contiguous();
  }
  batch.labels = from_vector(labels, {kept});
  return batch;
}

void for_each_clip_batch(const Manifest& manifest, const std::vector<ClipItem>& items, const ClipBatchOptions& options,
                         int workers, int64_t batch_size,
                         const std::function<void(const ClipBatch& batch, int64_t first)>& consume) {
  LoaderOptions loader_options;
  loader_options.workers = workers;
  loader_options.batch_size = batch_size;
  loader_options.shuffle = false;
  Loader<ClipBatch> loader(int64_t(items.size()), loader_options, [&](const std::vector<int64_t>& indices, uint64_t) {
    std::vector<ClipItem> batch;
    for (int64_t i : indices) batch.push_back(items[size_t(i)]);
    return load_clip_batch(manifest, batch, options, 0);
  });
  loader.start_epoch(0);
  int64_t first = 0;
  while (const std::optional<LoadedBatch<ClipBatch>> loaded = loader.next()) {
    consume(loaded->data, first);
    first += int64_t(loaded->indices.size());
  }
}

}  // namespace stgs::data
