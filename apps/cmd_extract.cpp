// `stgs extract MANIFEST --image-backbone F --audio-backbone F --out DIR`: the feature cache
// (data/feature_cache.h). Runs both frozen backbones over every clip, pools layer1..layer4 of each to
// (C_i, L) (nas/reshape.h) and writes DIR/train.safetensors, val and test. A split whose file already
// records the same inputs (SHA-256 of both backbones, the manifest, the clip files' listing and the
// statistics) and options is left alone, so running it again is free. DIR/config.json: the resolved options.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apps/backbones.h"
#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/options.h"
#include "apps/progress.h"
#include "data/augment.h"
#include "data/clip_batch.h"
#include "data/feature_cache.h"
#include "engine/io/directory_lock.h"
#include "engine/io/sha256.h"
#include "engine/nn/resnet.h"
#include "engine/version.h"

namespace stgs::apps {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCommand = "stgs extract";

struct ExtractArgs {
  std::string manifest, image_backbone, audio_backbone, out, stats, device = "auto";
  std::vector<std::string> augment;  // names from data/augment.h's catalogue
  uint64_t seed = 1;                 // augmentation parameters
  int64_t L = 8, batch = 16;
  int workers = 2;
  int frames = 0, size = 0;  // 0: from the image backbone's metadata, else 8 and 224
  bool force = false, quiet = false, skip_bad = false;
};

CommandLine extract_flags() {
  const ExtractArgs d;
  return CommandLine(
      kCommand, "stgs extract MANIFEST --image-backbone FILE --audio-backbone FILE --out DIR [options]",
      "Runs the two frozen backbones (eval mode, no gradients) over every clip of the manifest, pools\n"
      "layer1..layer4 of each to (C_i, L) (image: spatial max per frame, frames as the sequence; audio: max over\n"
      "frequency, time as the sequence; adaptive max pooling to L) and writes one safetensors file per split:\n"
      "DIR/train.safetensors, DIR/val.safetensors, DIR/test.safetensors (README \"Feature cache\"), and the\n"
      "resolved options as DIR/config.json. A split whose file records the same inputs (SHA-256 of both\n"
      "backbones, the manifest, the clip files' names, sizes and times, the statistics) and options is kept;\n"
      "anything else is rebuilt, atomically.\n"
      "\n"
      "exit status: 0 on success (also when the cache was already up to date), 1 on a bad value, a data or a\n"
      "write error, 2 on a usage error.",
      {Flag{"manifest", "", "the manifest CSV; every split needs clips", "MANIFEST"}.positional().required(),
       Flag{"image-backbone", "", "image ResNet-34 state dict (torchvision names; e.g. from stgs pretrain)", "FILE"}
           .required(),
       Flag{"audio-backbone", "", "audio ResNet-34 state dict (AutoSpeech names)", "FILE"}.required(),
       Flag{"out", "", "the cache directory (created)", "DIR"}.required(),
       Flag{"L", d.L, "sequence length of every pooled feature", "N"}.in(1, 4096),
       Flag{"frames", d.frames, "frames per clip; 0: the image backbone's metadata, else 8", "K"}.in(0, 1000),
       Flag{"size", d.size, "frame size in pixels, >= 32; 0: the image backbone's metadata, else 224", "S"}
           .in(0, 4096),
       {"stats", "",
        "per-bin spectrogram statistics (default: the file the audio backbone's metadata names, relative to the "
        "backbone)",
        "FILE"},
       {"augment", "",
        "also write, for the train and val splits, one augmented copy of every clip per augmentation (`stgs "
        "augment --list`), with the id \"<id>#<name>\"",
        "A[,B...]"},
       Flag{"seed", int64_t(d.seed), "seed of the augmentations' random parameters"}.at_least(0),
       Flag{"batch", d.batch, "clips per backbone pass", "B"}.in(1, 1 << 20),
       Flag{"workers", d.workers, "loader threads decoding clips ahead of the backbones"}.in(1, 256),
       {"device", d.device, "cpu, cuda, cuda:N or auto (a GPU when one is visible)", "D"},
       {"force", false, "rebuild every split even when it is up to date"},
       {"skip-bad", false,
        "leave out clips whose manifest row or files cannot be read (listed on stderr and recorded in each split's "
        "\"skipped\" metadata) instead of stopping at the first"},
       {"quiet", false, "no progress bar and no summary"}});
}

// The fields below are read from the resolved config's keys of the same names.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ExtractArgs, manifest, image_backbone, audio_backbone, out, stats, device, seed, L,
                                   batch, workers, frames, size, force, quiet, skip_bad)

