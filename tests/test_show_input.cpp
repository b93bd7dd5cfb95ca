// `stgs show-input` (apps/cmd_show_input.cpp) on a small synthetic set: the files it writes, their sizes and
// contents, and its errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "data/clip.h"
#include "data/synthetic.h"
#include "engine/io/safetensors.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::data;
using testing::CommandResult;
using testing::run_stgs;
using testing::TempDir;

TEST_CASE("stgs show-input: frames, spectrogram images and tensors of one clip", "[cli][data]") {
  TempDir tmp("show_input");
  SynthConfig config;
  config.clips = 3;
  config.size = 40;
  config.frames = 6;
  generate_synthetic(tmp.file("set"), config);
  const std::string manifest_path = tmp.file("set/manifest.csv");
  const Manifest manifest = read_manifest(manifest_path);
  const ManifestRow& row = manifest.rows[1];
  const std::string out = tmp.file("out");

  CommandResult r = run_stgs("show-input " + manifest_path + " --id " + row.id + " --out " + out +
                             " --frames 3 --size 48");
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("clip " + row.id));
  CHECK_THAT(r.output, Catch::Contains("note: no --stats given"));

  // The frames are the clip pipeline's crops, back in 8-bit RGB (the round trip through the ImageNet
  // normalisation moves no pixel by more than one level).
  ClipOptions options;
  options.frames = 3;
  options.size = 48;
  const RawClip raw = load_raw_clip(row, manifest.path, options);
  for (int f = 0; f < 3; ++f) {
    const Image image = read_image(out + "/frame_0" + std::to_string(f) + ".png");
    REQUIRE(image.width == 48);
    REQUIRE(image.height == 48);
    const float* v = raw.frames.select(0, f).contiguous().data<float>();
    int worst = 0;
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 48 * 48; ++p)
        worst = std::max(worst, std::abs(int(image.rgb[size_t(p) * 3 + c]) -
                                         int(std::lround(v[c * 48 * 48 + p] * 255))));
    CHECK(worst <= 1);
  }

  const Tensor spec = clip_spectrogram(raw);
  const Image picture = read_image(out + "/spectrogram.png");
  CHECK(picture.width == spec.size(0));  // time on x
  CHECK(picture.height == kFreqBins);
  const Image window = read_image(out + "/spectrogram_normalised.png");
  CHECK(window.width == kWindowFrames);
  CHECK(window.height == kFreqBins);

  const SafetensorsFile file = load_safetensors(out + "/spectrogram.safetensors");
  CHECK(file.get("spectrogram_raw").shape() == spec.shape());
  CHECK(file.get("spectrogram_normalised").shape() == Shape{1, kWindowFrames, kFreqBins});
  CHECK(file.get("spectrogram_raw").to_vector<float>() == spec.to_vector<float>());
  CHECK(file.metadata.at("normalised_with") == "this clip's own statistics");

  // With --stats the given statistics normalise it, exactly as the model input does.
  SpectrogramStats stats;
  stats.add(clip_spectrogram(load_raw_clip(manifest.rows[0], manifest.path, options)));
  stats.save(tmp.file("stats.safetensors"));
  r = run_stgs("show-input " + manifest_path + " --id " + row.id + " --out " + out + " --frames 3 --size 48" +
               " --stats " + tmp.file("stats.safetensors"));
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("normalised with statistics " + tmp.file("stats.safetensors")));
  const Tensor normalised = load_safetensors(out + "/spectrogram.safetensors").get("spectrogram_normalised");
  CHECK(normalised.to_vector<float>() == make_clip_input(raw.frames, spec, stats).spectrogram.to_vector<float>());

  // A rerun with fewer frames leaves none of the earlier run's behind.
  REQUIRE(run_stgs("show-input " + manifest_path + " --id " + row.id + " --out " + out + " --frames 2").status == 0);
  CHECK(std::filesystem::exists(out + "/frame_01.png"));
  CHECK_FALSE(std::filesystem::exists(out + "/frame_02.png"));
}

TEST_CASE("stgs show-input: help and errors", "[cli][data]") {
  TempDir tmp("show_input_errors");
  SynthConfig config;
  config.clips = 2;
  config.size = 32;
  config.frames = 2;
  generate_synthetic(tmp.dir.string(), config);
  const Manifest manifest = read_manifest(tmp.file("manifest.csv"));

  CommandResult r = run_stgs("show-input --help");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("usage: stgs show-input MANIFEST --id ID --out DIR"));
  r = run_stgs("show-input " + tmp.file("manifest.csv") + " --out " + tmp.file("out"));
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("--id ID is required"));
  r = run_stgs("show-input " + tmp.file("manifest.csv") + " --id nope --out " + tmp.file("out"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("no clip 'nope' in manifest"));
  CHECK_THAT(r.output, Catch::Contains(manifest.rows[0].id + ", " + manifest.rows[1].id));
  r = run_stgs("show-input " + tmp.file("missing.csv") + " --id x --out " + tmp.file("out"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("cannot read manifest") && Catch::Contains("missing.csv"));
  r = run_stgs("show-input " + tmp.file("manifest.csv") + " --id " + manifest.rows[0].id + " --out " +
               tmp.file("out") + " --size 3");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--size expects an integer in [8, 1024], got '3'"));
}

TEST_CASE("stgs show-input --augment: each variant in its own directory", "[cli][data]") {
  TempDir tmp("show_input_augment");
  SynthConfig config;
  config.clips = 2;
  config.size = 40;
  config.frames = 4;
  generate_synthetic(tmp.file("set"), config);
  const std::string manifest_path = tmp.file("set/manifest.csv");
  const ManifestRow row = read_manifest(manifest_path).rows[0];
  const std::string out = tmp.file("out");
  CommandResult r = run_stgs("show-input " + manifest_path + " --id " + row.id + " --out " + out +
                             " --frames 2 --size 32 --augment hflip,specaug_time_mask");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("augmented    hflip"));
  // hflip mirrors every frame: column x of the variant is column 31 - x of the original.
  const Image plain = read_image(out + "/frame_00.png"), flipped = read_image(out + "/hflip/frame_00.png");
  int worst = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c)
        worst = std::max(worst, std::abs(int(plain.rgb[size_t((y * 32 + x) * 3 + c)]) -
                                         int(flipped.rgb[size_t((y * 32 + 31 - x) * 3 + c)])));
  CHECK(worst <= 1);
  // The time mask zeroes a band of the raw spectrogram; the plain one has no all-zero frame.
  auto zero_frames = [](const std::string& path) {
    const Tensor spec = load_safetensors(path).get("spectrogram_raw");
    int zeros = 0;
    for (int64_t t = 0; t < spec.size(0); ++t) {
      bool all = true;
      for (int64_t f = 0; f < spec.size(1); ++f) all = all && spec.data<float>()[t * spec.size(1) + f] == 0.0f;
      zeros += all;
    }
    return zeros;
  };
  CHECK(zero_frames(out + "/spectrogram.safetensors") == 0);
  CHECK(zero_frames(out + "/specaug_time_mask/spectrogram.safetensors") >= 1);
  r = run_stgs("show-input " + manifest_path + " --id " + row.id + " --out " + out + " --augment nope");
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Catch::Contains("nope"));
  // A bad name anywhere in the list stops the command before it writes anything.
  const std::string fresh = tmp.file("fresh");
  r = run_stgs("show-input " + manifest_path + " --id " + row.id + " --out " + fresh + " --augment hflip,nope");
  CHECK(r.status == 1);
  CHECK_FALSE(std::filesystem::exists(fresh));
}
