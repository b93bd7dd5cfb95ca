// TemperatureSchedule: validation and the per-epoch value.
#include "nas/temperature.h"

#include <cmath>
#include <sstream>

#include "kernels/check.h"

namespace stgs::nas {
namespace {

void check_temperature(const char* what, const char* name, double v) {
  STGS_CHECK(std::isfinite(v) && v > 0, "TemperatureSchedule::", what, ": ", name, " must be finite and > 0, got ",
             v);
}

}  // namespace

TemperatureSchedule TemperatureSchedule::fixed(double lambda) {
  check_temperature("fixed", "lambda", lambda);
  return TemperatureSchedule(lambda, lambda, 1);
}

TemperatureSchedule TemperatureSchedule::linear(double start, double end, int epochs) {
  check_temperature("linear", "start", start);
  check_temperature("linear", "end", end);
  STGS_CHECK(epochs >= 2, "TemperatureSchedule::linear: needs at least 2 epochs to anneal over, got ", epochs,
             " (use fixed)");
  return TemperatureSchedule(start, end, epochs);
}

double TemperatureSchedule::at(int epoch) const {
  STGS_CHECK(epoch >= 0, "TemperatureSchedule::at: epoch must be >= 0, got ", epoch);
  if (epochs_ == 1 || epoch >= epochs_ - 1) return end_;
  // (1 - t) * start + t * end is exact at both ends (start - (start - end) * t would miss end by rounding).
  const double t = double(epoch) / double(epochs_ - 1);
  return (1 - t) * start_ + t * end_;
}

std::string TemperatureSchedule::str() const {
  std::ostringstream out;
  if (epochs_ == 1) out << "fixed " << end_;
  else out << "linear " << start_ << " -> " << end_ << " over " << epochs_ << " epochs";
  return out.str();
}

}  // namespace stgs::nas
