// The synthetic audio-visual deepfake set (see synthetic.h): per-clip parameters from counter-based random
// streams, the utterance, the voice and its vocoder resynthesis, the face and its swap, the files, the manifest.
#include "data/synthetic.h"

#include <omp.h>
#include <sndfile.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "kernels/check.h"
#include "kernels/philox.h"

namespace stgs::data {
namespace {

namespace fs = std::filesystem;
constexpr double kPi = 3.14159265358979323846;
constexpr double kFs = kSynthSampleRate;

// ---- random streams -----------------------------------------------------------------------------------

// SplitMix64's finaliser: a bijection of 64-bit words. Keys are mix64(base + index), so distinct clip
// indices never share a key or an id.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// What a key is for; set-level keys are mix64(mix64(seed) ^ domain), clip-level ones derive from the clip key.
enum Domain : uint64_t { kIdDomain = 1, kClipDomain, kShuffleDomain };
enum Purpose : uint64_t { kParams = 1, kUtterance, kLipUtterance, kVoice, kNoise, kTexture, kFrame0 = 1000 };

uint64_t set_key(uint64_t seed, Domain d) { return mix64(mix64(seed) ^ d); }
uint64_t clip_key(uint64_t seed, int64_t index) { return mix64(set_key(seed, kClipDomain) + uint64_t(index)); }
uint64_t purpose_key(uint64_t clip, uint64_t purpose) { return mix64(clip ^ mix64(purpose)); }

// Sequential draws from one Philox key: the n-th draw is element n of the key's sequence (lanes of one block
// are used in turn), so a stream yields the same values whichever thread runs it.
class Stream {
 public:
  explicit Stream(uint64_t key) : key_(key) {}
  double uniform() {  // in (0, 1)
    if (lane_ == 4) block_ = kernels::philox_block(key_, next_block_++), lane_ = 0;
    return kernels::uniform_from_bits_f64(block_.v[lane_++]);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal by Marsaglia's polar method; each accepted pair gives two values, the second kept.
  double normal() {
    if (has_spare_) return has_spare_ = false, spare_;
    double u, v, q;
    do {
      u = 2 * uniform() - 1, v = 2 * uniform() - 1, q = u * u + v * v;
    } while (q >= 1);
    const double k = std::sqrt(-2 * std::log(q) / q);
    spare_ = v * k, has_spare_ = true;
    return u * k;
  }
  double sign() { return uniform() < 0.5 ? -1.0 : 1.0; }

 private:
  uint64_t key_, next_block_ = 0;
  kernels::Philox4 block_{};
  int lane_ = 4;
  double spare_ = 0;
  bool has_spare_ = false;
};

// ---- the utterance ------------------------------------------------------------------------------------

// Syllables of one utterance: an optional fricative burst over [start, voiced) then a voiced nucleus over
// [voiced, end) on one vowel. Leading and trailing silences come from the same ranges for every category.
struct Syllable {
  double start, voiced, end, amp;
  int vowel;
};

std::vector<Syllable> draw_utterance(Stream& r, double duration, double rate) {
  const double lead = r.uniform(0.15, 0.45), stop = duration - r.uniform(0.15, 0.45);
  std::vector<Syllable> out;
  for (double t = lead;;) {
    const double length = r.uniform(0.55, 1.0) / rate, fricative = r.uniform() < 0.5 ? r.uniform(0.03, 0.08) : 0.0;
    const double amp = r.uniform(0.55, 1.0), gap = r.uniform(0.02, 0.06), pause = r.uniform(0.12, 0.35);
    const bool word_end = r.uniform() < 0.25;
    const int vowel = int(r.uniform() * 5);
    if (t + length > stop) break;
    out.push_back({t, t + std::min(fricative, 0.4 * length), t + length, amp, vowel});
    t += length + (word_end ? pause : gap);
  }
  if (out.empty()) out.push_back({lead, lead, stop, 1.0, 0});  // a very short clip: one syllable fills it
  return out;
}

// Per-sample envelopes, shape (n,): voiced amplitude (a sine lobe to the power 0.6 over each nucleus, so the
// onset is quick), fricative amplitude (a sine lobe over each burst) and the vowel being spoken.
struct Envelopes {
  std::vector<float> voiced, fricative;
  std::vector<uint8_t> vowel;
};

Envelopes envelopes(const std::vector<Syllable>& syllables, int64_t n) {
  Envelopes e{std::vector<float>(n, 0.f), std::vector<float>(n, 0.f), std::vector<uint8_t>(n, 0)};
  for (size_t k = 0; k < syllables.size(); ++k) {
    const Syllable& s = syllables[k];
    const int64_t a = int64_t(s.start * kFs), b = int64_t(s.voiced * kFs), c = std::min(n, int64_t(s.end * kFs));
    for (int64_t i = a; i < b; ++i) e.fricative[i] = float(0.8 * std::sin(kPi * double(i - a) / double(b - a)));
    for (int64_t i = b; i < c; ++i)
      e.voiced[i] = float(s.amp * std::pow(std::sin(kPi * double(i - b) / double(c - b)), 0.6));
    // The vowel holds until the next syllable, so the formants glide between vowels through silences.
    const int64_t next = k + 1 < syllables.size() ? int64_t(syllables[k + 1].start * kFs) : n;
    std::fill(e.vowel.begin() + std::min(a, n), e.vowel.begin() + std::min(next, n), uint8_t(s.vowel));
  }
  return e;
}

// Mouth opening in [0, 1] at time t: the voiced envelope averaged over the 40 ms a video frame integrates.
double mouth_opening(const Envelopes& e, double t) {
  const int64_t n = int64_t(e.voiced.size());
  const int64_t a = std::clamp(int64_t((t - 0.02) * kFs), int64_t(0), n - 1),
                b = std::clamp(int64_t((t + 0.02) * kFs), a + 1, n);
  double sum = 0;
  for (int64_t i = a; i < b; ++i) sum += e.voiced[i];
  return sum / double(b - a);
}

// ---- filters ------------------------------------------------------------------------------------------

// Second-order section y = (b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2), direct form I.
struct Biquad {
  double b0 = 0, b1 = 0, b2 = 0, a1 = 0, a2 = 0, x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  double operator()(double x) {
    const double y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1, x1 = x, y2 = y1, y1 = y;
    return y;
  }
};

// Low-pass by the bilinear transform of 1 / (s^2 + s/q + 1) at cutoff hz; q = 1/sqrt(2) is Butterworth.
Biquad lowpass(double hz, double q) {
  const double w = 2 * kPi * hz / kFs, alpha = std::sin(w) / (2 * q), c = std::cos(w), a0 = 1 + alpha;
  return {(1 - c) / 2 / a0, (1 - c) / a0, (1 - c) / 2 / a0, -2 * c / a0, (1 - alpha) / a0};
}

// Klatt's formant resonator: a pole pair at hz with bandwidth bw, unit gain at DC.
Biquad resonator(double hz, double bw) {
  const double c = -std::exp(-2 * kPi * bw / kFs), b = 2 * std::exp(-kPi * bw / kFs) * std::cos(2 * kPi * hz / kFs);
  return {1 - b - c, 0, 0, -b, -c};
}

void filter(std::vector<double>& x, Biquad f) {
  for (double& v : x) v = f(v);
}

double rms(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s / double(std::max<size_t>(x.size(), 1)));
}

// ---- the voice ----------------------------------------------------------------------------------------

// Formants F1..F3 of the five vowels (a e i o u, adult speaker); F4 is 3500 Hz for all. Scaled by the tract.
constexpr double kVowels[5][3] = {
    {730, 1090, 2440}, {530, 1840, 2480}, {300, 2250, 2950}, {570, 840, 2410}, {320, 900, 2250}};
constexpr double kBandwidths[4] = {70, 90, 130, 180};

struct Voice {
  double f0, tract, rate;  // pitch (Hz), formant scale, syllables per second
  double intonation_hz, intonation_phase, intonation_depth;
  double wobble_hz[3], wobble_phase[3];  // slow pitch wander, 2-7 Hz
  double jitter, shimmer, breath;        // per-period pitch and amplitude variation, aspiration noise
  double fricative_hz, fricative_gain;
};

// Rosenberg's glottal pulse over one period, phase in [0, 1): opening 40 %, closing 20 %, closed after.
double glottal(double phase) {
  if (phase < 0.4) return 0.5 * (1 - std::cos(kPi * phase / 0.4));
  if (phase < 0.6) return std::cos(0.5 * kPi * (phase - 0.4) / 0.2);
  return 0;
}

// The utterance as the voice speaks it, shape (n,), unit RMS over voiced and fricative parts. `smooth` in
// [0, 1] removes the natural micro variation (jitter, shimmer, pitch wander, breath): the vocoder's
// over-smooth harmonics; with smooth = 0 the result is exactly the natural voice.
std::vector<double> speak(const Voice& v, const Envelopes& e, double smooth, Stream& r) {
  const int64_t n = int64_t(e.voiced.size());
  const double natural = 1 - smooth, duration = double(n) / kFs;
  std::vector<double> voiced(n), fricative(n);
  std::vector<Biquad> formant;
  double freq[4];
  for (int f = 0; f < 4; ++f) {
    freq[f] = (f < 3 ? kVowels[e.vowel[0]][f] : 3500) * v.tract;
    formant.push_back(resonator(freq[f], kBandwidths[f]));
  }
  double phase = 0, period_pitch = 1, period_amp = 1, previous = 0, previous_noise = 0, contour = 1;
  Biquad hiss = resonator(v.fricative_hz, 2000);
  // Slow quantities are updated every 32 samples (2 ms): formants move towards the current vowel with a
  // 30 ms time constant; the pitch contour is intonation x declination x wander.
  const double glide = 1 - std::exp(-32 / (kFs * 0.03));
  for (int64_t i = 0; i < n; ++i) {
    if (i % 32 == 0) {
      for (int f = 0; f < 4; ++f) {
        freq[f] += ((f < 3 ? kVowels[e.vowel[i]][f] : 3500) * v.tract - freq[f]) * glide;
        const Biquad next = resonator(freq[f], kBandwidths[f]);
        formant[f].b0 = next.b0, formant[f].a1 = next.a1, formant[f].a2 = next.a2;  // keep the state
      }
      const double t = double(i) / kFs;
      double wobble = 0;
      for (int k = 0; k < 3; ++k) wobble += 0.006 * std::sin(2 * kPi * v.wobble_hz[k] * t + v.wobble_phase[k]);
      contour = (1 + v.intonation_depth * std::sin(2 * kPi * v.intonation_hz * t + v.intonation_phase)) *
                (1 - 0.1 * t / duration) * (1 + natural * wobble);
    }
    const double f0 = v.f0 * contour * period_pitch;
    phase += f0 / kFs;
    if (phase >= 1) {
      phase -= 1;
      period_pitch = 1 + natural * v.jitter * r.normal();
      period_amp = 1 + natural * v.shimmer * r.normal();
    }
    const double breath = r.normal(), hiss_noise = r.normal();
    const double g = glottal(phase);
    // The pulse's derivative (lip radiation), scaled by 1/f0 so the level does not follow the pitch.
    const double source = (g - previous) * kFs / (2.5 * f0) * period_amp + natural * v.breath * breath * (phase < 0.6);
    previous = g;
    double y = source * e.voiced[i];
    for (Biquad& f : formant) y = f(y);
    voiced[i] = y;
    // Fricatives: differenced white noise through one broad resonator, the speaker's sibilant.
    fricative[i] = hiss(hiss_noise - previous_noise) * e.fricative[i];
    previous_noise = hiss_noise;
  }
  const double rv = rms(voiced), rf = rms(fricative);
  for (int64_t i = 0; i < n; ++i)
    voiced[i] = voiced[i] / std::max(rv, 1e-12) + v.fricative_gain * fricative[i] / std::max(rf, 1e-12);
  return voiced;
}

// ---- recording and vocoder ----------------------------------------------------------------------------

struct Recording {
  double duration, level_db, snr_db, mic_hz, rumble;  // rumble: share of the noise that is low-frequency
};
struct Vocoder {
  double cutoff_hz, buzz_hz, buzz_depth;
};

// Vocoder-like damage at strength s: the upper band cut by a 4th-order Butterworth low-pass, and an amplitude
// buzz at the vocoder's frame rate.
void vocode(std::vector<double>& x, const Vocoder& v, double s) {
  std::vector<double> cut = x;
  filter(cut, lowpass(v.cutoff_hz, 0.5412));
  filter(cut, lowpass(v.cutoff_hz, 1.3066));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = ((1 - s) * x[i] + s * cut[i]) * (1 + s * v.buzz_depth * std::sin(2 * kPi * v.buzz_hz * double(i) / kFs));
}

// Microphone (gentle low-pass, DC removed), loudness set on the whole clip, then room noise: a mix of
// white and low-frequency rumble at the clip's SNR. Returns 16-bit PCM.
std::vector<int16_t> record(std::vector<double> x, const Recording& rec, Stream& r) {
  filter(x, lowpass(rec.mic_hz, 0.7071));
  double dc = 0;
  for (double& v : x) dc += 0.02 * (v - dc), v -= dc;
  const double level = std::pow(10.0, rec.level_db / 20), gain = level / std::max(rms(x), 1e-12);
  const double noise_level = level * std::pow(10.0, -rec.snr_db / 20);
  std::vector<double> noise(x.size());
  double low = 0;
  for (double& v : noise) {
    // Rumble: a one-pole low-pass near 400 Hz; 3.5 is about 1 / its output's std, so both parts have unit std.
    low += 0.15 * (r.normal() - low);
    v = rec.rumble * low * 3.5 + (1 - rec.rumble) * r.normal();
  }
  const double noise_gain = noise_level / std::max(rms(noise), 1e-12);
  double peak = 0;
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = x[i] * gain + noise[i] * noise_gain, peak = std::max(peak, std::abs(x[i]));
  const double limit = peak > 0.99 ? 0.99 / peak : 1.0;  // rare: keeps loud clips from clipping
  std::vector<int16_t> pcm(x.size());
  for (size_t i = 0; i < x.size(); ++i) pcm[i] = int16_t(std::lrint(x[i] * limit * 32767));
  return pcm;
}

// ---- the face -----------------------------------------------------------------------------------------

struct Look {
  int size;
  double cx, cy, rx, ry;  // face ellipse, pixels
  double bg0[3], bg1[3], bg_angle, stripe_freq, stripe_amp, stripe_phase;
  double skin[3], hair[3], shirt[3], iris[3];
  double light[3], ambient, gain, tint[3];
  double texture_amp, focus, noise_sigma;
};
struct FaceSwap {
  double tint[3], seam;
};

bool inside(double x, double y, double cx, double cy, double rx, double ry) {
  const double u = (x - cx) / rx, v = (y - cy) / ry;
  return u * u + v * v <= 1;
}

// Background colour at pixel (x, y): a gradient between two colours with faint stripes across it.
void background(const Look& L, double x, double y, double out[3]) {
  const double along = (x * std::cos(L.bg_angle) + y * std::sin(L.bg_angle)) / L.size;
  const double stripe = 1 + L.stripe_amp * std::sin(2 * kPi * L.stripe_freq * along + L.stripe_phase);
  for (int ch = 0; ch < 3; ++ch) out[ch] = (L.bg0[ch] + (L.bg1[ch] - L.bg0[ch]) * std::clamp(along, 0.0, 1.0)) * stripe;
}

// Colour (0..255) at point (x, y) of the scene, before the camera; painter's order over the pixel's
// background `bg`. `texture` is the skin's fixed grain at this pixel.
void scene_point(const Look& L, double mouth, double eyes, const double* bg, double texture, double x, double y,
                 double out[3]) {
  const double cx = L.cx, cy = L.cy, rx = L.rx, ry = L.ry;
  auto set = [&](const double* c, double k) {
    for (int ch = 0; ch < 3; ++ch) out[ch] = c[ch] * k;
  };
  set(bg, 1);
  if (inside(x, y, cx, cy + 1.75 * ry, 1.9 * rx, 0.85 * ry)) set(L.shirt, 1);
  if (inside(x, y, cx, cy + 0.95 * ry, 0.42 * rx, 0.5 * ry)) set(L.skin, 0.75);
  if (y < cy + 0.1 * ry && inside(x, y, cx, cy - 0.14 * ry, 1.08 * rx, 1.0 * ry)) set(L.hair, 1);  // upper half
  if (!inside(x, y, cx, cy, rx, ry)) return;

  // Lambert shading of the face as a half ellipsoid: normal (u, v, sqrt(1 - u^2 - v^2)).
  const double u = (x - cx) / rx, v = (y - cy) / ry, w = std::sqrt(std::max(0.0, 1 - u * u - v * v));
  const double shade = L.ambient + (1 - L.ambient) * std::max(0.0, u * L.light[0] + v * L.light[1] + w * L.light[2]);
  static constexpr double kWhite[3] = {235, 232, 225}, kPupil[3] = {15, 12, 12}, kMouth[3] = {45, 14, 20};
  const double lip[3] = {L.skin[0] * 0.8, L.skin[1] * 0.52, L.skin[2] * 0.55};
  set(L.skin, 1);
  for (int ch = 0; ch < 3; ++ch) out[ch] += texture;
  if (inside(x, y, cx, cy + 0.15 * ry, 0.07 * rx, 0.15 * ry)) set(L.skin, 0.85);
  for (double side : {-1.0, 1.0}) {
    const double ex = cx + side * 0.38 * rx, ey = cy - 0.15 * ry;
    if (inside(x, y, ex, cy - 0.33 * ry, 0.19 * rx, 0.04 * ry)) set(L.hair, 0.8);
    if (inside(x, y, ex, ey, 0.16 * rx, 0.085 * ry * eyes)) {
      set(kWhite, 1);
      if (inside(x, y, ex, ey, 0.075 * rx, 0.075 * rx)) set(L.iris, 1);
      if (inside(x, y, ex, ey, 0.035 * rx, 0.035 * rx)) set(kPupil, 1);
    }
  }
  const double my = cy + 0.5 * ry, mw = 0.36 * rx;
  if (inside(x, y, cx, my, mw, (0.045 + 0.15 * mouth) * ry)) set(lip, 1);
  if (mouth > 0 && inside(x, y, cx, my, 0.8 * mw, 0.13 * mouth * ry)) set(kMouth, 1);
  for (int ch = 0; ch < 3; ++ch) out[ch] *= shade;
}

// The scene, shape (size, size, 3), each pixel the mean of 4x4 samples (so sub-pixel mouth movement shows).
// `backdrop` (size, size, 3) is the clip's background, `texture` (size, size) its skin grain.
std::vector<float> render(const Look& L, double mouth, double eyes, const std::vector<double>& backdrop,
                          const std::vector<float>& texture) {
  const int s = L.size;
  std::vector<float> img(size_t(s) * s * 3);
  double c[3];
  for (int py = 0; py < s; ++py)
    for (int px = 0; px < s; ++px) {
      double acc[3] = {0, 0, 0};
      const double* bg = &backdrop[(size_t(py) * s + px) * 3];
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) {
          scene_point(L, mouth, eyes, bg, texture[size_t(py) * s + px], px + (sx + 0.5) / 4, py + (sy + 0.5) / 4, c);
          for (int ch = 0; ch < 3; ++ch) acc[ch] += c[ch];
        }
      for (int ch = 0; ch < 3; ++ch) img[(size_t(py) * s + px) * 3 + ch] = float(acc[ch] / 16);
    }
  return img;
}

// Box blur of radius r along rows then columns, edges clamped; img is (s, s, 3).
std::vector<float> blur(const std::vector<float>& img, int s, int r) {
  std::vector<float> tmp(img.size()), out(img.size());
  for (int pass = 0; pass < 2; ++pass) {
    const std::vector<float>& src = pass == 0 ? img : tmp;
    std::vector<float>& dst = pass == 0 ? tmp : out;
    for (int y = 0; y < s; ++y)
      for (int x = 0; x < s; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          float sum = 0;
          for (int k = -r; k <= r; ++k) {
            const int xx = pass == 0 ? std::clamp(x + k, 0, s - 1) : x,
                      yy = pass == 0 ? y : std::clamp(y + k, 0, s - 1);
            sum += src[(size_t(yy) * s + xx) * 3 + ch];
          }
          dst[(size_t(y) * s + x) * 3 + ch] = sum / float(2 * r + 1);
        }
  }
  return out;
}

// Face-swap damage at strength s: the inner face (eyes, nose, mouth) replaced by a smoothed, colour-shifted
// copy, blended over a 1-2 pixel feather with a darker seam along the boundary.
void swap_face(std::vector<float>& img, const Look& L, const FaceSwap& swap, double s) {
  const int n = L.size, radius = std::max(1, n / 48);
  const std::vector<float> smooth = blur(img, n, radius);
  const double icx = L.cx, icy = L.cy + 0.1 * L.ry, irx = 0.8 * L.rx, iry = 0.74 * L.ry;
  const double feather = std::max(1.0, n / 48.0);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double u = (x + 0.5 - icx) / irx, v = (y + 0.5 - icy) / iry;
      const double a = std::clamp((1 - std::sqrt(u * u + v * v)) * std::min(irx, iry) / feather + 0.5, 0.0, 1.0);
      if (a <= 0) continue;
      const double seam = 1 - s * swap.seam * 4 * a * (1 - a);
      for (int ch = 0; ch < 3; ++ch) {
        float& p = img[(size_t(y) * n + x) * 3 + ch];
        const double inner = ((1 - s) * p + s * smooth[(size_t(y) * n + x) * 3 + ch]) * (1 + s * swap.tint[ch]);
        p = float(((1 - a) * p + a * inner) * seam);
      }
    }
}

