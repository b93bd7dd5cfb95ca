// Backbone pretraining (nas/backbone_pretrain.h, `stgs pretrain`), the feature cache (data/feature_cache.h,
// `stgs extract`) and the SHA-256 they fingerprint files with, on a tiny synthetic set written by the test.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "data/feature_cache.h"
#include "data/manifest.h"
#include "data/spectrogram.h"
#include "data/synthetic.h"
#include "engine/io/safetensors.h"
#include "engine/io/sha256.h"
#include "engine/nn/resnet.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/check.h"
#include "nas/backbone_pretrain.h"
#include "tests/test_files.h"
#include "tests/tiny_pipeline.h"

using namespace stgs;
using stgs::testing::CommandResult;
using stgs::testing::run_stgs;
using stgs::testing::TempDir;
namespace fs = std::filesystem;

namespace {

fs::file_time_type mtime(const std::string& path) { return fs::last_write_time(path); }

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<float>() == b.to_vector<float>();
}

}  // namespace

TEST_CASE("sha256: FIPS 180-4 test vectors, incremental updates, files", "[extract]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // A million 'a's in uneven pieces: block boundaries fall inside updates.
  Sha256 h;
  const std::string piece(997, 'a');
  for (int i = 0; i < 1003; ++i) h.update(piece);
  h.update(std::string(1000000 - 997 * 1003, 'a'));
  CHECK(h.hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  TempDir tmp("sha");
  testing::write_file_bytes(tmp.file("f"), std::string(3 << 20, 'x') + "tail");
  CHECK(sha256_file(tmp.file("f")) == sha256_hex(std::string(3 << 20, 'x') + "tail"));
  CHECK_THROWS_WITH(sha256_file(tmp.file("missing")), Catch::Contains(tmp.file("missing")));
}

TEST_CASE("pretrain_backbone: learns an easy task and keeps the best epoch", "[extract]") {
  // Clips of K = 2 frames of 32x32 noise; fake clips have a brighter red channel.
  const int64_t K = 2;
  auto make = [&](int64_t clips, uint64_t seed) {
    Generator gen(seed);
    Tensor x = randn({clips * K, 3, 32, 32}, DType::F32, Device::cpu(), &gen);
    std::vector<int64_t> labels;
    for (int64_t c = 0; c < clips; ++c) {
      labels.push_back(c % 2);
      if (c % 2) x.narrow(0, c * K, K).select(1, 0).copy_(add(x.narrow(0, c * K, K).select(1, 0), 1.5));
    }
    return nas::BackboneBatch{x, from_vector(labels, {clips})};
  };
  const nas::BackboneBatch train = make(32, 1), val = make(16, 2);
  // Batches of 8 clips in order (the loader's shuffling is its own business).
  auto stream = [&](const nas::BackboneBatch& src, int64_t clips) {
    auto position = std::make_shared<int64_t>(0);
    nas::BatchStream s;
    s.clips = clips;
    s.batches = clips / 8;
    s.start = [position](int) { *position = 0; };
    s.next = [&src, clips, position]() -> std::optional<nas::BackboneBatch> {
      if (*position == clips) return std::nullopt;
      const int64_t p = *position;
      *position += 8;
      return nas::BackboneBatch{src.inputs.narrow(0, p * K, 8 * K), src.labels.narrow(0, p, 8)};
    };
    return s;
  };
  nas::PretrainData data;
  data.train = stream(train, 32);
  data.val = stream(val, 16);
  data.rows_per_clip = K;
  Generator init(3);
  ResNet34 model(ResNetConfig::image(4, 2), &init);
  nas::PretrainOptions options;
  options.epochs = 3;
  options.lr = 3e-3;
  int batches = 0;
  nas::PretrainCallbacks callbacks;
  callbacks.on_batch = [&](int, int64_t, int64_t steps, double loss) {
    CHECK(steps == 4);
    CHECK(std::isfinite(loss));
    ++batches;
  };
  const nas::PretrainResult result = nas::pretrain_backbone(model, data, options, callbacks);
  CHECK(batches == 12);
  REQUIRE(result.epochs.size() == 3);
  CHECK(result.best.val_auc >= 0.9);
  // The kept epoch is one with the highest validation AUC. (Accuracy at the 0.5 threshold is not asserted:
  // how calibrated a few steps leave the batch-norm statistics varies with the thread count's summation
  // order; 16 threads once gave 0.69 where 2 gave 0.8.)
  double best_auc = 0;
  for (const auto& e : result.epochs) best_auc = std::max(best_auc, e.val_auc);
  CHECK(result.best.val_auc == best_auc);
  CHECK(result.epochs[0].best);
  CHECK_FALSE(model.is_training());

  ResNet34 headless(ResNetConfig::image(4));
  CHECK_THROWS_WITH(nas::pretrain_backbone(headless, data, options), Catch::Contains("2-class head"));

  // A stop after step 5 (epoch 2 of 4-step epochs) keeps the one finished epoch.
  int steps = 0;
  nas::PretrainCallbacks stopping;
  stopping.stop = [&] { return ++steps == 5; };
  ResNet34 stopped_model(ResNetConfig::image(4, 2), &init);
  const nas::PretrainResult stopped = nas::pretrain_backbone(stopped_model, data, options, stopping);
  CHECK(stopped.stopped);
  CHECK(stopped.epochs.size() == 1);
  CHECK(stopped.best.epoch == 1);

  // Validation scores that are not finite (here: NaN inputs) are a diverged training, named as such.
  nas::BackboneBatch broken = val;
  broken.inputs = val.inputs * std::nan("");
  data.val = stream(broken, 16);
  ResNet34 fresh(ResNetConfig::image(4, 2), &init);
  options.epochs = 1;
  CHECK_THROWS_WITH(nas::pretrain_backbone(fresh, data, options),
                    Catch::Contains("validation after epoch 1 gives a non-finite score") &&
                        Catch::Contains("the training diverged"));
}

TEST_CASE("feature cache: write, read, and clear errors for bad files", "[extract]") {
  TempDir tmp("fcache");
  data::FeatureSplit split;
  split.split = "val";
  split.ids = {"clip-a", "b"};
  split.labels = from_vector<int64_t>({0, 1}, {2});
  split.categories = from_vector<int64_t>({0, 3}, {2});
  for (int i = 0; i < 8; ++i) split.features.push_back(rand({2, int64_t(4) << (i % 4), 5}));
  split.metadata = {{"manifest_sha256", "abc"}};
  const std::string path = tmp.file("val.safetensors");
  data::write_feature_split(path, split);

  const data::FeatureSplit back = data::read_feature_split(path);
  CHECK(back.split == "val");
  CHECK(back.ids == split.ids);
  CHECK(back.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(back.categories.to_vector<int64_t>() == std::vector<int64_t>{0, 3});
  CHECK(back.length() == 5);
  CHECK(back.channels() == std::vector<int64_t>{4, 8, 16, 32, 4, 8, 16, 32});
  for (int i = 0; i < 8; ++i) CHECK(same_values(back.features[i], split.features[i]));
  CHECK(back.metadata.at("clips") == "2");
  CHECK(back.metadata.at("format") == data::kFeatureCacheFormat);
  CHECK(data::feature_split_staleness(path, {{"manifest_sha256", "abc"}}).empty());
  CHECK(data::feature_split_staleness(path, {{"manifest_sha256", "abd"}}) == "manifest_sha256 changed");
  CHECK(data::feature_split_staleness(tmp.file("none.safetensors"), {}) == "missing");

  // Rewrites the file's tensors with one changed, keeping the metadata.
  auto rewrite = [&](const std::string& name, const Tensor& t) {
    SafetensorsFile f = load_safetensors(path);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& [n, v] : f.tensors)
      if (n != name) tensors.emplace_back(n, v);
    if (t.defined()) tensors.emplace_back(name, t);
    const std::string bad = tmp.file("bad.safetensors");
    save_safetensors(bad, tensors, f.metadata);
    return bad;
  };
  std::string bad = rewrite("audio.layer2", Tensor());
  CHECK_THROWS_WITH(data::read_feature_split(bad), Catch::Contains("feature cache '" + bad + "'") &&
                                                       Catch::Contains("tensor \"audio.layer2\" is missing"));
  CHECK_THAT(data::feature_split_staleness(bad, {}), Catch::StartsWith("unreadable"));
  bad = rewrite("image.layer3", rand({2, 16}));
  CHECK_THROWS_WITH(data::read_feature_split(bad), Catch::Contains("tensor \"image.layer3\" is F32[2, 16]"));
  bad = rewrite("image.layer1", rand({3, 4, 5}));
  CHECK_THROWS_WITH(data::read_feature_split(bad), Catch::Contains("with N = 2"));
  bad = rewrite("audio.layer4", rand({2, 32, 6}));
  CHECK_THROWS_WITH(data::read_feature_split(bad), Catch::Contains("\"audio.layer4\" has L = 6"));
  bad = rewrite("labels", from_vector<int64_t>({0, 2}, {2}));
  CHECK_THROWS_WITH(data::read_feature_split(bad), Catch::Contains("\"labels\" holds 2"));

  // Truncated, and not a cache at all.
  const std::string bytes = testing::read_file_bytes(path);
  testing::write_file_bytes(tmp.file("cut.safetensors"), bytes.substr(0, bytes.size() - 10));
  CHECK_THROWS_WITH(data::read_feature_split(tmp.file("cut.safetensors")),
                    Catch::Contains(tmp.file("cut.safetensors")) && Catch::Contains("truncated"));
  // The header reader the reuse check uses sees the same file without reading its data, and the same damage.
  const SafetensorsHeader header = read_safetensors_header(path);
  CHECK(header.tensors.size() == 11);
  CHECK(header.metadata.at("split") == "val");
  CHECK_THROWS_WITH(read_safetensors_header(tmp.file("cut.safetensors")), Catch::Contains("truncated"));
  save_safetensors(tmp.file("other.safetensors"), {{"w", rand({2})}});
  CHECK_THROWS_WITH(data::read_feature_split(tmp.file("other.safetensors")),
                    Catch::Contains("not a feature cache file"));

  split.ids[1] = "";
  CHECK_THROWS_WITH(data::write_feature_split(tmp.file("x.safetensors"), split), Catch::Contains("empty"));
}

TEST_CASE("stgs pretrain + extract: state dicts, the three splits, reuse, rebuild, determinism, errors",
          "[extract][cli]") {
  TempDir tmp("extract");
  const std::string manifest = testing::tiny_synthetic_set(tmp);
  const std::string backbones = testing::pretrain_tiny_backbones(tmp, manifest);

  // The state dicts load into the presets with the training metadata.
  SafetensorsFile image = load_safetensors(tmp.file("image.safetensors"));
  ResNet34(ResNetConfig::image(4, 2)).load_state_dict(StateDict(image.tensors));
  CHECK(image.metadata.at("modality") == "image");
  CHECK(image.metadata.at("target") == "modality");
  CHECK(image.metadata.at("width") == "4");
  CHECK(image.metadata.at("size") == "32");
  CHECK(image.metadata.at("manifest_sha256") == sha256_file(manifest));
  CHECK(image.metadata.at("epochs") == "1");
  CHECK(image.contains("fc.weight"));
  const nlohmann::json image_config = nlohmann::json::parse(testing::read_file_bytes(tmp.file("image.config.json")));
  CHECK(image_config["epochs"] == 1);  // the flag over the file
  CHECK(image_config["width"] == 4);   // the file over the default
  CHECK(image_config["modality"] == "image");
  SafetensorsFile audio = load_safetensors(tmp.file("audio.safetensors"));
  ResNet34(ResNetConfig::audio(4, 2)).load_state_dict(StateDict(audio.tensors));
  CHECK(audio.contains("classifier.weight"));
  CHECK(audio.metadata.at("stats") == "audio.stats.safetensors");
  CHECK(audio.metadata.at("stats_sha256") == sha256_file(tmp.file("audio.stats.safetensors")));

  const std::string out = tmp.file("cache");
  testing::write_file_bytes(tmp.file("extract.json"), R"({"L": 5, "device": "cpu"})");
  CommandResult r = run_stgs("extract " + manifest + backbones + " --out " + out + " --config " +
                             tmp.file("extract.json") + " --L 3");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const nlohmann::json extract_config = nlohmann::json::parse(testing::read_file_bytes(out + "/config.json"));
  CHECK(extract_config["L"] == 3);
  CHECK(extract_config["device"] == "cpu");
  const data::Manifest m = data::read_manifest(manifest);
  for (data::Split s : {data::Split::Train, data::Split::Val, data::Split::Test}) {
    const data::FeatureSplit f = data::read_feature_split(out + "/" + data::split_name(s) + ".safetensors");
    const std::vector<int64_t> rows = data::split_indices(m, s);
    REQUIRE(f.size() == int64_t(rows.size()));
    CHECK(f.split == data::split_name(s));
    CHECK(f.length() == 3);
    CHECK(f.channels() == std::vector<int64_t>{4, 8, 16, 32, 4, 8, 16, 32});
    const std::vector<int64_t> labels = f.labels.to_vector<int64_t>(), categories = f.categories.to_vector<int64_t>();
    for (size_t i = 0; i < rows.size(); ++i) {
      const data::ManifestRow& row = m.rows[size_t(rows[i])];
      CHECK(f.ids[i] == row.id);
      CHECK(labels[i] == int64_t(row.label));
      CHECK(categories[i] == int64_t(row.category));
    }
    CHECK(f.metadata.at("image_backbone_sha256") == sha256_file(tmp.file("image.safetensors")));
    CHECK(f.metadata.at("audio_backbone_sha256") == sha256_file(tmp.file("audio.safetensors")));
    CHECK(f.metadata.at("manifest_sha256") == sha256_file(manifest));
    CHECK(f.metadata.at("stats_sha256") == sha256_file(tmp.file("audio.stats.safetensors")));
    CHECK(f.metadata.at("frames") == "2");
    CHECK(f.metadata.at("size") == "32");
    for (const Tensor& t : f.features) CHECK(max(abs(t), std::vector<int>{0, 1, 2}).item() > 0);
  }

  // Nothing changed: nothing is written.
  const std::string train = out + "/train.safetensors";
  std::vector<fs::file_time_type> before;
  for (const char* s : {"train", "val", "test"}) before.push_back(mtime(out + "/" + s + ".safetensors"));
  r = run_stgs("extract " + manifest + backbones + " --out " + out + " --L 3 --device cpu");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("is up to date"));
  int k = 0;
  for (const char* s : {"train", "val", "test"}) CHECK(mtime(out + "/" + s + ".safetensors") == before[k++]);

  // The same inputs give the same bytes in another directory.
  r = run_stgs("extract " + manifest + backbones + " --out " + tmp.file("cache2") + " --L 3 --device cpu --quiet");
  REQUIRE(r.status == 0);
  for (const char* s : {"train", "val", "test"})
    CHECK(testing::read_file_bytes(out + "/" + s + ".safetensors") ==
          testing::read_file_bytes(tmp.file("cache2") + "/" + s + ".safetensors"));

  // Another option, or another backbone, rebuilds.
  r = run_stgs("extract " + manifest + backbones + " --out " + out + " --L 2 --device cpu");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("rebuilding (L changed)"));
  CHECK(data::read_feature_split(train).length() == 2);
  r = run_stgs("pretrain " + manifest +
               " --modality image --width 4 --epochs 1 --batch 4 --size 32 --frames 2 --seed 7 "
               "--device cpu --quiet --out " +
               tmp.file("image.safetensors"));
  REQUIRE(r.status == 0);
  r = run_stgs("extract " + manifest + backbones + " --out " + out + " --L 2 --device cpu");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("rebuilding (image_backbone_sha256 changed)"));
  CHECK(data::read_feature_split(train).metadata.at("image_backbone_sha256") ==
        sha256_file(tmp.file("image.safetensors")));

  // Augmented copies for train and val; the test split's file stays as it was.
  const auto test_before = mtime(out + "/test.safetensors");
  r = run_stgs("extract " + manifest + backbones + " --out " + out +
               " --L 2 --device cpu --augment hflip,noise_snr_10");
  REQUIRE(r.status == 0);
  CHECK(mtime(out + "/test.safetensors") == test_before);
  {
    const data::FeatureSplit f = data::read_feature_split(train);
    const std::vector<int64_t> rows = data::split_indices(m, data::Split::Train);
    const int64_t n = int64_t(rows.size());
    REQUIRE(f.size() == 3 * n);
    CHECK(f.metadata.at("augment") == "hflip,noise_snr_10");
    for (int64_t i = 0; i < n; ++i) {
      CHECK(f.ids[size_t(n + i)] == f.ids[size_t(i)] + "#hflip");
      CHECK(f.ids[size_t(2 * n + i)] == f.ids[size_t(i)] + "#noise_snr_10");
    }
    CHECK(
        f.labels.to_vector<int64_t>() ==
        concat({f.labels.narrow(0, 0, n), f.labels.narrow(0, 0, n), f.labels.narrow(0, 0, n)}, 0).to_vector<int64_t>());
    // hflip changes the image features only, noise the audio features only.
    auto part = [&](int feature, int64_t copy) { return f.features[size_t(feature)].narrow(0, copy * n, n); };
    CHECK_FALSE(same_values(part(0, 0), part(0, 1)));
    CHECK(same_values(part(4, 0), part(4, 1)));
    CHECK(same_values(part(0, 0), part(0, 2)));
    CHECK_FALSE(same_values(part(4, 0), part(4, 2)));
  }
  r = run_stgs("extract " + manifest + backbones + " --out " + out + " --L 2 --device cpu --augment nonsense");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("nonsense"));

  // A corrupt cache file is rebuilt.
  testing::write_file_bytes(train, "garbage");
  r = run_stgs("extract " + manifest + backbones + " --out " + out + " --L 2 --device cpu");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("train.safetensors: rebuilding (unreadable"));
  CHECK_NOTHROW(data::read_feature_split(train));

  // Errors name the file at fault.
  r = run_stgs("extract " + manifest + " --image-backbone " + tmp.file("nope.safetensors") + " --audio-backbone " +
               tmp.file("audio.safetensors") + " --out " + out);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("backbone file '" + tmp.file("nope.safetensors") + "' does not exist"));
  r = run_stgs("extract " + manifest + " --image-backbone " + tmp.file("audio.safetensors") + " --audio-backbone " +
               tmp.file("image.safetensors") + " --out " + out);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("the two backbones swapped?"));
  r = run_stgs("pretrain " + manifest + " --modality video --out " + tmp.file("x.safetensors"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--modality expects image or audio"));
  r = run_stgs("extract " + manifest);
  CHECK(r.status == 2);
}

TEST_CASE("stgs pretrain: outputs checked first; a failed run keeps the earlier files; Ctrl-C keeps the best epoch",
          "[extract][cli]") {
  TempDir tmp("pretrain_safety");
  const std::string manifest = testing::tiny_synthetic_set(tmp);
  const std::string common = "pretrain " + manifest + " --width 4 --batch 4 --device cpu --quiet ";
  const std::string image = tmp.file("image.safetensors"), audio = tmp.file("audio.safetensors"),
                    stats = tmp.file("audio.stats.safetensors");

  // Outputs that cannot be written are refused before any training.
  fs::create_directories(tmp.file("dir.safetensors"));
  CommandResult r = run_stgs(common + "--modality audio --out " + tmp.file("dir.safetensors"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("'" + tmp.file("dir.safetensors") + "' is a directory"));
  CHECK_FALSE(fs::exists(tmp.file("dir.stats.safetensors")));
  r = run_stgs(common + "--modality image --stats " + stats + " --out " + image);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--stats is for --modality audio"));

  // A run that diverges fails and leaves the earlier backbone and its statistics as they were.
  r = run_stgs(common + "--modality audio --epochs 1 --out " + audio);
  REQUIRE(r.status == 0);
  const std::string audio_bytes = testing::read_file_bytes(audio), stats_bytes = testing::read_file_bytes(stats);
  // (On another set, whose statistics differ: written early, they would have replaced the earlier ones.)
  data::SynthConfig other;
  other.clips = 16, other.size = 32, other.frames = 2, other.seed = 2;
  other.min_seconds = other.max_seconds = 1.0;
  other.split[0] = 0.5, other.split[1] = 0.25, other.split[2] = 0.25;
  data::generate_synthetic(tmp.file("other"), other);
  r = run_stgs("pretrain " + tmp.file("other/manifest.csv") +
               " --width 4 --batch 4 --device cpu --quiet --modality audio --epochs 1 --lr 1e30 --out " + audio);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("(lower --lr?)"));
  CHECK(testing::read_file_bytes(audio) == audio_bytes);
  CHECK(testing::read_file_bytes(stats) == stats_bytes);

  // Statistics replaced under the backbone's name are an error for extract; a file chosen with --stats is not.
  r = run_stgs(common + "--modality image --epochs 1 --size 32 --frames 2 --out " + image);
  REQUIRE(r.status == 0);
  SafetensorsFile replaced = load_safetensors(stats);
  replaced.metadata["note"] = "other statistics";
  save_safetensors(stats, replaced.tensors, replaced.metadata);
  const std::string backbones = " --image-backbone " + image + " --audio-backbone " + audio;
  r = run_stgs("extract " + manifest + backbones + " --out " + tmp.file("cache") + " --device cpu --quiet");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("is not the statistics file the audio backbone"));
  r = run_stgs("extract " + manifest + backbones + " --stats " + stats + " --out " + tmp.file("cache") +
               " --device cpu --quiet");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("warning"));

  // Non-finite weights or impossible statistics are refused, naming the file and the tensor or bin.
  auto scale = [](SafetensorsFile& f, const std::string& name, double by) {
    for (auto& [n, t] : f.tensors)
      if (n == name) t = t * by;
  };
  SafetensorsFile diverged = load_safetensors(image);
  scale(diverged, "layer1.0.conv1.weight", std::nan(""));
  save_safetensors(tmp.file("nan.safetensors"), diverged.tensors, diverged.metadata);
  r = run_stgs("extract " + manifest + " --image-backbone " + tmp.file("nan.safetensors") + " --audio-backbone " +
               audio + " --stats " + stats + " --out " + tmp.file("cache_nan") + " --device cpu --quiet");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains(tmp.file("nan.safetensors")) &&
                           Catch::Contains("tensor \"layer1.0.conv1.weight\" holds non-finite values"));
  SafetensorsFile impossible = load_safetensors(stats);
  scale(impossible, "sum_sq", 0.0);
  save_safetensors(tmp.file("bad.stats.safetensors"), impossible.tensors, impossible.metadata);
  CHECK_THROWS_WITH(data::SpectrogramStats::load(tmp.file("bad.stats.safetensors")),
                    Catch::Contains("bad.stats.safetensors': bin 0 has sum") &&
                        Catch::Contains("which no spectrogram gives"));

  // Ctrl-C (here after step 3 of 2 epochs x 2 steps) saves the best finished epoch and exits with 130; before
  // the first epoch ends it writes nothing.
  setenv("STGS_FAULT_INTERRUPT_AT_STEP", "3", 1);
  r = run_stgs(common + "--modality image --epochs 2 --size 32 --frames 2 --out " + tmp.file("stopped.safetensors"));
  unsetenv("STGS_FAULT_INTERRUPT_AT_STEP");
  CHECK(r.status == 130);
  CHECK_THAT(r.output, Catch::Contains("stopped early by an interrupt"));
  const SafetensorsFile stopped = load_safetensors(tmp.file("stopped.safetensors"));
  CHECK(stopped.metadata.at("stopped_after_epoch") == "1");
  CHECK(stopped.metadata.at("best_epoch") == "1");
  setenv("STGS_FAULT_INTERRUPT_AT_STEP", "1", 1);
  r = run_stgs(common + "--modality image --epochs 2 --size 32 --frames 2 --out " + tmp.file("early.safetensors"));
  unsetenv("STGS_FAULT_INTERRUPT_AT_STEP");
  CHECK(r.status == 130);
  CHECK_THAT(r.output, Catch::Contains("nothing written"));
  CHECK_FALSE(fs::exists(tmp.file("early.safetensors")));
}

