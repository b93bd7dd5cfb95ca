// Small feature caches and run-directory helpers for the end-to-end tests of `stgs search`, `stgs eval`, the
// protocols and the sweep.
// defines: write_feature_cache, slurp, only_run
#pragma once

#include <catch2/catch.hpp>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/feature_cache.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "engine/tensor.h"

namespace stgs::testing {

// DIR/{train,val,test}.safetensors with `rows` clips each (alternately real and fake, categories A and D; ids
// "<split>-s<seed>-<i>"), whose image.layer3 and audio.layer2 carry the label (a +-1.5 shift) and the rest is
// noise drawn from `seed`. Channels 4, 4, 8, 8 per modality; L positions.
inline void write_feature_cache(const std::filesystem::path& dir, uint64_t seed, int64_t L = 4,
                                std::array<int64_t, 3> rows = {48, 24, 24}) {
  std::filesystem::create_directories(dir);
  Generator gen(seed);
  const char* names[3] = {"train", "val", "test"};
  for (int split = 0; split < 3; ++split) {
    const std::string name = names[split];
    const int64_t n = rows[size_t(split)];
    data::FeatureSplit s;
    s.split = name;
    const std::string prefix = name + "-s" + std::to_string(seed) + "-";
    std::vector<int64_t> labels, categories;
    for (int64_t i = 0; i < n; ++i) {
      labels.push_back(i % 2);
      categories.push_back(i % 2 ? 3 : 0);
      s.ids.push_back(prefix + std::to_string(i));
    }
    s.labels = from_vector(labels, Shape{n});
    s.categories = from_vector(categories, Shape{n});
    const Tensor sign = (s.labels.to(DType::F32) * 2.0 - 1.0).reshape(Shape{n, 1, 1});
    const int64_t channels[8] = {4, 4, 8, 8, 4, 4, 8, 8};
    for (int f = 0; f < 8; ++f) {
      Tensor x = randn(Shape{n, channels[f], L}, DType::F32, Device::cpu(), &gen);
      if (f == 2 || f == 5) x = (x + sign * 1.5).contiguous();
      s.features.push_back(x);
    }
    data::write_feature_split((dir / (name + ".safetensors")).string(), s);
  }
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The one entry of `dir` whose name starts with `prefix` (a run directory "search-<timestamp>").
inline std::string only_run(const std::filesystem::path& dir, const std::string& prefix) {
  std::string found;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) {
      REQUIRE(found.empty());
      found = e.path().string();
    }
  REQUIRE(!found.empty());
  return found;
}

}  // namespace stgs::testing
