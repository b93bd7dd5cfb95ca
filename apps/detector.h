// A finished evaluation run as a detector for clips it has never seen: the backbones, spectrogram statistics and
// clip settings its feature cache recorded (each file checked against the SHA-256 the cache holds), and the
// fixed networks the run trained. A clip goes through run_backbones (apps/backbones.h), the same code that made
// its cache row would have run, so the fused P(fake) is the one `stgs eval` would have written for it.
// defines: DetectorOptions, Evidence, Detector
//
// What the run provides, in order (Detector::evidence):
//   fused           the searched genotype's fixed network, best epoch   (RUN/genotype.json, checkpoint "best.")
//   image_only      the genotype on image features alone                (RUN/models/image-only.safetensors)
//   audio_only      the genotype on audio features alone                (RUN/models/audio-only.safetensors)
//   image_backbone  the image backbone's own pretrained head, mean over the K frames (when it has a 2-class head)
//   audio_backbone  the audio backbone's own pretrained head on the centred window
// The single-modality models exist when the run trained them (not with --no-unimodal, nor in runs made before
// they were saved); the backbone heads when pretraining left them (`stgs pretrain` does).
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/clip_batch.h"
#include "engine/nn/resnet.h"
#include "nas/fixed_network.h"

namespace stgs::apps {

struct DetectorOptions {
  // Files to use instead of those the feature cache recorded (when they moved); each must have the SHA-256 the
  // cache recorded for it.
  std::string image_backbone, audio_backbone, stats;
  Device device = Device::cpu();
};

// One model's opinion of a clip.
struct Evidence {
  std::string key;          // "fused", "image_only", "audio_only", "image_backbone", "audio_backbone"
  std::string description;  // what the model is, for people
  double auc = NAN;         // how well it did where it was measured (NaN when unknown)
  std::string auc_split;    // "test" (the run's test split) or "val" (the backbone's pretraining validation)
};

class Detector {
 public:
  // Throws naming the file or value at fault: a missing run directory, a search run, an unfinished evaluation
  // (no results.json) or one without its checkpoint, a feature cache that is gone or records no setting
  // needed, a recorded file that is missing or whose SHA-256 changed. A run trained on several caches (--protocol
  // mixed) takes its preprocessing from the first, and the others must record the same.
  Detector(const std::string& run_dir, const DetectorOptions& options);

  const std::string& run_dir() const { return run_dir_; }
  const std::vector<Evidence>& evidence() const { return evidence_; }  // [0] is the fused model
  // How clips must be decoded: K frames of S x S, and the statistics the spectrogram window is normalised with.
  const data::ClipOptions& clip_options() const { return clip_; }
  const data::SpectrogramStats& stats() const { return stats_; }
  // The recorded settings and files (with their SHA-256), for --json.
  const nlohmann::json& preprocessing() const { return preprocessing_; }

  // batch: frames (B, K, 3, S, S) and spectrograms (B, 1, 300, 257) as data::load_clip_batch gives them, labels
  // (B) -> P(fake)[i][e] of clip i by evidence e.
  std::vector<std::vector<double>> score(const data::ClipBatch& batch);

 private:
  std::string run_dir_;
  Device device_;
  int64_t L_ = 0;
  data::ClipOptions clip_;
  data::SpectrogramStats stats_;
  nlohmann::json preprocessing_;
  std::unique_ptr<ResNet34> image_, audio_;
  std::vector<std::unique_ptr<nas::FixedNetwork>> networks_;  // evidence_[0 .. networks_.size())
  std::vector<Evidence> evidence_;
};

}  // namespace stgs::apps
