// A whole STGS-BMNAS search over in-memory pooled features, epoch by epoch, resumable at any step boundary;
// and the evaluation helpers the search and the fixed-network training share.
// defines: FeatureSet, gather_batch, gather_shard, epoch_batches, argmax_architecture, predict, SplitScores,
//          score_split, SearchRunOptions, EpochResult, SearchRun
//
// The caller (apps/) loads the feature cache into FeatureSets, runs epochs, and writes the run directory
// (logs, tables, genotypes, checkpoints); this file knows nothing of files. Every random choice (weights,
// batch order, architecture draws, dropout) derives from the seed, so a run resumed from state_dict()
// continues bitwise as the uninterrupted run would have (on the CPU).
//
// Data parallel (options.comm with several ranks, nas/architect.h): every rank holds the whole feature set and
// draws the same epoch permutation; each takes its contiguous part of every global batch (gather_shard), and
// the scores for the metrics are predicted part by part and gathered, so every rank sees every metric.
// Parameters are broadcast from rank 0 at the start. A run over R ranks ends with the weights, logits and metrics
// of the single-process run, to float rounding (dropout masks included: dist::BatchShardScope).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nas/architect.h"
#include "nas/genotype.h"
#include "nas/search_network.h"

namespace stgs::nas {

// One split's pooled backbone features in memory: features[i] is (clips, C_i, L) F32 on the CPU, in the
// order of `names` (the search space's input nodes); labels (clips) I64, 1 = fake.
struct FeatureSet {
  std::vector<std::string> names;
  std::vector<Tensor> features;
  Tensor labels;
  std::vector<std::string> ids;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  // Throws naming `what` unless every feature has `size()` rows and the shapes agree with names.
  void validate(const std::string& what) const;
};

// Rows `indices` of every feature and of the labels, on `device`.
SearchBatch gather_batch(const FeatureSet& set, const std::vector<int64_t>& indices, Device device);

// This rank's contiguous part of the global batch `indices` (dist::shard_range), with its loss_scale. Throws
// when the part is empty (fewer clips in the batch than ranks).
SearchBatch gather_shard(const FeatureSet& set, const std::vector<int64_t>& indices, Device device,
                         const dist::Communicator& comm);

// The batches of one epoch: a permutation of 0..n-1 drawn from (seed, epoch, stream) alone, cut into
// batch_size pieces; a last piece of one clip is dropped (batch norm in training mode needs two).
std::vector<std::vector<int64_t>> epoch_batches(int64_t n, int64_t batch_size, uint64_t seed, int64_t epoch,
                                                uint64_t stream);

// One-hot of every row's argmax (ties to the lower index): the architecture the logits currently favour,
// without noise, in the logits' dtype and device.
ArchSample argmax_architecture(const ArchParams& arch);

// P(fake) of every clip, in set order: forward(features of a batch) -> logits (B, 2), batches of
// batch_size, under NoGrad. The caller puts the network in eval mode. With several ranks each predicts its
// part of the set and the parts are gathered: every rank returns all the scores.
std::vector<double> predict(const std::function<Tensor(const std::vector<Tensor>&)>& forward, const FeatureSet& set,
                            int64_t batch_size, Device device, dist::Communicator* comm = nullptr);

// Scores and the detection metrics of one split.
struct SplitScores {
  std::vector<double> scores;  // P(fake) per clip
  double auc = 0, accuracy = 0, eer = 0;
};
SplitScores score_split(const std::vector<double>& scores, const Tensor& labels);

struct SearchRunOptions {
  ArchitectOptions architect;
  int64_t epochs = 30;
  int64_t batch_size = 8;  // paper: 8
  uint64_t seed = 1;
  Device device = Device::cpu();
  dist::Communicator* comm = nullptr;  // data parallel over its ranks; null: a single process
};

struct EpochResult {
  int64_t epoch = 0;              // 0-based
  bool complete = false;          // false: stopped at a step boundary before the epoch's end
  int64_t steps = 0;              // bilevel steps of this epoch run so far
  double train_loss = 0, val_loss = 0;  // means over the epoch's steps
  double lambda = 0, weight_lr = 0;
  SplitScores train, val;         // under argmax_architecture, eval mode (complete epochs only)
  Entropies entropies;
  Genotype genotype;              // derived from the logits after the epoch
  double seconds = 0;             // wall time of this call
};

class SearchRun {
 public:
  SearchRun(const SearchConfig& config, const SearchRunOptions& options, const FeatureSet& train,
            const FeatureSet& val);

  // Runs the current epoch from where it stands. Between steps it calls stop() (with several ranks: it stops
  // when stop() is true on any rank, all at the same step); when that returns true it
  // returns at once with complete = false (state_dict() then resumes at that step). progress(done, total,
  // mean train loss so far) after every step. After the last step: the epoch's metrics, entropies and
  // genotype, and the position moves to the next epoch.
  EpochResult run_epoch(const std::function<bool()>& stop = {},
                        const std::function<void(int64_t, int64_t, double)>& progress = {});

  int64_t epoch() const { return epoch_; }        // the epoch run_epoch runs next (or continues)
  int64_t step_in_epoch() const { return step_; }  // steps of that epoch already done
  int64_t steps_per_epoch() const;

  // Network, architecture, optimizers, schedule, generators and the position in the epoch (with its loss
  // sums), under "net.", "arch.", "architect.", "run.".
  StateDict state_dict() const;
  void load_state_dict(const StateDict& dict);

  SearchNetwork& net() { return net_; }
  ArchParams& arch() { return arch_; }
  const SearchConfig& config() const { return config_; }

 private:
  SearchConfig config_;
  SearchRunOptions options_;
  dist::SingleProcess single_;
  dist::Communicator& comm_;  // options.comm or single_
  const FeatureSet& train_;
  const FeatureSet& val_;
  Generator init_gen_, sample_gen_;
  SearchNetwork net_;
  ArchParams arch_;
  Architect architect_;
  int64_t epoch_ = 0, step_ = 0;
  double train_loss_sum_ = 0, val_loss_sum_ = 0;
};

}  // namespace stgs::nas
