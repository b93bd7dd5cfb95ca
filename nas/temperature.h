// The Gumbel-softmax temperature lambda per search epoch: fixed (the paper's lambda = 10) or annealed
// linearly (GDAS: 10 -> 0.1 over the search).
// defines: TemperatureSchedule
#pragma once

#include <string>

namespace stgs::nas {

class TemperatureSchedule {
 public:
  // lambda at every epoch; finite and > 0.
  static TemperatureSchedule fixed(double lambda);
  // lambda(e) = (1 - t) * start + t * end with t = e / (epochs - 1) for e < epochs, then `end`: start at
  // epoch 0, end exactly at the last epoch and after it. start and end finite and > 0, epochs >= 2.
  static TemperatureSchedule linear(double start, double end, int epochs);

  double at(int epoch) const;  // epoch >= 0
  std::string str() const;     // "fixed 10" or "linear 10 -> 0.1 over 50 epochs", for logs

 private:
  TemperatureSchedule(double start, double end, int epochs) : start_(start), end_(end), epochs_(epochs) {}
  double start_, end_;
  int epochs_;  // 1 for a fixed schedule
};

}  // namespace stgs::nas
