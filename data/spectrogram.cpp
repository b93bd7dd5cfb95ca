// Spectrograms, their per-bin statistics and windows (see spectrogram.h).
#include "data/spectrogram.h"

#include <fftw3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <numbers>

#include "engine/io/safetensors.h"
#include "engine/random.h"
#include "kernels/check.h"

namespace stgs::data {

namespace {

// Every FFTW array here is 64-byte aligned, so the alignment the plan was made for always matches the
// arrays it is later executed on (a requirement of the new-array execute functions).
constexpr size_t kAlign = 64;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using AlignedArray = std::unique_ptr<T[], AlignedFree>;

template <class T>
AlignedArray<T> aligned_array(size_t n) {
  const size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
  T* p = static_cast<T*>(std::aligned_alloc(kAlign, bytes));
  STGS_CHECK(p != nullptr, "spectrogram: allocating ", bytes, " bytes failed");
  return AlignedArray<T>(p);
}

// The one real-to-complex plan of size n_fft, made on first use and destroyed at exit.
class R2cPlan {
 public:
  R2cPlan() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    auto in = aligned_array<float>(kNfft);
    auto out = aligned_array<fftwf_complex>(kFreqBins);
    // ESTIMATE picks the algorithm by rule, not by timing, so every run computes bit-identical spectra.
    plan_ = fftwf_plan_dft_r2c_1d(kNfft, in.get(), out.get(), FFTW_ESTIMATE);
    STGS_CHECK(plan_ != nullptr, "FFTW could not plan a real-to-complex transform of size ", kNfft);
  }
  ~R2cPlan() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftwf_destroy_plan(plan_);
  }
  R2cPlan(const R2cPlan&) = delete;
  R2cPlan& operator=(const R2cPlan&) = delete;
  fftwf_plan get() const { return plan_; }

 private:
  fftwf_plan plan_ = nullptr;
};

const R2cPlan& r2c_plan() {
  static const R2cPlan plan;  // initialised once, thread-safely
  return plan;
}

// Periodic Hann of 400 samples (scipy get_window('hann', 400, fftbins=True)), zero-padded centred to 512:
// window[56 + i] = 0.5 - 0.5 cos(2 pi i / 400), zeros elsewhere.
constexpr int kWinOffset = (kNfft - kWinLength) / 2;

const std::array<float, kWinLength>& hann_window() {
  static const std::array<float, kWinLength> window = [] {
    std::array<float, kWinLength> w{};
    for (int i = 0; i < kWinLength; ++i) w[size_t(i)] = float(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / kWinLength));
    return w;
  }();
  return window;
}

// Index into x[0, n) of sample i of the reflect-padded signal (numpy's 'reflect': the edge sample is not
// repeated, x[-1] = x[1]); repeated reflection, i.e. period 2(n - 1), when the padding exceeds the signal.
int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

constexpr double kStdFloor = 1e-5;

}  // namespace

std::mutex& fftw_planner_mutex() {
  static std::mutex mutex;
  return mutex;
}

double normalize_volume(std::vector<float>& wav, double target_dbfs) {
  if (wav.empty()) return 1.0;
  double sum_sq = 0;
  for (float v : wav) sum_sq += double(v) * double(v);
  const double rms = std::sqrt(sum_sq / double(wav.size()));
  if (rms == 0) return 1.0;  // silence: AutoSpeech's formula would multiply 0 by infinity
  const double change_db = target_dbfs - 20.0 * std::log10(rms);
  if (change_db <= 0) return 1.0;  // increase only
  const double gain = std::pow(10.0, change_db / 20.0);
  for (float& v : wav) v = float(double(v) * gain);
  return gain;
}

