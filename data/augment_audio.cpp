// The 12 audio augmentations (see augment.h): 10 on the 16 kHz waveform (noise, shift, gain, pitch, stretch,
// reverse) and the 2 SpecAugment masks on the magnitude spectrogram, with augment_waveform and
// augment_spectrogram, which validate and dispatch.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "data/audio_io.h"
#include "data/augment_ops.h"
#include "kernels/check.h"

namespace stgs::data {

namespace augment_detail {
namespace {

double mean_square(const std::vector<float>& x) {
  double sum = 0;
  for (float v : x) sum += double(v) * double(v);
  return sum / double(x.size());
}

// White Gaussian noise scaled so that mean(signal^2) / mean(noise^2) is exactly 10^(snr_db / 10) (up to float
// rounding), whatever the length; a silent input stays silent.
std::vector<float> noise_snr(const std::vector<float>& wav, AugmentDraws& draws, double snr_db) {
  const double signal = mean_square(wav);
  if (signal == 0) return wav;
  const Tensor noise = draws.normal({int64_t(wav.size())});
  const float* n = noise.data<float>();
  double noise_power = 0;
  for (size_t i = 0; i < wav.size(); ++i) noise_power += double(n[i]) * double(n[i]);
  noise_power /= double(wav.size());
  const float k = float(std::sqrt(signal / std::pow(10.0, snr_db / 10) / noise_power));
  std::vector<float> out(wav.size());
  for (size_t i = 0; i < wav.size(); ++i) out[i] = wav[i] + k * n[i];
  return out;
}

// Delay (d > 0) or advance (d < 0) by |d| samples, |d| uniform in 1 .. max(1, 10 % of n), the sign a coin;
// the samples shifted out are dropped and the gap is filled with silence: out[i] = wav[i - d].
std::vector<float> time_shift(const std::vector<float>& wav, AugmentDraws& draws, double) {
  const int64_t n = int64_t(wav.size());
  const int64_t magnitude = draws.integer(1, std::max<int64_t>(1, n / 10));
  const int64_t d = draws.coin() ? magnitude : -magnitude;
  std::vector<float> out(wav.size(), 0.0f);
  for (int64_t i = std::max<int64_t>(0, d); i < std::min(n, n + d); ++i) out[size_t(i)] = wav[size_t(i - d)];
  return out;
}

std::vector<float> gain(const std::vector<float>& wav, AugmentDraws&, double db) {
  const float k = float(std::pow(10.0, db / 20));
  std::vector<float> out(wav.size());
  std::transform(wav.begin(), wav.end(), out.begin(), [k](float v) { return k * v; });
  return out;
}

std::vector<float> time_reverse(const std::vector<float>& wav, AugmentDraws&, double) {
  return std::vector<float>(wav.rbegin(), wav.rend());
}

// WSOLA time stretch (waveform-similarity overlap-add, Verhelst and Roelands 1993): round(n * factor) samples
// at the input's pitch. The output is built from frames of kFrame samples at hop kFrame / 2, each weighted by
// a periodic Hann window (overlapping windows sum to exactly 1). Output frame m is centred on output sample
// m * hop and read from the input around sample m * hop / factor, moved by up to kTolerance samples to where
// its first half best matches (largest cross-correlation) the second half of the previous frame as it lay in
// the input: so consecutive frames continue each other's waveform, pitch periods line up, and no phase jumps
// are heard. 40 ms frames and a 10 ms tolerance (one period of a 100 Hz voice) suit speech.
std::vector<float> wsola_stretch(const std::vector<float>& wav, double factor) {
  constexpr int64_t kFrame = 640, kHop = kFrame / 2, kTolerance = 160;
  const int64_t n = int64_t(wav.size());
  const int64_t out_n = std::max<int64_t>(1, std::llround(double(n) * factor));
  const int64_t frames = (out_n + kHop - 1) / kHop + 1;  // frame m covers output [m*hop - hop, m*hop + hop)
  // Input frame starts range over [-kHop - kTolerance, last_start]; pad the input with silence to cover them.
  const int64_t last_start = std::llround(double(frames - 1) * kHop / factor) + kTolerance - kHop;
  const int64_t front = kHop + kTolerance, back = std::max<int64_t>(0, last_start + kFrame - n);
  std::vector<float> x(size_t(front + n + back), 0.0f);  // x[front + i] = wav[i]
  std::copy(wav.begin(), wav.end(), x.begin() + front);

  std::vector<float> window(kFrame);
  for (int64_t i = 0; i < kFrame; ++i)
    window[size_t(i)] = float(0.5 - 0.5 * std::cos(2 * std::numbers::pi * double(i) / double(kFrame)));

  // y[j] is output sample j - kHop: frame m is added at y[m * hop, m * hop + kFrame).
  std::vector<float> y(size_t((frames - 1) * kHop + kFrame), 0.0f);
  int64_t previous = 0;  // input start (index into x) of the previous frame
  for (int64_t m = 0; m < frames; ++m) {
    const int64_t nominal = front + std::llround(double(m) * kHop / factor) - kHop;
    int64_t start = nominal;
    if (m > 0) {
      // The previous frame's second half in the input: the waveform the new frame's first half should continue.
      const float* target = x.data() + previous + kHop;
      auto similarity = [&](int64_t candidate) {
        double sum = 0;
        for (int64_t i = 0; i < kHop; ++i) sum += double(x[size_t(candidate + i)]) * double(target[i]);
        return sum;
      };
      double best = similarity(nominal);  // ties (e.g. silence) keep the nominal position
      for (int64_t delta = -kTolerance; delta <= kTolerance; ++delta) {
        const double s = similarity(nominal + delta);
        if (s > best) best = s, start = nominal + delta;
      }
    }
    for (int64_t i = 0; i < kFrame; ++i) y[size_t(m * kHop + i)] += window[size_t(i)] * x[size_t(start + i)];
    previous = start;
  }
  return std::vector<float>(y.begin() + kHop, y.begin() + kHop + out_n);
}

std::vector<float> time_stretch(const std::vector<float>& wav, AugmentDraws&, double factor) {
  return wsola_stretch(wav, factor);
}

// Pitch x 2^(semitones / 12) at the same length: stretch the duration by the ratio (WSOLA keeps the pitch),
// then resample the longer (shorter) signal back into the original number of samples, which scales every
// frequency by the ratio. The ratio is realised as the integer rate pair R / 16000, R = round(16000 * ratio)
// (within 3e-5 of the exact ratio); the last sample or two of rounding are trimmed or padded with silence.
std::vector<float> pitch_shift(const std::vector<float>& wav, AugmentDraws&, double semitones) {
  const int rate = int(std::lround(kSampleRate * std::pow(2.0, semitones / 12)));
  std::vector<float> out = resample(wsola_stretch(wav, double(rate) / kSampleRate), rate, kSampleRate);
  out.resize(wav.size(), 0.0f);
  return out;
}

// SpecAugment masks: a band of w consecutive rows (time) or columns (frequency) set to 0, w uniform in
// 1 .. min(max_width, size), its start uniform over the positions where it fits.
void time_mask(float* spec, int64_t frames, int64_t bins, AugmentDraws& draws, double max_width) {
  const int64_t w = draws.integer(1, std::min(int64_t(max_width), frames));
  const int64_t t0 = draws.integer(0, frames - w);
  std::fill(spec + t0 * bins, spec + (t0 + w) * bins, 0.0f);
}

void freq_mask(float* spec, int64_t frames, int64_t bins, AugmentDraws& draws, double max_width) {
  const int64_t w = draws.integer(1, std::min(int64_t(max_width), bins));
  const int64_t f0 = draws.integer(0, bins - w);
  for (int64_t t = 0; t < frames; ++t) std::fill(spec + t * bins + f0, spec + t * bins + f0 + w, 0.0f);
}

constexpr AugmentTarget kWaveform = AugmentTarget::Waveform;
constexpr AugmentTarget kSpectrogram = AugmentTarget::Spectrogram;

}  // namespace

const std::vector<WaveformOp>& waveform_ops() {
  static const std::vector<WaveformOp> ops = {
      {{"noise_snr_10", kWaveform, "add white Gaussian noise at an SNR of exactly 10 dB"}, noise_snr, 10},
      {{"noise_snr_20", kWaveform, "add white Gaussian noise at an SNR of exactly 20 dB"}, noise_snr, 20},
      {{"time_shift", kWaveform, "delay or advance by up to 10 % of the length; silence fills the gap"}, time_shift,
       0},
      {{"gain_up_6db", kWaveform, "multiply the samples by 10^(6/20) (+6 dB, no clipping)"}, gain, +6},
      {{"gain_down_6db", kWaveform, "multiply the samples by 10^(-6/20) (-6 dB)"}, gain, -6},
      {{"pitch_up_2st", kWaveform, "raise the pitch by 2 semitones, same duration (WSOLA + resampling)"},
       pitch_shift, +2},
      {{"pitch_down_2st", kWaveform, "lower the pitch by 2 semitones, same duration (WSOLA + resampling)"},
       pitch_shift, -2},
      {{"time_stretch_0.9", kWaveform, "shorten to 0.9 x the length at the same pitch (WSOLA)"}, time_stretch, 0.9},
      {{"time_stretch_1.1", kWaveform, "lengthen to 1.1 x the length at the same pitch (WSOLA)"}, time_stretch, 1.1},
      {{"time_reverse", kWaveform, "play the clip backwards"}, time_reverse, 0},
  };
  return ops;
}

const std::vector<SpectrogramOp>& spectrogram_ops() {
  static const std::vector<SpectrogramOp> ops = {
      {{"specaug_time_mask", kSpectrogram, "SpecAugment: zero 1..30 consecutive frames at a random position"},
       time_mask, 30},
      {{"specaug_freq_mask", kSpectrogram, "SpecAugment: zero 1..25 consecutive frequency bins at a random position"},
       freq_mask, 25},
  };
  return ops;
}

}  // namespace augment_detail

std::vector<float> augment_waveform(const Augmentation& a, const std::vector<float>& wav, uint64_t seed) {
  using namespace augment_detail;
  if (a.target != AugmentTarget::Waveform) return wav;
  const WaveformOp& op = find_op(waveform_ops(), a, "augment_waveform");
  STGS_CHECK(!wav.empty(), "augment_waveform(", a.name, "): the waveform is empty");
  for (size_t i = 0; i < wav.size(); ++i)
    STGS_CHECK(std::isfinite(wav[i]), "augment_waveform(", a.name, "): sample ", i, " of ", wav.size(), " is ",
               wav[i]);
  AugmentDraws draws(seed);
  return op.apply(wav, draws, op.param);
}

Tensor augment_spectrogram(const Augmentation& a, const Tensor& spec, uint64_t seed) {
  using namespace augment_detail;
  STGS_CHECK(spec.defined(), "augment_spectrogram(", a.name, "): the spectrogram tensor is undefined");
  if (a.target != AugmentTarget::Spectrogram) return spec.clone();
  const SpectrogramOp& op = find_op(spectrogram_ops(), a, "augment_spectrogram");
  STGS_CHECK(spec.dim() == 2 && spec.dtype() == DType::F32 && spec.numel() > 0, "augment_spectrogram(", a.name,
             "): expected a (T, F) F32 spectrogram with T, F >= 1, got ", spec.str());
  Tensor out = spec.to(Device::cpu()).clone();
  AugmentDraws draws(seed);
  op.apply(out.data<float>(), out.size(0), out.size(1), draws, op.param);
  return out.to(spec.device());
}

}  // namespace stgs::data
