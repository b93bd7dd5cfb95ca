// Tests of the augmentation catalogue (data/augment.h) and `stgs augment`: the 36 entries, determinism per seed,
// shapes and ranges, and for each family a property that holds only when the transform does what its entry
// says (ramps moved by the stated geometry, hue angles, SNR, impulse shifts, sine frequencies, mask bands).
#include <catch2/catch.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "data/augment.h"
#include "engine/random.h"
#include "kernels/check.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::data;
using Catch::Contains;

namespace {

constexpr double kPi = std::numbers::pi;

// The augmentations that draw nothing: the seed must not change their output.
const std::set<std::string> kSeedFree = {"hflip",          "scale_0.9",        "scale_1.1",        "gaussian_blur_1",
                                         "gaussian_blur_2", "jpeg_30",          "jpeg_50",          "jpeg_75",
                                         "grayscale",       "gain_up_6db",      "gain_down_6db",    "pitch_up_2st",
                                         "pitch_down_2st",  "time_stretch_0.9", "time_stretch_1.1", "time_reverse"};

const Augmentation& aug(const std::string& name) { return find_augmentation(name); }

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

// (k, 3, s, s) uniform in [0.2, 0.8]: room on both sides before the [0, 1] clamp.
Tensor random_clip(int64_t k = 2, int64_t s = 33, uint64_t seed = 11) {
  Generator gen(seed);
  return rand({k, 3, s, s}, DType::F32, Device::cpu(), &gen, 0.2, 0.8);
}

// Channel 0 rises along x, channel 1 along y, channel 2 along x + y; every frame alike. Bilinear sampling
// reproduces a linear function exactly, so a warp's geometry can be read off the output's slopes.
Tensor ramp_clip(int64_t k = 2, int64_t s = 65) {
  Tensor t = empty({k, 3, s, s});
  float* p = t.data<float>();
  for (int64_t f = 0; f < k; ++f)
    for (int64_t y = 0; y < s; ++y)
      for (int64_t x = 0; x < s; ++x) {
        const float u = float(x) / float(s - 1), v = float(y) / float(s - 1);
        p[((f * 3 + 0) * s + y) * s + x] = 0.2f + 0.6f * u;
        p[((f * 3 + 1) * s + y) * s + x] = 0.2f + 0.6f * v;
        p[((f * 3 + 2) * s + y) * s + x] = 0.2f + 0.3f * (u + v);
      }
  return t;
}

// A smooth picture with some detail (sums of low and mid spatial frequencies), each frame a little different.
Tensor smooth_clip(int64_t k = 2, int64_t s = 64) {
  Tensor t = empty({k, 3, s, s});
  float* p = t.data<float>();
  for (int64_t f = 0; f < k; ++f)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < s; ++y)
        for (int64_t x = 0; x < s; ++x)
          p[((f * 3 + c) * s + y) * s + x] =
              float(0.5 + 0.25 * std::sin(0.11 * double(x + 3 * f) + double(c)) * std::cos(0.07 * double(y)) +
                    0.1 * std::sin(0.6 * double(x) + 0.4 * double(y) + double(c)));
  return t;
}

// Element (f, c, y, x) of a contiguous (K, 3, S, S) tensor.
float at(const Tensor& t, int64_t f, int64_t c, int64_t y, int64_t x) {
  const int64_t s = t.size(2);
  return t.data<float>()[((f * 3 + c) * s + y) * s + x];
}

std::vector<float> sine(double hz, int64_t n, double amplitude = 0.5) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(amplitude * std::sin(2 * kPi * hz * double(i) / 16000.0));
  return x;
}

