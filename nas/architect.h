// The bilevel search loop of STGS-BMNAS (paper Algorithm 1, section 3.7): per batch a weight step on a
// training batch with sampled architectures, then an architecture step on a validation batch with fresh
// samples; first order (no unrolled weight step).
// defines: SearchBatch, WeightOptimizer, ArchitectOptions, StepStats, Architect
//
// Weight step: w -= lr * grad_w mean_m CE(net(train; A_m)), A_m ~ STGS(alpha, beta, gamma; lambda),
//              SGD (momentum 0.9) or Adam, weight decay 3e-3, cosine schedule stepped per batch.
// Arch step:   (alpha, beta, gamma) -= Adam step on grad mean_m CE(net(val; A'_m)) with fresh draws A'_m,
//              Adam lr 3e-3, betas (0.5, 0.999), weight decay 1e-3 (DARTS/BM-NAS values, paper 4.3).
// Both steps run the network in training mode (batch statistics, dropout), as BM-NAS does. During each
// step the other side's parameters are frozen (no gradient tracking), so each optimizer sees only its own
// loss and the backward does no work for the other side.
//
// Data parallel (a communicator of several ranks): each rank gets its part of the global batches, every rank
// draws the same architectures (same generator), batch norms take their statistics over all ranks
// (dist::BatchNormGroupScope), and the gradients of the weights and of the logits are averaged over the
// ranks in buckets during the backward (dist::GradientReducer), and dropout applies each rank's part of the global
// batch's masks (dist::BatchShardScope), so every rank applies the same update, the one a single process
// computes on the global batch.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/distributed/batch_shard.h"
#include "engine/distributed/communicator.h"
#include "engine/distributed/gradient_reducer.h"
#include "engine/optim/adam.h"
#include "engine/optim/schedule.h"
#include "engine/optim/sgd.h"
#include "nas/search_network.h"
#include "nas/temperature.h"

namespace stgs::nas {

// One batch as the search sees it: the N pooled backbone features (B, C_i, L) in SearchConfig order and the
// labels (B), I64, class 1 = fake. apps/ fills it from the feature cache or the loader.
// In a data-parallel run, this rank's part of a global batch (`shard`, whose rows also place its dropout masks
// in the global batch's); its loss is multiplied by loss_scale = (part size) * (ranks) / (global batch size), so
// that averaging the gradients over the ranks gives the global batch's.
struct SearchBatch {
  std::vector<Tensor> features;
  Tensor labels;
  double loss_scale = 1.0;
  dist::BatchShard shard;  // rows 0: the whole batch
};

// The backward of one (possibly data-parallel) training step on b: loss_of() runs with b's dropout rows
// (dist::BatchShardScope) and is scaled by b.loss_scale; check(global loss) may throw to stop before any
// gradient exists (the global batch's loss: the mean over comm's ranks, comm null for one process); then the
// backward, whose gradients `reducer` (null for one process) averages over the ranks as they come. Returns the
// global loss.
double backward_on_ranks(const SearchBatch& b, dist::Communicator* comm, dist::GradientReducer* reducer,
                         const std::function<Tensor()>& loss_of, const std::function<void(double)>& check);

enum class WeightOptimizer { SGD, Adam };

struct ArchitectOptions {
  int samples = 15;                      // M architecture draws per step, losses averaged (paper: 15)
  GumbelMode mode = GumbelMode::Hard;    // Hard: STGS; PlainSoftmax: BM-NAS's relaxation
  SearchPath path = SearchPath::Exact;   // Fast evaluates only the sampled ops (GDAS-style gradient)
  TemperatureSchedule temperature = TemperatureSchedule::fixed(10.0);  // paper: lambda = 10
  WeightOptimizer weight_optimizer = WeightOptimizer::SGD;
  double weight_lr = 3e-3;               // the cosine schedule's maximum (paper: 0.003)
  double weight_min_lr = 1e-6;           // its minimum
  double momentum = 0.9;                 // SGD only
  double weight_decay = 3e-3;
  double arch_lr = 3e-3;
  double arch_beta1 = 0.5, arch_beta2 = 0.999;
  double arch_weight_decay = 1e-3;
};

struct StepStats {
  double train_loss = 0;  // mean over the M draws of the weight step
  double val_loss = 0;    // mean over the M draws of the architecture step
  double lambda = 0;      // temperature used
};

class Architect {
 public:
  // total_steps: batches over the whole search, the cosine schedule's period. The networks, `gen` and `comm`
  // must outlive the Architect; gen drives every architecture draw (the default generator when null); comm
  // (null: a single process) makes the steps data parallel.
  Architect(SearchNetwork& net, ArchParams& arch, const ArchitectOptions& options, int64_t total_steps,
            Generator* gen = nullptr, dist::Communicator* comm = nullptr);

  // One bilevel step at `epoch` (which sets lambda). Throws on a non-finite loss, naming the step and epoch,
  // before any optimizer applies it. The losses in the result are the global batches' (means over the ranks).
  StepStats step(const SearchBatch& train, const SearchBatch& val, int epoch);

  const ArchitectOptions& options() const { return options_; }
  int64_t steps_done() const { return schedule_.last_step(); }
  double weight_lr() const;

  // Both optimizers, the schedule, the sampling generator's (seed, offset) and the default generator's
  // (dropout masks), under "weight_opt.", "arch_opt.", "schedule.", "generator.", "default_generator.":
  // with the network's and ArchParams' state dicts a search resumes bit-exactly.
  StateDict state_dict() const;
  void load_state_dict(const StateDict& dict);

 private:
  SearchNetwork& net_;
  ArchParams& arch_;
  ArchitectOptions options_;
  Generator* gen_;
  std::unique_ptr<Optimizer> weight_opt_;
  Adam arch_opt_;
  CosineSchedule schedule_;
  dist::Communicator* comm_;
  std::unique_ptr<dist::GradientReducer> weight_reducer_, arch_reducer_;  // several ranks only
};

}  // namespace stgs::nas
