// Data-parallel gradient averaging in buckets that start while the backward is still running (PyTorch DDP's
// reducer, performance_anchors.md section 5).
// defines: GradientBucket, plan_buckets, GradientReducer, reducer_for_ranks
//
// Parameters are taken in reverse registration order (the order a backward tends to finish them: the last
// layers first) and cut into buckets of at most `cap_bytes` (one parameter larger than that is a bucket of its
// own; a change of dtype or device starts a new one). A hook on every parameter's gradient accumulator copies
// the gradient into its bucket's flat buffer; when a bucket is complete its all-reduce starts at once
// (Communicator::start_all_reduce_sum: MPI_Iallreduce on CPU ranks, NCCL's stream on GPUs), provided every
// earlier bucket's did, so the collectives run in bucket order on every rank whatever order the hooks fire
// in, while the backward goes on; every hook also lets the started ones progress. finish() starts the rest,
// waits, and writes the average over the ranks into every .grad.
//
// Parameters that receive no gradient in a step (an op no architecture draw selected) stay without one; the
// set must be the same on every rank, which it is when the graph depends only on what all ranks share (the
// architecture samples).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "engine/distributed/communicator.h"
#include "engine/tensor.h"

namespace stgs::dist {

struct GradientBucket {
  std::vector<size_t> params;   // indices into the reducer's parameter list, in reverse registration order
  std::vector<int64_t> offsets; // each parameter's first element in the flat buffer
  int64_t numel = 0;
};

// The buckets of `params` (see above); cap_bytes > 0.
std::vector<GradientBucket> plan_buckets(const std::vector<Tensor>& params, size_t cap_bytes);

class GradientReducer {
 public:
  static constexpr size_t kDefaultCapBytes = size_t(25) << 20;  // DDP's default bucket

  // params: leaf tensors that require a gradient now (the hooks are registered on them); comm must outlive
  // the reducer.
  GradientReducer(Communicator& comm, std::vector<Tensor> params, size_t cap_bytes = kDefaultCapBytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before each backward: forgets the last step; every parameter must be without a gradient (zero_grad()).
  void prepare();
  // After the backward: reduces the buckets not yet started, waits for all, writes the averages.
  void finish();

  // What the hook of parameter `index` does with its summed gradient (public for tests that drive the order).
  void on_gradient(size_t index, const Tensor& grad);

  const std::vector<GradientBucket>& buckets() const { return buckets_; }
  size_t buckets_started() const { return next_bucket_; }

 private:
  void start_ready_buckets();
  // Parameter index's part of a bucket-sized flat tensor, in the parameter's shape.
  Tensor slot_of(size_t index, const Tensor& flat) const;

  Communicator& comm_;
  std::vector<Tensor> params_;
  std::vector<GradientBucket> buckets_;
  std::vector<Tensor> flat_;            // per bucket: (numel) in the parameters' dtype and device
  std::vector<size_t> bucket_of_;       // per parameter
  std::vector<int64_t> offset_of_;      // per parameter: its first element in its bucket's flat buffer
  std::vector<bool> ready_;             // per parameter, this step
  std::vector<size_t> ready_count_;     // per bucket, this step
  size_t next_bucket_ = 0;              // buckets [0, next_bucket_) are all-reduced or under way
  bool active_ = false;                 // between prepare() and finish()
  std::shared_ptr<GradientReducer*> self_;  // the hooks hold a weak_ptr: they outlive the reducer harmlessly
};

// A reducer over `params` when comm has several ranks; null for a single process (comm null or of one rank).
std::unique_ptr<GradientReducer> reducer_for_ranks(Communicator* comm, std::vector<Tensor> params);

}  // namespace stgs::dist
