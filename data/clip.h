// One clip of a manifest, from files to the two backbones' inputs, in stages so that augmentations (which act
// on the decoded frames, the waveform or the raw spectrogram) fit between them:
//   load_raw_clip -> [augment frames / waveform] -> clip_spectrogram -> [augment spectrogram]
//     -> make_clip_input (ImageNet normalisation; per-bin normalisation and a 300-frame window)
// defines: RawClip, load_raw_clip, load_raw_clip_files, load_raw_video_clip, clip_spectrogram, ClipInput,
//          make_clip_input
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "data/manifest.h"
#include "data/spectrogram.h"
#include "engine/tensor.h"

namespace stgs {
class Generator;
}

namespace stgs::data {

// A decoded clip before any normalisation.
struct RawClip {
  Tensor frames;           // (K, 3, S, S) F32 in [0, 1]: K frames sampled evenly, face or centre crop
  std::vector<float> wav;  // 16 kHz mono, volume normalised to -30 dBFS (gain only up)
};

// Decodes a manifest row: its frames with decode_clip (no normalisation) and its audio with load_audio_16k +
// normalize_volume. Errors name the clip ("<manifest>:<line>: clip '<id>': <problem>").
RawClip load_raw_clip(const ManifestRow& row, const std::string& manifest_path, const ClipOptions& options);

// The same from files named directly (no manifest): frame images in time order, an audio file, an optional face
// box. Errors name the file at fault.
RawClip load_raw_clip_files(const std::vector<std::string>& frame_files, const std::optional<PixelBox>& face_box,
                            const std::string& audio, const ClipOptions& options);

// The same from a video decoded by the `ffmpeg` program (data/ffmpeg.h): its K frames spread evenly over all its
// frames (as `stgs import` samples them) and its first audio track as 16 kHz mono, or `audio` when not empty.
// A video imported with the same K gives the same frames; its sound differs from the imported 16-bit WAV by the
// 16-bit rounding only. Throws DecodeError for a video ffmpeg cannot read.
RawClip load_raw_video_clip(const std::string& ffmpeg, const std::string& video, const std::optional<PixelBox>& face_box,
                            const std::string& audio, const ClipOptions& options);

// The raw magnitude spectrogram of the clip's waveform: (T, 257) F32.
Tensor clip_spectrogram(const RawClip& clip, PadMode pad = PadMode::Reflect);

// What the backbones take for one clip.
struct ClipInput {
  Tensor frames;       // (K, 3, S, S) F32, ImageNet-normalised
  Tensor spectrogram;  // (1, 300, 257) F32: per-bin normalised, one window
};

// frames (K, 3, S, S) in [0, 1] and spec (T, 257) -> ClipInput. The window is random with a generator
// (training) and centred without one (evaluation); see crop_window.
ClipInput make_clip_input(const Tensor& frames, const Tensor& spec, const SpectrogramStats& stats,
                          Generator* gen = nullptr);

}  // namespace stgs::data