// A voiced-speech-like test signal: three harmonics with a slow amplitude envelope and a little noise.
std::vector<float> voice(int64_t n = 8000) {
  Generator gen(5);
  const std::vector<float> noise = randn({n}, DType::F32, Device::cpu(), &gen, 0, 0.01).to_vector<float>();
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double t = double(i) / 16000.0, env = 0.6 + 0.4 * std::sin(2 * kPi * 3 * t);
    x[size_t(i)] = float(env * (0.3 * std::sin(2 * kPi * 150 * t) + 0.15 * std::sin(2 * kPi * 300 * t + 1) +
                                0.08 * std::sin(2 * kPi * 450 * t + 2)) +
                         noise[size_t(i)]);
  }
  return x;
}

double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return std::sqrt(s / double(x.size()));
}

// |Hann-windowed DFT| of x (16 kHz) at hz.
double dft_magnitude(const std::vector<float>& x, double hz) {
  std::complex<double> sum = 0;
  const double n = double(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = 0.5 - 0.5 * std::cos(2 * kPi * double(i) / n);
    sum += w * double(x[i]) * std::polar(1.0, -2 * kPi * hz * double(i) / 16000.0);
  }
  return std::abs(sum);
}

// The frequency in [lo, hi] Hz with the largest DFT magnitude: a 1 Hz scan refined to 0.05 Hz.
double dominant_frequency(const std::vector<float>& x, double lo, double hi) {
  double best = lo, best_mag = -1;
  for (double f = lo; f <= hi; f += 1.0)
    if (const double m = dft_magnitude(x, f); m > best_mag) best_mag = m, best = f;
  const double coarse = best;
  for (double f = coarse - 1; f <= coarse + 1; f += 0.05)
    if (const double m = dft_magnitude(x, f); m > best_mag) best_mag = m, best = f;
  return best;
}

}  // namespace

TEST_CASE("augment: the catalogue holds 36 unique names, 24 frames then 12 audio", "[augment]") {
  const std::vector<Augmentation>& all = augmentation_catalogue();
  REQUIRE(all.size() == 36);
  std::set<std::string> names;
  int frames = 0, waveform = 0, spectrogram = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const Augmentation& a = all[i];
    INFO(a.name);
    names.insert(a.name);
    CHECK((a.target == AugmentTarget::Frames) == (i < 24));
    frames += a.target == AugmentTarget::Frames;
    waveform += a.target == AugmentTarget::Waveform;
    spectrogram += a.target == AugmentTarget::Spectrogram;
    CHECK(!a.description.empty());
    CHECK(a.description.find('\n') == std::string::npos);
    CHECK(&find_augmentation(a.name) == &a);
  }
  CHECK(names.size() == 36);
  CHECK(frames == 24);
  CHECK(waveform == 10);
  CHECK(spectrogram == 2);
  // The waveform entries come before the spectrogram ones.
  CHECK(all[33].target == AugmentTarget::Waveform);
  CHECK(all[34].target == AugmentTarget::Spectrogram);
  for (const std::string& name : kSeedFree) CHECK(names.count(name) == 1);
}

TEST_CASE("augment: unknown names and mismatched targets are refused with the list of names", "[augment]") {
  CHECK_THROWS_AS(find_augmentation("rotate_99"), Error);
  CHECK_THROWS_WITH(find_augmentation("rotate_99"), Contains("unknown augmentation 'rotate_99'") &&
                                                        Contains("hflip") && Contains("specaug_freq_mask") &&
                                                        Contains("36 augmentations"));
  const Tensor clip = random_clip();
  CHECK_THROWS_WITH(augment_frames(Augmentation{"bogus", AugmentTarget::Frames, ""}, clip, 1),
                    Contains("unknown augmentation 'bogus'") && Contains("time_reverse"));
  CHECK_THROWS_WITH(augment_frames(Augmentation{"time_reverse", AugmentTarget::Frames, ""}, clip, 1),
                    Contains("'time_reverse' is a waveform augmentation"));
  CHECK_THROWS_WITH(augment_waveform(Augmentation{"hflip", AugmentTarget::Waveform, ""}, voice(), 1),
                    Contains("'hflip' is a frames augmentation"));
}

