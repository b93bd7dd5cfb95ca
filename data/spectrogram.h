// The audio backbone's input: AutoSpeech's linear-magnitude spectrogram, its per-bin dataset statistics, and
// the fixed-length windows the network sees.
// defines: kNfft, kWinLength, kHopLength, kFreqBins, kWindowFrames, kTargetDbfs, PadMode, normalize_volume,
//          spectrogram_frames, spectrogram, spectrogram_from_file, fftw_planner_mutex, SpectrogramStats,
//          crop_window
//
// Recipe (AutoSpeech data_objects/params_data.py and audio.py): 16 kHz mono; volume normalised to -30 dBFS,
// gain only up; |STFT| with n_fft 512, a periodic Hann window of 400 samples zero-padded centred to 512, hop
// 160 (10 ms), centred frames (256 samples of padding on each side); 257 bins, magnitude, no log, no mel.
// (T, 257) with T = 1 + floor(N / 160). Normalised per bin by the training split's mean and std, then cut
// to 300-frame (3 s) windows.
//
// The FFT is FFTW's single-precision real-to-complex transform. Its plan is made once (FFTW_ESTIMATE, so the
// same algorithm is picked every run and results are bitwise reproducible) under fftw_planner_mutex(), since
// the FFTW planner is not thread-safe; transforms run through the new-array execute function, which is, so
// any number of threads may compute spectrograms at once.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "data/audio_io.h"  // kSampleRate, the recipe's rate
#include "engine/tensor.h"

namespace stgs {
class Generator;
}

namespace stgs::data {

inline constexpr int kNfft = 512;
inline constexpr int kWinLength = 400;
inline constexpr int kHopLength = 160;
inline constexpr int kFreqBins = kNfft / 2 + 1;  // 257
inline constexpr int kWindowFrames = 300;        // 3 s at 100 frames/s
inline constexpr double kTargetDbfs = -30.0;

// How the signal is extended by n_fft / 2 on each side for centred frames. Reflect (x[-1] = x[1]) is the
// librosa 0.7 default AutoSpeech used; Zero is librosa >= 0.9's default, which STGS-BMNAS's pinned librosa
// 0.10 applies.
enum class PadMode { Reflect, Zero };

// Scales `wav` in place so its RMS level is target_dbfs (dBFS = 20 log10(rms), full scale 1.0), but only
// when that raises the level: loud clips are left alone (AutoSpeech's increase_only). Silence stays silence.
// Returns the gain applied (1 when none).
double normalize_volume(std::vector<float>& wav, double target_dbfs = kTargetDbfs);

// Frames of a centred STFT over n samples: 1 + floor(n / hop).
inline int64_t spectrogram_frames(int64_t n) { return 1 + n / kHopLength; }

// |STFT| of n >= 1 samples: (spectrogram_frames(n), 257) F32, frame t centred on sample t * 160.
Tensor spectrogram(const float* wav, int64_t n, PadMode pad = PadMode::Reflect);
inline Tensor spectrogram(const std::vector<float>& wav, PadMode pad = PadMode::Reflect) {
  return spectrogram(wav.data(), int64_t(wav.size()), pad);
}

// The whole recipe for one file: load_audio_16k, normalize_volume, spectrogram.
Tensor spectrogram_from_file(const std::string& path, PadMode pad = PadMode::Reflect);

// Held while creating or destroying any FFTW plan in the process (FFTW's planner shares global state).
std::mutex& fftw_planner_mutex();

// Per-bin sums over the frames of many spectrograms (AutoSpeech's compute_mean_std: sum x and sum x^2 per bin,
// in F64). Accumulators built on separate threads or shards combine exactly with merge(). Stored with the
// dataset as safetensors: "sum" and "sum_sq" (F64, 257), "frames" (I64 scalar), and the derived "mean" and
// "std" (F32, 257), with the recipe's parameters in the metadata so that stats of another recipe are refused.
class SpectrogramStats {
 public:
  SpectrogramStats();

  void add(const Tensor& spec);  // (T, 257) F32 or F64; every frame counts once
  void merge(const SpectrogramStats& other);

  int64_t frames() const { return frames_; }
  Tensor mean() const;  // (257) F32
  Tensor std() const;   // (257) F32: the population std sqrt(E[x^2] - mean^2)
  // (x - mean) / max(std, 1e-5) per bin: (T, 257) -> (T, 257) F32. The floor keeps a bin that is constant
  // over the training set (e.g. silent padding) finite. Throws before any frame was added.
  Tensor normalize(const Tensor& spec) const;

  void save(const std::string& path) const;  // atomic
  static SpectrogramStats load(const std::string& path);

 private:
  std::vector<double> sum_, sum_sq_;
  int64_t frames_ = 0;
};

// A window of `frames` consecutive frames of spec (T, 257) -> (frames, 257) F32. With a generator (training)
// the start is uniform over every possible position; without one (evaluation) the window is centred. A
// clip shorter than `frames` is tiled by repetition (frame t of the window is spec[(start + t) mod T]), with
// a random phase in training and from frame 0 in evaluation.
Tensor crop_window(const Tensor& spec, int64_t frames = kWindowFrames, Generator* gen = nullptr);

}  // namespace stgs::data
