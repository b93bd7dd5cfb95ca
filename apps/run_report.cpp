#include "apps/run_report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/features.h"
#include "apps/options.h"
#include "apps/plots.h"
#include "apps/run_tables.h"
#include "data/feature_cache.h"
#include "engine/autograd.h"
#include "engine/io/atomic_file.h"
#include "engine/random.h"
#include "kernels/check.h"
#include "nas/fixed_network.h"
#include "nas/genotype.h"

namespace stgs::apps {
namespace {

namespace fs = std::filesystem;

// Where a figure of the run lies, as report.md in out_dir links it.
std::string link(const std::string& out_dir, const std::string& file) {
  return fs::relative(fs::absolute(file), fs::absolute(out_dir)).string();
}

// "- cell 0: x = image.layer4, y = audio.layer4; s0 = linear_glu(x, y), s1 = attention(s0, y)", one line per cell.
std::string describe_genotype(const nas::Genotype& g) {
  const std::vector<std::string>& names = g.config.input_names;
  // "x", "y", then "s0", "s1", ...; inputs by name, then "cell0", ... (GCC 12 warns falsely on "s" + to_string).
  auto numbered = [](const char* prefix, int i) { return std::string(prefix).append(std::to_string(i)); };
  auto node = [&](int u) { return u < int(names.size()) ? names[size_t(u)] : numbered("cell", u - int(names.size())); };
  auto state = [&](int j) { return j == 0 ? std::string("x") : j == 1 ? std::string("y") : numbered("s", j - 2); };
  std::string out;
  for (size_t v = 0; v < g.cells.size(); ++v) {
    const nas::CellGenotype& c = g.cells[v];
    out += "- cell " + std::to_string(v) + ": x = " + node(c.inputs[0]) + ", y = " + node(c.inputs[1]) + "; ";
    for (size_t k = 0; k < c.steps.size(); ++k) {
      const nas::StepGenotype& s = c.steps[k];
      out += (k ? ", " : "") + numbered("s", int(k)) + " = " + nas::fusion_op_name(s.op) + "(" + state(s.inputs[0]) +
             ", " + state(s.inputs[1]) + ")";
    }
    out += "\n";
  }
  return out;
}

// "`a`, `b`": directories as report.md shows them.
std::string code_list(const std::vector<std::string>& dirs) { return "`" + join_list(dirs, "`, `") + "`"; }

// "Protocol **mixed**: train and val from `a`, `b`; test from `a`, `b`.": the caches of each split, as
// results.json records them (apps/protocol.h); an evaluation from before the protocols had its one cache.
std::string protocol_line(const nlohmann::json& config, const nlohmann::json& results) {
  std::vector<std::string> train = {config.at("features").get<std::string>()}, test = train;
  if (results.contains("caches")) {
    train = results.at("caches").at("train").get<std::vector<std::string>>();
    test = results.at("caches").at("test").get<std::vector<std::string>>();
  }
  return "Protocol **" + results.value("protocol", "within") + "**: train and val from " + code_list(train) +
         "; test from " + code_list(test) + ".";
}

int64_t fixed_network_parameters(const nas::Genotype& g) {
  NoGradGuard no_grad;
  Generator scratch;  // the weights are thrown away: leave the default generator (dropout's stream) untouched
  return nas::FixedNetwork(g, &scratch).num_parameters();
}

bool has_cache_inputs(const nas::Genotype& g) {
  return g.config.input_names == std::vector<std::string>(data::kFeatureNames.begin(), data::kFeatureNames.end());
}

// The epoch a search keeps: the first with the best validation AUC (accuracy when the split has one class).
size_t best_search_row(const CsvTable& metrics) {
  size_t best = 0;
  double best_value = -1;
  for (size_t r = 0; r < metrics.rows(); ++r) {
    const double auc = metrics.number(r, "val_auc");
    const double value = std::isnan(auc) ? metrics.number(r, "val_acc") : auc;
    if (value > best_value) best = r, best_value = value;
  }
  return best;
}

RunSummary summarize_search(const RunDir& run, RunSummary s) {
  const nlohmann::json config = run.read_json("config.json");
  const CsvTable metrics = CsvTable::load(run.file("metrics.csv"), kSearchMetricsHeader);
  STGS_CHECK(metrics.rows() > 0, run.file("metrics.csv"), ": no epoch finished yet");
  const size_t best = best_search_row(metrics);
  s.mode = config.value("mode", "");
  s.split = "val";
  s.auc = metrics.number(best, "val_auc");
  s.acc = metrics.number(best, "val_acc");
  s.eer = metrics.number(best, "val_eer");
  s.best_epoch = int64_t(metrics.number(best, "epoch"));
  const nas::Genotype g = nas::load_genotype(run.file("genotype.json"));
  s.fusion_parameters = fixed_network_parameters(g);
  if (has_cache_inputs(g)) s.total_parameters = s.fusion_parameters + backbone_parameters(g.config.input_channels);
  return s;
}

RunSummary summarize_eval(const RunDir& run, RunSummary s) {
  const nlohmann::json config = run.read_json("config.json"), results = run.read_json("results.json");
  const std::string search_run = config.value("search_run", "");
  if (!search_run.empty() && fs::exists(fs::path(search_run) / "config.json"))
    s.mode = RunDir::open(search_run).read_json("config.json").value("mode", "");
  s.split = "test";
  // NaN metrics are written to JSON as null.
  auto metric = [&](const char* key) { return results.at(key).is_null() ? NAN : results.at(key).get<double>(); };
  s.auc = metric("test_auc");
  s.acc = metric("test_acc");
  s.eer = metric("test_eer");
  s.best_epoch = results.at("best_epoch");
  s.fusion_parameters = results.at("fusion_parameters");
  s.total_parameters = results.at("total_parameters");
  return s;
}

void render_search_plots(const RunDir& run, const std::string& out_dir) {
  const std::string metrics_csv = run.file("metrics.csv"), entropy_csv = run.file("entropy.csv");
  plot_lines(out_dir + "/loss.png",
             {{metrics_csv, "epoch", "train_loss", "train (weights step)"},
              {metrics_csv, "epoch", "val_loss", "validation (architecture step)"}},
             {.title = "search loss", .xlabel = "epoch", .ylabel = "cross-entropy, mean over M draws"});
  plot_lines(out_dir + "/entropy.png",
             {{entropy_csv, "epoch", "alpha", "E(alpha)"},
              {entropy_csv, "epoch", "beta", "E(beta)"},
              {entropy_csv, "epoch", "gamma", "E(gamma)"}},
             {.title = "architecture entropy", .xlabel = "epoch", .ylabel = "mean row entropy (nats)"});
}

void render_eval_plots(const RunDir& run, const std::string& out_dir) {
  plot_lines(out_dir + "/loss.png", {{run.file("metrics.csv"), "epoch", "train_loss", "training loss"}},
             {.title = "fixed network training", .xlabel = "epoch", .ylabel = "cross-entropy"});
  if (CsvTable::load(run.file("roc.csv"), kRocHeader).rows() > 0)  // none when the test split has one class
    plot_lines(out_dir + "/roc.png", {{run.file("roc.csv"), "fpr", "tpr", "fused"}},
               {.title = "test ROC", .xlabel = "false positive rate", .ylabel = "true positive rate",
                .diagonal = true, .square = true});
}

void write_search_report(const RunDir& run, const std::string& out_dir) {
  const RunSummary s = summarize_run(run);
  const nlohmann::json config = run.read_json("config.json");
  const CsvTable entropy = CsvTable::load(run.file("entropy.csv"), kEntropyHeader);
  STGS_CHECK(entropy.rows() > 0, run.file("entropy.csv"), ": no epoch finished yet (the table has only its header)");
  const nas::Genotype g = nas::load_genotype(run.file("genotype.json"));
  const std::string loss_png = out_dir + "/loss.png", entropy_png = out_dir + "/entropy.png";
  const size_t last = entropy.rows() - 1;
  std::string report = "# Search\n\nFeatures " + code_list(split_list(config.value("features", ""), ',')) +
                       " (protocol " + config.value("protocol", "within") + "), mode " + s.mode + " (M " +
                       config.at("samples").dump() + ", lambda " + config.at("lambda").dump() + "), " +
                       std::to_string(entropy.rows()) + " of at most " + config.at("epochs").dump() + " epochs.\n\n";
  char line[512];  // numbers only
  std::snprintf(line, sizeof line,
                "Best epoch %lld: validation AUC %s, ACC @ 0.5 %s, EER %s. Its genotype (`genotype.json`) as a fixed "
                "network: %s fusion parameters, %s with both backbones.\n\n",
                (long long)s.best_epoch, format_metric(s.auc).c_str(), format_metric(s.acc).c_str(),
                format_metric(s.eer).c_str(), format_count(s.fusion_parameters).c_str(),
                format_count(s.total_parameters).c_str());
  report += line;
  std::snprintf(line, sizeof line, "Mean row entropies after epoch %s (nats): E(alpha) %.4f, E(beta) %.4f, E(gamma) %.4f.\n\n",
                entropy.row(last)[0].c_str(), entropy.number(last, "alpha"), entropy.number(last, "beta"),
                entropy.number(last, "gamma"));
  report += line;
  report += "Best genotype:\n\n" + describe_genotype(g);
  report += "\nFiles: `metrics.csv`, `entropy.csv`, `genotypes/epoch_NNN.json`, `genotype.json`, `genotype.dot`.\n";
  if (fs::exists(run.file("genotype.png"))) report += "\n![best genotype](" + link(out_dir, run.file("genotype.png")) + ")\n";
  if (fs::exists(loss_png)) report += "\n![search loss](loss.png)\n";
  if (fs::exists(entropy_png)) report += "\n![architecture entropy](entropy.png)\n";
  write_file_atomically(out_dir + "/report.md", report, "stgs report: ");
}

void write_eval_report(const RunDir& run, const std::string& out_dir) {
  const nlohmann::json config = run.read_json("config.json"), results = run.read_json("results.json");
  const std::string loss_png = out_dir + "/loss.png", roc_png = out_dir + "/roc.png";
  std::string report = "# Evaluation\n\nGenotype `" + config.at("genotype").get<std::string>() + "`, " +
                       results.at("test_clips").dump() + " test clips, device " +
                       results.at("device").get<std::string>() + ".\n\n" + protocol_line(config, results) +
                       "\n\n| model | test AUC | ACC @ 0.5 | EER | fusion params | total params | best epoch |\n"
                       "|---|---|---|---|---|---|---|\n";
  auto metric = [](const nlohmann::json& m, const char* key) {
    return format_metric(m.at(key).is_null() ? NAN : m.at(key).get<double>());
  };
  for (const nlohmann::json& m : results.at("models"))
    report += "| " + m.at("model").get<std::string>() + " | " + metric(m, "test_auc") + " | " + metric(m, "test_acc") +
              " | " + metric(m, "test_eer") + " | " + format_count(m.at("fusion_parameters")) + " | " +
              format_count(m.at("total_parameters")) + " | " + m.at("best_epoch").dump() + " |\n";
  report += "\nFiles: `scores.csv` (id, label, P(fake)), `roc.csv`, `metrics.csv`, `results.json`.\n";
  if (fs::exists(loss_png)) report += "\n![training loss](loss.png)\n";
  if (fs::exists(roc_png)) report += "\n![test ROC](roc.png)\n";
  write_file_atomically(out_dir + "/report.md", report, "stgs report: ");
}

}  // namespace

RunKind run_kind(const RunDir& run) {
  if (run.exists("entropy.csv")) return RunKind::Search;
  if (run.exists("results.json")) return RunKind::Eval;
  STGS_FAIL(run.path(), ": neither a search run with a finished epoch (entropy.csv) nor a finished evaluation run "
            "(results.json)");
}

RunSummary summarize_run(const RunDir& run) {
  RunSummary s;
  s.path = run.path();
  fs::path dir = fs::absolute(run.path()).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "runs/search-1/" ends in an empty name
  s.name = dir.filename().string();
  s.kind = run_kind(run);
  return s.kind == RunKind::Search ? summarize_search(run, s) : summarize_eval(run, s);
}

std::string format_metric(double value) {
  if (std::isnan(value)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", value);
  return buf;
}

std::string format_count(int64_t n) {
  if (n < 0) return "n/a";
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

void render_run_plots(const RunDir& run, const std::string& out_dir) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  STGS_CHECK(!ec, out_dir, ": cannot create the report directory: ", ec.message());
  if (run_kind(run) == RunKind::Search) render_search_plots(run, out_dir);
  else render_eval_plots(run, out_dir);
}

void render_run_plots_or_warn(const RunDir& run) {
  try {
    render_run_plots(run, run.path());
  } catch (const Error& e) {
    run.log(std::string("warning: plots not rendered: ") + e.what());
  }
}

void write_run_report(const RunDir& run, const std::string& out_dir, bool plots) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  STGS_CHECK(!ec, out_dir, ": cannot create the report directory: ", ec.message());
  if (plots) render_run_plots(run, out_dir);
  if (run_kind(run) == RunKind::Search) write_search_report(run, out_dir);
  else write_eval_report(run, out_dir);
}

}  // namespace stgs::apps