TEST_CASE("stgs extract --skip-bad: clips that cannot be read are left out and listed, the rest extracted",
          "[extract][cli]") {
  TempDir tmp("extract_skip_bad");
  const std::string manifest = testing::tiny_synthetic_set(tmp);
  const std::string backbones = testing::pretrain_tiny_backbones(tmp, manifest);
  const data::Manifest m = data::read_manifest(manifest);
  const std::vector<int64_t> train = data::split_indices(m, data::Split::Train);
  const data::ManifestRow& corrupt = m.rows[size_t(train[1])];
  testing::write_file_bytes(corrupt.frames().front(), "not a PNG");  // decoding fails
  const data::ManifestRow& missing = m.rows[size_t(train[2])];
  fs::remove(missing.audio);  // the manifest reader fails
  const std::string flags = backbones + " --device cpu --quiet --L 2 --out " + tmp.file("cache");

  CommandResult r = run_stgs("extract " + manifest + flags);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains(missing.audio));
  r = run_stgs("extract " + manifest + flags + " --skip-bad");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("skipped " + corrupt.id + ": ") && Catch::Contains("cannot decode image"));
  CHECK_THAT(r.output, Catch::Contains("stgs extract: skipped " + manifest + ":"));
  const data::FeatureSplit f = data::read_feature_split(tmp.file("cache/train.safetensors"));
  CHECK(f.size() == int64_t(train.size()) - 2);
  CHECK(std::find(f.ids.begin(), f.ids.end(), corrupt.id) == f.ids.end());
  CHECK(std::find(f.ids.begin(), f.ids.end(), missing.id) == f.ids.end());
  CHECK(f.metadata.at("skipped") == "1");  // the decoding failure; the unreadable row never became an item
  CHECK(f.metadata.at("skipped_ids") == corrupt.id);
  CHECK(data::read_feature_split(tmp.file("cache/val.safetensors")).metadata.at("skipped") == "0");
  // Every kept clip's label and category are its own (rows did not shift past the skipped one).
  const std::vector<int64_t> labels = f.labels.to_vector<int64_t>(), categories = f.categories.to_vector<int64_t>();
  for (size_t i = 0; i < f.ids.size(); ++i) {
    const auto row = std::find_if(m.rows.begin(), m.rows.end(), [&](const data::ManifestRow& x) { return x.id == f.ids[i]; });
    REQUIRE(row != m.rows.end());
    CHECK(labels[i] == int64_t(row->label));
    CHECK(categories[i] == int64_t(row->category));
  }
}