// ---- one clip -----------------------------------------------------------------------------------------

void draw_colour(Stream& r, double lo, double hi, double out[3]) {
  for (int ch = 0; ch < 3; ++ch) out[ch] = r.uniform(lo, hi);
}

// Everything about a clip that is not per-sample or per-frame noise, drawn in one fixed order. Artefact
// parameters are drawn for every clip and used only by fakes.
struct ClipParams {
  Voice voice;
  Recording rec;
  Vocoder vocoder;
  Look look;
  FaceSwap swap;
};

ClipParams draw_params(Stream& r, const SynthConfig& c) {
  ClipParams p{};
  Voice& v = p.voice;
  const double voice_height = r.uniform();  // 0 low male .. 1 high female; pitch and tract size go together
  v.f0 = 85 * std::pow(240.0 / 85, voice_height) * r.uniform(0.93, 1.07);
  v.tract = 0.9 + 0.22 * voice_height + r.uniform(-0.04, 0.04);
  v.rate = r.uniform(3.0, 6.0);
  v.intonation_hz = r.uniform(0.3, 0.8);
  v.intonation_phase = r.uniform(0, 2 * kPi);
  v.intonation_depth = r.uniform(0.04, 0.12);
  for (int k = 0; k < 3; ++k) v.wobble_hz[k] = r.uniform(2, 7), v.wobble_phase[k] = r.uniform(0, 2 * kPi);
  v.jitter = r.uniform(0.005, 0.015), v.shimmer = r.uniform(0.03, 0.08), v.breath = r.uniform(0.02, 0.08);
  v.fricative_hz = r.uniform(3800, 6200), v.fricative_gain = r.uniform(0.15, 0.35);

  p.rec = {r.uniform(c.min_seconds, c.max_seconds), r.uniform(-30, -22), r.uniform(15, 40), r.uniform(6000, 7600),
           r.uniform(0.3, 0.9)};
  p.vocoder = {r.uniform(3400, 4600), r.uniform(70, 110), r.uniform(0.2, 0.35)};

  Look& L = p.look;
  L.size = c.size;
  const double n = c.size, scale = r.uniform(0.88, 1.08);
  L.rx = 0.26 * n * scale, L.ry = 0.34 * n * scale;
  L.cx = n * (0.5 + r.uniform(-0.08, 0.08)), L.cy = n * (0.46 + r.uniform(-0.06, 0.06));
  draw_colour(r, 20, 235, L.bg0), draw_colour(r, 20, 235, L.bg1);
  L.bg_angle = r.uniform(0, 2 * kPi);
  L.stripe_freq = r.uniform(1, 6), L.stripe_amp = r.uniform(0, 0.15), L.stripe_phase = r.uniform(0, 2 * kPi);
  const double tone = r.uniform();
  constexpr double kDark[3] = {95, 60, 45}, kLight[3] = {235, 195, 170};
  for (int ch = 0; ch < 3; ++ch) L.skin[ch] = kDark[ch] + (kLight[ch] - kDark[ch]) * tone + r.uniform(-8, 8);
  const double fair = r.uniform();
  constexpr double kBlack[3] = {25, 20, 18}, kBlond[3] = {165, 125, 70};
  for (int ch = 0; ch < 3; ++ch) L.hair[ch] = kBlack[ch] + (kBlond[ch] - kBlack[ch]) * fair * fair;
  draw_colour(r, 30, 220, L.shirt), draw_colour(r, 30, 140, L.iris);
  const double lx = r.uniform(-0.7, 0.7), ly = r.uniform(-0.6, 0.3), lz = r.uniform(0.5, 1.0),
               norm = std::sqrt(lx * lx + ly * ly + lz * lz);
  L.light[0] = lx / norm, L.light[1] = ly / norm, L.light[2] = lz / norm;
  L.ambient = r.uniform(0.45, 0.75), L.gain = r.uniform(0.75, 1.15);
  for (double& t : L.tint) t = r.uniform(0.95, 1.05);
  L.texture_amp = r.uniform(4, 9), L.focus = r.uniform(0, 0.5), L.noise_sigma = r.uniform(1, 4);

  for (double& t : p.swap.tint) {
    const double sign = r.sign();  // its own statement: the two draws of one expression are unsequenced
    t = sign * r.uniform(0.06, 0.14);
  }
  p.swap.seam = r.uniform(0.08, 0.16);
  return p;
}

