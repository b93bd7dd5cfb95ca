// The whole synthetic pipeline at toy size, for end-to-end tests of the commands: a 16-clip set, width-4
// backbones, the feature cache, searches and an evaluation, each stage run through the `stgs` binary.
// defines: tiny_synthetic_set, pretrain_tiny_backbones, TrainedPipeline, trained_pipeline
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "data/synthetic.h"
#include "tests/test_files.h"

namespace stgs::testing {

// 16 clips (4 per category; 2 train, 1 val, 1 test each), 32x32, 2 frames, 1 s of audio; returns the manifest.
inline std::string tiny_synthetic_set(const TempDir& tmp) {
  data::SynthConfig c;
  c.clips = 16;
  c.size = 32;
  c.frames = 2;
  c.min_seconds = c.max_seconds = 1.0;
  c.split[0] = 0.5, c.split[1] = 0.25, c.split[2] = 0.25;
  data::generate_synthetic(tmp.file("set"), c);
  return tmp.file("set/manifest.csv");
}

// Pretrains both width-4 backbones for one epoch into tmp on `device`; returns "--image-backbone I
// --audio-backbone A".
inline std::string pretrain_tiny_backbones(const TempDir& tmp, const std::string& manifest,
                                           const std::string& device = "cpu") {
  // The options come from a config file whose 3 epochs the command line overrides (the pretrain config test
  // reads the resolved image.config.json).
  write_file_bytes(tmp.file("pretrain.json"),
                   R"({"width": 4, "epochs": 3, "batch": 4, "quiet": true, "device": ")" + device + "\"}");
  const std::string common = manifest + " --config " + tmp.file("pretrain.json") + " --epochs 1";
  CommandResult r =
      run_stgs("pretrain " + common + " --modality image --size 32 --frames 2 --out " + tmp.file("image.safetensors"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  r = run_stgs("pretrain " + common + " --modality audio --out " + tmp.file("audio.safetensors"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  return " --image-backbone " + tmp.file("image.safetensors") + " --audio-backbone " + tmp.file("audio.safetensors");
}

// synth -> pretrain -> extract (L 2) -> an STGS search and a plain-softmax search (2 epochs, M 2, C 8) -> an
// evaluation of the STGS search's genotype (2 epochs, with the single-modality models). About a second on
// the 2-core development machine. No plots: the tests that want them render them.
struct TrainedPipeline {
  TempDir tmp{"pipeline"};
  std::string manifest, image_backbone, audio_backbone, features, search_run, softmax_run, eval_run;

  TrainedPipeline() {
    manifest = tiny_synthetic_set(tmp);
    const std::string backbones = pretrain_tiny_backbones(tmp, manifest);
    image_backbone = tmp.file("image.safetensors");
    audio_backbone = tmp.file("audio.safetensors");
    features = tmp.file("features");
    run("extract " + manifest + backbones + " --out " + features + " --L 2 --device cpu --quiet");
    const std::string search = " --epochs 2 --samples 2 --channels 8 --device cpu --quiet --no-plots --runs-dir ";
    search_run = last_line(run("search " + features + search + tmp.file("runs") + " --name search"));
    softmax_run = last_line(run("search " + features + search + tmp.file("runs") + " --name softmax --mode softmax"));
    run("eval " + search_run + " --epochs 2 --device cpu --quiet --no-plots --runs-dir " + tmp.file("evals"));
    for (const auto& entry : std::filesystem::directory_iterator(tmp.file("evals"))) eval_run = entry.path().string();
  }

 private:
  static std::string run(const std::string& args) {
    const CommandResult r = run_stgs(args);
    INFO("stgs " << args << "\n" << r.output);
    REQUIRE(r.status == 0);
    return r.output;
  }
  // `stgs search` prints its run directory last.
  static std::string last_line(const std::string& output) {
    const std::string trimmed = output.substr(0, output.find_last_not_of('\n') + 1);
    return trimmed.substr(trimmed.find_last_of('\n') + 1);
  }
};

// Built on first use, once per test process, and shared by the [detect] and [report] cases (which must not
// change what it holds).
inline const TrainedPipeline& trained_pipeline() {
  static const TrainedPipeline pipeline;
  return pipeline;
}

}  // namespace stgs::testing
