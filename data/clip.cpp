#include "data/clip.h"

#include "data/audio_io.h"
#include "data/ffmpeg.h"
#include "engine/nn/resnet.h"
#include "kernels/check.h"

namespace stgs::data {

namespace {

// The decoded frames before normalisation: augmentations work in [0, 1], make_clip_input normalises.
ClipOptions raw_options(const ClipOptions& options) {
  ClipOptions raw = options;
  raw.normalize = false;
  return raw;
}

std::vector<float> volume_normalised(std::vector<float> wav) {
  normalize_volume(wav);
  return wav;
}

}  // namespace

RawClip load_raw_clip_files(const std::vector<std::string>& frame_files, const std::optional<PixelBox>& face_box,
                            const std::string& audio, const ClipOptions& options) {
  return RawClip{decode_clip(frame_files, face_box, raw_options(options)), volume_normalised(load_audio_16k(audio))};
}

RawClip load_raw_clip(const ManifestRow& row, const std::string& manifest_path, const ClipOptions& options) {
  try {
    return load_raw_clip_files(row.frames(), row.face_box, row.audio, options);
  } catch (const std::exception& e) {  // std::bad_alloc too: the message still names the clip
    throw Error(manifest_path + ":" + std::to_string(row.line) + ": clip '" + row.id + "': " + e.what());
  }
}

RawClip load_raw_video_clip(const std::string& ffmpeg, const std::string& video, const std::optional<PixelBox>& face_box,
                            const std::string& audio, const ClipOptions& options) {
  const std::vector<Image> frames = decode_sampled_frames(ffmpeg, video, options.frames);
  std::vector<std::string> names;
  for (size_t i = 0; i < frames.size(); ++i) names.push_back("frame " + std::to_string(i) + " of '" + video + "'");
  return RawClip{frames_to_clip(frames, names, face_box, raw_options(options)),
                 volume_normalised(audio.empty() ? decode_audio_16k(ffmpeg, video) : load_audio_16k(audio))};
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
