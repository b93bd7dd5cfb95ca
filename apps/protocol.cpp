#include "apps/protocol.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "apps/features.h"
#include "apps/options.h"
#include "engine/io/safetensors.h"
#include "engine/io/sha256.h"
#include "engine/ops.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

std::string shape_text(const data::FeatureSplit& s) { return features_shape_text(s.channels(), s.length()); }

}  // namespace

std::string features_shape_text(const std::vector<int64_t>& channels, int64_t L) {
  std::ostringstream out;
  out << "channels [";
  for (size_t i = 0; i < channels.size(); ++i) out << (i ? ", " : "") << channels[i];
  out << "], L " << L;
  return out.str();
}

nlohmann::json ProtocolCaches::by_split() const { return {{"train", train}, {"val", train}, {"test", test}}; }

std::string ProtocolCaches::summary() const {
  return protocol + ": train and val from " + join_list(train, ", ") + "; test from " + join_list(test, ", ");
}

ProtocolCaches protocol_caches(const std::string& protocol, const std::string& features,
                               const std::string& test_features, const std::string& command) {
  ProtocolCaches c;
  c.protocol = protocol;
  for (const std::string& dir : split_list(features, ',')) {
    STGS_CHECK(!dir.empty(), command, ": --features '", features, "' has an empty entry");
    const std::string path = std::filesystem::absolute(dir).lexically_normal().string();
    STGS_CHECK(std::find(c.train.begin(), c.train.end(), path) == c.train.end(), command, ": --features names ",
               path, " twice");
    c.train.push_back(path);
  }
  STGS_CHECK(!c.train.empty(), command, ": no feature directory given (--features DIR)");
  if (protocol == "mixed") {
    STGS_CHECK(c.train.size() >= 2, command, ": --protocol mixed merges two or more caches: --features A,B");
  } else {
    STGS_CHECK(c.train.size() == 1, command, ": --features names ", c.train.size(), " caches; --protocol ", protocol,
               " takes one (--protocol mixed merges several)");
  }
  if (protocol == "cross") {
    STGS_CHECK(!test_features.empty(), command, ": --protocol cross needs --test-features DIR (the cache whose test "
               "split is scored)");
    c.test = {std::filesystem::absolute(test_features).lexically_normal().string()};
  } else {
    STGS_CHECK(test_features.empty(), command, ": --test-features is for --protocol cross (this is ", protocol, ")");
    c.test = c.train;
  }
  return c;
}

std::string features_fingerprint(const ProtocolData& data, bool with_test) {
  Sha256 hash;
  auto add_tensor = [&](const Tensor& t) {
    const Tensor c = t.contiguous();
    hash.update(c.shape().str());
    hash.update(c.raw_data(), size_t(c.numel()) * dtype_size(c.dtype()));
  };
  std::vector<const data::FeatureSplit*> splits = {&data.train, &data.val};
  if (with_test) splits.push_back(&data.test);
  for (const data::FeatureSplit* s : splits) {
    hash.update(s->split + "\n");
    for (const std::string& id : s->ids) hash.update(id + "\n");
    add_tensor(s->labels);
    add_tensor(s->categories);
    for (const Tensor& f : s->features) add_tensor(f);
  }
  return hash.hex();
}

void check_features_unchanged(const std::map<std::string, std::string>& checkpoint_metadata,
                              const std::string& checkpoint_path, const std::string& fingerprint,
                              const ProtocolCaches& caches) {
  const auto it = checkpoint_metadata.find("features_sha256");
  STGS_CHECK(it == checkpoint_metadata.end() || it->second == fingerprint, checkpoint_path,
             ": the feature caches changed since this run began (", caches.summary(),
             "; their contents differ from what the checkpoint records): a run resumes only on the data it started "
             "with; start a new run for the new caches");
}

namespace {

// A cache directory is one extraction: its three splits exist and record the same extraction key. An extract
// stopped by a bad clip leaves train (and val) without test, or with another run's test, which a search would
// otherwise accept and the evaluation refuse only later.
void check_one_extraction(const std::string& dir, const data::FeatureSplit& train, const data::FeatureSplit& val) {
  const std::string test_path = dir + "/test.safetensors";
  STGS_CHECK(std::filesystem::exists(test_path), dir, ": has no test.safetensors (an extract that did not finish? "
             "run it again: the finished splits are kept)");
  const std::map<std::string, std::string> test = read_safetensors_header(test_path).metadata;
  for (const char* key : {"image_backbone_sha256", "audio_backbone_sha256", "manifest_sha256", "stats_sha256", "L",
                          "frames", "size"}) {
    const auto it = train.metadata.find(key);
    if (it == train.metadata.end()) continue;  // a cache written without the extraction key (tests, tools)
    for (const auto& [name, metadata] : {std::pair{"val", &val.metadata}, std::pair{"test", &test}}) {
      const auto other = metadata->find(key);
      STGS_CHECK(other != metadata->end() && other->second == it->second, dir, ": its train and ", name,
                 " splits come from different extractions (their \"", key, "\" differ): run stgs extract again");
    }
  }
}

}  // namespace

ProtocolData load_protocol_data(const ProtocolCaches& caches, bool need_test) {
  ProtocolData d;
  d.caches = caches;
  std::vector<data::FeatureSplit> train, val, test;
  auto add = [&](std::vector<data::FeatureSplit>& to, const std::string& dir, const char* split) {
    to.push_back(load_feature_split(dir, split));
    const data::FeatureSplit& reference = train.front();
    const data::FeatureSplit& s = to.back();
    STGS_CHECK(s.channels() == reference.channels() && s.length() == reference.length(), s.path, ": its features (",
               shape_text(s), ") differ from those of ", reference.path, " (", shape_text(reference),
               "): the two were extracted with other backbone widths or another L, and --protocol ", caches.protocol,
               " needs them alike");
  };
  for (const std::string& dir : caches.train) {
    add(train, dir, "train");
    add(val, dir, "val");
    check_one_extraction(dir, train.back(), val.back());
  }
  if (need_test)
    for (const std::string& dir : caches.test) add(test, dir, "test");
  d.train = merge_feature_splits(train);
  d.val = merge_feature_splits(val);
  if (need_test) d.test = merge_feature_splits(test);
  return d;
}

data::FeatureSplit merge_feature_splits(const std::vector<data::FeatureSplit>& splits) {
  STGS_CHECK(!splits.empty(), "merge_feature_splits: no splits");
  if (splits.size() == 1) return splits.front();
  data::FeatureSplit out;
  out.split = splits.front().split;
  std::vector<Tensor> labels, categories;
  std::vector<std::vector<Tensor>> features(splits.front().features.size());
  for (const data::FeatureSplit& s : splits) {
    out.path += (out.path.empty() ? "" : ", ") + s.path;
    out.ids.insert(out.ids.end(), s.ids.begin(), s.ids.end());
    labels.push_back(s.labels);
    categories.push_back(s.categories);
    for (size_t i = 0; i < features.size(); ++i) features[i].push_back(s.features.at(i));
  }
  out.labels = concat(labels, 0);
  out.categories = concat(categories, 0);
  for (const std::vector<Tensor>& parts : features) out.features.push_back(concat(parts, 0));  // (sum N, C_i, L)
  return out;
}

}  // namespace stgs::apps