Tensor spectrogram(const float* wav, int64_t n, PadMode pad) {
  STGS_CHECK(n >= 1, "spectrogram: the signal is empty (needs at least one sample)");
  const int64_t frames = spectrogram_frames(n);
  Tensor spec = empty({frames, kFreqBins});
  float* out = spec.data<float>();
  const fftwf_plan plan = r2c_plan().get();
  const auto& window = hann_window();
  auto frame = aligned_array<float>(kNfft);
  auto bins = aligned_array<fftwf_complex>(kFreqBins);
  std::fill_n(frame.get(), kNfft, 0.0f);  // the window's zero padding stays zero
  for (int64_t t = 0; t < frames; ++t) {
    // Frame t covers samples [t * hop - n_fft / 2, t * hop + n_fft / 2) of the signal; only the 400 under the
    // window's non-zero part are read.
    const int64_t first = t * kHopLength - kNfft / 2 + kWinOffset;
    float* windowed = frame.get() + kWinOffset;
    if (first >= 0 && first + kWinLength <= n) {  // every frame but the first and last two or so
      for (int i = 0; i < kWinLength; ++i) windowed[i] = wav[first + i] * window[size_t(i)];
    } else {
      for (int i = 0; i < kWinLength; ++i) {
        const int64_t s = first + i;
        const float v = s >= 0 && s < n ? wav[s] : pad == PadMode::Reflect ? wav[reflect_index(s, n)] : 0.0f;
        windowed[i] = v * window[size_t(i)];
      }
    }
    fftwf_execute_dft_r2c(plan, frame.get(), bins.get());
    float* row = out + t * kFreqBins;
    // Magnitudes of spectra of [-1, 1] audio are far from float overflow, so no need for hypot's scaling.
    for (int k = 0; k < kFreqBins; ++k) {
      const float re = bins[size_t(k)][0], im = bins[size_t(k)][1];
      row[k] = std::sqrt(re * re + im * im);
    }
  }
  return spec;
}

Tensor spectrogram_from_file(const std::string& path, PadMode pad) {
  std::vector<float> wav = load_audio_16k(path);
  normalize_volume(wav);
  return spectrogram(wav, pad);
}

// ---- per-bin statistics ---------------------------------------------------------------------------------

SpectrogramStats::SpectrogramStats() : sum_(kFreqBins, 0.0), sum_sq_(kFreqBins, 0.0) {}

void SpectrogramStats::add(const Tensor& spec) {
  STGS_CHECK(spec.dim() == 2 && spec.size(1) == kFreqBins && is_floating(spec.dtype()),
             "SpectrogramStats::add: expected a (T, ", kFreqBins, ") F32 or F64 spectrogram, got ", spec.str());
  const Tensor x = spec.to(Device::cpu()).to(DType::F64).contiguous();
  const double* p = x.data<double>();
  const int64_t t_count = x.size(0);
  for (int64_t t = 0; t < t_count; ++t)
    for (int k = 0; k < kFreqBins; ++k) {
      const double v = p[t * kFreqBins + k];
      sum_[size_t(k)] += v;
      sum_sq_[size_t(k)] += v * v;
    }
  frames_ += t_count;
}

void SpectrogramStats::merge(const SpectrogramStats& other) {
  for (int k = 0; k < kFreqBins; ++k) {
    sum_[size_t(k)] += other.sum_[size_t(k)];
    sum_sq_[size_t(k)] += other.sum_sq_[size_t(k)];
  }
  frames_ += other.frames_;
}

Tensor SpectrogramStats::mean() const {
  STGS_CHECK(frames_ > 0, "SpectrogramStats::mean: no frames were added");
  std::vector<float> m(kFreqBins);
  for (int k = 0; k < kFreqBins; ++k) m[size_t(k)] = float(sum_[size_t(k)] / double(frames_));
  return from_vector(m, {kFreqBins});
}

Tensor SpectrogramStats::std() const {
  STGS_CHECK(frames_ > 0, "SpectrogramStats::std: no frames were added");
  std::vector<float> s(kFreqBins);
  for (int k = 0; k < kFreqBins; ++k) {
    const double mean = sum_[size_t(k)] / double(frames_);
    // E[x^2] - mean^2 can come out a rounding error below zero for a constant bin.
    s[size_t(k)] = float(std::sqrt(std::max(0.0, sum_sq_[size_t(k)] / double(frames_) - mean * mean)));
  }
  return from_vector(s, {kFreqBins});
}

Tensor SpectrogramStats::normalize(const Tensor& spec) const {
  STGS_CHECK(spec.dim() == 2 && spec.size(1) == kFreqBins && is_floating(spec.dtype()),
             "SpectrogramStats::normalize: expected a (T, ", kFreqBins, ") spectrogram, got ", spec.str());
  const std::vector<float> mean = this->mean().to_vector<float>(), sd = this->std().to_vector<float>();
  std::vector<float> inv_std(kFreqBins);
  for (int k = 0; k < kFreqBins; ++k) inv_std[size_t(k)] = float(1.0 / std::max(double(sd[size_t(k)]), kStdFloor));
  const Tensor x = spec.to(Device::cpu()).to(DType::F32).contiguous();
  Tensor out = empty(x.shape());
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t t = 0; t < x.size(0); ++t)
    for (int k = 0; k < kFreqBins; ++k)
      dst[t * kFreqBins + k] = (src[t * kFreqBins + k] - mean[size_t(k)]) * inv_std[size_t(k)];
  return out;
}

