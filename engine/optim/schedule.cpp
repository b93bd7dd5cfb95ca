// CosineSchedule: closed-form lr from the integer step count (no drift from repeated updates).
#include "engine/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace stgs {

CosineSchedule::CosineSchedule(Optimizer& optimizer, int64_t T_max, double eta_min)
    : CosineSchedule(optimizer, T_max, 1, false, eta_min) {}

CosineSchedule CosineSchedule::warm_restarts(Optimizer& optimizer, int64_t T_0, int64_t T_mult, double eta_min) {
  return CosineSchedule(optimizer, T_0, T_mult, true, eta_min);
}

CosineSchedule::CosineSchedule(Optimizer& optimizer, int64_t period, int64_t mult, bool restarts, double eta_min)
    : optimizer_(&optimizer), period_(period), mult_(mult), restarts_(restarts), eta_min_(eta_min) {
  STGS_CHECK(period >= 1, "CosineSchedule: ", restarts ? "T_0" : "T_max", " must be >= 1, got ", period);
  STGS_CHECK(mult >= 1, "CosineSchedule: T_mult must be >= 1, got ", mult);
  STGS_CHECK(eta_min >= 0, "CosineSchedule: eta_min must be >= 0, got ", eta_min);
  for (const ParamGroup& g : optimizer.param_groups()) base_lrs_.push_back(*g.lr);
}

double CosineSchedule::lr_at(int64_t t, double base) const {
  STGS_CHECK(t >= 0, "CosineSchedule: step must be >= 0, got ", t);
  int64_t t_cur = t, t_i = period_;
  if (!restarts_) {
    t_cur = std::min(t, period_);
  } else if (mult_ == 1) {
    t_cur = t % period_;
  } else {
    // Cycle lengths grow geometrically, so this loop runs O(log t) times.
    while (t_cur >= t_i) {
      t_cur -= t_i;
      t_i *= mult_;
    }
  }
  return eta_min_ + (base - eta_min_) * (1 + std::cos(std::numbers::pi * double(t_cur) / double(t_i))) / 2;
}

void CosineSchedule::apply() {
  std::vector<ParamGroup>& groups = optimizer_->param_groups();
  STGS_CHECK(groups.size() == base_lrs_.size(), "CosineSchedule: the optimizer has ", groups.size(),
             " parameter groups but the schedule was built for ", base_lrs_.size());
  for (size_t g = 0; g < groups.size(); ++g) groups[g].lr = lr_at(t_, base_lrs_[g]);
}

void CosineSchedule::step() {
  ++t_;
  apply();
}

StateDict CosineSchedule::state_dict() const {
  StateDict out;
  out.insert("step", full(Shape{}, double(t_), DType::I64));
  for (size_t g = 0; g < base_lrs_.size(); ++g)
    out.insert("base_lrs." + std::to_string(g), scalar(base_lrs_[g], DType::F64));
  return out;
}

void CosineSchedule::load_state_dict(const StateDict& dict) {
  const size_t groups = optimizer_->param_groups().size();
  STGS_CHECK(dict.size() == groups + 1 && dict.contains("step"),
             "CosineSchedule.load_state_dict: expected 'step' and 'base_lrs.<g>' for each of ", groups,
             " parameter groups, got ", dict.size(), " keys");
  std::vector<double> base;
  for (size_t g = 0; g < groups; ++g) base.push_back(dict.at("base_lrs." + std::to_string(g)).item());
  const int64_t t = int64_t(dict.at("step").item());
  STGS_CHECK(t >= 0, "CosineSchedule.load_state_dict: negative step ", t);
  base_lrs_ = std::move(base);
  t_ = t;
  apply();
}

}  // namespace stgs
