#include "apps/features.h"

#include <filesystem>

#include "engine/autograd.h"
#include "engine/nn/resnet.h"
#include "engine/random.h"
#include "kernels/check.h"

namespace stgs::apps {

data::FeatureSplit load_feature_split(const std::string& dir, const std::string& split) {
  STGS_CHECK(std::filesystem::is_directory(dir), dir,
             ": no such feature directory (make one with `stgs extract MANIFEST ... --out DIR`)");
  const std::string path = dir + "/" + split + ".safetensors";
  STGS_CHECK(std::filesystem::exists(path), dir, ": has no ", split, ".safetensors (the ", split,
             " split of the feature cache)");
  data::FeatureSplit out = data::read_feature_split(path);
  STGS_CHECK(out.size() > 0, path, ": the ", split, " split has no clips");
  return out;
}

nas::FeatureSet to_feature_set(const data::FeatureSplit& split) {
  nas::FeatureSet s;
  for (const char* name : data::kFeatureNames) s.names.push_back(name);
  s.features = split.features;
  s.labels = split.labels;
  s.ids = split.ids;
  s.validate(split.path.empty() ? split.split : split.path);
  return s;
}

nas::SearchConfig search_config_for(const data::FeatureSplit& split, int cells, int steps, int64_t C, double dropout) {
  nas::SearchConfig c;
  for (const char* name : data::kFeatureNames) c.input_names.push_back(name);
  c.input_channels = split.channels();
  c.cells = cells;
  c.steps = steps;
  c.C = C;
  c.L = split.length();
  c.dropout = dropout;
  c.validate();
  return c;
}

int64_t backbone_parameters(const std::vector<int64_t>& channels) {
  STGS_CHECK(channels.size() == data::kFeatureNames.size(), "backbone_parameters: ", channels.size(),
             " feature channels, expected ", data::kFeatureNames.size());
  NoGradGuard no_grad;
  Generator scratch;  // the weights are thrown away: leave the default generator (dropout's stream) untouched
  return ResNet34(ResNetConfig::image(channels.at(0)), &scratch).num_parameters() +
         ResNet34(ResNetConfig::audio(channels.at(4)), &scratch).num_parameters();
}

}  // namespace stgs::apps
