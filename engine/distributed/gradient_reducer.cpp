#include "engine/distributed/gradient_reducer.h"

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/check.h"

namespace stgs::dist {

std::vector<GradientBucket> plan_buckets(const std::vector<Tensor>& params, size_t cap_bytes) {
  STGS_CHECK(cap_bytes > 0, "plan_buckets: cap must be > 0 bytes");
  std::vector<GradientBucket> buckets;
  size_t bytes = 0;
  const Tensor* first = nullptr;  // the current bucket's first parameter
  for (size_t k = params.size(); k-- > 0;) {
    const Tensor& p = params[k];
    const size_t size = size_t(p.numel()) * dtype_size(p.dtype());
    const bool fits = first != nullptr && bytes + size <= cap_bytes && p.dtype() == first->dtype() &&
                      p.device() == first->device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
      first = &p;
    }
    GradientBucket& b = buckets.back();
    b.params.push_back(k);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
    bytes += size;
  }
  return buckets;
}

GradientReducer::GradientReducer(Communicator& comm, std::vector<Tensor> params, size_t cap_bytes)
    : comm_(comm),
      params_(std::move(params)),
      buckets_(plan_buckets(params_, cap_bytes)),
      bucket_of_(params_.size()),
      offset_of_(params_.size()),
      ready_(params_.size(), false),
      ready_count_(buckets_.size(), 0),
      self_(std::make_shared<GradientReducer*>(this)) {
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const Tensor& p0 = params_[buckets_[b].params.front()];
    flat_.push_back(zeros(Shape{buckets_[b].numel}, p0.dtype(), p0.device()));
    for (size_t slot = 0; slot < buckets_[b].params.size(); ++slot) {
      bucket_of_[buckets_[b].params[slot]] = b;
      offset_of_[buckets_[b].params[slot]] = buckets_[b].offsets[slot];
    }
  }
  const std::weak_ptr<GradientReducer*> self = self_;
  for (size_t i = 0; i < params_.size(); ++i) {
    STGS_CHECK(params_[i].is_leaf() && params_[i].requires_grad(), "GradientReducer: parameter ", i, " (",
               params_[i].str(), ") must be a leaf that requires a gradient");
    params_[i].register_hook([self, i](const Tensor& g) {
      if (auto reducer = self.lock()) (*reducer)->on_gradient(i, g);
      return Tensor();  // the gradient itself goes into .grad; finish() overwrites it with the average
    });
  }
}

GradientReducer::~GradientReducer() = default;

void GradientReducer::prepare() {
  for (size_t i = 0; i < params_.size(); ++i)
    STGS_CHECK(!params_[i].grad().defined(), "GradientReducer::prepare: parameter ", i, " (", params_[i].str(),
               ") still has a gradient; call zero_grad() first (the reducer averages one backward's gradients)");
  std::fill(ready_.begin(), ready_.end(), false);
  std::fill(ready_count_.begin(), ready_count_.end(), size_t(0));
  next_bucket_ = 0;
  active_ = true;
}

void GradientReducer::on_gradient(size_t index, const Tensor& grad) {
  if (!active_) return;  // a backward outside prepare()/finish() is not reduced
  STGS_CHECK(index < params_.size() && !ready_[index], "GradientReducer: gradient of parameter ", index,
             " twice in one step (one backward per prepare())");
  const size_t b = bucket_of_[index];
  slot_of(index, flat_[b]).copy_(grad);
  ready_[index] = true;
  ++ready_count_[b];
  start_ready_buckets();
  comm_.progress();
}

void GradientReducer::start_ready_buckets() {
  while (next_bucket_ < buckets_.size() && ready_count_[next_bucket_] == buckets_[next_bucket_].params.size()) {
    comm_.start_all_reduce_sum(flat_[next_bucket_]);
    ++next_bucket_;
  }
}

void GradientReducer::finish() {
  STGS_CHECK(active_, "GradientReducer::finish without prepare()");
  active_ = false;
  NoGradGuard no_grad;
  for (; next_bucket_ < buckets_.size(); ++next_bucket_) {
    for (size_t i : buckets_[next_bucket_].params)
      if (!ready_[i]) slot_of(i, flat_[next_bucket_]).fill_(0.0);  // no gradient: contributes zeros, receives none
    comm_.start_all_reduce_sum(flat_[next_bucket_]);
  }
  comm_.synchronize();
  const double scale = 1.0 / double(comm_.world_size());
  std::vector<Tensor> means;
  for (const Tensor& flat : flat_) means.push_back(flat * scale);
  for (size_t i = 0; i < params_.size(); ++i)
    if (ready_[i]) params_[i].set_grad(slot_of(i, means[bucket_of_[i]]).clone());
}

Tensor GradientReducer::slot_of(size_t index, const Tensor& flat) const {
  return flat.narrow(0, offset_of_[index], params_[index].numel()).view(params_[index].shape());
}

std::unique_ptr<GradientReducer> reducer_for_ranks(Communicator* comm, std::vector<Tensor> params) {
  if (comm == nullptr || comm->world_size() == 1) return nullptr;
  return std::make_unique<GradientReducer>(*comm, std::move(params));
}

}  // namespace stgs::dist
