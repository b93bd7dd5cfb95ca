// Figures of a run rendered to PNG with gnuplot, from the CSV files the run writes anyway (which stay the
// source of truth: without gnuplot there are no PNGs and nothing else changes).
// defines: gnuplot_available, PlotSeries, PlotOptions, plot_lines
#pragma once

#include <string>
#include <vector>

namespace stgs::apps {

// Whether a `gnuplot` program with the pngcairo terminal can be run.
bool gnuplot_available();

// One line of a plot: column y_column against x_column of a CSV file with a header line.
struct PlotSeries {
  std::string csv;
  std::string x_column, y_column;
  std::string title;  // legend entry
};

struct PlotOptions {
  std::string title, xlabel, ylabel;
  bool log_y = false;
  bool diagonal = false;  // draw y = x (ROC curves)
  bool square = false;    // unit square axes [0, 1] x [0, 1] (ROC curves)
  bool key_below = false;  // the legend under the plot rather than at its right (many or long entries)
};

// Writes `png` (atomically) with one line per series. Returns false, writing nothing, when gnuplot is not
// available; throws with gnuplot's message when it fails (a missing column, an unreadable file).
bool plot_lines(const std::string& png, const std::vector<PlotSeries>& series, const PlotOptions& options);

}  // namespace stgs::apps
