// `stgs search FEATURES [options]`: the STGS-BMNAS search over a feature cache (or several merged, --protocol
// mixed; apps/protocol.h), into a run directory that `--resume` continues. With --sweep: apps/cmd_sweep.cpp.
//
// Run directory (runs/<name>-<timestamp>/; README "Run directories"):
//   config.json                  every option, resolved (flags over the --config file over the defaults)
//   log.txt                      timestamped lines
//   metrics.csv, entropy.csv     one row per epoch
//   genotypes/epoch_NNN.json     the genotype derived after each epoch
//   genotype.json, .dot, .png    the best one so far by validation AUC (.png when graphviz is installed)
//   checkpoints/last.safetensors, checkpoints/best.safetensors   the whole search state
//   report.md                    settings, the best epoch, entropies, the best genotype (at the end; apps/run_report.h)
//   loss.png, entropy.png        when gnuplot is installed
// The tables are rewritten whole after each epoch and before the checkpoint, so after a kill at any moment the
// checkpoint is never ahead of them; a resume cuts them back to the checkpoint's epoch.
// Started by mpirun/srun/torchrun (apps/distributed.h), every rank runs the search data parallel and only rank 0
// writes the run directory; a resume reads it on every rank (a directory all ranks see).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/distributed.h"
#include "apps/features.h"
#include "apps/interrupt.h"
#include "apps/options.h"
#include "apps/progress.h"
#include "apps/protocol.h"
#include "apps/run_dir.h"
#include "apps/run_report.h"
#include "apps/run_tables.h"
#include "apps/search_commands.h"
#include "apps/sweep.h"
#include "engine/io/directory_lock.h"
#include "engine/io/safetensors.h"
#include "kernels/check.h"
#include "nas/genotype.h"
#include "nas/search_run.h"