ExtractArgs args_of(const nlohmann::json& c) {
  ExtractArgs a = c.get<ExtractArgs>();
  STGS_CHECK(a.size == 0 || a.size >= 32, kCommand, ": --size expects 0 or at least 32 pixels, got ", a.size);
  for (const std::string& name : split_list(c["augment"], ','))
    a.augment.push_back(data::find_augmentation(name).name);
  return a;
}

// SHA-256 over every clip file's path (relative to the manifest), size and modification time, in manifest
// order: regenerating or editing the data changes it without reading every byte.
std::string clip_files_fingerprint(const data::Manifest& manifest) {
  const fs::path base = fs::absolute(manifest.path).parent_path();
  Sha256 h;
  auto add = [&](const std::string& file) {
    const fs::path p = fs::absolute(file);
    const auto mtime = fs::last_write_time(p).time_since_epoch().count();
    h.update(p.lexically_relative(base).string() + "\t" + std::to_string(fs::file_size(p)) + "\t" +
             std::to_string(mtime) + "\n");
  };
  for (const data::ManifestRow& row : manifest.rows) {
    h.update(row.id + "\n");
    for (const std::string& f : row.frames()) add(f);
    add(row.audio);
  }
  return h.hex();
}

std::string metadata_or(const std::map<std::string, std::string>& meta, const std::string& key,
                        const std::string& fallback) {
  auto it = meta.find(key);
  return it == meta.end() ? fallback : it->second;
}

// The clips of one split: every row, then (train and val only) every row again per augmentation.
std::vector<data::ClipItem> split_items(const data::Manifest& manifest, data::Split split,
                                        const std::vector<std::string>& augment) {
  const std::vector<int64_t> rows = data::split_indices(manifest, split);
  std::vector<data::ClipItem> items;
  for (int64_t r : rows) items.push_back({r});
  if (split == data::Split::Test) return items;
  for (const std::string& name : augment)
    for (int64_t r : rows) items.push_back({r, &data::find_augmentation(name)});
  return items;
}

// Runs both backbones over the items and pools their feature maps: (N, C_i, L) per feature.
// With --skip-bad, the ids of the clips that could not be decoded are appended to `skipped`.
data::FeatureSplit extract_split(const data::Manifest& manifest, const std::vector<data::ClipItem>& items,
                                 ResNet34& image, ResNet34& audio, const data::ClipBatchOptions& clip,
                                 const ExtractArgs& a, Device device, ProgressBar& bar,
                                 std::vector<std::string>& skipped) {
  const int64_t n = int64_t(items.size());
  data::FeatureSplit split;
  split.labels = empty({n}, DType::I64);
  split.categories = empty({n}, DType::I64);
  for (int i = 0; i < 8; ++i) {
    const ResNetConfig& c = (i < 4 ? image : audio).config();
    split.features.push_back(empty({n, c.width << (i % 4), a.L}));
  }
  // The loader's workers decode the next batches while the backbones run on this one. With --skip-bad a batch
  // may hold fewer clips than it was asked for: rows are filled up to `kept`, and the tensors cut there.
  int64_t kept = 0;
  data::for_each_clip_batch(manifest, items, clip, a.workers, a.batch, [&](const data::ClipBatch& b, int64_t first) {
    for (const auto& [id, error] : b.skipped) {
      // A clip is skipped once per augmented copy too: listed and counted once.
      if (std::find(skipped.begin(), skipped.end(), id) != skipped.end()) continue;
      skipped.push_back(id);
      std::fprintf(stderr, "%s: skipped %s: %s\n", kCommand, id.c_str(), error.c_str());
    }
    const int64_t B = b.labels.size(0);
    if (B > 0) {
      const BackboneOutputs out = run_backbones(image, audio, b, a.L, device);
      for (int i = 0; i < 8; ++i) split.features[size_t(i)].narrow(0, kept, B).copy_(out.features[size_t(i)]);
      split.labels.narrow(0, kept, B).copy_(b.labels);
      for (int64_t j = 0; j < B; ++j)
        split.categories.data<int64_t>()[kept + j] = int64_t(manifest.rows[size_t(b.rows[size_t(j)])].category);
      split.ids.insert(split.ids.end(), b.ids.begin(), b.ids.end());
      kept += B;
    }
    bar.update(first + int64_t(b.rows.size() + b.skipped.size()));
  });
  if (kept < n) {
    for (Tensor& f : split.features) f = f.narrow(0, 0, kept).contiguous();
    split.labels = split.labels.narrow(0, 0, kept).contiguous();
    split.categories = split.categories.narrow(0, 0, kept).contiguous();
  }
  return split;
}

}  // namespace

