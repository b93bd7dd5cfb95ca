// `stgs detect` on the tiny trained pipeline (tests/tiny_pipeline.h): a clip scored from its files gets the
// P(fake) the evaluation run wrote for it (preprocessing parity), batch mode reproduces the run's scores.csv,
// a video of the clip scores the same, --json has its keys, and each error names what is wrong.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "apps/run_dir.h"
#include "apps/run_tables.h"
#include "data/feature_cache.h"
#include "data/ffmpeg.h"
#include "data/manifest.h"
#include "engine/io/json_strict.h"
#include "engine/io/sha256.h"
#include "tests/test_files.h"
#include "tests/tiny_pipeline.h"

using namespace stgs;
using stgs::testing::CommandResult;
using stgs::testing::run_stgs;
using stgs::testing::TempDir;
namespace fs = std::filesystem;

namespace {

const data::ManifestRow& row_of(const data::Manifest& manifest, const std::string& id) {
  const auto it = std::find_if(manifest.rows.begin(), manifest.rows.end(),
                               [&](const data::ManifestRow& row) { return row.id == id; });
  REQUIRE(it != manifest.rows.end());
  return *it;
}

// The arguments that name one manifest clip by its files: frames directory, --audio, --face-box.
std::string clip_arguments(const data::ManifestRow& row) {
  std::string args = row.frames_dir + " --audio " + row.audio;
  if (row.face_box)
    args += " --face-box " + std::to_string(row.face_box->x) + "," + std::to_string(row.face_box->y) + "," +
            std::to_string(row.face_box->w) + "," + std::to_string(row.face_box->h);
  return args;
}

nlohmann::json detect_json(const std::string& args) {
  const CommandResult r = run_stgs("detect " + args + " --json --device cpu");
  INFO(r.output);
  REQUIRE(r.status == 0);
  return parse_json_strict(r.output, "stgs detect --json", "output");
}

// Copies `name` of the eval run into dir (creating its directories).
void copy_from_run(const std::string& run, const fs::path& dir, const std::string& name) {
  fs::create_directories((dir / name).parent_path());
  fs::copy_file(fs::path(run) / name, dir / name, fs::copy_options::overwrite_existing);
}

}  // namespace

