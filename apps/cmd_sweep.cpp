// `stgs search FEATURES --sweep lambda=5,10,15,20 m=5,10,15,20 [search options] [--eval-epochs N ...]`: paper
// Table 3. For every (lambda, M) cell a search with that temperature and number of draws, then an evaluation of
// its genotype (`stgs eval` with the --eval-* settings, fused model only), then the tables.
//
// Sweep directory (<runs-dir>/sweep-<timestamp>/; README "Sweeps"):
//   config.json                          the search options with the sweep and the --eval-* settings
//   log.txt                              a line per cell started, skipped and finished
//   lambda<L>-m<M>/search-<timestamp>/   the cell's search run (as `stgs search` writes it)
//   lambda<L>-m<M>/eval-<timestamp>/     the evaluation of its genotype (results.json: the cell is done)
//   sweep.csv, sweep.md                  the table (apps/sweep.h), rewritten atomically after every cell
// `stgs search --resume SWEEP_DIR` skips the cells whose evaluation has results.json, resumes a cell's search or
// evaluation from its checkpoint, and starts the cells not begun.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "apps/options.h"
#include "apps/protocol.h"
#include "apps/search_commands.h"
#include "apps/sweep.h"
#include "engine/io/directory_lock.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

namespace fs = std::filesystem;

// The run directory in `cell` whose name starts with `prefix` ("search-"), when there is one.
std::optional<RunDir> run_in_cell(const std::string& cell, const std::string& prefix) {
  std::optional<RunDir> found;
  if (!fs::is_directory(cell)) return found;
  for (const fs::directory_entry& e : fs::directory_iterator(cell)) {
    if (!e.is_directory() || e.path().filename().string().rfind(prefix, 0) != 0) continue;
    STGS_CHECK(!found, cell, ": holds two ", prefix, "* runs (", found->path(), ", ", e.path().string(),
               "); remove the one to drop");
    found = RunDir::open(e.path().string());
  }
  return found;
}

// The evaluation config of a cell: `stgs eval`'s defaults, the sweep's --eval-* settings and its seed, device and
// output switches, the genotype and features of the cell's search run; no single-modality baselines.
nlohmann::json cell_eval_config(const nlohmann::json& sweep, const std::string& cell, const RunDir& search) {
  nlohmann::json eval = eval_flags().parse(std::vector<std::string>{}).config;
  for (const char* key : {"epochs", "batch", "lr", "weight_decay"}) eval[key] = sweep[std::string("eval_") + key];
  for (const char* key : {"seed", "device", "plots", "quiet"}) eval[key] = sweep[key];
  eval["unimodal"] = false;
  eval["runs_dir"] = cell;
  eval["search_run"] = search.path();
  return resolve_eval_inputs(eval, {});
}

// The cell's scores from its evaluation's results.json; the runs' paths relative to the sweep directory.
SweepResult result_of(double lambda, int64_t samples, const RunDir& sweep, const RunDir& search, const RunDir& eval) {
  const nlohmann::json r = eval.read_json("results.json");
  SweepResult out;
  out.lambda = lambda;
  out.samples = samples;
  out.test_auc = r.at("test_auc");
  out.test_acc = r.at("test_acc");
  out.fusion_parameters = r.at("fusion_parameters");
  out.search_run = fs::path(search.path()).lexically_relative(sweep.path()).string();
  out.eval_run = fs::path(eval.path()).lexically_relative(sweep.path()).string();
  return out;
}

}  // namespace

int sweep_with_config(const nlohmann::json& options, std::optional<RunDir> run_slot) {
  const SweepGrid grid = parse_sweep(options["sweep"], options["lambda"], options["samples"]);
  nlohmann::json config = options;
  const ProtocolCaches caches = protocol_caches(config["protocol"], config["features"], "", "stgs search");
  config["features"] = join_list(caches.train, ",");
  if (!run_slot) run_slot = RunDir::create(config["runs_dir"], "sweep");
  const DirectoryLock lock(run_slot->path(), "stgs search --sweep");  // one process per sweep directory
  if (!run_slot->exists("config.json")) run_slot->write_json("config.json", config);
  RunDir& sweep = *run_slot;
  sweep.set_quiet(config["quiet"]);
  const std::string heading = "# Sweep over lambda and M\n\nProtocol " + caches.protocol + ": `" +
                              join_list(caches.train, "`, `") + "`. Search: " +
                              std::to_string(config["epochs"].get<int64_t>()) + " epochs; evaluation: " +
                              std::to_string(config["eval_epochs"].get<int64_t>()) + " epochs, test split.";
  sweep.log("sweep: " + std::to_string(grid.lambdas.size() * grid.samples.size()) + " cells (" +
            std::string(config["sweep"]) + ") in " + sweep.path());

  std::vector<SweepResult> results;
  auto write_tables = [&] {
    sweep_csv(results).save(sweep.file("sweep.csv"));
    sweep.write_text("sweep.md", sweep_markdown(grid, results, heading));
  };
  for (double lambda : grid.lambdas)
    for (int64_t samples : grid.samples) {
      const std::string name = sweep_cell_name(lambda, samples), cell = sweep.file(name);
      std::optional<RunDir> search = run_in_cell(cell, "search-"), eval = run_in_cell(cell, "eval-");
      if (eval && eval->exists("results.json")) {
        STGS_CHECK(search.has_value(), cell, ": has an evaluation but no search run; remove the cell to redo it");
        results.push_back(result_of(lambda, samples, sweep, *search, *eval));
        sweep.log(name + ": done before, skipped");
        continue;
      }
      sweep.log(name + ": " + (search ? "resuming" : "starting"));
      nlohmann::json cell_search = config;
      cell_search["sweep"] = "";
      cell_search["lambda"] = lambda;
      cell_search["samples"] = samples;
      cell_search["runs_dir"] = cell;
      cell_search["name"] = "search";
      int status = search_with_config(cell_search, std::move(search));
      search = run_in_cell(cell, "search-");
      if (status == 0) status = evaluate_with_config(cell_eval_config(config, cell, *search), std::move(eval));
      if (status != 0) {
        sweep.log(name + ": interrupted; resume the sweep with: stgs search --resume " + sweep.path());
        return status;
      }
      eval = run_in_cell(cell, "eval-");
      results.push_back(result_of(lambda, samples, sweep, *search, *eval));
      write_tables();
      sweep.log(name + ": test AUC " + CsvTable::number(results.back().test_auc) + ", " +
                std::to_string(results.back().fusion_parameters) + " fusion parameters");
    }
  write_tables();  // also after a resume that found every cell done
  sweep.log("done: " + sweep.file("sweep.md"));
  std::printf("%s\n", sweep.path().c_str());
  return 0;
}

}  // namespace stgs::apps