TEST_CASE("augment: bad inputs are refused with a clear error", "[augment]") {
  CHECK_THROWS_WITH(augment_frames(aug("hflip"), zeros({2, 1, 8, 8}), 1), Contains("expected (K, 3, H, W) F32"));
  CHECK_THROWS_WITH(augment_frames(aug("hflip"), zeros({3, 8, 8}), 1), Contains("expected (K, 3, H, W) F32"));
  CHECK_THROWS_WITH(augment_frames(aug("hflip"), zeros({1, 3, 8, 8}, DType::F64), 1), Contains("F32"));
  CHECK_THROWS_WITH(augment_frames(aug("rotate_5"), full({1, 3, 8, 8}, -0.4), 1),
                    Contains("expected values in [0, 1]") && Contains("before ImageNet normalisation"));
  CHECK_THROWS_WITH(augment_waveform(aug("gain_up_6db"), {}, 1), Contains("the waveform is empty"));
  CHECK_THROWS_WITH(augment_waveform(aug("time_reverse"), {0.1f, NAN, 0.2f}, 1), Contains("sample 1 of 3"));
  CHECK_THROWS_WITH(augment_spectrogram(aug("specaug_time_mask"), zeros({257}), 1),
                    Contains("expected a (T, F) F32 spectrogram"));
}

TEST_CASE("augment: every augmentation is deterministic per seed and keeps shapes and ranges", "[augment]") {
  const Tensor clip = random_clip();
  const std::vector<float> clip_values = values(clip);
  const std::vector<float> wav = voice();
  Generator gen(3);
  const Tensor spec = rand({120, 257}, DType::F32, Device::cpu(), &gen, 0.5, 1.5);
  const std::vector<float> spec_values = values(spec);

  for (const Augmentation& a : augmentation_catalogue()) {
    INFO(a.name);
    const bool seeded = kSeedFree.count(a.name) == 0;
    if (a.target == AugmentTarget::Frames) {
      const Tensor y1 = augment_frames(a, clip, 7), y2 = augment_frames(a, clip, 7), y3 = augment_frames(a, clip, 8);
      CHECK(y1.shape() == clip.shape());
      CHECK(y1.dtype() == DType::F32);
      const std::vector<float> v = values(y1);
      CHECK(std::all_of(v.begin(), v.end(), [](float x) { return x >= 0.0f && x <= 1.0f; }));
      CHECK(v == values(y2));
      CHECK((v != values(y3)) == seeded);
      CHECK(v != clip_values);
      CHECK(values(clip) == clip_values);  // the input is not modified
      const int threads = omp_get_max_threads();
      omp_set_num_threads(1);
      CHECK(values(augment_frames(a, clip, 7)) == v);  // the same on any thread count
      omp_set_num_threads(threads);
      CHECK(augment_waveform(a, wav, 7) == wav);
      CHECK(values(augment_spectrogram(a, spec, 7)) == spec_values);
    } else if (a.target == AugmentTarget::Waveform) {
      const std::vector<float> y1 = augment_waveform(a, wav, 7), y2 = augment_waveform(a, wav, 7),
                               y3 = augment_waveform(a, wav, 8);
      if (a.name.rfind("time_stretch_", 0) != 0) CHECK(y1.size() == wav.size());
      CHECK(std::all_of(y1.begin(), y1.end(), [](float x) { return std::isfinite(x); }));
      CHECK(y1 == y2);
      CHECK((y1 != y3) == seeded);
      CHECK(y1 != wav);
      CHECK(values(augment_frames(a, clip, 7)) == clip_values);
      CHECK(values(augment_spectrogram(a, spec, 7)) == spec_values);
    } else {
      const Tensor y1 = augment_spectrogram(a, spec, 7), y2 = augment_spectrogram(a, spec, 7),
                   y3 = augment_spectrogram(a, spec, 8);
      CHECK(y1.shape() == spec.shape());
      CHECK(values(y1) == values(y2));
      CHECK(values(y1) != values(y3));
      CHECK(values(y1) != spec_values);
      CHECK(values(spec) == spec_values);
      CHECK(augment_waveform(a, wav, 7) == wav);
      CHECK(values(augment_frames(a, clip, 7)) == clip_values);
    }
  }
}