int run_extract(int argc, char** argv) {
  const CommandLine flags = extract_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  ExtractArgs a = args_of(cmd.config);
  const Device device = parse_device_option(kCommand, a.device);
  const auto start = std::chrono::steady_clock::now();

  data::ManifestReadOptions read_options;
  read_options.skip_bad = a.skip_bad;
  const data::Manifest manifest = data::read_manifest(a.manifest, read_options);
  for (const std::string& problem : manifest.skipped) std::fprintf(stderr, "%s: skipped %s\n", kCommand, problem.c_str());
  // A split without clips would become a cache file that the search and the evaluation refuse.
  for (data::Split s : {data::Split::Train, data::Split::Val, data::Split::Test})
    STGS_CHECK(!data::split_indices(manifest, s).empty(), a.manifest, ": the ", data::split_name(s),
               " split has no clips; the feature cache needs clips in train, val and test");
  const BackboneFile image = inspect_backbone(a.image_backbone, true, kCommand);
  const BackboneFile audio = inspect_backbone(a.audio_backbone, false, kCommand);
  if (a.frames == 0)
    a.frames = int(parse_integer(kCommand, "the image backbone's \"frames\"",
                                 metadata_or(image.metadata, "frames", "8"), 1, 1000));
  if (a.size == 0)
    a.size = int(
        parse_integer(kCommand, "the image backbone's \"size\"", metadata_or(image.metadata, "size", "224"), 32, 4096));
  const bool stats_given = !a.stats.empty();
  if (!stats_given) {
    const std::string recorded = metadata_or(audio.metadata, "stats", "");
    STGS_CHECK(!recorded.empty(), kCommand, ": --stats is required: the audio backbone '", a.audio_backbone,
               "' does not name the spectrogram statistics it was trained with");
    a.stats = (fs::path(a.audio_backbone).parent_path() / recorded).string();
  }
  STGS_CHECK(fs::is_regular_file(a.stats), kCommand, ": spectrogram statistics '", a.stats, "' do not exist");
  const data::SpectrogramStats stats = data::SpectrogramStats::load(a.stats);
  const std::string stats_sha256 = sha256_file(a.stats);
  const std::string trained_with = metadata_or(audio.metadata, "stats_sha256", stats_sha256);
  // The file the backbone names but with other contents (replaced since): features normalised by it would be
  // silently off. A file chosen with --stats is the user's call: a warning.
  STGS_CHECK(stats_given || trained_with == stats_sha256, kCommand, ": '", a.stats,
             "' is not the statistics file the audio backbone '", a.audio_backbone,
             "' was trained with (SHA-256 differs from its \"stats_sha256\"); retrain the backbone or pass the right "
             "file with --stats");
  if (trained_with != stats_sha256)
    std::fprintf(stderr, "stgs extract: warning: '%s' is not the statistics file the audio backbone was trained with\n",
                 a.stats.c_str());

  // Everything that shapes the features; a split file is reused only when all of it matches.
  std::map<std::string, std::string> key = {
      {"image_backbone_sha256", image.sha256},
      {"audio_backbone_sha256", audio.sha256},
      {"manifest_sha256", sha256_file(a.manifest)},
      {"clip_files_sha256", clip_files_fingerprint(manifest)},
      {"stats_sha256", stats_sha256},
      {"L", std::to_string(a.L)},
      {"frames", std::to_string(a.frames)},
      {"size", std::to_string(a.size)},
      {"audio_window", "centre"},
  };
  if (a.skip_bad) key["skip_bad"] = "1";  // which clips are left out depends on it
  std::string augment_list;
  for (const std::string& name : a.augment) augment_list += (augment_list.empty() ? "" : ",") + name;
  // The test split is never augmented, so its key leaves the augmentations out.
  auto key_for = [&](data::Split s) {
    std::map<std::string, std::string> k = key;
    if (s != data::Split::Test && !a.augment.empty()) {
      k["augment"] = augment_list;
      k["augment_seed"] = std::to_string(a.seed);
    } else {
      k["augment"] = "";
    }
    return k;
  };
  fs::create_directories(a.out);
  const DirectoryLock lock(a.out, kCommand);  // two extractions into one cache would mix their splits
  std::vector<data::Split> stale;
  for (data::Split s : {data::Split::Train, data::Split::Val, data::Split::Test}) {
    const std::string path = (fs::path(a.out) / (std::string(data::split_name(s)) + ".safetensors")).string();
    const std::string reason = a.force ? "--force" : data::feature_split_staleness(path, key_for(s));
    if (reason.empty()) continue;
    stale.push_back(s);
    if (!a.quiet) std::printf("%s: rebuilding (%s)\n", path.c_str(), reason.c_str());
  }
  const std::string config_path = (fs::path(a.out) / "config.json").string();
  if (stale.empty()) {
    save_config(config_path, cmd.config, kCommand);
    if (!a.quiet) std::printf("feature cache %s is up to date\n", a.out.c_str());
    return 0;
  }

  const std::unique_ptr<ResNet34> image_net = load_backbone(image, device, kCommand),
                                  audio_net = load_backbone(audio, device, kCommand);
  data::ClipBatchOptions clip;
  clip.clip.frames = a.frames;
  clip.clip.size = a.size;
  clip.stats = &stats;
  clip.augment_seed = a.seed;
  clip.skip_bad = a.skip_bad;
  for (data::Split s : stale) {
    const auto split_start = std::chrono::steady_clock::now();
    const std::string name = data::split_name(s);
    const std::vector<data::ClipItem> items = split_items(manifest, s, a.augment);
    ProgressBar bar("  " + name, int64_t(items.size()), "clips", a.quiet);
    std::vector<std::string> skipped;
    data::FeatureSplit split = extract_split(manifest, items, *image_net, *audio_net, clip, a, device, bar, skipped);
    bar.finish();
    STGS_CHECK(split.size() > 0, kCommand, ": every clip of the ", name, " split was skipped (listed above)");
    split.split = name;
    split.metadata = key_for(s);
    // Absolute, so that `stgs detect` finds the files the features came from whatever its working directory.
    split.metadata["image_backbone"] = fs::absolute(a.image_backbone).lexically_normal().string();
    split.metadata["audio_backbone"] = fs::absolute(a.audio_backbone).lexically_normal().string();
    split.metadata["manifest"] = fs::absolute(a.manifest).lexically_normal().string();
    split.metadata["stats"] = fs::absolute(a.stats).lexically_normal().string();
    split.metadata["stgs_version"] = kVersion;
    if (a.skip_bad) {  // the decoding failures; rows the manifest reader left out are on stderr
      split.metadata["skipped"] = std::to_string(skipped.size());
      split.metadata["skipped_ids"] = join_list(skipped, ",");
    }
    const std::string path = (fs::path(a.out) / (name + ".safetensors")).string();
    data::write_feature_split(path, split);
    if (!a.quiet)
      std::printf("  wrote %s: %lld clips in %.1f s%s\n", path.c_str(), (long long)split.size(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - split_start).count(),
                  skipped.empty() ? "" : (" (" + std::to_string(skipped.size()) + " skipped)").c_str());
  }
  save_config(config_path, cmd.config, kCommand);
  if (!a.quiet)
    std::printf("feature cache %s: image width %lld, audio width %lld, K %d, S %d, L %lld on %s (%.1f s)\n",
                a.out.c_str(), (long long)image_net->config().width, (long long)audio_net->config().width, a.frames,
                a.size, (long long)a.L, device.is_cuda() ? "cuda" : "cpu",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace stgs::apps
