#include "nas/search_run.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/check.h"
#include "nas/metrics.h"

namespace stgs::nas {
namespace {

// splitmix64: a well-mixed 64-bit stream from a counter, for the batch permutations (they must not depend on
// the standard library's distributions, which differ between implementations).
uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Tensor i64_scalar(int64_t v) { return from_vector(std::vector<int64_t>{v}, Shape{}); }
Tensor f64_scalar(double v) { return from_vector(std::vector<double>{v}, Shape{}); }

template <class M>
M& moved_to(M& module, Device device) {
  module.to(device);
  return module;
}

}  // namespace

void FeatureSet::validate(const std::string& what) const {
  STGS_CHECK(names.size() == features.size(), what, ": ", names.size(), " names for ", features.size(),
             " feature tensors");
  STGS_CHECK(labels.defined() && labels.dtype() == DType::I64 && labels.dim() == 1, what,
             ": labels must be I64 (clips), got ", labels.defined() ? labels.str() : "none");
  STGS_CHECK(ids.empty() || int64_t(ids.size()) == size(), what, ": ", ids.size(), " ids for ", size(), " clips");
  for (size_t i = 0; i < features.size(); ++i) {
    const Tensor& f = features[i];
    STGS_CHECK(f.dim() == 3 && f.size(0) == size() && f.dtype() == DType::F32 && f.device().is_cpu(), what, ": ",
               names[i], " must be F32 (", size(), ", C, L) on the CPU, got ", f.str());
  }
}

SearchBatch gather_shard(const FeatureSet& set, const std::vector<int64_t>& indices, Device device,
                         const dist::Communicator& comm) {
  if (comm.world_size() == 1) return gather_batch(set, indices, device);
  const auto [begin, end] = dist::shard_range(int64_t(indices.size()), comm.rank(), comm.world_size());
  STGS_CHECK(end > begin, "data parallel: a batch of ", indices.size(), " clips over ", comm.world_size(),
             " ranks leaves rank ", comm.rank(), " nothing; use a batch size (and a split size modulo it) of at least "
             "the number of ranks");
  SearchBatch b = gather_batch(set, std::vector<int64_t>(indices.begin() + begin, indices.begin() + end), device);
  b.loss_scale = double(end - begin) * double(comm.world_size()) / double(indices.size());
  b.shard = {begin, end - begin, int64_t(indices.size())};
  return b;
}

SearchBatch gather_batch(const FeatureSet& set, const std::vector<int64_t>& indices, Device device) {
  const int64_t b = int64_t(indices.size());
  SearchBatch batch;
  for (const Tensor& f : set.features) {
    const Tensor src = f.contiguous();
    const int64_t row = f.size(1) * f.size(2);
    Tensor out = empty({b, f.size(1), f.size(2)});
    for (int64_t k = 0; k < b; ++k) {
      const int64_t i = indices[size_t(k)];
      STGS_CHECK(i >= 0 && i < f.size(0), "gather_batch: index ", i, " out of range for ", f.size(0), " clips");
      std::memcpy(out.data<float>() + k * row, src.data<float>() + i * row, sizeof(float) * size_t(row));
    }
    batch.features.push_back(out.to(device));
  }
  const std::vector<int64_t> all = set.labels.to_vector<int64_t>();
  std::vector<int64_t> picked(static_cast<size_t>(b));
  for (int64_t k = 0; k < b; ++k) picked[size_t(k)] = all[size_t(indices[size_t(k)])];
  batch.labels = from_vector(picked, Shape{b}).to(device);
  return batch;
}

std::vector<std::vector<int64_t>> epoch_batches(int64_t n, int64_t batch_size, uint64_t seed, int64_t epoch,
                                                uint64_t stream) {
  STGS_CHECK(batch_size >= 2, "epoch_batches: batch size ", batch_size, " (batch norm needs at least 2)");
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  uint64_t state = mix64(seed ^ mix64(uint64_t(epoch) ^ mix64(stream)));
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates; the modulo bias is below 2^-40 for any real n
    state = mix64(state);
    std::swap(order[size_t(i)], order[size_t(state % uint64_t(i + 1))]);
  }
  std::vector<std::vector<int64_t>> batches;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    if (end - start < 2) break;
    batches.emplace_back(order.begin() + start, order.begin() + end);
  }
  return batches;
}

