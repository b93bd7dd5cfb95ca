#include "apps/detector.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "apps/backbones.h"
#include "apps/model_file.h"
#include "apps/options.h"
#include "apps/run_dir.h"
#include "data/feature_cache.h"
#include "engine/io/safetensors.h"
#include "engine/io/sha256.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/check.h"
#include "nas/search_run.h"

namespace stgs::apps {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCommand = "stgs detect";

using Metadata = std::map<std::string, std::string>;

const std::string& recorded(const Metadata& meta, const std::string& key, const std::string& cache_file) {
  const auto it = meta.find(key);
  STGS_CHECK(it != meta.end(), "feature cache '", cache_file, "' records no \"", key,
             "\" (written by an older stgs extract? `stgs extract --force` rebuilds it)");
  return it->second;
}

// The file the cache recorded under `key` (or `given` instead), which must still have the recorded SHA-256:
// features from another backbone or other statistics would not be the ones the run's networks were trained on.
std::string checked_file(const std::string& given, const Metadata& meta, const std::string& key, const std::string& what,
                         const std::string& flag, const std::string& cache_file) {
  const std::string& sha = recorded(meta, key + "_sha256", cache_file);
  const std::string path = given.empty() ? recorded(meta, key, cache_file) : given;
  STGS_CHECK(fs::is_regular_file(path), what, " '", path, "' does not exist",
             given.empty() ? " (recorded by the feature cache '" + cache_file + "')" : std::string(), "; pass ", flag,
             " FILE with the file whose SHA-256 is ", sha);
  const std::string actual = sha256_file(path);
  STGS_CHECK(actual == sha, what, " '", path, "' is not the file the features were extracted with: its SHA-256 is ",
             actual, ", the feature cache '", cache_file, "' recorded ", sha,
             "; the run's networks were trained on the other one (restore it, or pass ", flag, " with it)");
  return path;
}

// The fixed network of `genotype` with `weights`, in eval mode on `device`; a load error names `source`.
std::unique_ptr<nas::FixedNetwork> load_network(const nas::Genotype& genotype, const StateDict& weights,
                                                const std::string& source, Device device) {
  STGS_CHECK(genotype.config.input_names ==
                 std::vector<std::string>(data::kFeatureNames.begin(), data::kFeatureNames.end()),
             source, ": its genotype's inputs are not the feature cache's eight backbone features");
  Generator scratch;  // initial weights, replaced at once
  auto net = std::make_unique<nas::FixedNetwork>(genotype, &scratch);
  try {
    net->load_state_dict(weights);
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  net->to(device);
  net->eval();
  return net;
}

// The test AUC results.json gives for `model` ("fused", "image-only", ...), NaN when it has none.
double test_auc(const nlohmann::json& results, const std::string& model) {
  for (const nlohmann::json& m : results.value("models", nlohmann::json::array()))
    if (m.value("model", "") == model && m.contains("test_auc") && m["test_auc"].is_number())
      return m["test_auc"].get<double>();
  return NAN;
}

}  // namespace

Detector::Detector(const std::string& run_dir, const DetectorOptions& options)
    : run_dir_(run_dir), device_(options.device) {
  const RunDir run = RunDir::open(run_dir);
  STGS_CHECK(!run.exists("entropy.csv"), run_dir, ": a search run; ", kCommand,
             " needs the evaluation run of its genotype (`stgs eval ", run_dir, "` makes one)");
  const nlohmann::json config = run.read_json("config.json");
  STGS_CHECK(config.contains("genotype") && config.contains("features"), run.file("config.json"),
             ": not an evaluation run's config (no \"genotype\" or \"features\")");
  const std::string checkpoint = run.file("checkpoints/last.safetensors");
  STGS_CHECK(fs::is_regular_file(checkpoint), run_dir, ": no trained checkpoint (", checkpoint,
             " is missing); train the model with `stgs eval`");
  STGS_CHECK(run.exists("results.json"), run_dir,
             ": the evaluation has not finished (no results.json), so its checkpoint holds no final model; finish it "
             "with `stgs eval --resume ",
             run_dir, "`");
  const nlohmann::json results = run.read_json("results.json");

  // The preprocessing the run's features went through, as the feature cache recorded it: the training cache's
  // (the first of several, --protocol mixed, whose others must record the same).
  const std::vector<std::string> caches = split_list(config["features"].get<std::string>(), ',');
  STGS_CHECK(!caches.empty(), run.file("config.json"), ": names no feature cache");
  auto cache_metadata = [&](const std::string& features) {
    const std::string file = features + "/test.safetensors";
    STGS_CHECK(fs::is_regular_file(file), run_dir, ": the feature cache the run was trained on ('", features,
               "') is gone; it records the backbones, statistics and clip settings a new clip must go through");
    return read_safetensors_header(file).metadata;
  };
  const std::string features = caches.front(), cache_file = features + "/test.safetensors";
  const Metadata meta = cache_metadata(features);
  for (size_t i = 1; i < caches.size(); ++i) {
    const Metadata other = cache_metadata(caches[i]);
    for (const char* key : {"image_backbone_sha256", "audio_backbone_sha256", "stats_sha256", "frames", "size", "L",
                            "audio_window"})
      STGS_CHECK(recorded(other, key, caches[i] + "/test.safetensors") == recorded(meta, key, cache_file), run_dir,
                 ": its feature caches '", features, "' and '", caches[i], "' record different \"", key,
                 "\"; a new clip cannot go through the preprocessing of both");
  }
  STGS_CHECK(recorded(meta, "format", cache_file) == data::kFeatureCacheFormat, cache_file, ": not a feature cache");
  clip_.frames = int(parse_integer(cache_file, "\"frames\"", recorded(meta, "frames", cache_file), 1, 1000));
  clip_.size = int(parse_integer(cache_file, "\"size\"", recorded(meta, "size", cache_file), 8, 4096));
  L_ = parse_integer(cache_file, "\"L\"", recorded(meta, "L", cache_file), 1, 4096);
  const std::string& window = recorded(meta, "audio_window", cache_file);
  STGS_CHECK(window == "centre", cache_file, ": audio_window \"", window, "\" (this build extracts \"centre\" only)");
  const std::string image_path = checked_file(options.image_backbone, meta, "image_backbone", "image backbone",
                                              "--image-backbone", cache_file);
  const std::string audio_path = checked_file(options.audio_backbone, meta, "audio_backbone", "audio backbone",
                                              "--audio-backbone", cache_file);
  const std::string stats_path =
      checked_file(options.stats, meta, "stats", "spectrogram statistics", "--stats", cache_file);
  stats_ = data::SpectrogramStats::load(stats_path);
  const BackboneFile image = inspect_backbone(image_path, true, kCommand);
  const BackboneFile audio = inspect_backbone(audio_path, false, kCommand);
  image_ = load_backbone(image, device_, kCommand);
  audio_ = load_backbone(audio, device_, kCommand);
  preprocessing_ = {{"features", features},
                    {"frames", clip_.frames},
                    {"size", clip_.size},
                    {"L", L_},
                    {"audio_window", window},
                    {"image_backbone", image_path},
                    {"image_backbone_sha256", image.sha256},
                    {"audio_backbone", audio_path},
                    {"audio_backbone_sha256", audio.sha256},
                    {"stats", stats_path},
                    {"stats_sha256", meta.at("stats_sha256")}};

  // The fused model: the genotype evaluated and the best epoch's weights.
  const SafetensorsFile ckpt = load_safetensors(checkpoint);
  const StateDict best = sub_dict(StateDict(ckpt.tensors), "best.");
  STGS_CHECK(!best.empty(), checkpoint, ": holds no best weights (no epoch finished)");
  networks_.push_back(load_network(nas::load_genotype(run.file("genotype.json")), best, checkpoint, device_));
  evidence_.push_back({"fused", "fused model (the searched genotype)", test_auc(results, "fused"), "test"});
  for (const auto& [name, key, modality] : {std::tuple{"image-only", "image_only", "image"},
                                            std::tuple{"audio-only", "audio_only", "audio"}}) {
    const std::string path = run.file(std::string("models/") + name + ".safetensors");
    if (!fs::exists(path)) continue;
    const ModelFile model = load_model_file(path);
    networks_.push_back(load_network(model.genotype, model.weights, path, device_));
    evidence_.push_back({key, std::string(name) + " model (the genotype on " + modality + " features alone)",
                         test_auc(results, name), "test"});
  }
  for (const BackboneFile* b : {&image, &audio}) {
    if (b->config.num_classes != 2) continue;  // no head, or not a real/fake one
    const auto target = b->metadata.find("target"), auc = b->metadata.find("val_auc");
    evidence_.push_back({b->image ? "image_backbone" : "audio_backbone",
                         std::string(b->image ? "image" : "audio") + " backbone's own pretrained head (target " +
                             (target == b->metadata.end() ? std::string("unknown") : target->second) + ")",
                         auc == b->metadata.end() ? NAN : std::stod(auc->second), "val"});
  }
}

std::vector<std::vector<double>> Detector::score(const data::ClipBatch& batch) {
  const BackboneOutputs out = run_backbones(*image_, *audio_, batch, L_, device_);
  nas::FeatureSet set;
  set.names.assign(data::kFeatureNames.begin(), data::kFeatureNames.end());
  set.features = out.features;
  set.labels = batch.labels;
  set.ids = batch.ids;
  const int64_t clips = set.size();
  std::vector<std::vector<double>> scores(static_cast<size_t>(clips));
  auto add_column = [&](const std::vector<double>& p) {
    for (size_t i = 0; i < scores.size(); ++i) scores[i].push_back(p[i]);
  };
  // As the evaluation scored its test split: softmax of the logits in F32, class 1.
  for (const std::unique_ptr<nas::FixedNetwork>& net : networks_)
    add_column(nas::predict([&](const std::vector<Tensor>& f) { return net->forward(f); }, set, clips, device_));
  for (size_t e = networks_.size(); e < evidence_.size(); ++e) {
    const Tensor& logits = evidence_[e].key == "image_backbone" ? out.image_logits : out.audio_logits;
    add_column(softmax(logits, 1).to(DType::F64).select(1, 1).contiguous().to_vector<double>());
  }
  return scores;
}

}  // namespace stgs::apps