TEST_CASE("stgs detect: a clip's P(fake) is the evaluation run's; --json; a video of it", "[detect][app]") {
  const testing::TrainedPipeline& p = testing::trained_pipeline();
  const data::Manifest manifest = data::read_manifest(p.manifest);
  const apps::CsvTable eval_scores = apps::CsvTable::load(p.eval_run + "/scores.csv", apps::kScoresHeader);
  REQUIRE(eval_scores.rows() == 4);  // one test clip per category

  // Every test clip, from its files alone, scores what the run's scores.csv says (within float rounding).
  for (size_t i = 0; i < eval_scores.rows(); ++i) {
    const data::ManifestRow& row = row_of(manifest, eval_scores.row(i)[0]);
    const nlohmann::json doc = detect_json(clip_arguments(row) + " " + p.eval_run);
    INFO("clip " << row.id);
    CHECK(std::abs(doc["p_fake"].get<double>() - std::stod(eval_scores.row(i)[2])) < 1e-5);
  }

  const data::ManifestRow& row = row_of(manifest, eval_scores.row(0)[0]);
  const nlohmann::json doc = detect_json(clip_arguments(row) + " " + p.eval_run);
  for (const char* key : {"clip", "audio", "run", "p_fake", "threshold", "prediction", "evidence", "preprocessing"})
    CHECK(doc.contains(key));
  // The tiny set's clips have 1 s of audio, under the model's 3 s window.
  REQUIRE(doc["warnings"].size() == 1);
  CHECK_THAT(doc["warnings"][0].get<std::string>(), Catch::Contains("s; the model's 3 s window repeats it"));
  const double p_fake = doc["p_fake"];
  CHECK(doc["prediction"] == (p_fake >= 0.5 ? "fake" : "real"));
  // The fused model, both single-modality models of the run and both backbones' pretrained heads.
  for (const char* key : {"fused", "image_only", "audio_only", "image_backbone", "audio_backbone"}) {
    INFO(key);
    REQUIRE(doc["evidence"].contains(key));
    const double e = doc["evidence"][key]["p_fake"];
    CHECK((e >= 0 && e <= 1));
    CHECK(!doc["evidence"][key]["description"].get<std::string>().empty());
  }
  CHECK(doc["evidence"]["fused"]["p_fake"] == p_fake);
  const nlohmann::json results = apps::RunDir::open(p.eval_run).read_json("results.json");
  CHECK(doc["evidence"]["fused"]["auc"] == results["test_auc"]);
  const nlohmann::json& pre = doc["preprocessing"];
  CHECK(pre["frames"] == 2);
  CHECK(pre["size"] == 32);
  CHECK(pre["L"] == 2);
  CHECK(pre["image_backbone"] == fs::absolute(p.image_backbone).lexically_normal().string());  // recorded absolute
  CHECK(pre["image_backbone_sha256"] == sha256_file(p.image_backbone));
  CHECK(pre["audio_backbone_sha256"] == sha256_file(p.audio_backbone));

  // The text form says the same.
  CommandResult r = run_stgs("detect " + clip_arguments(row) + " " + p.eval_run + " --device cpu");
  INFO(r.output);
  CHECK(r.status == 0);
  char expected[64];
  std::snprintf(expected, sizeof expected, "P(fake)  %.6f: %s", p_fake, p_fake >= 0.5 ? "fake" : "real");
  CHECK_THAT(r.output, Catch::Contains(expected));
  CHECK_THAT(r.output, Catch::Contains("image-only model"));

  // The same clip as a video (lossless PNG frames, 16-bit PCM sound), decoded by ffmpeg: the same P(fake).
  const std::string ffmpeg = data::find_program("ffmpeg");
  if (ffmpeg.empty()) {
    WARN("ffmpeg not installed: the video case of stgs detect is not checked");
    return;
  }
  TempDir tmp("detect_video");
  const std::string video = tmp.file("clip.mkv");
  const data::ProcessResult made = data::run_process({ffmpeg, "-nostdin", "-v", "error", "-framerate", "2", "-i",
                                                      row.frames_dir + "/frame_%02d.png", "-i", row.audio, "-c:v",
                                                      "png", "-c:a", "pcm_s16le", video});
  INFO(made.err);
  REQUIRE(made.status == 0);
  std::string box = clip_arguments(row);
  box = box.substr(box.find(" --face-box"));
  const nlohmann::json from_video = detect_json(video + box + " " + p.eval_run);
  CHECK(std::abs(from_video["p_fake"].get<double>() - p_fake) < 1e-5);
  CHECK(from_video["audio"] == "");
}