void write_wav(const std::string& path, const std::vector<int16_t>& pcm) {
  SF_INFO info{};
  info.samplerate = kSynthSampleRate, info.channels = 1, info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  STGS_CHECK(file != nullptr, "synthetic: cannot write ", path, ": ", sf_strerror(nullptr));
  const sf_count_t written = sf_write_short(file, pcm.data(), sf_count_t(pcm.size()));
  const int closed = sf_close(file);
  STGS_CHECK(written == sf_count_t(pcm.size()) && closed == 0, "synthetic: short write to ", path);
}

// Writes clip `index` (category 0..3 = A..D) under dir/clips/<id>/ and fills `box` with its face box.
void make_clip(const fs::path& dir, const SynthConfig& c, int64_t index, int category, const std::string& id,
               int box[4]) {
  const bool fake_audio = category == 1 || category == 3, fake_video = category >= 2;
  const uint64_t key = clip_key(c.seed, index);
  Stream params_stream(purpose_key(key, kParams));
  const ClipParams p = draw_params(params_stream, c);
  const int64_t samples = int64_t(std::lround(p.rec.duration * kFs));

  Stream utterance_stream(purpose_key(key, kUtterance)), lip_stream(purpose_key(key, kLipUtterance));
  const Envelopes spoken = envelopes(draw_utterance(utterance_stream, p.rec.duration, p.voice.rate), samples);
  // A lip-sync fake moves the mouth to another utterance of the same length and rate.
  const Envelopes other = envelopes(draw_utterance(lip_stream, p.rec.duration, p.voice.rate), samples);

  const double s = c.strength;
  Stream voice_stream(purpose_key(key, kVoice)), noise_stream(purpose_key(key, kNoise));
  std::vector<double> speech = speak(p.voice, spoken, fake_audio ? s : 0.0, voice_stream);
  if (fake_audio) vocode(speech, p.vocoder, s);
  const fs::path clip_dir = dir / "clips" / id, frame_dir = clip_dir / "frames";
  std::error_code ec;
  fs::create_directories(frame_dir, ec);
  STGS_CHECK(!ec, "synthetic: cannot create ", frame_dir.string(), ": ", ec.message());
  write_wav((clip_dir / "audio.wav").string(), record(std::move(speech), p.rec, noise_stream));

  const Look& L = p.look;
  const int n = L.size;
  const size_t digits = std::max<size_t>(2, std::to_string(c.frames - 1).size());
  Stream texture_stream(purpose_key(key, kTexture));
  std::vector<float> texture(size_t(n) * n);
  for (float& t : texture) t = float(L.texture_amp * texture_stream.normal());
  std::vector<double> backdrop(size_t(n) * n * 3);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) background(L, x + 0.5, y + 0.5, &backdrop[(size_t(y) * n + x) * 3]);
  std::vector<uint8_t> pixels(size_t(n) * n * 3);
  for (int k = 0; k < c.frames; ++k) {
    Stream frame_stream(purpose_key(key, kFrame0 + uint64_t(k)));
    const double t = (k + 0.5) * p.rec.duration / c.frames;
    const double eyes = frame_stream.uniform() < 0.12 ? 0.15 : 1.0, flicker = 1 + 0.015 * frame_stream.normal();
    const double own = mouth_opening(spoken, t), lip_synced = mouth_opening(other, t);
    const double mouth = fake_video ? (1 - s) * own + s * lip_synced : own;
    std::vector<float> img = render(L, mouth, eyes, backdrop, texture);
    if (fake_video) swap_face(img, L, p.swap, s);
    const std::vector<float> soft = blur(img, n, 1);
    for (size_t i = 0; i < img.size(); ++i) {
      const double focused = (1 - L.focus) * img[i] + L.focus * soft[i];
      const double v = focused * L.gain * L.tint[i % 3] * flicker + L.noise_sigma * frame_stream.normal();
      pixels[i] = uint8_t(std::clamp(std::lrint(v), 0L, 255L));
    }
    std::string number = std::to_string(k);
    number.insert(0, digits - number.size(), '0');
    const std::string path = (frame_dir / ("frame_" + number + ".png")).string();
    STGS_CHECK(stbi_write_png(path.c_str(), n, n, 3, pixels.data(), n * 3) != 0, "synthetic: cannot write ", path);
  }
  box[0] = int(std::lround(L.cx - L.rx)), box[1] = int(std::lround(L.cy - L.ry));
  box[2] = int(std::lround(2 * L.rx)), box[3] = int(std::lround(2 * L.ry));
}

