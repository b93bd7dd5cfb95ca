// `stgs report RUN_DIR [RUN_DIR ...] [--out DIR]`: the report of a search or evaluation run regenerated from its
// CSV and JSON files (apps/run_report.h), or a comparison of several runs (apps/run_comparison.h).
#include <cstdio>
#include <filesystem>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/options.h"
#include "apps/run_comparison.h"
#include "apps/run_dir.h"
#include "apps/run_report.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

CommandLine report_flags() {
  return CommandLine(
      "stgs report", "stgs report RUN_DIR [RUN_DIR ...] [--out DIR] [--no-plots]",
      "With one run directory (of `stgs search` or `stgs eval`), writes its report.md and plots again from its\n"
      "CSV and JSON files, into the run (or --out DIR). With several, writes a comparison into --out DIR:\n"
      "results.csv and a table (name, AUC, ACC, EER, fusion and total parameters per run), entropy.csv and\n"
      "entropy.png overlaying the search runs' entropy curves (e.g. an STGS and a --mode softmax search: the\n"
      "paper's Figure 1b), loss.csv and loss.png, and roc.png for the evaluation runs. PNGs need gnuplot.",
      {Flag{"runs", "", "the run directories (search or eval runs; several separated by spaces)", "RUN_DIR"}
           .positional()
           .required()
           .words(),
       {"out", "", "directory to write into (none: the run itself; required with several runs)", "DIR"},
       {"plots", true, "render the PNG figures with gnuplot (when installed); the CSV files are always written"}});
}

}  // namespace

int run_report(int argc, char** argv) {
  const CommandLine flags = report_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  const std::string out = cmd.config["out"];
  const bool plots = cmd.config["plots"];
  std::vector<RunDir> runs;
  for (const std::string& path : split_list(cmd.config["runs"], ' '))
    if (!path.empty()) runs.push_back(RunDir::open(path));
  STGS_CHECK(!runs.empty(), "--runs names no run directory");
  if (runs.size() == 1) {
    const std::string dir = out.empty() ? runs[0].path() : out;
    write_run_report(runs[0], dir, plots);
    std::printf("%s/report.md\n", dir.c_str());
    return 0;
  }
  STGS_CHECK(!out.empty(), "comparing ", runs.size(), " runs needs --out DIR (where the comparison is written)");
  write_comparison_report(runs, out, plots);
  std::printf("%s/report.md\n", out.c_str());
  return 0;
}

}  // namespace stgs::apps