TEST_CASE("stgs detect --manifest: the test split's scores.csv is the evaluation run's", "[detect][app]") {
  const testing::TrainedPipeline& p = testing::trained_pipeline();
  TempDir tmp("detect_manifest");
  CommandResult r = run_stgs("detect --manifest " + p.manifest + " " + p.eval_run + " --split test --out " +
                             tmp.file("scores.csv") + " --device cpu --quiet");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("scored 4 clips"));
  const apps::CsvTable eval_scores = apps::CsvTable::load(p.eval_run + "/scores.csv", apps::kScoresHeader);
  const apps::CsvTable scores = apps::CsvTable::load(
      tmp.file("scores.csv"), {"id", "label", "score", "image_only", "audio_only", "image_backbone", "audio_backbone"});
  REQUIRE(scores.rows() == eval_scores.rows());
  for (size_t i = 0; i < scores.rows(); ++i) {
    INFO("row " << i);
    CHECK(scores.row(i)[0] == eval_scores.row(i)[0]);
    CHECK(scores.row(i)[1] == eval_scores.row(i)[1]);
    CHECK(std::abs(std::stod(scores.row(i)[2]) - std::stod(eval_scores.row(i)[2])) < 1e-6);
  }

  // Every clip, summarised as JSON.
  r = run_stgs("detect --manifest " + p.manifest + " " + p.eval_run + " --out " + tmp.file("all.csv") +
               " --json --device cpu --quiet --batch 5 --workers 1");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const nlohmann::json summary = parse_json_strict(r.output, "stgs detect --json", "output");
  CHECK(summary["clips"] == 16);
  CHECK(summary["skipped"] == 0);
  CHECK(summary["columns"].size() == 7);
  CHECK(testing::read_file_bytes(tmp.file("all.csv")).find(eval_scores.row(0)[0]) != std::string::npos);

  // A clip that cannot be decoded stops the run, or with --skip-bad is left out and listed.
  const fs::path set = fs::path(p.manifest).parent_path(), copy = tmp.dir / "set";
  fs::copy(set, copy, fs::copy_options::recursive);
  const data::Manifest manifest = data::read_manifest(p.manifest);
  const data::ManifestRow& bad = row_of(manifest, eval_scores.row(0)[0]);
  testing::write_file_bytes((copy / fs::relative(bad.frames().front(), set)).string(), "not a PNG");
  const std::string batch = "detect --manifest " + (copy / "manifest.csv").string() + " " + p.eval_run +
                            " --split test --out " + tmp.file("skip.csv") + " --json --device cpu --quiet";
  r = run_stgs(batch);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("clip '" + bad.id + "'"));
  r = run_stgs(batch + " --skip-bad");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("stgs detect: skipped " + bad.id + ": "));
  const nlohmann::json skipping = parse_json_strict(r.output.substr(r.output.find('{')), "stgs detect --json", "output");
  CHECK(skipping["clips"] == 3);
  CHECK(skipping["skipped"] == 1);
  CHECK(testing::read_file_bytes(tmp.file("skip.csv")).find(bad.id) == std::string::npos);
}