// ---- the set ------------------------------------------------------------------------------------------

// Splits n into parts proportional to weights: floors, then the leftovers to the largest remainders
// (ties to the earlier part), so the counts sum to n and differ from exact shares by less than one.
std::vector<int64_t> apportion(int64_t n, const double* weights, int parts) {
  const double total = std::accumulate(weights, weights + parts, 0.0);
  std::vector<int64_t> count(parts);
  std::vector<double> remainder(parts);
  int64_t used = 0;
  for (int i = 0; i < parts; ++i) {
    const double share = double(n) * weights[i] / total;
    count[i] = int64_t(std::floor(share)), remainder[i] = share - double(count[i]), used += count[i];
  }
  std::vector<int> order(parts);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return remainder[a] > remainder[b]; });
  for (int i = 0; used < n; ++i, ++used) ++count[order[i % parts]];
  return count;
}

// Makes `dir` ready: created when missing; when non-empty, refused unless `force`, which first removes the
// manifest (so no manifest ever names half-replaced files), then synth.json and clips/.
void prepare_directory(const fs::path& dir, bool force) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    STGS_CHECK(fs::is_directory(dir, ec), "synthetic: output ", dir.string(), " exists and is not a directory");
    if (!fs::is_empty(dir, ec)) {
      STGS_CHECK(force, "synthetic: output directory ", dir.string(),
                 " is not empty; use --force to replace the set in it (its manifest.csv, synth.json and clips/)");
      for (const char* name : {"manifest.csv", "manifest.csv.tmp", "synth.json"}) fs::remove(dir / name, ec);
      fs::remove_all(dir / "clips", ec);
      STGS_CHECK(!ec, "synthetic: cannot remove the earlier set in ", dir.string(), ": ", ec.message());
    }
  }
  fs::create_directories(dir / "clips", ec);
  STGS_CHECK(!ec, "synthetic: cannot create ", (dir / "clips").string(), ": ", ec.message());
}

