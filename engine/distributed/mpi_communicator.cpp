#include "engine/distributed/mpi_communicator.h"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/distributed/watchdog.h"
#include "engine/ops.h"
#include "kernels/check.h"

#if STGS_MPI
#include <mpi.h>
#endif

namespace stgs::dist {

#if STGS_MPI
namespace {

void check_mpi(int rc, const char* call, int rank) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(rc, text, &length);
  STGS_FAIL(call, " failed on rank ", rank, ": ", text);
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I64: return MPI_INT64_T;
    default: STGS_FAIL("MPI collectives take F32, F64 or I64 tensors, got ", dtype_name(dtype));
  }
}

// The tensors of one call back to back in host memory: one collective for the whole list.
class PackedTensors {
 public:
  explicit PackedTensors(const std::vector<Tensor>& tensors) : tensors_(tensors) {
    STGS_CHECK(!tensors.empty(), "MPI collective on an empty tensor list");
    dtype_ = tensors.front().dtype();
    for (const Tensor& t : tensors) {
      STGS_CHECK(t.dtype() == dtype_ && t.is_contiguous(), "MPI collective: tensors must be contiguous and of one "
                 "dtype, got ", t.str(), " beside ", dtype_name(dtype_));
      count_ += t.numel();
    }
    STGS_CHECK(count_ <= INT_MAX, "MPI collective of ", count_, " elements (at most ", INT_MAX, " per call)");
    // One CPU tensor needs no packing: MPI works on its memory.
    if (tensors.size() == 1 && tensors.front().device().is_cpu()) return;
    buffer_.resize(size_t(count_) * dtype_size(dtype_));
    size_t at = 0;
    for (const Tensor& t : tensors) {
      const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
      const size_t bytes = size_t(t.numel()) * dtype_size(dtype_);
      if (bytes) std::memcpy(buffer_.data() + at, host.raw_data(), bytes);
      at += bytes;
    }
  }

  void* data() { return buffer_.empty() ? tensors_.front().raw_data() : buffer_.data(); }
  int count() const { return int(count_); }
  MPI_Datatype type() const { return mpi_type(dtype_); }

  // Writes the buffer back into the tensors (a no-op when MPI worked on the tensor itself).
  void unpack() {
    if (buffer_.empty()) return;
    size_t at = 0;
    for (const Tensor& t : tensors_) {
      const size_t bytes = size_t(t.numel()) * dtype_size(dtype_);
      if (t.device().is_cpu()) {
        if (bytes) std::memcpy(t.raw_data(), buffer_.data() + at, bytes);
      } else {
        Tensor host = empty(t.shape(), dtype_, Device::cpu());
        if (bytes) std::memcpy(host.raw_data(), buffer_.data() + at, bytes);
        Tensor target = t;
        target.copy_(host);
      }
      at += bytes;
    }
  }

