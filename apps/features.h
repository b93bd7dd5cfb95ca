// The feature cache as the search and the evaluation see it: a directory of train/val/test splits
// (data/feature_cache.h) turned into nas::FeatureSets, and the search space their shapes imply (which caches
// are combined how: apps/protocol.h).
// defines: load_feature_split, to_feature_set, search_config_for, backbone_parameters
#pragma once

#include <string>
#include <vector>

#include "data/feature_cache.h"
#include "nas/search_run.h"

namespace stgs::apps {

// Reads DIR/<split>.safetensors ("train", "val" or "test"). Throws naming the directory when it or the file is
// missing, the file when it is unreadable, and the split and the file when it has no clips.
data::FeatureSplit load_feature_split(const std::string& dir, const std::string& split);

nas::FeatureSet to_feature_set(const data::FeatureSplit& split);

// The search space over the cache's eight inputs (their C_i and L) with the given cells, steps, C and dropout.
nas::SearchConfig search_config_for(const data::FeatureSplit& split, int cells, int steps, int64_t C, double dropout);

// Parameters of the two backbones (without heads) that produced features of these channels (C_i in
// data::kFeatureNames order: a split's channels(), or a genotype's input_channels), from their widths (the
// channels of image.layer1 and audio.layer1): the part of a deployed detector's size that the fusion network
// does not show.
int64_t backbone_parameters(const std::vector<int64_t>& channels);

}  // namespace stgs::apps