TEST_CASE("stgs extract: a manifest split without clips is refused, naming the split", "[extract][cli]") {
  TempDir tmp("extract_empty_split");
  data::SynthConfig c;
  c.clips = 8;  // 2 per category: 1 train, 1 val
  c.size = 16;
  c.frames = 1;
  c.min_seconds = c.max_seconds = 1.0;
  c.split[0] = 1, c.split[1] = 1, c.split[2] = 0;  // no test clips
  data::generate_synthetic(tmp.file("set"), c);
  const std::string manifest = tmp.file("set/manifest.csv");
  const CommandResult r = run_stgs("extract " + manifest + " --image-backbone " + tmp.file("i.safetensors") +
                                   " --audio-backbone " + tmp.file("a.safetensors") + " --out " + tmp.file("cache"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains(manifest + ": the test split has no clips"));
}

TEST_CASE("stgs pretrain + extract on a GPU: the features match the CPU's", "[extract][cuda]") {
  TempDir tmp("extract_cuda");
  const std::string manifest = testing::tiny_synthetic_set(tmp);
  const std::string backbones = testing::pretrain_tiny_backbones(tmp, manifest, "cuda");
  for (const char* device : {"cuda", "cpu"}) {
    const CommandResult r =
        run_stgs("extract " + manifest + backbones + " --out " + tmp.file(device) + " --L 3 --quiet --device " + device);
    REQUIRE(r.status == 0);
  }
  for (const char* s : {"train", "val", "test"}) {
    const data::FeatureSplit gpu = data::read_feature_split(tmp.file("cuda") + "/" + s + ".safetensors");
    const data::FeatureSplit cpu = data::read_feature_split(tmp.file("cpu") + "/" + s + ".safetensors");
    CHECK(gpu.ids == cpu.ids);
    CHECK(gpu.labels.to_vector<int64_t>() == cpu.labels.to_vector<int64_t>());
    for (size_t i = 0; i < cpu.features.size(); ++i) {
      const double scale = max(abs(cpu.features[i]), std::vector<int>{0, 1, 2}).item();
      const double diff = max(abs(sub(gpu.features[i], cpu.features[i])), std::vector<int>{0, 1, 2}).item();
      INFO(s << " " << data::kFeatureNames[i] << ": max |gpu - cpu| " << diff << " of max |cpu| " << scale);
      CHECK(diff <= 1e-4 + 1e-3 * scale);
    }
  }
}
