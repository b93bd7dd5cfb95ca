// The collectives a data-parallel run needs, behind one interface with a single-process, an MPI and an NCCL
// implementation (mpi_communicator.h, nccl_communicator.h).
// defines: Communicator, SingleProcess, shard_range, all_gather_doubles, all_reduce_sum_doubles, any_rank,
//          mean_over_ranks, broadcast_from_root
//
// Every rank must make the same calls in the same order with the same tensor shapes and dtypes (the
// collectives match calls by order, as MPI and NCCL do). Tensors are contiguous and live on the
// communicator's device (MPI: CPU or CUDA, the latter staged through host memory; NCCL: that rank's GPU).
// On CUDA, a collective is ordered after the work already queued on the device's stream, and the work
// queued after it waits for it: the host does not block, so a gradient all-reduce overlaps the rest of
// the backward. Failures throw stgs::Error naming the call; a collective that waits longer than the
// timeout for the other ranks (one died or hangs) ends the process with a message (see each backend).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace stgs::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"
  // Where the helpers below stage host values (NCCL: its GPU; the others: the CPU).
  virtual Device device() const { return Device::cpu(); }

  // Sums each tensor over the ranks, in place. The tensors share one dtype (F32, F64 or I64).
  virtual void all_reduce_sum(const std::vector<Tensor>& tensors) = 0;
  // Every rank's tensors become root's.
  virtual void broadcast(const std::vector<Tensor>& tensors, int root) = 0;
  // Every rank's bytes (any length, possibly different per rank), in rank order, on every rank.
  virtual std::vector<std::vector<uint8_t>> all_gather_bytes(const std::vector<uint8_t>& mine) = 0;
  // Returns once every rank has called it.
  virtual void barrier() = 0;
  // Starts summing one contiguous tensor over the ranks, in place; it holds the sum after synchronize(), and
  // must stay alive and unwritten until then. Collectives started and called meanwhile still pair up by
  // order across ranks. This default finishes the sum before returning (all_reduce_sum); MPI overlaps it
  // with what the caller does next (MPI_Iallreduce), NCCL queues it on its stream either way.
  virtual void start_all_reduce_sum(const Tensor& t) { all_reduce_sum({t}); }
  // Lets started collectives advance while the caller computes (MPI moves a non-blocking collective on only
  // inside MPI calls); a no-op where they advance by themselves.
  virtual void progress() {}
  // Waits for the collectives started or queued so far (a no-op where they complete on return).
  virtual void synchronize() {}

  bool is_root() const { return rank() == 0; }

 protected:
  Communicator() = default;
};

// World of one: every collective returns its input.
class SingleProcess final : public Communicator {
 public:
  SingleProcess() = default;
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce_sum(const std::vector<Tensor>&) override {}
  void broadcast(const std::vector<Tensor>&, int) override {}
  std::vector<std::vector<uint8_t>> all_gather_bytes(const std::vector<uint8_t>& mine) override { return {mine}; }
  void barrier() override {}
};

// Rank `rank`'s contiguous part [begin, end) = [n rank / world, n (rank + 1) / world) of n items: near-equal
// parts, the same cut on every rank.
std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world);

// Every rank's values, concatenated in rank order.
std::vector<double> all_gather_doubles(Communicator& comm, const std::vector<double>& mine);

// The sum over the ranks of each value, in place (host doubles, staged through comm.device()).
void all_reduce_sum_doubles(Communicator& comm, std::vector<double>& values);

// The mean over the ranks of one value per rank (a global batch's loss from the ranks' scaled losses).
double mean_over_ranks(Communicator& comm, double mine);

// True on every rank when `mine` is true on at least one (a stop request every rank must honour together).
bool any_rank(Communicator& comm, bool mine);

// Every tensor of `state` (a module's state dict: views of its live parameters and buffers) becomes rank 0's,
// one broadcast per dtype.
void broadcast_from_root(Communicator& comm, const StateDict& state);

}  // namespace stgs::dist
