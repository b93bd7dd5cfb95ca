// `stgs eval [SEARCH_RUN_DIR] [options]`: trains the fixed network of a searched genotype from scratch on the
// feature cache (or caches, --protocol; apps/protocol.h), selects the epoch on validation, and scores the test
// split once with those weights; beside it, the same training on single-modality versions of the genotype, for
// the report's comparison.
//
// Run directory (runs/<name>-<timestamp>/; README "Run directories"):
//   config.json, log.txt, genotype.json (the genotype evaluated)
//   metrics.csv                    per epoch of the fused model: loss, train/val accuracy and AUC, lr, seconds
//   checkpoints/last.safetensors   the fused model's whole training state (resume); best weights inside
//   scores.csv                     test split: id, label, P(fake) of the fused model
//   roc.csv                        its ROC curve: threshold, fpr, tpr
//   results.json                   AUC, ACC at 0.5, EER, fusion and total parameters, seconds, per model; the
//                                  protocol and the caches of each split
//   models/image-only.safetensors, models/audio-only.safetensors   their best weights and genotypes (stgs detect)
//   report.md                      the protocol, the results table and the figures (apps/run_report.h)
//   loss.png, roc.png              when gnuplot is installed
// Started by mpirun/srun/torchrun (apps/distributed.h), every rank trains data parallel and only rank 0 writes.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/distributed.h"
#include "apps/features.h"
#include "apps/interrupt.h"
#include "apps/model_file.h"
#include "apps/options.h"
#include "apps/progress.h"
#include "apps/protocol.h"
#include "apps/run_dir.h"
#include "apps/run_report.h"
#include "apps/run_tables.h"
#include "apps/search_commands.h"
#include "engine/io/directory_lock.h"
#include "engine/io/safetensors.h"
#include "kernels/check.h"
#include "nas/fixed_run.h"
#include "nas/metrics.h"