TEST_CASE("augment: hflip mirrors exactly and twice is the identity; grayscale is the luminance", "[augment]") {
  const Tensor clip = random_clip(2, 10);
  const Tensor flipped = augment_frames(aug("hflip"), clip, 1);
  for (int64_t x = 0; x < 10; ++x) CHECK(at(flipped, 1, 2, 3, x) == at(clip, 1, 2, 3, 9 - x));
  CHECK(values(augment_frames(aug("hflip"), flipped, 2)) == values(clip));

  const Tensor grey = augment_frames(aug("grayscale"), clip, 1);
  for (int64_t f = 0; f < 2; ++f)
    for (int64_t y = 0; y < 10; ++y)
      for (int64_t x = 0; x < 10; ++x) {
        const float l = 0.299f * at(clip, f, 0, y, x) + 0.587f * at(clip, f, 1, y, x) + 0.114f * at(clip, f, 2, y, x);
        CHECK(at(grey, f, 0, y, x) == at(grey, f, 1, y, x));
        CHECK(at(grey, f, 1, y, x) == at(grey, f, 2, y, x));
        CHECK(at(grey, f, 0, y, x) == Approx(l).margin(1e-6));
      }
}

TEST_CASE("augment: geometric augmentations move a linear ramp as stated", "[augment]") {
  const int64_t s = 65, c = 32;  // odd size: the centre pixel is a fixed point of rotation and scaling
  const Tensor ramp = ramp_clip(2, s);
  const float step = 0.6f / float(s - 1);  // the ramp's slope per pixel
  // The output's slopes at the centre, by central differences over +/- 4 pixels (all inside the frame).
  auto slopes = [&](const Tensor& t, int64_t channel, int64_t f) {
    return std::pair<double, double>{(at(t, f, channel, c, c + 4) - at(t, f, channel, c, c - 4)) / 8.0 / step,
                                     (at(t, f, channel, c + 4, c) - at(t, f, channel, c - 4, c)) / 8.0 / step};
  };
  for (const char* name : {"rotate_5", "rotate_10", "rotate_15"}) {
    const double limit = std::stod(std::string(name).substr(7));
    std::set<float> angles;
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      INFO(name << " seed " << seed);
      const Tensor out = augment_frames(aug(name), ramp, seed);
      for (int64_t f = 0; f < 2; ++f) CHECK(at(out, f, 0, c, c) == at(ramp, f, 0, c, c));
      // The x-ramp read through a rotation by theta has the gradient (cos theta, sin theta); |theta| <= limit.
      const auto [gx, gy] = slopes(out, 0, 0);
      CHECK(std::hypot(gx, gy) == Approx(1.0).epsilon(1e-3));
      const double degrees = std::atan2(std::abs(gy), gx) * 180 / kPi;
      CHECK(degrees <= limit + 1e-3);
      angles.insert(float(std::atan2(gy, gx)));
      CHECK(slopes(out, 0, 1).first == Approx(gx).margin(1e-6));  // the same transform on every frame
    }
    CHECK(angles.size() == 6);
  }
  for (double factor : {0.9, 1.1}) {
    const std::string name = factor < 1 ? "scale_0.9" : "scale_1.1";
    const Tensor out = augment_frames(aug(name), ramp, 1);
    INFO(name);
    CHECK(at(out, 0, 1, c, c) == at(ramp, 0, 1, c, c));
    CHECK(slopes(out, 0, 0).first == Approx(1 / factor).epsilon(1e-4));
    CHECK(slopes(out, 1, 0).second == Approx(1 / factor).epsilon(1e-4));
  }
  for (const char* name : {"translate_5", "translate_10"}) {
    const double limit = std::stod(std::string(name).substr(10)) / 100 * double(s);
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      INFO(name << " seed " << seed);
      const Tensor out = augment_frames(aug(name), ramp, seed);
      // A pure shift: the ramp keeps its slope and moves by dx (dy) pixels, the same at every interior pixel.
      const double dx = (at(ramp, 0, 0, c, c) - at(out, 0, 0, c, c)) / step;
      const double dy = (at(ramp, 0, 1, c, c) - at(out, 0, 1, c, c)) / step;
      CHECK(std::abs(dx) <= limit + 1e-3);
      CHECK(std::abs(dy) <= limit + 1e-3);
      CHECK(std::hypot(dx, dy) > 1e-3);
      for (int64_t y = 8; y < s - 8; y += 7)
        for (int64_t x = 8; x < s - 8; x += 7) {
          CHECK((at(ramp, 1, 0, y, x) - at(out, 1, 0, y, x)) / step == Approx(dx).margin(1e-3));
          CHECK((at(ramp, 1, 1, y, x) - at(out, 1, 1, y, x)) / step == Approx(dy).margin(1e-3));
        }
    }
  }
}

