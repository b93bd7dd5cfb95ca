// `stgs pretrain MANIFEST --modality image|audio --out FILE`: trains a ResNet-34 backbone as a unimodal
// real/fake classifier on the manifest's training split (nas/backbone_pretrain.h), keeps the epoch with the
// best validation AUC and saves its state dict (torchvision / AutoSpeech names) as safetensors.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/interrupt.h"
#include "apps/options.h"
#include "apps/progress.h"
#include "data/clip_batch.h"
#include "data/dataset_stats.h"
#include "data/loader.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/io/sha256.h"
#include "engine/random.h"
#include "engine/version.h"
#include "nas/backbone_pretrain.h"

namespace stgs::apps {
namespace {

constexpr const char* kCommand = "stgs pretrain";

struct PretrainArgs {
  std::string manifest, modality, out, stats, device = "auto", target = "modality";
  int64_t width = 16;
  int frames = 8, size = 64;
  int64_t batch = 16;  // clips per step
  uint64_t seed = 1;
  int workers = 2;
  bool quiet = false;
  nas::PretrainOptions train;
};

CommandLine pretrain_flags() {
  const PretrainArgs d;
  return CommandLine(
      kCommand, "stgs pretrain MANIFEST --modality image|audio --out FILE.safetensors [options]",
      "Trains a ResNet-34 backbone (2-class head) as a unimodal real/fake classifier on the manifest's train\n"
      "split: the image model classifies each of a clip's K frames (the clip's logits are the mean over its\n"
      "frames), the audio model one spectrogram window (random in training, centred in validation). Reports\n"
      "train and validation accuracy and validation AUC per epoch and saves the epoch with the best\n"
      "validation AUC (then accuracy) as safetensors, atomically, with the options, the scores and the\n"
      "SHA-256 of the manifest (and of the statistics) in its metadata; the resolved options go to\n"
      "<out>.config.json beside it. Ctrl-C stops after the current step and saves the best finished epoch\n"
      "(metadata \"stopped_after_epoch\"); a second Ctrl-C ends the process at once.\n"
      "\n"
      "exit status: 0 on success, 1 on a bad value, a data or a write error, 2 on a usage error, 130 when\n"
      "interrupted.",
      {Flag{"manifest", "", "the manifest CSV", "MANIFEST"}.positional().required(),
       Flag{"modality", "", "image (torchvision layout, head 'fc') or audio (AutoSpeech layout, head 'classifier')"}
           .one_of({"image", "audio"})
           .required(),
       Flag{"out", "", "the state dict to write", "FILE"}.required(),
       Flag{"target", d.target,
            "what a clip counts as fake for: modality (its own stream is fake: categories C, D for image, B, D for "
            "audio) or clip (the clip's label: B, C, D; a stream that is real in a fake clip then carries the fake "
            "label)"}
           .one_of({"modality", "clip"}),
       Flag{"width", d.width, "channels of layer1 (layer2..4: 2W, 4W, 8W; the paper's is 64)", "W"}.in(1, 1024),
       Flag{"epochs", d.train.epochs, "training epochs", "E"}.in(1, 100000),
       Flag{"batch", d.batch, "clips per step", "B"}.in(1, 1 << 20),
       {"lr", d.train.lr, "AdamW's peak learning rate, cosine-annealed per step"},
       Flag{"weight-decay", d.train.weight_decay, "AdamW's decoupled weight decay"}.at_least(0),
       Flag{"frames", d.frames, "frames per clip, image only", "K"}.in(1, 1000),
       Flag{"size", d.size, "frame size in pixels, image only; 64 suits the synthetic set", "S"}.in(32, 4096),
       {"stats", "",
        "per-bin spectrogram statistics to use, audio only (default: computed over the train split and written "
        "next to the output as <out>.stats.safetensors)",
        "FILE"},
       Flag{"seed", int64_t(d.seed), "initial weights, clip order and spectrogram windows"}.at_least(0),
       Flag{"workers", d.workers, "loader threads decoding clips ahead of the training step"}.in(1, 256),
       {"device", d.device, "cpu, cuda, cuda:N or auto (a GPU when one is visible)", "D"},
       {"quiet", false, "no progress bar and no per-epoch lines"}});
}

// The fields below are read from the resolved config's keys of the same names; `train` from the rest.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PretrainArgs, manifest, modality, out, stats, device, target, width, frames, size,
                                   batch, seed, workers, quiet)

PretrainArgs args_of(const nlohmann::json& c) {
  PretrainArgs a = c.get<PretrainArgs>();
  a.train.epochs = c["epochs"];
  a.train.lr = c["lr"];
  a.train.weight_decay = c["weight_decay"];
  return a;
}

// A file beside the output: "<stem><suffix>" for out = "<stem>.safetensors" (the statistics when --stats is not
// given: ".stats.safetensors"; the resolved options: ".config.json").
std::string beside_output(const std::string& out, const std::string& suffix) {
  const std::string extension = ".safetensors";
  return (out.ends_with(extension) ? out.substr(0, out.size() - extension.size()) : out) + suffix;
}

// The class a clip is trained towards. "modality": whether this backbone's own stream is fake (FakeAVCeleb's
// categories say which: C and D have fake video, B and D fake audio), the only thing one stream can show;
// "clip": the clip's label, which a real stream of a fake clip (B for image, C for audio) contradicts.
int64_t target_label(const data::ManifestRow& row, bool image, const std::string& target) {
  using data::Category;
  if (target == "clip") return int64_t(row.label);
  return image ? row.category == Category::C || row.category == Category::D
               : row.category == Category::B || row.category == Category::D;
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

int run_pretrain(int argc, char** argv) {
  const CommandLine flags = pretrain_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  PretrainArgs a = args_of(cmd.config);
  STGS_CHECK(a.train.lr > 0, kCommand, ": --lr must be positive, got ", a.train.lr);
  const bool image = a.modality == "image";
  STGS_CHECK(!image || a.stats.empty(), kCommand, ": --stats is for --modality audio (the image model reads no "
             "spectrogram)");
  const std::filesystem::path out_dir = std::filesystem::absolute(a.out).parent_path();
  std::filesystem::create_directories(out_dir);
  // Find out now, not after the training, that an output cannot be written: each is created beside its
  // target (and removed again) as the final atomic write will.
  const std::string stats_out = image || !a.stats.empty() ? "" : beside_output(a.out, ".stats.safetensors");
  for (const std::string& path : {a.out, beside_output(a.out, ".config.json"), stats_out})
    if (!path.empty()) check_writable(path, std::string(kCommand) + ": --out: ");
  a.train.device = parse_device_option(kCommand, a.device);
  const auto start = std::chrono::steady_clock::now();

  const data::Manifest manifest = data::read_manifest(a.manifest);
  const std::vector<int64_t> train_rows = data::split_indices(manifest, data::Split::Train);
  const std::vector<int64_t> val_rows = data::split_indices(manifest, data::Split::Val);
  STGS_CHECK(!train_rows.empty() && !val_rows.empty(), kCommand, ": '", a.manifest, "' has ", train_rows.size(),
             " train and ", val_rows.size(), " val clips; both splits are needed");

  // The audio model sees spectrograms normalised by the training split's per-bin statistics, which the
  // feature extraction must apply again: they are saved and their hash recorded in the backbone.
  data::SpectrogramStats stats;
  std::string stats_path;
  if (!image) {
    if (!a.stats.empty()) {
      stats_path = a.stats;
      stats = data::SpectrogramStats::load(stats_path);
    } else {
      // Written with the backbone, after the training: an earlier backbone beside it keeps its statistics
      // when this run fails or is stopped.
      stats_path = stats_out;
      ProgressBar bar("statistics", int64_t(train_rows.size()), "clips", a.quiet);
      stats =
          data::compute_spectrogram_stats(manifest, train_rows, 0, [&](int64_t done, int64_t) { bar.update(done); });
      bar.finish();
      if (!a.quiet) std::printf("spectrogram statistics of %zu train clips\n", train_rows.size());
    }
  }

  // Batches come from the loader's worker threads (data/loader.h), which decode the next batches while the
  // model trains on this one; the order and every window depend on --seed only.
  data::ClipBatchOptions clip;
  clip.clip.frames = a.frames;
  clip.clip.size = a.size;
  clip.frames = image;
  clip.stats = image ? nullptr : &stats;
  using BatchLoader = data::Loader<nas::BackboneBatch>;
  auto make_loader = [&](const std::vector<int64_t>& rows, bool train) {
    data::LoaderOptions options;
    options.workers = a.workers;
    options.batch_size = a.batch;
    options.shuffle = train;
    options.seed = a.seed;
    return std::make_unique<BatchLoader>(
        int64_t(rows.size()), options, [&, train](const std::vector<int64_t>& positions, uint64_t seed) {
          std::vector<data::ClipItem> items;
          std::vector<int64_t> labels;
          for (int64_t p : positions) {
            items.push_back({rows[size_t(p)]});
            labels.push_back(target_label(manifest.rows[size_t(rows[size_t(p)])], image, a.target));
          }
          data::ClipBatchOptions o = clip;
          o.train = train;
          const data::ClipBatch b = data::load_clip_batch(manifest, items, o, seed);
          const Tensor inputs = image ? b.frames.reshape({-1, 3, a.size, a.size}) : b.spectrograms;  // (B * K, C, H, W)
          return nas::BackboneBatch{inputs, from_vector(labels, {int64_t(labels.size())})};
        });
  };
  auto stream_of = [](BatchLoader& loader, int64_t clips) {
    nas::BatchStream s;
    s.clips = clips;
    s.batches = loader.batches_per_epoch();
    s.start = [&loader](int epoch) { loader.start_epoch(epoch); };
    s.next = [&loader]() -> std::optional<nas::BackboneBatch> {
      std::optional<data::LoadedBatch<nas::BackboneBatch>> b = loader.next();
      if (!b) return std::nullopt;
      return std::move(b->data);
    };
    return s;
  };
  const std::unique_ptr<BatchLoader> train_loader = make_loader(train_rows, true),
                                     val_loader = make_loader(val_rows, false);
  nas::PretrainData pdata;
  pdata.train = stream_of(*train_loader, int64_t(train_rows.size()));
  pdata.val = stream_of(*val_loader, int64_t(val_rows.size()));
  pdata.rows_per_clip = image ? a.frames : 1;

  Generator init(a.seed);
  ResNet34 model(image ? ResNetConfig::image(a.width, 2) : ResNetConfig::audio(a.width, 2), &init);
  int64_t val_fake = 0;
  for (int64_t r : val_rows) val_fake += target_label(manifest.rows[size_t(r)], image, a.target);
  const double constant = double(std::max(val_fake, int64_t(val_rows.size()) - val_fake)) / double(val_rows.size());
  if (!a.quiet) {
    std::printf("pretrain %s backbone: ResNet-34 width %lld (%lld parameters) on %s; %zu train / %zu val clips\n",
                a.modality.c_str(), (long long)a.width, (long long)model.num_parameters(),
                a.train.device.is_cuda() ? "cuda" : "cpu", train_rows.size(), val_rows.size());
    std::printf("  target %s: %lld of %zu val clips fake; a constant prediction scores accuracy %.4f, AUC 0.5\n",
                a.target.c_str(), (long long)val_fake, val_rows.size(), constant);
  }

  // One bar per epoch, ended before the epoch's line.
  std::unique_ptr<ProgressBar> bar;
  nas::PretrainCallbacks callbacks;
  callbacks.on_batch = [&](int epoch, int64_t step, int64_t steps, double loss) {
    if (!bar) bar = std::make_unique<ProgressBar>("  epoch " + std::to_string(epoch), steps, "steps", a.quiet);
    bar->update(step, "loss " + format_number(loss));
    FaultInjection::after_step(0);
  };
  callbacks.on_epoch = [&](const nas::EpochReport& r) {
    bar.reset();
    if (a.quiet) return;
    std::printf("  epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f AUC %.4f | %.1f s%s\n", r.epoch,
                a.train.epochs, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy, r.val_auc, r.seconds,
                r.best ? "  (best)" : "");
    std::fflush(stdout);
  };
  InterruptGuard interrupt_guard;
  callbacks.stop = interrupt_requested;
  const nas::PretrainResult result = nas::pretrain_backbone(model, pdata, a.train, callbacks);
  bar.reset();
  if (result.stopped && result.epochs.empty()) {
    std::fprintf(stderr, "%s: interrupted before the first epoch ended; nothing written\n", kCommand);
    return 130;
  }

  std::map<std::string, std::string> meta = {
      {"format", "stgs-backbone"},
      {"modality", a.modality},
      {"model", image ? "resnet34-image" : "resnet34-audio"},
      {"width", std::to_string(a.width)},
      {"classes", "2"},
      {"target", a.target},
      {"epochs", std::to_string(a.train.epochs)},
      {"best_epoch", std::to_string(result.best.epoch)},
      {"val_accuracy", format_number(result.best.val_accuracy)},
      {"val_auc", format_number(result.best.val_auc)},
      {"batch", std::to_string(a.batch)},
      {"lr", format_number(a.train.lr)},
      {"weight_decay", format_number(a.train.weight_decay)},
      {"seed", std::to_string(a.seed)},
      {"manifest", a.manifest},
      {"manifest_sha256", sha256_file(a.manifest)},
      {"stgs_version", kVersion},
  };
  if (result.stopped) meta["stopped_after_epoch"] = std::to_string(result.epochs.size());
  // New statistics are staged beside their final name and moved there only once the backbone that records
  // their hash is written: a failure in between leaves the earlier backbone with its own statistics.
  namespace fs = std::filesystem;
  const std::string staged = stats_out.empty() ? "" : stats_out + ".pending";
  if (image) {
    meta["frames"] = std::to_string(a.frames);
    meta["size"] = std::to_string(a.size);
  } else {
    if (!staged.empty()) stats.save(staged);
    // Relative to the backbone's directory, where `stgs extract` looks for it.
    meta["stats"] = fs::absolute(stats_path).lexically_relative(out_dir).string();
    meta["stats_sha256"] = sha256_file(staged.empty() ? stats_path : staged);
  }
  try {
    save_safetensors(a.out, model.state_dict().entries(), meta);
  } catch (const Error&) {
    if (!staged.empty()) fs::remove(staged);
    throw;
  }
  if (!staged.empty()) {
    fs::rename(staged, stats_out);
    if (!a.quiet) std::printf("statistics -> %s\n", stats_out.c_str());
  }
  save_config(beside_output(a.out, ".config.json"), cmd.config, kCommand);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!a.quiet || result.stopped)
    std::printf("wrote %s: epoch %d of %d, val accuracy %.4f, AUC %.4f (%.1f s)%s\n", a.out.c_str(),
                result.best.epoch, a.train.epochs, result.best.val_accuracy, result.best.val_auc, seconds,
                result.stopped ? "; stopped early by an interrupt" : "");
  return result.stopped ? 130 : 0;
}

}  // namespace stgs::apps
