// The per-clip pipeline (data/clip.h) on a small synthetic set written by the test.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "data/clip.h"
#include "data/synthetic.h"
#include "engine/random.h"
#include "kernels/check.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::data;
using stgs::testing::TempDir;

namespace {

Manifest small_synthetic_set(const TempDir& tmp) {
  SynthConfig config;
  config.clips = 4;
  config.size = 40;
  config.frames = 6;
  generate_synthetic(tmp.dir.string(), config);
  return read_manifest((tmp.dir / "manifest.csv").string());
}

double rms_dbfs(const std::vector<float>& wav) {
  double sum = 0;
  for (float v : wav) sum += double(v) * v;
  return 10 * std::log10(sum / double(wav.size()));
}

}  // namespace

TEST_CASE("clip pipeline: raw clip, spectrogram and model input", "[data][clip]") {
  TempDir tmp("clip");
  const Manifest manifest = small_synthetic_set(tmp);
  ClipOptions options;
  options.frames = 4;
  options.size = 32;
  const RawClip raw = load_raw_clip(manifest.rows[0], manifest.path, options);
  REQUIRE(raw.frames.shape() == Shape{4, 3, 32, 32});
  const float* f = raw.frames.data<float>();
  float lo = 1, hi = 0;
  for (int64_t i = 0; i < raw.frames.numel(); ++i) lo = std::min(lo, f[i]), hi = std::max(hi, f[i]);
  CHECK(lo >= 0.0f);
  CHECK(hi <= 1.0f);
  CHECK(hi - lo > 0.2f);  // a drawn face, not a blank frame
  // Volume normalisation only raises the level, to -30 dBFS; the synthetic set is quieter than that.
  CHECK(rms_dbfs(raw.wav) >= kTargetDbfs - 0.01);

  const Tensor spec = clip_spectrogram(raw);
  REQUIRE(spec.shape() == Shape{spectrogram_frames(int64_t(raw.wav.size())), kFreqBins});

  SpectrogramStats stats;
  stats.add(spec);
  const ClipInput centred = make_clip_input(raw.frames, spec, stats);
  REQUIRE(centred.frames.shape() == Shape{4, 3, 32, 32});
  REQUIRE(centred.spectrogram.shape() == Shape{1, kWindowFrames, kFreqBins});
  // ImageNet normalisation of the first pixel of the red plane.
  CHECK(centred.frames.data<float>()[0] == Approx((f[0] - 0.485) / 0.229).epsilon(1e-5));
  // Evaluation windows are centred, hence repeatable; training windows come from the generator.
  const ClipInput again = make_clip_input(raw.frames, spec, stats);
  CHECK(std::memcmp(again.spectrogram.data<float>(), centred.spectrogram.data<float>(),
                    sizeof(float) * size_t(centred.spectrogram.numel())) == 0);
  Generator g1(7), g2(7);
  const ClipInput r1 = make_clip_input(raw.frames, spec, stats, &g1);
  const ClipInput r2 = make_clip_input(raw.frames, spec, stats, &g2);
  CHECK(std::memcmp(r1.spectrogram.data<float>(), r2.spectrogram.data<float>(),
                    sizeof(float) * size_t(r1.spectrogram.numel())) == 0);
}

TEST_CASE("clip pipeline: a broken clip is named with its manifest line", "[data][clip]") {
  TempDir tmp("clip_bad");
  Manifest manifest = small_synthetic_set(tmp);
  ManifestRow row = manifest.rows[1];
  std::filesystem::resize_file(row.audio, 30);  // truncated WAV
  try {
    load_raw_clip(row, manifest.path, ClipOptions{});
    FAIL("a truncated WAV was accepted");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(message.find(manifest.path + ":" + std::to_string(row.line) + ": clip '" + row.id + "'") !=
          std::string::npos);
    CHECK(message.find("audio.wav") != std::string::npos);
  }
}