TEST_CASE("augment: brightness, contrast, saturation and hue change what they name, by the stated amount",
          "[augment]") {
  const Tensor clip = random_clip();
  auto mean = [](const Tensor& t) {
    const std::vector<float> v = values(t);
    double s = 0;
    for (float x : v) s += x;
    return s / double(v.size());
  };
  auto stddev = [&](const Tensor& t) {
    const double m = mean(t);
    const std::vector<float> v = values(t);
    double s = 0;
    for (float x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size()));
  };
  // Mean distance of the channels from each pixel's grey.
  auto colourfulness = [](const Tensor& t) {
    double s = 0;
    const int64_t k = t.size(0), n = t.size(2) * t.size(3);
    const float* p = t.data<float>();
    for (int64_t f = 0; f < k; ++f)
      for (int64_t i = 0; i < n; ++i) {
        const float r = p[(f * 3) * n + i], g = p[(f * 3 + 1) * n + i], b = p[(f * 3 + 2) * n + i];
        const float l = 0.299f * r + 0.587f * g + 0.114f * b;
        s += std::abs(r - l) + std::abs(g - l) + std::abs(b - l);
      }
    return s;
  };
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    // Input in [0.2, 0.8] and a delta of at most 0.2: nothing clips, so the mean moves by exactly the delta.
    const double up = mean(augment_frames(aug("brightness_up"), clip, seed)) - mean(clip);
    const double down = mean(augment_frames(aug("brightness_down"), clip, seed)) - mean(clip);
    CHECK(up >= 0.1 - 1e-5);
    CHECK(up <= 0.2 + 1e-5);
    CHECK(down <= -0.1 + 1e-5);
    CHECK(down >= -0.2 - 1e-5);
    CHECK(stddev(augment_frames(aug("contrast_up"), clip, seed)) > 1.15 * stddev(clip));
    CHECK(stddev(augment_frames(aug("contrast_down"), clip, seed)) < 0.85 * stddev(clip));
    CHECK(colourfulness(augment_frames(aug("saturation_up"), clip, seed)) > 1.2 * colourfulness(clip));
    CHECK(colourfulness(augment_frames(aug("saturation_down"), clip, seed)) < 0.75 * colourfulness(clip));
  }

  // Hue on one colour, HSV (0 deg, 0.625, 0.8): value and saturation stay, and the rotated hue puts the
  // middle channel at 0.3 + 0.5 * (angle / 60 deg): in [0.383, 0.467] for angles of 10..20 degrees, green
  // rising for hue_up (towards yellow) and blue for hue_down (towards magenta).
  Tensor red = empty({1, 3, 4, 4});
  float* p = red.data<float>();
  std::fill(p, p + 16, 0.8f);
  std::fill(p + 16, p + 48, 0.3f);
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const Tensor up = augment_frames(aug("hue_up"), red, seed), down = augment_frames(aug("hue_down"), red, seed);
    CHECK(at(up, 0, 0, 1, 2) == Approx(0.8f).margin(1e-6));
    CHECK(at(up, 0, 2, 1, 2) == Approx(0.3f).margin(1e-6));
    CHECK(at(up, 0, 1, 1, 2) >= 0.3833f - 1e-4f);
    CHECK(at(up, 0, 1, 1, 2) <= 0.4667f + 1e-4f);
    CHECK(at(down, 0, 0, 1, 2) == Approx(0.8f).margin(1e-6));
    CHECK(at(down, 0, 1, 1, 2) == Approx(0.3f).margin(1e-6));
    CHECK(at(down, 0, 2, 1, 2) >= 0.3833f - 1e-4f);
    CHECK(at(down, 0, 2, 1, 2) <= 0.4667f + 1e-4f);
  }
}