namespace stgs::apps {

namespace fs = std::filesystem;

CommandLine eval_flags() {
  return CommandLine(
      "stgs eval", "stgs eval [SEARCH_RUN_DIR] [options]   |   stgs eval --resume RUN_DIR",
      "Trains the fixed network of a searched genotype from scratch on the feature cache, keeps the epoch with\n"
      "the best validation AUC, and reports test AUC, accuracy at 0.5, EER and parameter counts. The genotype\n"
      "comes from SEARCH_RUN_DIR/genotype.json (default: the newest search run under --runs-dir) or --genotype;\n"
      "the features (and the protocol) from that run's config or --features. Image-only and audio-only versions\n"
      "of the genotype are trained the same way for comparison (--no-unimodal skips them).",
      {Flag{"search-run", "", "the search run whose genotype and features to use (default: the newest under "
            "--runs-dir)", "SEARCH_RUN_DIR"}.positional(),
       {"features", "",
        "the feature cache directory, or with --protocol mixed two or more separated by commas (default: the "
        "search run's)",
        "DIR[,DIR...]"},
       Flag{"protocol", "within",
            "within: one cache's splits; mixed: the union of several caches' splits; cross: train and val of "
            "--features, test of --test-features; without --features, the search run's"}
           .one_of({"within", "mixed", "cross"}),
       {"test-features", "", "with --protocol cross: the cache whose test split is scored", "DIR"},
       {"genotype", "", "genotype JSON to evaluate (default: SEARCH_RUN_DIR/genotype.json)", "FILE"},
       {"resume", "", "continue the evaluation run in this directory (no other options)", "RUN_DIR"},
       {"runs-dir", "runs", "where the run directory is created (and the newest search run is looked for)", "DIR"},
       {"name", "eval", "run name: the directory is <runs-dir>/<name>-<timestamp>", "NAME"},
       Flag{"epochs", 30, "training epochs"}.at_least(1),
       Flag{"batch", 8, "batch size"}.at_least(2),
       Flag{"lr", 1e-3, "Adam learning rate, cosine schedule maximum"}.in(1e-12, 100),
       Flag{"weight-decay", 1e-4, "Adam weight decay"}.at_least(0),
       Flag{"seed", 1, "seed of every random choice"}.at_least(0),
       {"device", "auto", "auto, cpu, cuda or cuda:N"},
       {"unimodal", true, "also train image-only and audio-only versions of the genotype"},
       {"plots", true, "render loss and ROC plots with gnuplot (when installed)"},
       {"quiet", false, "no progress bar and no log echo on stderr"}});
}

namespace {

// The newest search run directory under runs_dir (by its genotype.json), whatever its name.
std::string newest_search_run(const std::string& runs_dir) {
  std::string best;
  fs::file_time_type best_time;
  if (fs::is_directory(runs_dir))
    for (const auto& e : fs::directory_iterator(runs_dir)) {
      // A search run by its files, whatever its --name: an evaluation run has a genotype.json but no entropy.csv.
      if (!e.is_directory() || !fs::exists(e.path() / "genotype.json") || !fs::exists(e.path() / "entropy.csv"))
        continue;
      const auto t = fs::last_write_time(e.path() / "genotype.json");
      if (best.empty() || t > best_time) best = e.path().string(), best_time = t;
    }
  STGS_CHECK(!best.empty(), runs_dir, ": no search run (a directory with genotype.json and entropy.csv; run `stgs "
             "search` first, or pass SEARCH_RUN_DIR or --genotype)");
  return best;
}

// The genotype with every cell input of the other modality replaced by this one's layer of the same depth
// (image.layerK <-> audio.layerK), or the next free layer of this modality when that would repeat the cell's
// other input: the same fusion structure on one modality's features.
nas::Genotype unimodal_genotype(const nas::Genotype& g, const std::string& keep) {
  nas::Genotype u = g;
  const std::vector<std::string>& names = g.config.input_names;
  const int n = int(names.size());
  auto index_of = [&](const std::string& name) {
    for (int i = 0; i < n; ++i)
      if (names[size_t(i)] == name) return i;
    return -1;
  };
  for (nas::CellGenotype& cell : u.cells) {
    for (size_t k = 0; k < 2; ++k) {
      const int node = cell.inputs[k];
      if (node >= n || names[size_t(node)].rfind(keep, 0) == 0) continue;  // a cell, or already this modality
      const std::string& name = names[size_t(node)];
      int replacement = index_of(keep + name.substr(name.find('.') + 1));  // same depth: "layer3"
      for (int depth = 4; (replacement < 0 || replacement == cell.inputs[1 - k]) && depth >= 1; --depth)
        replacement = index_of(keep + "layer" + std::to_string(depth));
      STGS_CHECK(replacement >= 0 && replacement != cell.inputs[1 - k], "unimodal genotype: no free ", keep,
                 " input for a cell");
      cell.inputs[k] = replacement;
    }
  }
  nas::validate_genotype(u, "unimodal genotype (" + keep + ")");
  return u;
}

struct ModelResult {
  std::string name;
  nas::SplitScores test;
  int64_t fusion_parameters = 0;
  int64_t best_epoch = -1;
  double best_val_auc = 0, seconds = 0;
};

nlohmann::json result_json(const ModelResult& m, int64_t backbones) {
  return {{"model", m.name},
          {"test_auc", m.test.auc},
          {"test_acc", m.test.accuracy},
          {"test_eer", m.test.eer},
          {"best_epoch", m.best_epoch + 1},
          {"best_val_auc", m.best_val_auc},
          {"fusion_parameters", m.fusion_parameters},
          {"total_parameters", m.fusion_parameters + backbones},
          {"train_seconds", m.seconds}};
}

// features: features_fingerprint of the run's caches, test split included.
void save_checkpoint(const std::string& path, const nas::FixedRun& run, const std::string& features) {
  save_safetensors(path, run.state_dict().entries(),
                   {{"format", "stgs-eval-checkpoint"}, {"version", "1"}, {"features_sha256", features}});
}

// models/<name>.safetensors: a single-modality model's best weights with its genotype, for `stgs detect` to
// report what that modality alone says about a clip (the fused model's are in the checkpoint, under "best.").
void save_unimodal_model(const std::string& path, const std::string& name, const nas::FixedRun& run,
                         const nas::Genotype& g) {
  save_model_file(path, {.name = name,
                         .genotype = g,
                         .weights = sub_dict(run.state_dict(), "best."),
                         .best_epoch = run.best_epoch() + 1});
}

}  // namespace

int run_eval(int argc, char** argv) {
  const CommandLine flags = eval_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  const std::string resume = cmd.config["resume"];
  if (resume.empty()) return evaluate_with_config(resolve_eval_inputs(cmd.config, cmd.given), std::nullopt);
  RunDir run = RunDir::open(resume);
  const nlohmann::json config = flags.resumed_config(cmd, run.read_json("config.json"), run.file("config.json"));
  return evaluate_with_config(config, std::move(run));
}

nlohmann::json resolve_eval_inputs(nlohmann::json config, const std::set<std::string>& given) {
  std::string genotype = config["genotype"], features = config["features"];
  if (genotype.empty() || features.empty()) {
    std::string search_dir = config["search_run"];
    if (search_dir.empty()) search_dir = newest_search_run(config["runs_dir"]);
    const RunDir search = RunDir::open(search_dir);
    const nlohmann::json searched = search.read_json("config.json");
    if (genotype.empty()) genotype = search.file("genotype.json");
    if (features.empty()) {
      config["features"] = searched.at("features");
      if (!given.count("protocol")) config["protocol"] = searched.value("protocol", "within");
    }
    config["search_run"] = fs::absolute(search_dir).string();
  }
  config["genotype"] = fs::absolute(genotype).string();
  return config;
}

namespace {
int evaluate_on_ranks(nlohmann::json config, std::optional<RunDir> run_slot, const Ranks& ranks);
}  // namespace

int evaluate_with_config(nlohmann::json config, std::optional<RunDir> run_slot) {
  const Ranks ranks = setup_ranks("stgs eval", config["device"]);
  return run_on_ranks(ranks, "stgs eval", [&] { return evaluate_on_ranks(config, std::move(run_slot), ranks); });
}

namespace {

int evaluate_on_ranks(nlohmann::json config, std::optional<RunDir> run_slot, const Ranks& ranks) {
  const bool quiet = config["quiet"] || !ranks.writes(), plots = config["plots"];
  // Rank 0 owns the directory while it runs: a second `stgs eval --resume` of it would write the same files
  // (taken first, so that one stops before loading anything).
  std::optional<DirectoryLock> lock;
  if (run_slot && ranks.writes()) lock.emplace(run_slot->path(), "stgs eval");

  const nas::Genotype genotype = nas::load_genotype(config["genotype"]);
  const ProtocolCaches caches =
      protocol_caches(config["protocol"], config["features"], config["test_features"], "stgs eval");
  config["features"] = join_list(caches.train, ",");
  if (caches.protocol == "cross") config["test_features"] = caches.test.front();
  const ProtocolData data = load_protocol_data(caches, true);
  const std::string fingerprint = features_fingerprint(data, true);
  check_same_on_ranks(ranks, config, fingerprint, "stgs eval");
  const nas::FeatureSet train = to_feature_set(data.train), val = to_feature_set(data.val),
                        test = to_feature_set(data.test);
  STGS_CHECK(genotype.config.input_names == train.names, config["genotype"].get<std::string>(),
             ": its inputs do not match the feature cache's (", join_list(caches.train, ", "), ")");
  // A genotype searched on caches of other backbone widths or another L does not fit these features.
  STGS_CHECK(genotype.config.input_channels == data.train.channels() && genotype.config.L == data.train.length(),
             config["genotype"].get<std::string>(), ": the genotype was searched on features with ",
             features_shape_text(genotype.config.input_channels, genotype.config.L), ", but the feature cache (",
             join_list(caches.train, ", "), ") has ", features_shape_text(data.train.channels(), data.train.length()),
             " (other backbone widths or --L: search again on this cache)");
  nas::FixedRunOptions options;
  options.epochs = config["epochs"];
  options.batch_size = config["batch"];
  options.lr = config["lr"];
  options.weight_decay = config["weight_decay"];
  options.seed = config["seed"].get<uint64_t>();
  options.device = ranks.device;
  options.comm = ranks.comm.get();

  if (!run_slot && ranks.writes()) {
    run_slot = RunDir::create(config["runs_dir"], config["name"]);
    lock.emplace(run_slot->path(), "stgs eval");
    run_slot->write_json("config.json", config);
    nas::save_genotype(run_slot->file("genotype.json"), genotype);
  }
  // Rank 0 writes through `run`; the other ranks have none (they read a resumed run's checkpoint only).
  RunDir* run = ranks.writes() ? &*run_slot : nullptr;
  if (run != nullptr) {
    run->set_quiet(quiet);
    fs::create_directories(run->file("checkpoints"));
    fs::create_directories(run->file("models"));
  }
  const int64_t backbones = backbone_parameters(data.train.channels());

  InterruptGuard interrupt_guard;
  // Trains one genotype; the fused model (checkpointed) is resumable, the unimodal ones are short and rerun.
  auto train_model = [&](const std::string& name, const nas::Genotype& g, bool checkpointed) -> std::optional<ModelResult> {
    const auto start = std::chrono::steady_clock::now();
    manual_seed(options.seed ^ 0xE7A1);
    nas::FixedRun model(g, options, train, val);
    CsvTable metrics(kEvalMetricsHeader);
    const std::string ckpt = run_slot ? run_slot->file("checkpoints/last.safetensors") : "";
    if (checkpointed && run_slot && fs::exists(ckpt)) {
      const SafetensorsFile saved = load_safetensors(ckpt);
      const auto format = saved.metadata.find("format");
      STGS_CHECK(format != saved.metadata.end() && format->second == "stgs-eval-checkpoint", ckpt,
                 ": not an evaluation checkpoint");
      check_features_unchanged(saved.metadata, ckpt, fingerprint, caches);
      model.load_state_dict(StateDict(saved.tensors));
      metrics = CsvTable::load_epochs(run_slot->file("metrics.csv"), kEvalMetricsHeader, model.epoch());
      if (run) run->log(name + ": resumed at epoch " + std::to_string(model.epoch() + 1));
    }
    while (model.epoch() < options.epochs) {
      const int64_t epoch = model.epoch();
      ProgressBar bar(name + " epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
                      model.steps_per_epoch(), "steps", quiet);
      const nas::FixedEpochResult r = model.run_epoch(interrupt_requested, [&](int64_t done, int64_t, double loss) {
        bar.update(done, "loss " + CsvTable::number(loss));
        FaultInjection::after_step(ranks.comm->rank());
      });
      bar.finish();
      if (!r.complete) {
        if (run == nullptr) return std::nullopt;
        if (checkpointed) save_checkpoint(ckpt, model, fingerprint);
        run->log(name + ": interrupted at epoch " + std::to_string(epoch + 1) +
                 "; resume with: stgs eval --resume " + run->path());
        return std::nullopt;
      }
      if (run == nullptr) continue;
      if (checkpointed) {
        metrics.add_numbers({double(epoch + 1), r.train_loss, r.train.accuracy, r.train.auc, r.val.accuracy, r.val.auc,
                             r.val.eer, r.lr, r.seconds});
        metrics.save(run->file("metrics.csv"));
        FaultInjection::after_tables(epoch + 1);
        save_checkpoint(ckpt, model, fingerprint);
      }
      char line[200];
      std::snprintf(line, sizeof line, "%s epoch %lld/%lld  loss %.4f  val AUC %.4f ACC %.4f  %.1fs%s", name.c_str(),
                    (long long)epoch + 1, (long long)options.epochs, r.train_loss, r.val.auc, r.val.accuracy, r.seconds,
                    r.best ? "  (best)" : "");
      run->log(line);
    }
    if (!checkpointed && run) save_unimodal_model(run->file("models/" + name + ".safetensors"), name, model, g);
    ModelResult m;
    m.name = name;
    m.test = model.evaluate_best(test);
    m.fusion_parameters = model.net().num_parameters();
    m.best_epoch = model.best_epoch();
    m.best_val_auc = model.best_val_auc();
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return m;
  };

  if (run)
    run->log("eval: genotype " + config["genotype"].get<std::string>() + " on " + std::to_string(train.size()) + "/" +
             std::to_string(val.size()) + "/" + std::to_string(test.size()) + " train/val/test clips (" +
             caches.summary() + "), device " + options.device.str() + rank_summary(ranks));
  std::vector<ModelResult> results;
  const std::optional<ModelResult> fused = train_model("fused", genotype, true);
  if (!fused) return 130;
  results.push_back(*fused);
  if (config["unimodal"].get<bool>()) {
    for (const auto& [name, prefix] : {std::pair{"image-only", "image."}, std::pair{"audio-only", "audio."}}) {
      const std::optional<ModelResult> m = train_model(name, unimodal_genotype(genotype, prefix), false);
      if (!m) return 130;
      results.push_back(*m);
    }
  }
  if (run == nullptr) return 0;

  // Test outputs of the fused model.
  CsvTable scores(kScoresHeader);
  const std::vector<int64_t> labels = test.labels.to_vector<int64_t>();
  for (size_t i = 0; i < labels.size(); ++i)
    scores.add({test.ids.at(i), std::to_string(labels[i]), CsvTable::number(fused->test.scores[i])});
  scores.save(run->file("scores.csv"));
  CsvTable roc(kRocHeader);
  bool two_classes = std::set<int64_t>(labels.begin(), labels.end()).size() == 2;
  if (two_classes)
    for (const nas::RocPoint& p : nas::roc_curve(fused->test.scores, labels)) roc.add_numbers({p.threshold, p.fpr, p.tpr});
  roc.save(run->file("roc.csv"));
  nlohmann::json models = nlohmann::json::array();
  for (const ModelResult& m : results) models.push_back(result_json(m, backbones));
  nlohmann::json doc = result_json(*fused, backbones);
  doc["device"] = options.device.str();
  doc["test_clips"] = test.size();
  doc["protocol"] = caches.protocol;
  doc["caches"] = caches.by_split();
  doc["models"] = models;
  run->write_json("results.json", doc);
  if (plots) render_run_plots_or_warn(*run);
  write_run_report(*run, run->path(), false);

  std::printf("%-12s %9s %9s %9s %14s %14s\n", "model", "test AUC", "ACC@0.5", "EER", "fusion params", "total params");
  for (const ModelResult& m : results)
    std::printf("%-12s %9.4f %9.4f %9.4f %14lld %14lld\n", m.name.c_str(), m.test.auc, m.test.accuracy, m.test.eer,
                (long long)m.fusion_parameters, (long long)(m.fusion_parameters + backbones));
  run->log("done: " + run->file("report.md"));
  return 0;
}

}  // namespace

}  // namespace stgs::apps