TEST_CASE("stgs detect: clear errors naming the file or value", "[detect][app]") {
  const testing::TrainedPipeline& p = testing::trained_pipeline();
  const data::Manifest manifest = data::read_manifest(p.manifest);
  const data::ManifestRow& row = manifest.rows.at(0);
  TempDir tmp("detect_errors");
  auto detect = [&](const std::string& args) {
    const CommandResult r = run_stgs("detect " + args + " --device cpu");
    CHECK(r.status == 1);
    return r.output;
  };
  const std::string clip = clip_arguments(row);

  // The run directory.
  CHECK_THAT(detect(clip + " " + tmp.file("nope")), Catch::Contains(tmp.file("nope") + ": no such run directory"));
  CHECK_THAT(detect(clip + " " + p.search_run), Catch::Contains("a search run"));
  const fs::path broken = tmp.dir / "broken";
  fs::create_directories(broken);
  nlohmann::json config = apps::RunDir::open(p.eval_run).read_json("config.json");
  config["features"] = tmp.file("gone");
  std::ofstream(broken / "config.json") << config.dump();
  CHECK_THAT(detect(clip + " " + broken.string()), Catch::Contains("no trained checkpoint"));
  copy_from_run(p.eval_run, broken, "checkpoints/last.safetensors");
  CHECK_THAT(detect(clip + " " + broken.string()), Catch::Contains("the evaluation has not finished (no results.json)"));
  copy_from_run(p.eval_run, broken, "results.json");
  CHECK_THAT(detect(clip + " " + broken.string()),
             Catch::Contains("the feature cache the run was trained on ('" + tmp.file("gone") + "') is gone"));

  // A run on several caches (--protocol mixed) goes through the first one's preprocessing; the others must
  // record the same.
  copy_from_run(p.eval_run, broken, "genotype.json");
  fs::copy(p.features, tmp.dir / "copy", fs::copy_options::recursive);
  config["features"] = p.features + "," + tmp.file("copy");
  std::ofstream(broken / "config.json", std::ios::trunc) << config.dump();
  const CommandResult mixed = run_stgs("detect " + clip + " " + broken.string() + " --json --device cpu");
  INFO(mixed.output);
  CHECK(mixed.status == 0);
  CHECK_THAT(mixed.output, Catch::Contains("\"features\": \"" + p.features + "\""));
  data::FeatureSplit test = data::read_feature_split(tmp.file("copy/test.safetensors"));
  test.metadata["L"] = "3";
  data::write_feature_split(tmp.file("copy/test.safetensors"), test);
  CHECK_THAT(detect(clip + " " + broken.string()),
             Catch::Contains("its feature caches '" + p.features + "' and '" + tmp.file("copy") +
                             "' record different \"L\""));

  // Files the feature cache recorded: a different file in place of the image backbone.
  testing::write_file_bytes(tmp.file("other.safetensors"), "not the backbone");
  CHECK_THAT(detect(clip + " " + p.eval_run + " --image-backbone " + tmp.file("other.safetensors")),
             Catch::Contains("image backbone '" + tmp.file("other.safetensors") +
                             "' is not the file the features were extracted with"));

  // The clip.
  CHECK_THAT(detect(tmp.file("missing") + " " + p.eval_run), Catch::Contains("clip '" + tmp.file("missing") +
                                                                             "' does not exist"));
  CHECK_THAT(detect(row.frames_dir + " " + p.eval_run), Catch::Contains("give its audio file with --audio"));
  CHECK_THAT(detect(row.frames_dir + " " + p.eval_run + " --audio " + tmp.file("none.wav")),
             Catch::Contains("audio file '" + tmp.file("none.wav") + "' does not exist"));
  fs::create_directories(tmp.dir / "frames");
  testing::write_file_bytes(tmp.file("frames/frame_00.png"), "not a PNG");
  CHECK_THAT(detect(tmp.file("frames") + " --audio " + row.audio + " " + p.eval_run),
             Catch::Contains("cannot decode image '" + tmp.file("frames/frame_00.png") + "'"));
  testing::write_file_bytes(tmp.file("bad.wav"), "RIFF, but not really");
  CHECK_THAT(detect(row.frames_dir + " --audio " + tmp.file("bad.wav") + " " + p.eval_run),
             Catch::Contains(tmp.file("bad.wav")));
  CHECK_THAT(detect(row.frames_dir + " --audio " + row.audio + " --face-box 1,2,3 " + p.eval_run),
             Catch::Contains("--face-box: face_box '1,2,3' is not four integers"));
  REQUIRE(mkfifo(tmp.file("pipe.mp4").c_str(), 0600) == 0);  // ffmpeg would wait on it forever
  CHECK_THAT(detect(tmp.file("pipe.mp4") + " " + p.eval_run),
             Catch::Contains("is neither a directory of frames nor a regular (video) file"));

  // Usage: a bad value is an error (status 1), a missing argument a usage error (status 2).
  CHECK_THAT(detect("--manifest " + p.manifest + " " + p.eval_run + " --out x.csv --split tset"),
             Catch::Contains("--split 'tset': expected train, val or test"));
  CHECK_THAT(detect("--manifest " + p.manifest + " " + p.eval_run + " --out " + tmp.dir.string()),
             Catch::Contains("--out: '" + tmp.dir.string() + "' is a directory"));
  CHECK_THAT(detect(clip + " " + p.eval_run + " --threshold 2"), Catch::Contains("--threshold expects a number in [0, 1]"));
  auto usage = [&](const std::string& args) {
    const CommandResult r = run_stgs("detect " + args + " --device cpu");
    CHECK(r.status == 2);
    return r.output;
  };
  CHECK_THAT(usage("--manifest " + p.manifest + " " + p.eval_run), Catch::Contains("--manifest needs --out"));
  CHECK_THAT(usage("--manifest " + p.manifest + " " + clip + " " + p.eval_run + " --out x.csv"),
             Catch::Contains("(no CLIP)"));
  CHECK_THAT(usage(p.eval_run), Catch::Contains("expected `stgs detect CLIP RUN_DIR`"));
  CHECK_THAT(usage(clip + " " + p.eval_run + " extra"), Catch::Contains("unexpected argument 'extra'"));
  const CommandResult help = run_stgs("detect --help");
  CHECK(help.status == 0);
  CHECK_THAT(help.output, Catch::Contains("usage: stgs detect CLIP RUN_DIR"));
}