// Writes `text` to path through path.tmp, fsync and rename, so readers see the whole file or none.
void write_atomically(const fs::path& path, const std::string& text) {
  const std::string tmp = path.string() + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  STGS_CHECK(f != nullptr, "synthetic: cannot write ", tmp);
  const bool ok =
      std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  STGS_CHECK(std::fclose(f) == 0 && ok, "synthetic: cannot write ", tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  STGS_CHECK(!ec, "synthetic: cannot rename ", tmp, " to ", path.string(), ": ", ec.message());
}

std::string config_json(const SynthConfig& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\n  \"generator\": \"stgs synth\",\n  \"seed\": %llu,\n  \"clips\": %lld,\n  \"size\": %d,\n"
                "  \"frames\": %d,\n  \"seconds\": [%g, %g],\n  \"sample_rate\": %d,\n  \"strength\": %g,\n"
                "  \"split\": [%g, %g, %g],\n  \"mix\": [%g, %g, %g, %g]\n}\n",
                (unsigned long long)c.seed, (long long)c.clips, c.size, c.frames, c.min_seconds, c.max_seconds,
                kSynthSampleRate, c.strength, c.split[0], c.split[1], c.split[2], c.mix[0], c.mix[1], c.mix[2],
                c.mix[3]);
  return buf;
}

}  // namespace