TEST_CASE("augment: blur keeps ramps and smooths noise; pixel noise has its sigma; JPEG error falls with quality",
          "[augment]") {
  // A symmetric kernel summing to 1 leaves a linear ramp unchanged away from the border.
  const Tensor ramp = ramp_clip(1, 40);
  const Tensor clip = random_clip(1, 40);
  // Smoothing: the summed squared difference between horizontal neighbours falls, more with the wider blur.
  auto roughness = [](const Tensor& t) {
    double r = 0;
    for (int64_t y = 0; y < 40; ++y)
      for (int64_t x = 1; x < 40; ++x) r += std::pow(at(t, 0, 0, y, x) - at(t, 0, 0, y, x - 1), 2);
    return r;
  };
  double previous = roughness(clip);
  for (const char* name : {"gaussian_blur_1", "gaussian_blur_2"}) {
    INFO(name);
    const Tensor out = augment_frames(aug(name), ramp, 1);
    for (int64_t y = 7; y < 33; y += 5)
      for (int64_t x = 7; x < 33; x += 5) CHECK(at(out, 0, 2, y, x) == Approx(at(ramp, 0, 2, y, x)).margin(1e-5));
    const double r = roughness(augment_frames(aug(name), clip, 1));
    CHECK(r < 0.3 * previous);
    previous = r;
  }

  const Tensor grey = full({2, 3, 48, 48}, 0.5);
  for (double sigma : {5.0, 10.0}) {
    const Tensor out = augment_frames(aug(sigma == 5 ? "gaussian_noise_5" : "gaussian_noise_10"), grey, 3);
    const std::vector<float> v = values(out);
    double sum = 0, sum_sq = 0;
    for (float x : v) sum += x - 0.5, sum_sq += (x - 0.5) * (x - 0.5);
    const double n = double(v.size());
    CHECK(sum / n == Approx(0).margin(0.003));
    CHECK(std::sqrt(sum_sq / n) == Approx(sigma / 255).epsilon(0.05));
    CHECK(at(out, 0, 0, 5, 5) != at(out, 1, 0, 5, 5));  // a noise field per frame
  }

  const Tensor picture = smooth_clip();
  const std::vector<float> original = values(picture);
  std::vector<double> errors;
  for (const char* name : {"jpeg_30", "jpeg_50", "jpeg_75"}) {
    const std::vector<float> v = values(augment_frames(aug(name), picture, 1));
    double e = 0;
    for (size_t i = 0; i < v.size(); ++i) e += std::abs(v[i] - original[i]);
    errors.push_back(e / double(v.size()));
  }
  INFO("mean absolute JPEG errors at q 30, 50, 75: " << errors[0] << ", " << errors[1] << ", " << errors[2]);
  CHECK(errors[0] > errors[1]);
  CHECK(errors[1] > errors[2]);
  CHECK(errors[2] > 1.0 / 255);  // more than the 8-bit rounding alone
  CHECK(errors[0] < 0.06);       // still the same picture (about 11 of 255 levels)
}

