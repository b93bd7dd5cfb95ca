// Which feature caches a search or an evaluation learns from and which it is tested on (paper section 4.2):
//   within  one cache: its own train, val and test splits (the default)
//   mixed   two or more caches merged: train = the union of their train splits, val and test likewise (the
//           paper's first protocol, FakeAVCeleb and SWAN-DF mixed; Tables 2 and 3)
//   cross   train and val of one cache, test of another cache's test split (Table 4: searched and trained on
//           one dataset, tested on an unseen one)
// Caches combined this way must hold features of the same shapes (backbones of the same widths, the same L).
// defines: ProtocolCaches, protocol_caches, ProtocolData, load_protocol_data, merge_feature_splits,
//          features_fingerprint, check_features_unchanged, features_shape_text
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/feature_cache.h"

namespace stgs::apps {

struct ProtocolCaches {
  std::string protocol;            // "within", "mixed" or "cross"
  std::vector<std::string> train;  // caches whose train and val splits are learned from (absolute paths)
  std::vector<std::string> test;   // caches whose test split is scored (absolute paths)

  // {"train": [...], "val": [...], "test": [...]}: the caches each split came from, as results.json records them.
  nlohmann::json by_split() const;
  // One line for logs and reports: "mixed: train and val from A, B; test from A, B".
  std::string summary() const;
};

// The caches the options name: `features` is one cache directory, or for mixed two or more separated by
// commas; `test_features` is the test cache of cross (and must be empty otherwise). Throws naming the option,
// prefixed by `command`, when the counts do not fit the protocol or a cache is named twice.
ProtocolCaches protocol_caches(const std::string& protocol, const std::string& features,
                               const std::string& test_features, const std::string& command);

struct ProtocolData {
  ProtocolCaches caches;
  data::FeatureSplit train, val, test;  // merged over the caches; test only when loaded (need_test)
};

// Reads the train and val splits of every training cache and, when need_test, the test split of every test
// cache (load_feature_split's errors: a missing directory or file, an empty split), and merges them. Throws
// naming both files when a split's feature shapes differ from the first training cache's.
ProtocolData load_protocol_data(const ProtocolCaches& caches, bool need_test);

// "channels [4, 4, 8, 8, 4, 4, 8, 8], L 4": what has to agree between combined caches, and between a cache and
// a genotype searched on another.
std::string features_shape_text(const std::vector<int64_t>& channels, int64_t L);

// SHA-256 over the loaded splits' contents (ids, labels, categories, every feature value; test only when
// `with_test`): a run records it in its checkpoints, and a resume refuses caches that changed since the run
// began instead of silently finishing on other data. About 3 s per GB of features (SHA-256 at ~300 MB/s on one
// core of the development machine), once per start.
std::string features_fingerprint(const ProtocolData& data, bool with_test);

// Throws, naming the checkpoint and the caches, when the checkpoint's recorded "features_sha256" differs from
// `fingerprint` (checkpoints written before runs recorded it pass).
void check_features_unchanged(const std::map<std::string, std::string>& checkpoint_metadata,
                              const std::string& checkpoint_path, const std::string& fingerprint,
                              const ProtocolCaches& caches);

// The rows of `splits` one after the other (features, labels, categories, ids); its path lists their files.
data::FeatureSplit merge_feature_splits(const std::vector<data::FeatureSplit>& splits);

}  // namespace stgs::apps
