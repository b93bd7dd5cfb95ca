// The feature cache: the pooled backbone features of every clip of one split in one safetensors file, so a
// search or a training run never decodes a clip or runs a backbone (`stgs extract` writes it).
// defines: kFeatureNames, kFeatureCacheFormat, kFeatureCacheVersion, FeatureSplit, write_feature_split,
//          read_feature_split, feature_split_staleness
//
// File DIR/<split>.safetensors (README "Feature cache"), N clips:
//   image.layer1 .. image.layer4, audio.layer1 .. audio.layer4   (N, C_i, L) F32: layer i of each backbone
//                                     pooled to L positions (nas/reshape.h), C_i = w, 2w, 4w, 8w of its width w
//   labels        (N) I64     class 1 = fake
//   categories    (N) I64     0..3 = FakeAVCeleb's A..D
//   ids           (N, W) U8   clip i's id as UTF-8 in row i, NUL-padded to the longest id's W bytes (W >= 1);
//                             augmented copies carry the suffix "#<augmentation>"
// Metadata: "format" = kFeatureCacheFormat, "version", "split", "clips" (N), plus the writer's key (hashes of
// every input and the options that shaped the features) and informational entries.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace stgs::data {

inline constexpr std::array<const char*, 8> kFeatureNames = {"image.layer1", "image.layer2", "image.layer3",
                                                             "image.layer4", "audio.layer1", "audio.layer2",
                                                             "audio.layer3", "audio.layer4"};
inline constexpr const char* kFeatureCacheFormat = "stgs-feature-cache";
inline constexpr int kFeatureCacheVersion = 1;

// One split of the cache in memory.
struct FeatureSplit {
  std::string path;                             // where it was read from (empty when built in memory)
  std::string split;                            // "train", "val" or "test"
  std::vector<std::string> ids;                 // N
  Tensor labels;                                // (N) I64, 0 real / 1 fake
  Tensor categories;                            // (N) I64, 0..3 = A..D
  std::vector<Tensor> features;                 // kFeatureNames order, each (N, C_i, L) F32 on the CPU
  std::map<std::string, std::string> metadata;  // everything in the file's metadata (written: the caller's)

  int64_t size() const { return int64_t(ids.size()); }
  int64_t length() const { return features.at(0).size(2); }  // L
  std::vector<int64_t> channels() const;                     // C_i in kFeatureNames order
};

// Writes `split` to `path` atomically (temporary file + rename) with its metadata plus "format", "version",
// "split" and "clips". Throws naming the path and the problem when the parts disagree (N, L, dtypes,
// labels outside {0, 1}, categories outside 0..3, an empty id or one with a NUL byte).
void write_feature_split(const std::string& path, const FeatureSplit& split);

// Reads and validates a cache file. Every error names the file and, where one is to blame, the tensor:
// "feature cache 'DIR/val.safetensors': tensor \"audio.layer2\" has shape [32, 8], expected (N, C, L) ...".
FeatureSplit read_feature_split(const std::string& path);

// Why the file at `path` cannot be reused for inputs and options `key`: "" when it can (its header reads,
// it is this format and version, and every entry of `key` is in its metadata with the same value), else a
// short reason: "missing", "unreadable (...)", "format ... not ..." or "<entry> changed". Reads only the header.
std::string feature_split_staleness(const std::string& path, const std::map<std::string, std::string>& key);

}  // namespace stgs::data
