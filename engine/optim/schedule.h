// Learning-rate schedules stepped once per batch.
// defines: CosineSchedule
//
// Cosine annealing from each group's base lr to eta_min:
//   lr_t = eta_min + (base - eta_min) * (1 + cos(pi * t_cur / T_i)) / 2
// Plain: t_cur = min(t, T_max), T_i = T_max (after T_max the lr stays at eta_min).
// Warm restarts (SGDR, Loshchilov & Hutter): cycles of T_0, T_0*T_mult, T_0*T_mult^2, ... steps; t_cur is
// the position inside the current cycle, so the lr jumps back to base at each cycle start.
// Usage: construct after the optimizer (the groups' current lrs become the base lrs), then call step()
// after every optimizer step. The state (step count, base lrs) resumes a run exactly.
#pragma once

#include <vector>

#include "engine/optim/optimizer.h"

namespace stgs {

class CosineSchedule {
 public:
  CosineSchedule(Optimizer& optimizer, int64_t T_max, double eta_min = 0);
  static CosineSchedule warm_restarts(Optimizer& optimizer, int64_t T_0, int64_t T_mult = 1, double eta_min = 0);

  // t += 1, then sets the lr of every parameter group.
  void step();
  int64_t last_step() const { return t_; }
  // The lr a group with base lr `base` gets at step t (pure; used by step()).
  double lr_at(int64_t t, double base) const;
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  // Keys: "step" (I64 scalar), "base_lrs.<g>" (F64 scalars). Loading also sets the groups' lrs.
  StateDict state_dict() const;
  void load_state_dict(const StateDict& dict);

 private:
  CosineSchedule(Optimizer& optimizer, int64_t period, int64_t mult, bool restarts, double eta_min);
  void apply();

  Optimizer* optimizer_;
  int64_t period_;  // T_max, or T_0 with restarts
  int64_t mult_;    // T_mult (restarts only)
  bool restarts_;
  double eta_min_;
  int64_t t_ = 0;
  std::vector<double> base_lrs_;
};

}  // namespace stgs