ArchSample argmax_architecture(const ArchParams& arch) {
  auto one_hot = [](const Tensor& logits) {
    const Tensor host = logits.detach().to(Device::cpu()).to(DType::F64);
    const int64_t rows = host.size(0), cols = host.size(1);
    std::vector<double> w(size_t(rows * cols), 0.0);
    const double* p = host.data<double>();
    for (int64_t r = 0; r < rows; ++r) {
      int64_t best = 0;
      for (int64_t c = 1; c < cols; ++c)
        if (p[r * cols + c] > p[r * cols + best]) best = c;
      w[size_t(r * cols + best)] = 1.0;
    }
    return from_vector(w, Shape{rows, cols}).to(logits.dtype()).to(logits.device());
  };
  return {one_hot(arch.alpha), one_hot(arch.beta), one_hot(arch.gamma)};
}

std::vector<double> predict(const std::function<Tensor(const std::vector<Tensor>&)>& forward, const FeatureSet& set,
                            int64_t batch_size, Device device, dist::Communicator* comm) {
  NoGradGuard no_grad;
  const bool parts = comm != nullptr && comm->world_size() > 1;
  const auto [first, last] = parts ? dist::shard_range(set.size(), comm->rank(), comm->world_size())
                                   : std::pair<int64_t, int64_t>{0, set.size()};
  std::vector<double> scores;
  scores.reserve(size_t(last - first));
  for (int64_t start = first; start < last; start += batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = start; i < std::min(last, start + batch_size); ++i) indices.push_back(i);
    const SearchBatch b = gather_batch(set, indices, device);
    const Tensor p = softmax(forward(b.features), 1).to(Device::cpu()).to(DType::F64);
    for (int64_t k = 0; k < p.size(0); ++k) scores.push_back(p.data<double>()[k * p.size(1) + 1]);
  }
  return parts ? dist::all_gather_doubles(*comm, scores) : scores;
}

SplitScores score_split(const std::vector<double>& scores, const Tensor& labels) {
  SplitScores s;
  s.scores = scores;
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  s.accuracy = accuracy_at(scores, y);
  int64_t fakes = 0;
  for (int64_t v : y) fakes += v;
  const bool both = fakes > 0 && fakes < int64_t(y.size());
  s.auc = both ? roc_auc(scores, y) : NAN;  // a split of one class has no ROC curve
  s.eer = both ? equal_error_rate(scores, y) : NAN;
  return s;
}

SearchRun::SearchRun(const SearchConfig& config, const SearchRunOptions& options, const FeatureSet& train,
                     const FeatureSet& val)
    : config_(config),
      options_(options),
      comm_(options.comm != nullptr ? *options.comm : single_),
      train_(train),
      val_(val),
      init_gen_(options.seed),
      sample_gen_(mix64(options.seed ^ 0x5A3D1E)),
      net_(config, &init_gen_),
      arch_(config, &init_gen_),
      architect_(moved_to(net_, options.device), moved_to(arch_, options.device), options.architect,
                 std::max<int64_t>(1, options.epochs * steps_per_epoch()), &sample_gen_, &comm_) {
  train.validate("search training split");
  val.validate("search validation split");
  STGS_CHECK(train.names == config.input_names, "search: the training features are ", train.names.size(),
             " inputs that do not match the search space's input names");
  STGS_CHECK(val.names == config.input_names, "search: the validation features do not match the search space");
  STGS_CHECK(steps_per_epoch() > 0, "search: the training split has ", train.size(), " clips; batch size ",
             options.batch_size, " needs at least 2");
  STGS_CHECK(val.size() >= 2, "search: the validation split has ", val.size(), " clips (at least 2 needed)");
  // Every rank starts from rank 0's parameters (the same seed gives the same ones; this makes sure).
  dist::broadcast_from_root(comm_, net_.state_dict());
  dist::broadcast_from_root(comm_, arch_.state_dict());
}