namespace stgs::apps {

CommandLine search_flags() {
  std::vector<Flag> flags = {
      Flag{"features", "",
           "the feature cache directory, or with --protocol mixed two or more separated by commas (or give it as "
           "the argument)",
           "DIR[,DIR...]"}
          .positional(),
      Flag{"protocol", "within",
           "within: one cache's train and val splits; mixed: the union of several caches' (see README "
           "\"Protocols\"; for cross-dataset tests search within one cache, then stgs eval --protocol cross)"}
          .one_of({"within", "mixed"}),
      {"resume", "", "continue the run (or sweep) in this directory with its config.json (no other options)",
       "RUN_DIR"},
      {"runs-dir", "runs", "where the run directory is created", "DIR"},
      {"name", "search", "run name: the directory is <runs-dir>/<name>-<timestamp>", "NAME"},
      Flag{"epochs", 30, "maximum number of epochs"}.at_least(1),
      Flag{"batch", 8, "batch size (paper: 8)"}.at_least(2),
      Flag{"samples", 15, "M: architecture draws per step, losses averaged (paper: 15)"}.at_least(1),
      Flag{"lambda", 10.0, "Gumbel-softmax temperature (paper: 10)"}.in(kMinLambda, kMaxLambda),
      Flag{"lambda-end", 0.0, "anneal lambda linearly to this value at the last epoch (0: fixed)"}.in(0, kMaxLambda),
      Flag{"mode", "stgs", "stgs (hard straight-through), soft (relaxed sample) or softmax (BM-NAS, no noise)"}
          .one_of({"stgs", "soft", "softmax"}),
      Flag{"path", "exact", "exact (every op of every row) or fast (only the sampled ones, GDAS gradient)"}
          .one_of({"exact", "fast"}),
      Flag{"cells", 2, "fusion cells"}.in(1, 64),
      Flag{"steps", 2, "inner steps per cell"}.in(1, 64),
      Flag{"channels", 128, "C: channels of every node after the reshape layers"}.in(1, 65536),
      Flag{"dropout", 0.2, "dropout of the reshape layers, cell outputs, LinearGLU and ConcatFC"}.in(0, 0.99),
      Flag{"optimizer", "sgd", "weight optimizer: sgd (momentum 0.9) or adam"}.one_of({"sgd", "adam"}),
      Flag{"weight-lr", 3e-3, "weight learning rate, cosine schedule maximum"}.in(1e-12, 100),
      Flag{"weight-decay", 3e-3, "weight decay of the network weights"}.at_least(0),
      Flag{"arch-lr", 3e-3, "architecture Adam learning rate"}.in(1e-12, 100),
      Flag{"arch-weight-decay", 1e-3, "architecture weight decay"}.at_least(0),
      Flag{"patience", 10, "stop after this many epochs with flat entropies (0: never stop early)"}.at_least(0),
      Flag{"tolerance", 1e-3, "an entropy changing by less than this per epoch counts as flat"}.at_least(0),
      Flag{"seed", 1, "seed of every random choice"}.at_least(0),
      {"device", "auto", "auto, cpu, cuda or cuda:N"},
      {"plots", true, "render loss and entropy plots with gnuplot (when installed)"},
      {"quiet", false, "no progress bar and no log echo on stderr"},
      Flag{"sweep", "",
           "search and evaluate every (lambda, M) pair, e.g. --sweep lambda=5,10,15,20 m=5,10,15,20 (an axis left "
           "out keeps --lambda or --samples), into <runs-dir>/sweep-<timestamp>/ with the table sweep.csv and "
           "sweep.md (paper Table 3)",
           "AXIS=V,V"}
          .words()};
  // A sweep evaluates every cell's genotype with `stgs eval`'s settings, given here under "eval-".
  const CommandLine eval = eval_flags();
  for (const Flag& f : eval.flags()) {
    if (f.name != "epochs" && f.name != "batch" && f.name != "lr" && f.name != "weight-decay") continue;
    Flag e = f;
    e.name = "eval-" + f.name;
    e.help = "with --sweep: the evaluation's --" + f.name + ", " + f.help;
    flags.push_back(e);
  }
  return CommandLine(
      "stgs search", "stgs search FEATURES_DIR [options]   |   stgs search --resume RUN_DIR",
      "Searches a fusion architecture with STGS-BMNAS over the pooled backbone features in FEATURES_DIR\n"
      "(train/val/test.safetensors from `stgs extract`), and writes a run directory: config, log, metrics,\n"
      "entropies, the genotype of every epoch and the best one, checkpoints and plots. Ctrl-C finishes the\n"
      "current step, writes a checkpoint and exits; --resume continues a run exactly where it stopped.",
      flags);
}

namespace {

nas::GumbelMode mode_of(const std::string& s) {
  if (s == "stgs") return nas::GumbelMode::Hard;
  if (s == "soft") return nas::GumbelMode::Soft;
  if (s == "softmax") return nas::GumbelMode::PlainSoftmax;
  STGS_FAIL("stgs search: --mode '", s, "': expected stgs, soft or softmax");
}

nas::SearchRunOptions run_options(const nlohmann::json& c, Device device) {
  // c: the resolved config (keys with '_').
  nas::SearchRunOptions o;
  o.epochs = c["epochs"];
  o.batch_size = c["batch"];
  o.seed = c["seed"].get<uint64_t>();
  o.device = device;
  nas::ArchitectOptions& a = o.architect;
  a.samples = c["samples"];
  a.mode = mode_of(c["mode"]);
  const std::string path = c["path"];
  STGS_CHECK(path == "exact" || path == "fast", "stgs search: --path '", path, "': expected exact or fast");
  a.path = path == "fast" ? nas::SearchPath::Fast : nas::SearchPath::Exact;
  const double lambda = c["lambda"], lambda_end = c["lambda_end"];
  a.temperature = lambda_end > 0 && o.epochs >= 2 ? nas::TemperatureSchedule::linear(lambda, lambda_end, int(o.epochs))
                                                  : nas::TemperatureSchedule::fixed(lambda);
  const std::string opt = c["optimizer"];
  STGS_CHECK(opt == "sgd" || opt == "adam", "stgs search: --optimizer '", opt, "': expected sgd or adam");
  a.weight_optimizer = opt == "adam" ? nas::WeightOptimizer::Adam : nas::WeightOptimizer::SGD;
  a.weight_lr = c["weight_lr"];
  a.weight_decay = c["weight_decay"];
  a.arch_lr = c["arch_lr"];
  a.arch_weight_decay = c["arch_weight_decay"];
  return o;
}

std::string genotype_file(int64_t epoch) {
  char name[48];
  std::snprintf(name, sizeof name, "genotypes/epoch_%03lld.json", (long long)epoch + 1);
  return name;
}

// checkpoints/best.safetensors <- a copy of last.safetensors, replaced atomically.
void copy_to_best(const RunDir& run) {
  namespace fs = std::filesystem;
  fs::copy_file(run.file("checkpoints/last.safetensors"), run.file("checkpoints/best.safetensors.tmp"),
                fs::copy_options::overwrite_existing);
  fs::rename(run.file("checkpoints/best.safetensors.tmp"), run.file("checkpoints/best.safetensors"));
}

void write_best_genotype(const RunDir& run, const nas::Genotype& g) {
  nas::save_genotype(run.file("genotype.json"), g);
  run.write_text("genotype.dot", nas::genotype_to_dot(g));
  if (std::system("command -v dot >/dev/null 2>&1") == 0) {
    const std::string cmd = "dot -Tpng '" + run.file("genotype.dot") + "' -o '" + run.file("genotype.png.tmp") +
                            "' 2>/dev/null && mv '" + run.file("genotype.png.tmp") + "' '" + run.file("genotype.png") + "'";
    if (std::system(cmd.c_str()) != 0) run.log("warning: graphviz could not render genotype.png");
  }
}

// features: features_fingerprint of the run's caches.
void save_checkpoint(const std::string& path, const nas::SearchRun& search, int64_t best_epoch, double best_auc,
                     const std::string& features) {
  const StateDict state = search.state_dict();
  save_safetensors(path, state.entries(),
                   {{"format", "stgs-search-checkpoint"},
                    {"version", "1"},
                    {"best_epoch", std::to_string(best_epoch)},
                    {"best_val_auc", CsvTable::number(best_auc)},
                    {"features_sha256", features}});
}

// A number save_checkpoint recorded in the checkpoint's metadata.
double checkpoint_number(const SafetensorsFile& ckpt, const std::string& key) {
  const auto it = ckpt.metadata.find(key);
  STGS_CHECK(it != ckpt.metadata.end(), ckpt.path, ": the checkpoint's metadata has no \"", key, "\"");
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  STGS_CHECK(!it->second.empty() && *end == '\0', ckpt.path, ": the checkpoint's \"", key, "\" is '", it->second,
             "', not a number");
  return v;
}

}  // namespace

int run_search(int argc, char** argv) {
  const CommandLine flags = search_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  const std::string resume = cmd.config["resume"];
  if (resume.empty() && cmd.config["features"] == "")
    throw UsageError("stgs search: FEATURES_DIR (or --resume RUN_DIR) is required");
  nlohmann::json config = cmd.config;
  std::optional<RunDir> run;
  if (!resume.empty()) {
    run = RunDir::open(resume);  // a search run or a sweep directory
    config = flags.resumed_config(cmd, run->read_json("config.json"), run->file("config.json"));
  }
  STGS_CHECK(!dist::detect_launch_env().distributed() || config["sweep"] == "",
             "stgs search: --sweep runs in one process (launch each of its searches on several ranks instead)");
  return config["sweep"] == "" ? search_with_config(config, std::move(run)) : sweep_with_config(config, std::move(run));
}

namespace {
int search_on_ranks(nlohmann::json config, std::optional<RunDir> run_slot, const Ranks& ranks);
}  // namespace

int search_with_config(nlohmann::json config, std::optional<RunDir> run_slot) {
  const Ranks ranks = setup_ranks("stgs search", config["device"]);
  return run_on_ranks(ranks, "stgs search", [&] { return search_on_ranks(config, std::move(run_slot), ranks); });
}

namespace {

int search_on_ranks(nlohmann::json config, std::optional<RunDir> run_slot, const Ranks& ranks) {
  const bool resuming = run_slot.has_value();
  const bool quiet = config["quiet"] || !ranks.writes();
  const bool writes = ranks.writes();
  // Rank 0 owns the directory while it runs: a second `stgs search --resume` of it would write the same files
  // (taken first, so that one stops before loading anything).
  std::optional<DirectoryLock> lock;
  if (resuming && writes) lock.emplace(run_slot->path(), "stgs search");
  const ProtocolCaches caches = protocol_caches(config["protocol"], config["features"], "", "stgs search");
  config["features"] = join_list(caches.train, ",");

  const ProtocolData data = load_protocol_data(caches, false);
  const std::string fingerprint = features_fingerprint(data, false);
  check_same_on_ranks(ranks, config, fingerprint, "stgs search");
  const nas::FeatureSet train = to_feature_set(data.train), val = to_feature_set(data.val);
  const Device device = ranks.device;
  const nas::SearchConfig space =
      search_config_for(data.train, config["cells"], config["steps"], config["channels"], config["dropout"]);
  nas::SearchRunOptions options = run_options(config, device);
  options.comm = ranks.comm.get();

  if (!resuming && writes) {
    run_slot = RunDir::create(config["runs_dir"], config["name"]);
    lock.emplace(run_slot->path(), "stgs search");
    run_slot->write_json("config.json", config);
  }
  // Rank 0 writes through `run`; the other ranks have none (they read a resumed run's checkpoint only).
  RunDir* run = writes ? &*run_slot : nullptr;
  if (run != nullptr) {
    run->set_quiet(quiet);
    std::filesystem::create_directories(run->file("genotypes"));
    std::filesystem::create_directories(run->file("checkpoints"));
  }

  // Dropout's stream (a checkpoint restores it on resume); the same on every rank, each applying its rows' part.
  manual_seed(options.seed ^ 0xD40F);
  nas::SearchRun search(space, options, train, val);
  CsvTable metrics(kSearchMetricsHeader), entropy(kEntropyHeader);
  int64_t best_epoch = -1;
  double best_auc = -1;
  const int patience = config["patience"];
  nas::ConvergenceMonitor monitor(config["tolerance"].get<double>(), std::max(patience, 1));
  if (resuming && run_slot->exists("checkpoints/last.safetensors")) {
    const SafetensorsFile ckpt = load_safetensors(run_slot->file("checkpoints/last.safetensors"));
    STGS_CHECK(ckpt.metadata.count("format") && ckpt.metadata.at("format") == "stgs-search-checkpoint",
               ckpt.path, ": not a search checkpoint");
    check_features_unchanged(ckpt.metadata, ckpt.path, fingerprint, caches);
    search.load_state_dict(StateDict(ckpt.tensors));
    best_epoch = int64_t(checkpoint_number(ckpt, "best_epoch"));
    best_auc = checkpoint_number(ckpt, "best_val_auc");
    metrics = CsvTable::load_epochs(run_slot->file("metrics.csv"), kSearchMetricsHeader, search.epoch());
    entropy = CsvTable::load_epochs(run_slot->file("entropy.csv"), kEntropyHeader, search.epoch());
    // A kill between the best epoch's checkpoint and its copy to best.safetensors: the copy is redone (the
    // checkpoint ends exactly the epoch it records as best, so they are the same state).
    if (run && best_epoch >= 0 && best_epoch == search.epoch() - 1 && search.step_in_epoch() == 0) copy_to_best(*run);
    for (size_t e = 0; e < entropy.rows(); ++e)  // replay the convergence rule's history
      monitor.update({entropy.number(e, "alpha"), entropy.number(e, "beta"), entropy.number(e, "gamma")});
    if (run) run->log("resumed at epoch " + std::to_string(search.epoch() + 1) + ", step " +
                      std::to_string(search.step_in_epoch()));
  } else if (run) {
    run->log("search: " + std::to_string(train.size()) + " training and " + std::to_string(val.size()) +
             " validation clips from " + join_list(caches.train, ", ") + " (protocol " + caches.protocol +
             "); device " + device.str() + rank_summary(ranks) + "; " + std::to_string(space.cells) + " cells x " +
             std::to_string(space.steps) + " steps, C " + std::to_string(space.C) + ", L " + std::to_string(space.L) +
             ", M " + std::to_string(options.architect.samples) + ", lambda " + options.architect.temperature.str() +
             "; run directory " + run->path());
  }

  InterruptGuard interrupt_guard;
  bool converged = monitor.converged() && patience > 0;
  while (search.epoch() < options.epochs && !converged) {
    const int64_t epoch = search.epoch();
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs),
                    search.steps_per_epoch(), "steps", quiet);
    const nas::EpochResult r = search.run_epoch(
        interrupt_requested, [&](int64_t done, int64_t, double loss) {
          bar.update(done, "loss " + CsvTable::number(loss));
          FaultInjection::after_step(ranks.comm->rank());
        });
    bar.finish();
    if (!r.complete) {
      if (run == nullptr) return 130;
      save_checkpoint(run->file("checkpoints/last.safetensors"), search, best_epoch, best_auc, fingerprint);
      run->log("interrupted at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(r.steps) +
               "; checkpoint written. Resume with: stgs search --resume " + run->path());
      return 130;
    }
    metrics.add_numbers({double(epoch + 1), r.train_loss, r.val_loss, r.train.accuracy, r.train.auc, r.val.accuracy,
                         r.val.auc, r.val.eer, r.lambda, r.weight_lr, r.entropies.alpha, r.entropies.beta,
                         r.entropies.gamma, r.seconds});
    entropy.add_numbers({double(epoch + 1), r.entropies.alpha, r.entropies.beta, r.entropies.gamma});
    const double auc = std::isnan(r.val.auc) ? r.val.accuracy : r.val.auc;
    const bool best = auc > best_auc;
    if (best) {
      best_epoch = epoch;
      best_auc = auc;
    }
    if (run != nullptr) {
      metrics.save(run->file("metrics.csv"));
      entropy.save(run->file("entropy.csv"));
      nas::save_genotype(run->file(genotype_file(epoch)), r.genotype);
      FaultInjection::after_tables(epoch + 1);
      if (best) write_best_genotype(*run, r.genotype);
      save_checkpoint(run->file("checkpoints/last.safetensors"), search, best_epoch, best_auc, fingerprint);
      if (best) copy_to_best(*run);
      if (config["plots"].get<bool>()) render_run_plots_or_warn(*run);
      char line[256];
      std::snprintf(line, sizeof line,
                    "epoch %lld/%lld  loss %.4f/%.4f  val AUC %.4f ACC %.4f  entropy %.3f %.3f %.3f  lambda %.3g  %.1fs%s",
                    (long long)epoch + 1, (long long)options.epochs, r.train_loss, r.val_loss, r.val.auc,
                    r.val.accuracy, r.entropies.alpha, r.entropies.beta, r.entropies.gamma, r.lambda, r.seconds,
                    best ? "  (best)" : "");
      run->log(line);
    }
    converged = monitor.update(r.entropies) && patience > 0;
    if (converged && run) run->log("entropies flat for " + std::to_string(patience) + " epochs: converged");
  }
  if (run == nullptr) return 0;
  // The figures are current; the report counts the best genotype's parameters with both backbones, which at the
  // paper's width takes a moment, so it is written once, at the end (`stgs report` rewrites it at any time).
  write_run_report(*run, run->path(), false);
  run->log("done: best epoch " + std::to_string(best_epoch + 1) + ", validation AUC " + CsvTable::number(best_auc) +
           "; genotype " + run->file("genotype.json"));
  std::printf("%s\n", run->path().c_str());
  return 0;
}

}  // namespace

}  // namespace stgs::apps
