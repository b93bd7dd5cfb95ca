#include "data/clip.h"

#include "data/audio_io.h"
#include "engine/nn/resnet.h"
#include "kernels/check.h"

namespace stgs::data {

RawClip load_raw_clip(const ManifestRow& row, const std::string& manifest_path, const ClipOptions& options) {
  ClipOptions raw = options;
  raw.normalize = false;  // augmentations work in [0, 1]; make_clip_input normalises
  try {
    RawClip clip;
    clip.frames = decode_clip(row.frames(), row.face_box, raw);
    clip.wav = load_audio_16k(row.audio);
    normalize_volume(clip.wav);
    return clip;
  } catch (const Error& e) {
    throw Error(manifest_path + ":" + std::to_string(row.line) + ": clip '" + row.id + "': " + e.what());
  }
}

Tensor clip_spectrogram(const RawClip& clip, PadMode pad) { return spectrogram(clip.wav, pad); }

ClipInput make_clip_input(const Tensor& frames, const Tensor& spec, const SpectrogramStats& stats, Generator* gen) {
  STGS_CHECK(frames.dim() == 4 && frames.size(1) == 3, "make_clip_input: expected frames (K, 3, S, S), got ",
             frames.str());
  ClipInput input;
  input.frames = imagenet_normalize(frames);
  // Per-bin normalisation is elementwise, so the window is cut first and only 300 frames are normalised.
  const Tensor window = stats.normalize(crop_window(spec, kWindowFrames, gen));  // (300, 257)
  input.spectrogram = window.reshape({1, kWindowFrames, kFreqBins});
  return input;
}

}  // namespace stgs::data
