// The bilevel search step and its resumable state.
#include "nas/architect.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <utility>

#include "engine/distributed/batch_norm_group.h"

namespace stgs::nas {
namespace {

std::unique_ptr<Optimizer> make_weight_optimizer(SearchNetwork& net, const ArchitectOptions& o) {
  STGS_CHECK(o.weight_lr > 0 && o.weight_min_lr >= 0 && o.weight_min_lr <= o.weight_lr,
             "architect: weight lr must be > 0 with 0 <= min lr <= lr, got lr ", o.weight_lr, " min ", o.weight_min_lr);
  STGS_CHECK(o.weight_decay >= 0, "architect: weight decay must be >= 0, got ", o.weight_decay);
  if (o.weight_optimizer == WeightOptimizer::Adam)
    return std::make_unique<Adam>(net.parameters(), AdamOptions{.lr = o.weight_lr, .weight_decay = o.weight_decay});
  return std::make_unique<SGD>(net.parameters(),
                               SGDOptions{.lr = o.weight_lr, .momentum = o.momentum, .weight_decay = o.weight_decay});
}

int64_t checked_total_steps(int64_t total_steps) {
  STGS_CHECK(total_steps >= 1, "architect: total steps must be >= 1, got ", total_steps);
  return total_steps;
}

AdamOptions arch_adam_options(const ArchitectOptions& o) {
  STGS_CHECK(o.arch_lr > 0, "architect: arch lr must be > 0, got ", o.arch_lr);
  STGS_CHECK(o.samples >= 1, "architect: samples (M) must be >= 1, got ", o.samples);
  return AdamOptions{.lr = o.arch_lr, .beta1 = o.arch_beta1, .beta2 = o.arch_beta2, .weight_decay = o.arch_weight_decay};
}

// Generator state as I64 scalars (the bit patterns of the unsigned values).
Tensor u64_scalar(uint64_t v) {
  int64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return from_vector(std::vector<int64_t>{bits}, Shape{});
}

uint64_t u64_of(const Tensor& t) {
  const int64_t bits = t.to_vector<int64_t>().at(0);
  uint64_t v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Turns gradient tracking off for a set of leaves for one scope, so a backward skips their gradient work:
// the weight step needs no architecture gradient, and the architecture step no weight gradients (the
// weight-gradient GEMMs are a third of a backward).
class FrozenScope {
 public:
  explicit FrozenScope(std::vector<Tensor> leaves) : leaves_(std::move(leaves)) {
    for (Tensor& t : leaves_) t.set_requires_grad(false);
  }
  ~FrozenScope() {
    for (Tensor& t : leaves_) t.set_requires_grad(true);
  }
  FrozenScope(const FrozenScope&) = delete;
  FrozenScope& operator=(const FrozenScope&) = delete;

 private:
  std::vector<Tensor> leaves_;
};

void check_batch(const char* which, const SearchBatch& b, const SearchConfig& config) {
  STGS_CHECK(int(b.features.size()) == config.num_inputs(), "architect: the ", which, " batch has ",
             b.features.size(), " feature tensors; the search space has ", config.num_inputs(), " input nodes");
  STGS_CHECK(b.labels.defined() && b.labels.dtype() == DType::I64 && b.labels.dim() == 1, "architect: the ", which,
             " batch's labels must be I64 (B), got ", b.labels.defined() ? b.labels.str() : "undefined");
}

}  // namespace

double backward_on_ranks(const SearchBatch& b, dist::Communicator* comm, dist::GradientReducer* reducer,
                         const std::function<Tensor()>& loss_of, const std::function<void(double)>& check) {
  std::optional<dist::BatchShardScope> shard;
  if (b.shard.rows > 0) shard.emplace(b.shard);
  if (reducer != nullptr) reducer->prepare();
  Tensor loss = loss_of();
  if (b.loss_scale != 1.0) loss = loss * b.loss_scale;
  const double global = comm != nullptr ? dist::mean_over_ranks(*comm, loss.item()) : loss.item();
  check(global);
  loss.backward();
  if (reducer != nullptr) reducer->finish();
  return global;
}

Architect::Architect(SearchNetwork& net, ArchParams& arch, const ArchitectOptions& options, int64_t total_steps,
                     Generator* gen, dist::Communicator* comm)
    : net_(net),
      arch_(arch),
      options_(options),
      gen_(gen != nullptr ? gen : &default_generator()),
      weight_opt_(make_weight_optimizer(net, options)),
      arch_opt_(arch.parameters(), arch_adam_options(options)),
      schedule_(*weight_opt_, checked_total_steps(total_steps), options.weight_min_lr),
      comm_(comm),
      weight_reducer_(dist::reducer_for_ranks(comm, net.parameters())),
      arch_reducer_(dist::reducer_for_ranks(comm, arch.parameters())) {}

double Architect::weight_lr() const { return weight_opt_->param_groups().at(0).lr.value(); }

StepStats Architect::step(const SearchBatch& train, const SearchBatch& val, int epoch) {
  check_batch("training", train, net_.config());
  check_batch("validation", val, net_.config());
  StepStats stats;
  stats.lambda = options_.temperature.at(epoch);
  net_.train();

  // Several ranks: batch statistics over all of them for both steps.
  std::optional<dist::BatchNormGroupScope> synced_batch_norm;
  if (comm_ != nullptr && comm_->world_size() > 1) synced_batch_norm.emplace(*comm_);
  // The sampled loss of batch b and its backward (over the ranks); `which` loss, and what `stays` when it is not
  // finite, name the step in the error.
  auto sampled_backward = [&](const SearchBatch& b, dist::GradientReducer* reducer, const char* which,
                              const char* stays) {
    return backward_on_ranks(
        b, comm_, reducer,
        [&] {
          return sampled_loss(net_, net_.reshape_inputs(b.features), arch_, b.labels, stats.lambda, options_.samples,
                              options_.mode, options_.path, gen_);
        },
        [&](double loss) {
          STGS_CHECK(std::isfinite(loss), "architect: non-finite ", which, " loss ", loss, " at step ",
                     schedule_.last_step(), " (epoch ", epoch, "); the ", stays, " not updated");
        });
  };

  // Weight step: the architecture is sampled, the network weights learn.
  weight_opt_->zero_grad();
  {
    const FrozenScope frozen(arch_.parameters());
    stats.train_loss = sampled_backward(train, weight_reducer_.get(), "training", "weights were");
  }
  if (options_.path == SearchPath::Exact) {
    // The exact path runs every op, so every weight has a gradient; the backward skips the ops no draw
    // selected (their gradient is exactly zero), so give those their zeros: weight decay and momentum then
    // update them as the exact path defines.
    for (const Tensor& p : net_.parameters())
      if (!p.grad().defined()) p.set_grad(zeros(p.shape(), p.dtype(), p.device()));
  }
  weight_opt_->step();
  schedule_.step();

  // Architecture step: fresh draws on the validation batch, only the logits learn.
  arch_opt_.zero_grad();
  {
    const FrozenScope frozen(net_.parameters());
    stats.val_loss = sampled_backward(val, arch_reducer_.get(), "validation", "architecture was");
  }
  arch_opt_.step();
  return stats;
}

StateDict Architect::state_dict() const {
  StateDict out;
  insert_prefixed(out, "weight_opt.", weight_opt_->state_dict());
  insert_prefixed(out, "arch_opt.", arch_opt_.state_dict());
  insert_prefixed(out, "schedule.", schedule_.state_dict());
  out.insert("generator.seed", u64_scalar(gen_->seed()));
  out.insert("generator.offset", u64_scalar(gen_->offset()));
  // Dropout masks come from the default generator; a resumed search must continue its stream too.
  out.insert("default_generator.seed", u64_scalar(default_generator().seed()));
  out.insert("default_generator.offset", u64_scalar(default_generator().offset()));
  return out;
}

void Architect::load_state_dict(const StateDict& dict) {
  weight_opt_->load_state_dict(sub_dict(dict, "weight_opt."));
  arch_opt_.load_state_dict(sub_dict(dict, "arch_opt."));
  schedule_.load_state_dict(sub_dict(dict, "schedule."));
  default_generator().set_state(u64_of(dict.at("default_generator.seed")),
                                u64_of(dict.at("default_generator.offset")));
  gen_->set_state(u64_of(dict.at("generator.seed")), u64_of(dict.at("generator.offset")));
}

}  // namespace stgs::nas
