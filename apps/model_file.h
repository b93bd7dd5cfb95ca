// A trained fixed network in one file: its weights and the genotype they belong to, so that it can be rebuilt
// without the search run or the training state. `stgs eval` writes one per single-modality model
// (RUN/models/image-only.safetensors, audio-only); `stgs detect` loads them.
// defines: kModelFileFormat, ModelFile, save_model_file, load_model_file
//
// File: safetensors, the FixedNetwork's state dict (nas/fixed_network.h names), metadata "format"
// (kModelFileFormat), "version" (1), "model" (its name), "best_epoch" (1-based) and "genotype" (the genotype's
// JSON, nas/genotype.h).
#pragma once

#include <cstdint>
#include <string>

#include "engine/nn/module.h"
#include "nas/genotype.h"

namespace stgs::apps {

inline constexpr const char* kModelFileFormat = "stgs-fixed-model";

struct ModelFile {
  std::string name;  // "image-only", "audio-only"
  nas::Genotype genotype;
  StateDict weights;
  int64_t best_epoch = 0;  // 1-based
};

// Writes atomically.
void save_model_file(const std::string& path, const ModelFile& model);

// Throws naming the file when it is unreadable, of another format or version, or its genotype is invalid.
ModelFile load_model_file(const std::string& path);

}  // namespace stgs::apps