 private:
  std::vector<Tensor> tensors_;
  DType dtype_ = DType::F32;
  int64_t count_ = 0;
  std::vector<uint8_t> buffer_;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const LaunchEnv& env) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      // FUNNELED: only the main thread calls MPI (the watchdog thread never does).
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        STGS_FAIL("MPI_Init_thread failed (rank ", env.rank, " of ", env.world_size, " from ", env.launcher, ")");
      owns_mpi_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    STGS_CHECK(world_ == env.world_size && rank_ == env.rank, "the launcher (", env.launcher, ") says rank ",
               env.rank, " of ", env.world_size, " but MPI sees rank ", rank_, " of ", world_,
               ": CPU ranks talk through MPI, so start them with mpirun or srun (torchrun works for NCCL runs); ",
               "under mpirun or srun, check for launcher variables left in the environment (RANK, WORLD_SIZE, ",
               "SLURM_PROCID, SLURM_NTASKS)");
    watchdog_ = std::make_unique<CollectiveWatchdog>(rank_, collective_timeout_seconds());
  }

  ~MpiCommunicator() override {
    // Requests still open (an exception left a backward half done) are abandoned: MPI_Abort or the
    // process exit that follows ends them, and waiting here could hang on a dead rank.
    watchdog_.reset();
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    PackedTensors packed(tensors);
    {
      const CollectiveWatchdog::Guard guard(*watchdog_, "MPI_Allreduce");
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, packed.data(), packed.count(), packed.type(), MPI_SUM, MPI_COMM_WORLD),
                "MPI_Allreduce", rank_);
    }
    packed.unpack();
  }

  // The gradient buckets: MPI_Iallreduce on the tensor's own memory (a CPU tensor; a CUDA one, staged
  // through the host, takes the blocking path), so the backward goes on while the sum travels.
  void start_all_reduce_sum(const Tensor& t) override {
    if (!t.device().is_cpu() || !t.is_contiguous()) return all_reduce_sum({t});
    STGS_CHECK(t.numel() <= INT_MAX, "MPI collective of ", t.numel(), " elements (at most ", INT_MAX, " per call)");
    MPI_Request request = MPI_REQUEST_NULL;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), int(t.numel()), mpi_type(t.dtype()), MPI_SUM,
                             MPI_COMM_WORLD, &request),
              "MPI_Iallreduce", rank_);
    pending_.push_back(request);
    pending_tensors_.push_back(t);
  }

  void progress() override {
    if (pending_.empty()) return;
    int all_done = 0;
    check_mpi(MPI_Testall(int(pending_.size()), pending_.data(), &all_done, MPI_STATUSES_IGNORE), "MPI_Testall",
              rank_);
  }

  void synchronize() override {
    if (pending_.empty()) return;
    {
      // Named like the blocking call: a rank that died or hangs shows up here as at any all-reduce.
      const CollectiveWatchdog::Guard guard(*watchdog_, "MPI_Allreduce");
      check_mpi(MPI_Waitall(int(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall", rank_);
    }
    pending_.clear();
    pending_tensors_.clear();
  }

  void broadcast(const std::vector<Tensor>& tensors, int root) override {
    STGS_CHECK(root >= 0 && root < world_, "broadcast from rank ", root, " of ", world_);
    PackedTensors packed(tensors);
    {
      const CollectiveWatchdog::Guard guard(*watchdog_, "MPI_Bcast");
      check_mpi(MPI_Bcast(packed.data(), packed.count(), packed.type(), root, MPI_COMM_WORLD), "MPI_Bcast", rank_);
    }
    packed.unpack();
  }

  std::vector<std::vector<uint8_t>> all_gather_bytes(const std::vector<uint8_t>& mine) override {
    STGS_CHECK(mine.size() <= size_t(INT_MAX), "all_gather_bytes: ", mine.size(), " bytes (at most ", INT_MAX, ")");
    const CollectiveWatchdog::Guard guard(*watchdog_, "MPI_Allgatherv");
    int size = int(mine.size());
    std::vector<int> sizes(static_cast<size_t>(world_)), offsets(static_cast<size_t>(world_));
    check_mpi(MPI_Allgather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather", rank_);
    int64_t total = 0;
    for (int r = 0; r < world_; ++r) {
      offsets[size_t(r)] = int(total);
      total += sizes[size_t(r)];
    }
    STGS_CHECK(total <= INT_MAX, "all_gather_bytes: ", total, " bytes in all (at most ", INT_MAX, ")");
    std::vector<uint8_t> all(size_t(total) + 1);  // +1: a valid pointer when every rank sends nothing
    check_mpi(MPI_Allgatherv(mine.data(), size, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE,
                             MPI_COMM_WORLD),
              "MPI_Allgatherv", rank_);
    std::vector<std::vector<uint8_t>> out(static_cast<size_t>(world_));
    for (int r = 0; r < world_; ++r)
      out[size_t(r)].assign(all.begin() + offsets[size_t(r)], all.begin() + offsets[size_t(r)] + sizes[size_t(r)]);
    return out;
  }

  void barrier() override {
    const CollectiveWatchdog::Guard guard(*watchdog_, "MPI_Barrier");
    check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier", rank_);
  }

 private:
  int rank_ = 0, world_ = 1;
  bool owns_mpi_ = false;
  std::vector<MPI_Request> pending_;     // started by start_all_reduce_sum, not yet waited for
  std::vector<Tensor> pending_tensors_;  // their buffers, kept alive until synchronize()
  std::unique_ptr<CollectiveWatchdog> watchdog_;
};

}  // namespace

bool mpi_built() { return true; }

std::unique_ptr<Communicator> make_mpi_communicator(const LaunchEnv& env) {
  return std::make_unique<MpiCommunicator>(env);
}

void abort_all_ranks(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (initialised && !finalised) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

#else  // built without MPI

bool mpi_built() { return false; }

std::unique_ptr<Communicator> make_mpi_communicator(const LaunchEnv& env) {
  STGS_FAIL("rank ", env.rank, " of ", env.world_size, " (", env.launcher, "): this build has no MPI; install "
            "libopenmpi-dev (make deps) and rebuild for CPU ranks");
}

void abort_all_ranks(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

#endif

}  // namespace stgs::dist