namespace {

const char* const kStatsFormat = "stgs-spectrogram-stats";

// The recipe a statistics file was computed with; load() refuses a file whose recipe differs.
std::map<std::string, std::string> recipe_metadata() {
  return {{"format", kStatsFormat},
          {"version", "1"},
          {"sample_rate", std::to_string(kSampleRate)},
          {"n_fft", std::to_string(kNfft)},
          {"win_length", std::to_string(kWinLength)},
          {"hop_length", std::to_string(kHopLength)},
          {"target_dbfs", std::to_string(int(kTargetDbfs))}};
}

}  // namespace

void SpectrogramStats::save(const std::string& path) const {
  STGS_CHECK(frames_ > 0, "SpectrogramStats::save '", path, "': no frames were added");
  save_safetensors(path,
                   {{"sum", from_vector(sum_, {kFreqBins})},
                    {"sum_sq", from_vector(sum_sq_, {kFreqBins})},
                    {"frames", from_vector(std::vector<int64_t>{frames_}, Shape{})},
                    {"mean", mean()},
                    {"std", std()}},
                   recipe_metadata());
}

SpectrogramStats SpectrogramStats::load(const std::string& path) {
  const SafetensorsFile file = load_safetensors(path);
  for (const auto& [key, expected] : recipe_metadata()) {
    const auto it = file.metadata.find(key);
    STGS_CHECK(it != file.metadata.end() && it->second == expected, "spectrogram statistics '", path, "': metadata ",
               key, " is ", it == file.metadata.end() ? "missing" : "'" + it->second + "'", ", expected '", expected,
               "' (statistics of another recipe or not a statistics file)");
  }
  SpectrogramStats stats;
  for (auto [name, target] : {std::pair{"sum", &stats.sum_}, std::pair{"sum_sq", &stats.sum_sq_}}) {
    const Tensor t = file.get(name);
    STGS_CHECK(t.dtype() == DType::F64 && t.shape() == Shape{kFreqBins}, "spectrogram statistics '", path, "': ",
               name, " is ", t.str(), ", expected F64[", kFreqBins, "]");
    *target = t.to_vector<double>();
  }
  const Tensor frames = file.get("frames");
  STGS_CHECK(frames.dtype() == DType::I64 && frames.numel() == 1, "spectrogram statistics '", path,
             "': frames is ", frames.str(), ", expected an I64 scalar");
  stats.frames_ = frames.to_vector<int64_t>()[0];
  STGS_CHECK(stats.frames_ > 0, "spectrogram statistics '", path, "': frames is ", stats.frames_, ", expected > 0");
  // Sums of a real spectrogram: finite, and (Cauchy-Schwarz) sum_sq * frames >= sum^2 in every bin, with
  // room for rounding. Anything else would normalise every clip to garbage without an error.
  for (int64_t f = 0; f < kFreqBins; ++f) {
    const double s = stats.sum_[size_t(f)], q = stats.sum_sq_[size_t(f)];
    STGS_CHECK(std::isfinite(s) && std::isfinite(q) && q * double(stats.frames_) >= s * s * (1 - 1e-9),
               "spectrogram statistics '", path, "': bin ", f, " has sum ", s, " and sum_sq ", q, " over ",
               stats.frames_, " frames, which no spectrogram gives (corrupt file?)");
  }
  return stats;
}

// ---- windows --------------------------------------------------------------------------------------------

Tensor crop_window(const Tensor& spec, int64_t frames, Generator* gen) {
  STGS_CHECK(spec.dim() == 2 && spec.size(0) >= 1 && spec.dtype() == DType::F32, "crop_window: expected a (T >= 1, F)",
             " F32 spectrogram, got ", spec.str());
  STGS_CHECK(frames >= 1, "crop_window: window length ", frames, " must be >= 1");
  const Tensor x = spec.to(Device::cpu()).contiguous();
  const int64_t t_count = x.size(0), bins = x.size(1);
  // Possible starts: [0, T - frames] for a long clip; any phase [0, T - 1] of the tiling for a short one.
  const int64_t last_start = t_count >= frames ? t_count - frames : t_count - 1;
  int64_t start = t_count >= frames ? last_start / 2 : 0;
  if (gen != nullptr) {
    const double u = rand({}, DType::F64, Device::cpu(), gen).item();  // in (0, 1)
    start = std::min(int64_t(u * double(last_start + 1)), last_start);
  }
  Tensor out = empty({frames, bins});
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t t = 0; t < frames; ++t) std::copy_n(src + (start + t) % t_count * bins, bins, dst + t * bins);
  return out;
}

}  // namespace stgs::data
