// Training the fixed network of a genotype from scratch and selecting it on validation (paper section 4.4,
// BM-NAS's evaluation stage), epoch by epoch, resumable at any step boundary.
// defines: FixedRunOptions, FixedEpochResult, FixedRun
//
// Adam with a cosine schedule stepped per batch; cross-entropy on the pooled features; after every epoch the
// train and validation scores in eval mode, and the weights of the epoch with the best validation AUC kept
// (ties: the earlier epoch). The test split is never looked at here: the caller scores it once, with the
// best weights, at the end. Every random choice derives from the seed, so a run resumed from state_dict()
// ends bitwise where the uninterrupted run ends (on the CPU).
//
// Data parallel as the search (nas/search_run.h): options.comm with several ranks splits every global batch
// over them, synchronises the batch norms, averages the gradients in buckets and gathers the scores, so every
// rank keeps the same weights and selects the same best epoch.
#pragma once

#include <functional>

#include <memory>

#include "engine/distributed/gradient_reducer.h"
#include "engine/optim/adam.h"
#include "engine/optim/schedule.h"
#include "nas/fixed_network.h"
#include "nas/search_run.h"

namespace stgs::nas {

struct FixedRunOptions {
  int64_t epochs = 30;
  int64_t batch_size = 8;
  double lr = 1e-3;        // the cosine schedule's maximum
  double min_lr = 1e-6;
  double weight_decay = 1e-4;
  uint64_t seed = 1;
  Device device = Device::cpu();
  dist::Communicator* comm = nullptr;  // data parallel over its ranks; null: a single process
};

struct FixedEpochResult {
  int64_t epoch = 0;
  bool complete = false;  // false: stopped at a step boundary
  int64_t steps = 0;
  double train_loss = 0, lr = 0;
  SplitScores train, val;  // eval mode, complete epochs only
  bool best = false;       // this epoch's validation AUC is the best so far
  double seconds = 0;
};

class FixedRun {
 public:
  FixedRun(const Genotype& genotype, const FixedRunOptions& options, const FeatureSet& train, const FeatureSet& val);

  // As SearchRun::run_epoch: stop() is polled between steps, progress(done, total, mean loss) after each.
  FixedEpochResult run_epoch(const std::function<bool()>& stop = {},
                             const std::function<void(int64_t, int64_t, double)>& progress = {});

  // P(fake) scores of `set` with the best epoch's weights (the current ones before any epoch completed).
  SplitScores evaluate_best(const FeatureSet& set);

  int64_t epoch() const { return epoch_; }
  int64_t step_in_epoch() const { return step_; }
  int64_t steps_per_epoch() const;
  int64_t best_epoch() const { return best_epoch_; }  // -1 before the first complete epoch
  double best_val_auc() const { return best_auc_; }
  FixedNetwork& net() { return net_; }

  // Network, optimizer, schedule, default generator, position, and the best weights under "best.".
  StateDict state_dict() const;
  void load_state_dict(const StateDict& dict);

 private:
  FixedRunOptions options_;
  dist::SingleProcess single_;
  dist::Communicator& comm_;  // options.comm or single_
  const FeatureSet& train_;
  const FeatureSet& val_;
  Generator init_gen_;
  FixedNetwork net_;
  Adam optimizer_;
  CosineSchedule schedule_;
  std::unique_ptr<dist::GradientReducer> reducer_;  // several ranks only
  int64_t epoch_ = 0, step_ = 0;
  double loss_sum_ = 0;
  int64_t best_epoch_ = -1;
  double best_auc_ = -1;
  StateDict best_state_;
};

}  // namespace stgs::nas