TEST_CASE("augment: noise SNR, gain, time reverse and time shift", "[augment]") {
  const std::vector<float> wav = voice(16000);
  for (double snr : {10.0, 20.0}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      const std::vector<float> out = augment_waveform(aug(snr == 10 ? "noise_snr_10" : "noise_snr_20"), wav, seed);
      std::vector<float> noise(wav.size());
      for (size_t i = 0; i < wav.size(); ++i) noise[i] = out[i] - wav[i];
      CHECK(20 * std::log10(rms(wav) / rms(noise)) == Approx(snr).margin(0.5));
    }
  }
  const std::vector<float> silence(4000, 0.0f);
  CHECK(augment_waveform(aug("noise_snr_10"), silence, 1) == silence);

  CHECK(rms(augment_waveform(aug("gain_up_6db"), wav, 1)) / rms(wav) == Approx(std::pow(10.0, 6.0 / 20)).epsilon(1e-5));
  CHECK(rms(augment_waveform(aug("gain_down_6db"), wav, 1)) / rms(wav) ==
        Approx(std::pow(10.0, -6.0 / 20)).epsilon(1e-5));

  const std::vector<float> reversed = augment_waveform(aug("time_reverse"), wav, 1);
  CHECK(reversed.front() == wav.back());
  CHECK(reversed[100] == wav[wav.size() - 101]);
  CHECK(augment_waveform(aug("time_reverse"), reversed, 2) == wav);

  // An impulse at 4000 of 8000 samples moves by d, 1 <= |d| <= 800; a ramp under the same seed moves alike.
  std::vector<float> impulse(8000, 0.0f), ramp(8000);
  impulse[4000] = 1.0f;
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = float(i + 1) / 8000.0f;
  std::set<int64_t> shifts;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    INFO("seed " << seed);
    const std::vector<float> out = augment_waveform(aug("time_shift"), impulse, seed);
    REQUIRE(std::count(out.begin(), out.end(), 0.0f) == 7999);
    const int64_t d = int64_t(std::max_element(out.begin(), out.end()) - out.begin()) - 4000;
    CHECK(out[size_t(4000 + d)] == 1.0f);
    CHECK(std::abs(d) >= 1);
    CHECK(std::abs(d) <= 800);
    shifts.insert(d);
    const std::vector<float> moved = augment_waveform(aug("time_shift"), ramp, seed);
    for (int64_t i = 0; i < 8000; ++i) {
      const int64_t from = i - d;
      if (moved[size_t(i)] != (from >= 0 && from < 8000 ? ramp[size_t(from)] : 0.0f)) {
        FAIL("sample " << i << " is " << moved[size_t(i)] << " after a shift by " << d);
      }
    }
  }
  CHECK(shifts.size() == 8);
}

TEST_CASE("augment: pitch shift moves a sine's frequency by the ratio; time stretch changes only the length",
          "[augment]") {
  const std::vector<float> tone = sine(440, 16000);
  REQUIRE(dominant_frequency(tone, 300, 700) == Approx(440).margin(0.1));
  for (double semitones : {2.0, -2.0}) {
    const std::string name = semitones > 0 ? "pitch_up_2st" : "pitch_down_2st";
    INFO(name);
    const std::vector<float> out = augment_waveform(aug(name), tone, 1);
    CHECK(out.size() == tone.size());
    CHECK(dominant_frequency(out, 300, 700) == Approx(440 * std::pow(2.0, semitones / 12)).epsilon(0.003));
    // WSOLA lines the frames' phases up: no cancellation between overlapping frames, so the level stays
    // (checked away from the ends, where resampling's filter and the silence padding taper it).
    const std::vector<float> middle(out.begin() + 2000, out.end() - 2000);
    CHECK(rms(middle) == Approx(0.5 / std::sqrt(2.0)).epsilon(0.05));
  }
  for (double factor : {0.9, 1.1}) {
    const std::string name = factor < 1 ? "time_stretch_0.9" : "time_stretch_1.1";
    INFO(name);
    const std::vector<float> out = augment_waveform(aug(name), tone, 1);
    CHECK(out.size() == size_t(std::llround(16000 * factor)));
    CHECK(dominant_frequency(out, 300, 700) == Approx(440).epsilon(0.003));
    const std::vector<float> middle(out.begin() + 1000, out.end() - 1000);
    CHECK(rms(middle) == Approx(0.5 / std::sqrt(2.0)).epsilon(0.05));
    // Odd lengths too; a signal shorter than one WSOLA frame still gets round(n * factor) samples.
    CHECK(augment_waveform(aug(name), sine(200, 1001), 1).size() == size_t(std::llround(1001 * factor)));
    CHECK(augment_waveform(aug(name), std::vector<float>(37, 0.25f), 1).size() == size_t(std::llround(37 * factor)));
  }
}