void SynthConfig::validate() const {
  STGS_CHECK(clips >= 1 && clips <= 1000000, "synthetic: clips must be in [1, 1000000], got ", clips);
  STGS_CHECK(size >= 16 && size <= 1024, "synthetic: size must be in [16, 1024] pixels, got ", size);
  STGS_CHECK(frames >= 1 && frames <= 1000, "synthetic: frames must be in [1, 1000], got ", frames);
  STGS_CHECK(min_seconds >= 1.0 && max_seconds <= 60 && min_seconds <= max_seconds,
             "synthetic: seconds must satisfy 1 <= min <= max <= 60, got ", min_seconds, " to ", max_seconds);
  STGS_CHECK(strength >= 0 && strength <= 1, "synthetic: strength must be in [0, 1], got ", strength);
  STGS_CHECK(threads >= 0, "synthetic: threads must be >= 0 (0 = default), got ", threads);
  for (double w : split) STGS_CHECK(w >= 0 && std::isfinite(w), "synthetic: split weights must be >= 0, got ", w);
  for (double w : mix) STGS_CHECK(w >= 0 && std::isfinite(w), "synthetic: category weights must be >= 0, got ", w);
  STGS_CHECK(split[0] + split[1] + split[2] > 0, "synthetic: the split weights are all zero");
  STGS_CHECK(mix[0] + mix[1] + mix[2] + mix[3] > 0, "synthetic: the category weights are all zero");
}

