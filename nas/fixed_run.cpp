#include "nas/fixed_run.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

#include "engine/autograd.h"
#include "engine/distributed/batch_norm_group.h"
#include "engine/ops.h"
#include "kernels/check.h"

namespace stgs::nas {
namespace {

Tensor i64_scalar(int64_t v) { return from_vector(std::vector<int64_t>{v}, Shape{}); }
Tensor f64_scalar(double v) { return from_vector(std::vector<double>{v}, Shape{}); }
int64_t i64_of(const Tensor& t) { return t.to_vector<int64_t>().at(0); }
double f64_of(const Tensor& t) { return t.to_vector<double>().at(0); }

Tensor u64_scalar(uint64_t v) {
  int64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return i64_scalar(bits);
}
uint64_t u64_of(const Tensor& t) {
  const int64_t bits = i64_of(t);
  uint64_t v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

FixedNetwork& on_device(FixedNetwork& net, Device device) {
  net.to(device);
  return net;
}

int64_t steps_for(int64_t clips, int64_t batch) { return clips / batch + (clips % batch >= 2 ? 1 : 0); }

}  // namespace

FixedRun::FixedRun(const Genotype& genotype, const FixedRunOptions& options, const FeatureSet& train,
                   const FeatureSet& val)
    : options_(options),
      comm_(options.comm != nullptr ? *options.comm : single_),
      train_(train),
      val_(val),
      init_gen_(options.seed),
      net_(genotype, &init_gen_),
      optimizer_(on_device(net_, options.device).parameters(),
                 AdamOptions{.lr = options.lr, .weight_decay = options.weight_decay}),
      schedule_(optimizer_, std::max<int64_t>(1, options.epochs * steps_for(train.size(), options.batch_size)),
                options.min_lr),
      reducer_(dist::reducer_for_ranks(&comm_, net_.parameters())) {
  train.validate("training split");
  val.validate("validation split");
  STGS_CHECK(train.names == genotype.config.input_names, "eval: the training features' inputs do not match the "
             "genotype's (", train.names.size(), " features, ", genotype.config.input_names.size(), " inputs)");
  STGS_CHECK(val.names == genotype.config.input_names, "eval: the validation features' inputs do not match the "
             "genotype's");
  STGS_CHECK(steps_per_epoch() > 0, "eval: the training split has ", train.size(), " clips; batch size ",
             options.batch_size, " needs at least 2");
  STGS_CHECK(val.size() >= 2, "eval: the validation split has ", val.size(), " clips (at least 2 needed)");
  dist::broadcast_from_root(comm_, net_.state_dict());  // every rank starts from rank 0's weights
}

int64_t FixedRun::steps_per_epoch() const { return steps_for(train_.size(), options_.batch_size); }

FixedEpochResult FixedRun::run_epoch(const std::function<bool()>& stop,
                                     const std::function<void(int64_t, int64_t, double)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  FixedEpochResult r;
  r.epoch = epoch_;
  const auto batches = epoch_batches(train_.size(), options_.batch_size, options_.seed, epoch_, 3);
  const int64_t total = int64_t(batches.size());
  net_.train();
  std::optional<dist::BatchNormGroupScope> synced_batch_norm;  // several ranks: statistics over all of them
  if (reducer_) synced_batch_norm.emplace(comm_);
  for (; step_ < total; ++step_) {
    if (dist::any_rank(comm_, stop && stop())) break;
    const SearchBatch b = gather_shard(train_, batches[size_t(step_)], options_.device, comm_);
    optimizer_.zero_grad();
    const double value = backward_on_ranks(
        b, &comm_, reducer_.get(), [&] { return cross_entropy(net_.forward(b.features), b.labels); },
        [&](double loss) {
          STGS_CHECK(std::isfinite(loss), "eval: non-finite training loss ", loss, " at epoch ", epoch_, " step ",
                     step_, "; the weights were not updated");
        });
    optimizer_.step();
    schedule_.step();
    loss_sum_ += value;
    if (progress) progress(step_ + 1, total, loss_sum_ / double(step_ + 1));
  }
  r.steps = step_;
  r.train_loss = step_ ? loss_sum_ / double(step_) : NAN;
  r.lr = optimizer_.param_groups().at(0).lr.value();
  r.complete = step_ == total;
  if (r.complete) {
    net_.eval();
    auto forward = [&](const std::vector<Tensor>& f) { return net_.forward(f); };
    r.train = score_split(predict(forward, train_, 64, options_.device, &comm_), train_.labels);
    r.val = score_split(predict(forward, val_, 64, options_.device, &comm_), val_.labels);
    net_.train();
    const double auc = std::isnan(r.val.auc) ? r.val.accuracy : r.val.auc;  // one-class val: select on accuracy
    if (best_epoch_ < 0 || auc > best_auc_) {
      best_epoch_ = epoch_;
      best_auc_ = auc;
      best_state_ = net_.state_dict().clone();
      r.best = true;
    }
    ++epoch_;
    step_ = 0;
    loss_sum_ = 0;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

SplitScores FixedRun::evaluate_best(const FeatureSet& set) {
  set.validate("evaluated split");
  const StateDict current = net_.state_dict().clone();
  if (best_epoch_ >= 0) net_.load_state_dict(best_state_);
  net_.eval();
  auto forward = [&](const std::vector<Tensor>& f) { return net_.forward(f); };
  SplitScores s = score_split(predict(forward, set, 64, options_.device, &comm_), set.labels);
  net_.train();
  net_.load_state_dict(current);
  return s;
}

StateDict FixedRun::state_dict() const {
  StateDict out;
  insert_prefixed(out, "net.", net_.state_dict());
  insert_prefixed(out, "optimizer.", optimizer_.state_dict());
  insert_prefixed(out, "schedule.", schedule_.state_dict());
  insert_prefixed(out, "best.", best_state_);
  out.insert("run.epoch", i64_scalar(epoch_));
  out.insert("run.step", i64_scalar(step_));
  out.insert("run.loss_sum", f64_scalar(loss_sum_));
  out.insert("run.best_epoch", i64_scalar(best_epoch_));
  out.insert("run.best_auc", f64_scalar(best_auc_));
  // Dropout masks come from the default generator: a resumed run continues its stream.
  out.insert("run.default_generator.seed", u64_scalar(default_generator().seed()));
  out.insert("run.default_generator.offset", u64_scalar(default_generator().offset()));
  return out;
}

void FixedRun::load_state_dict(const StateDict& dict) {
  net_.load_state_dict(sub_dict(dict, "net."));
  optimizer_.load_state_dict(sub_dict(dict, "optimizer."));
  schedule_.load_state_dict(sub_dict(dict, "schedule."));
  epoch_ = i64_of(dict.at("run.epoch"));
  step_ = i64_of(dict.at("run.step"));
  loss_sum_ = f64_of(dict.at("run.loss_sum"));
  best_epoch_ = i64_of(dict.at("run.best_epoch"));
  best_auc_ = f64_of(dict.at("run.best_auc"));
  best_state_ = sub_dict(dict, "best.").clone();
  STGS_CHECK(best_epoch_ < 0 || !best_state_.empty(), "eval checkpoint: best epoch ", best_epoch_,
             " but no best weights");
  default_generator().set_state(u64_of(dict.at("run.default_generator.seed")),
                                u64_of(dict.at("run.default_generator.offset")));
  STGS_CHECK(epoch_ >= 0 && step_ >= 0 && step_ <= steps_per_epoch(), "eval checkpoint: position epoch ", epoch_,
             " step ", step_, " does not fit this run (", steps_per_epoch(), " steps per epoch)");
}

}  // namespace stgs::nas