TEST_CASE("augment: SpecAugment masks zero exactly one contiguous band within the stated width", "[augment]") {
  Generator gen(9);
  for (const auto& [frames, bins] : {std::pair<int64_t, int64_t>{300, 257}, {12, 20}}) {
    const Tensor spec = rand({frames, bins}, DType::F32, Device::cpu(), &gen, 0.5, 1.5);  // no zero anywhere
    const float* in = spec.data<float>();
    for (const char* name : {"specaug_time_mask", "specaug_freq_mask"}) {
      const bool time = std::string(name) == "specaug_time_mask";
      const int64_t lines = time ? frames : bins, across = time ? bins : frames;
      const int64_t max_width = std::min<int64_t>(time ? 30 : 25, lines);
      std::set<int64_t> widths;
      for (uint64_t seed = 1; seed <= 20; ++seed) {
        INFO(name << " on " << frames << "x" << bins << ", seed " << seed);
        const Tensor out = augment_spectrogram(aug(name), spec, seed);
        const float* o = out.data<float>();
        // Every cell is either untouched or 0, and a line (frame or bin) is zeroed whole or not at all.
        std::vector<int64_t> zeroed;
        int64_t changed = 0, partly_zeroed = 0;
        for (int64_t l = 0; l < lines; ++l) {
          int64_t zeros = 0;
          for (int64_t j = 0; j < across; ++j) {
            const int64_t i = time ? l * bins + j : j * bins + l;
            zeros += o[i] == 0.0f;
            changed += o[i] != 0.0f && o[i] != in[i];
          }
          partly_zeroed += zeros != 0 && zeros != across;
          if (zeros == across) zeroed.push_back(l);
        }
        CHECK(changed == 0);
        CHECK(partly_zeroed == 0);
        REQUIRE(!zeroed.empty());
        const int64_t width = int64_t(zeroed.size());
        CHECK(zeroed.back() - zeroed.front() + 1 == width);  // contiguous
        CHECK(width <= max_width);
        widths.insert(width);
      }
      CHECK(widths.size() >= 3);
    }
  }
}

TEST_CASE("stgs augment: --list prints the 36 rows; --help; usage errors", "[augment][cli]") {
  testing::CommandResult r = testing::run_stgs("augment --list");
  REQUIRE(r.status == 0);
  std::istringstream lines(r.output);
  const std::regex row(R"(\s*(\d+)\s+(\S+)\s+(frames|waveform|spectrogram)\s+\S.*)");
  int rows = 0;
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, row)) continue;
    const Augmentation& a = augmentation_catalogue().at(size_t(std::stoi(m[1])));
    CHECK(m[2] == a.name);
    CHECK(m[3] == augment_target_name(a.target));
    CHECK_THAT(line, Contains(a.description));
    ++rows;
  }
  CHECK(rows == 36);
  CHECK_THAT(r.output, Contains("36 augmentations: 24 frames, 10 waveform, 2 spectrogram"));

  r = testing::run_stgs("augment --help");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("usage: stgs augment --list"));
  r = testing::run_stgs("augment");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Contains("stgs augment: --list is required"));
  r = testing::run_stgs("augment --frobnicate");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Contains("unknown flag --frobnicate"));
  CHECK_THAT(testing::run_stgs("--help").output, Contains("augment"));
}