int64_t SearchRun::steps_per_epoch() const {
  const int64_t n = train_.size(), b = options_.batch_size;
  return n / b + (n % b >= 2 ? 1 : 0);
}

EpochResult SearchRun::run_epoch(const std::function<bool()>& stop,
                                 const std::function<void(int64_t, int64_t, double)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  EpochResult r;
  r.epoch = epoch_;
  const auto train_batches = epoch_batches(train_.size(), options_.batch_size, options_.seed, epoch_, 1);
  const auto val_batches = epoch_batches(val_.size(), options_.batch_size, options_.seed, epoch_, 2);
  const int64_t total = int64_t(train_batches.size());
  net_.train();
  for (; step_ < total; ++step_) {
    if (dist::any_rank(comm_, stop && stop())) break;
    const SearchBatch train = gather_shard(train_, train_batches[size_t(step_)], options_.device, comm_);
    const SearchBatch val =
        gather_shard(val_, val_batches[size_t(step_) % val_batches.size()], options_.device, comm_);
    const StepStats s = architect_.step(train, val, int(epoch_));
    train_loss_sum_ += s.train_loss;
    val_loss_sum_ += s.val_loss;
    r.lambda = s.lambda;
    if (progress) progress(step_ + 1, total, train_loss_sum_ / double(step_ + 1));
  }
  r.steps = step_;
  r.train_loss = step_ ? train_loss_sum_ / double(step_) : NAN;
  r.val_loss = step_ ? val_loss_sum_ / double(step_) : NAN;
  r.weight_lr = architect_.weight_lr();
  r.complete = step_ == total;
  if (r.complete) {
    r.lambda = options_.architect.temperature.at(int(epoch_));
    const ArchSample best = argmax_architecture(arch_);
    net_.eval();
    auto forward = [&](const std::vector<Tensor>& f) { return net_.forward(f, best, SearchPath::Exact); };
    r.train = score_split(predict(forward, train_, 64, options_.device, &comm_), train_.labels);
    r.val = score_split(predict(forward, val_, 64, options_.device, &comm_), val_.labels);
    net_.train();
    r.entropies = arch_entropies(arch_);
    r.genotype = derive_genotype(config_, arch_.alpha, arch_.beta, arch_.gamma);
    ++epoch_;
    step_ = 0;
    train_loss_sum_ = val_loss_sum_ = 0;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

StateDict SearchRun::state_dict() const {
  StateDict out;
  insert_prefixed(out, "net.", net_.state_dict());
  insert_prefixed(out, "arch.", arch_.state_dict());
  insert_prefixed(out, "architect.", architect_.state_dict());
  out.insert("run.epoch", i64_scalar(epoch_));
  out.insert("run.step", i64_scalar(step_));
  out.insert("run.train_loss_sum", f64_scalar(train_loss_sum_));
  out.insert("run.val_loss_sum", f64_scalar(val_loss_sum_));
  return out;
}

void SearchRun::load_state_dict(const StateDict& dict) {
  net_.load_state_dict(sub_dict(dict, "net."));
  arch_.load_state_dict(sub_dict(dict, "arch."));
  architect_.load_state_dict(sub_dict(dict, "architect."));
  epoch_ = dict.at("run.epoch").to_vector<int64_t>().at(0);
  step_ = dict.at("run.step").to_vector<int64_t>().at(0);
  train_loss_sum_ = dict.at("run.train_loss_sum").to_vector<double>().at(0);
  val_loss_sum_ = dict.at("run.val_loss_sum").to_vector<double>().at(0);
  STGS_CHECK(epoch_ >= 0 && step_ >= 0 && step_ <= steps_per_epoch(), "search checkpoint: position epoch ", epoch_,
             " step ", step_, " does not fit this run (", steps_per_epoch(), " steps per epoch)");
}

}  // namespace stgs::nas