std::vector<SynthClip> generate_synthetic(const std::string& out_dir, const SynthConfig& config,
                                          const std::function<void(int64_t, int64_t)>& progress) {
  config.validate();
  const fs::path dir(out_dir);
  prepare_directory(dir, config.force);

  // Categories in a seeded random order over the clip indices, so neither the index nor the id says anything.
  const int64_t n = config.clips;
  const std::vector<int64_t> per_category = apportion(n, config.mix, 4);
  std::vector<int> category;
  for (int c = 0; c < 4; ++c) category.insert(category.end(), size_t(per_category[c]), c);
  Stream shuffle(set_key(config.seed, kShuffleDomain));
  for (int64_t i = n - 1; i > 0; --i) std::swap(category[i], category[int64_t(shuffle.uniform() * double(i + 1))]);

  static const char* kCategory[4] = {"A", "B", "C", "D"};
  static const char* kSplit[3] = {"train", "val", "test"};
  std::vector<SynthClip> clips(n);
  for (int c = 0; c < 4; ++c) {
    // Within a category the (already random) index order fills train, then val, then test.
    const std::vector<int64_t> per_split = apportion(per_category[c], config.split, 3);
    int64_t seen = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (category[i] != c) continue;
      const int split = seen < per_split[0] ? 0 : seen < per_split[0] + per_split[1] ? 1 : 2;
      ++seen;
      char id[17];
      std::snprintf(id, sizeof id, "%016llx", (unsigned long long)mix64(set_key(config.seed, kIdDomain) + uint64_t(i)));
      clips[i] = {id,
                  kSplit[split],
                  c == 0 ? "real" : "fake",
                  kCategory[c],
                  "clips/" + std::string(id) + "/frames",
                  "clips/" + std::string(id) + "/audio.wav",
                  {0, 0, 0, 0}};
    }
  }

  // Clips are independent, so any thread may make any of them. After an error (a full disk, say) the
  // remaining clips are skipped and the error of the lowest failed index is rethrown.
  int64_t done = 0, failed_at = n;
  std::string failure;
  std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic, 1) num_threads(config.threads > 0 ? config.threads : omp_get_max_threads())
  for (int64_t i = 0; i < n; ++i) {
    if (failed.load()) continue;
    try {
      make_clip(dir, config, i, category[i], clips[i].id, clips[i].box);
    } catch (const std::exception& e) {
      failed.store(true);
#pragma omp critical(synth_failure)
      if (i < failed_at) failed_at = i, failure = e.what();
    }
#pragma omp critical(synth_progress)
    if (progress) progress(++done, n);
  }
  if (failed_at < n) throw Error(failure);

  std::sort(clips.begin(), clips.end(), [](const SynthClip& a, const SynthClip& b) { return a.id < b.id; });
  write_atomically(dir / "synth.json", config_json(config));
  std::string csv = "id,split,label,category,frames,audio,face_box,source\n";
  for (const SynthClip& c : clips)
    csv += c.id + "," + c.split + "," + c.label + "," + c.category + "," + c.frames + "," + c.audio + ",\"" +
           std::to_string(c.box[0]) + "," + std::to_string(c.box[1]) + "," + std::to_string(c.box[2]) + "," +
           std::to_string(c.box[3]) + "\",synthetic\n";
  write_atomically(dir / "manifest.csv", csv);  // last: the set is complete once this exists
  return clips;
}

}  // namespace stgs::data
