#include "apps/plots.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kernels/check.h"

namespace stgs::apps {
namespace {

// A gnuplot string literal: double quotes, with backslashes and quotes escaped.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Runs `command` through the shell; returns its exit status and fills `output` with stdout and stderr.
int run_capturing(const std::string& command, std::string& output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  STGS_CHECK(pipe != nullptr, "cannot run '", command, "'");
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

}  // namespace

bool gnuplot_available() {
  static const bool available = [] {
    std::string output;
    return run_capturing("gnuplot -e 'set terminal pngcairo' </dev/null", output) == 0;
  }();
  return available;
}

bool plot_lines(const std::string& png, const std::vector<PlotSeries>& series, const PlotOptions& options) {
  STGS_CHECK(!series.empty(), "plot_lines: ", png, ": no series to plot");
  if (!gnuplot_available()) return false;
  // Names no other process uses: `stgs report` may plot into a run directory while the run itself does.
  static std::atomic<uint64_t> counter{0};
  const std::string unique = ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const std::string tmp_png = png + unique + ".png", script_path = png + unique + ".gp";
  {
    std::ofstream gp(script_path);
    STGS_CHECK(gp.good(), script_path, ": cannot write the gnuplot script");
    gp << "set terminal pngcairo size 900,600 font \"sans,11\"\n"
       << "set output " << quoted(tmp_png) << "\n"
       << "set datafile separator \",\"\n"
       << "set datafile columnheaders\n"
       << "set grid\n"
       << (options.key_below ? "set key below\n" : "set key outside right top\n")
       << "set title " << quoted(options.title) << "\n"
       << "set xlabel " << quoted(options.xlabel) << "\n"
       << "set ylabel " << quoted(options.ylabel) << "\n";
    if (options.log_y) gp << "set logscale y\n";
    if (options.square) gp << "set size ratio -1\nset xrange [0:1]\nset yrange [0:1]\n";
    gp << "plot ";
    for (size_t i = 0; i < series.size(); ++i) {
      const PlotSeries& s = series[i];
      gp << (i ? ", \\\n     " : "") << quoted(s.csv) << " using " << quoted(s.x_column) << ":" << quoted(s.y_column)
         << " with lines linewidth 2 title " << quoted(s.title);
    }
    if (options.diagonal) gp << ", \\\n     x with lines dashtype 2 linecolor \"gray\" title \"chance\"";
    gp << "\n";
  }
  std::string output;
  const int status = run_capturing("gnuplot " + quoted(script_path), output);
  std::error_code ec;
  std::filesystem::remove(script_path, ec);
  // gnuplot exits 0 after some failures (a missing column is only a warning); an unreadable file or a
  // series with no points makes it fail. Either way its output names the problem.
  if (status != 0 || output.find("warning: no column") != std::string::npos) {
    std::filesystem::remove(tmp_png, ec);
    STGS_FAIL(png, ": gnuplot failed: ", output);
  }
  std::filesystem::rename(tmp_png, png, ec);
  STGS_CHECK(!ec, png, ": cannot move the plot into place: ", ec.message());
  return true;
}

}  // namespace stgs::apps
