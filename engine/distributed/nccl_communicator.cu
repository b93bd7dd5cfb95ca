// NCCL communicator (nccl_communicator.h).
#include <cuda_runtime.h>
#include <nccl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "engine/cuda/runtime.h"
#include "engine/distributed/nccl_communicator.h"
#include "engine/distributed/watchdog.h"
#include "engine/io/atomic_file.h"
#include "kernels/check.h"
#include "kernels/cuda/check.cuh"

#define NCCL_CHECK(expr)                                                                             \
  do {                                                                                               \
    const ncclResult_t nccl_result_ = (expr);                                                        \
    STGS_CHECK(nccl_result_ == ncclSuccess, #expr, " failed: ", ncclGetErrorString(nccl_result_)); \
  } while (0)

namespace stgs::dist {
namespace {

using UniqueId = std::array<char, NCCL_UNIQUE_ID_BYTES>;

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::I64: return ncclInt64;
    default: STGS_FAIL("NCCL collectives take F32, F64 or I64 tensors, got ", dtype_name(dtype));
  }
}

// Rank 0's unique id on every rank, through the bootstrap communicator or the id file.
UniqueId shared_unique_id(const LaunchEnv& env, Communicator* bootstrap) {
  UniqueId id{};
  if (env.rank == 0) {
    ncclUniqueId raw;
    NCCL_CHECK(ncclGetUniqueId(&raw));
    std::memcpy(id.data(), &raw, id.size());
  }
  if (env.world_size == 1) return id;  // nobody to share it with (a one-rank run, the bench row)
  if (bootstrap != nullptr) {
    const std::vector<uint8_t> mine(id.begin(), id.end());
    const std::vector<uint8_t> root = bootstrap->all_gather_bytes(mine).at(0);
    std::memcpy(id.data(), root.data(), id.size());
    return id;
  }
  const char* path = std::getenv("STGS_NCCL_ID_FILE");
  STGS_CHECK(path != nullptr && *path != '\0', "rank ", env.rank, " of ", env.world_size,
             ": NCCL needs its unique id shared; run under mpirun/srun (MPI build) or set STGS_NCCL_ID_FILE to a "
             "fresh path every rank sees");
  if (env.rank == 0) {  // atomically: the others never read half an id
    write_file_atomically(path, std::string(id.data(), id.size()), "NCCL id file");
    return id;
  }
  const double deadline = steady_seconds() + collective_timeout_seconds();
  while (!std::filesystem::exists(path)) {
    STGS_CHECK(steady_seconds() < deadline, "rank ", env.rank, ": rank 0 did not write the NCCL id to ", path);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::ifstream in(path, std::ios::binary);
  in.read(id.data(), std::streamsize(id.size()));
  STGS_CHECK(in.gcount() == std::streamsize(id.size()), path, ": a truncated NCCL id");
  return id;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const LaunchEnv& env, int device, std::unique_ptr<Communicator> bootstrap)
      : bootstrap_(std::move(bootstrap)),
        rank_(env.rank), world_(env.world_size), device_(device), timeout_(collective_timeout_seconds()) {
    CUDA_CHECK(cudaSetDevice(device_));
    const UniqueId id = shared_unique_id(env, bootstrap_.get());
    ncclUniqueId raw;
    std::memcpy(&raw, id.data(), id.size());
    NCCL_CHECK(ncclCommInitRank(&comm_, world_, raw, rank_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    watcher_ = std::thread([this] { watch(); });
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    watcher_.join();
    cudaSetDevice(device_);
    // Destructor path: errors are not reported. After an asynchronous error NCCL's kernels may spin forever,
    // so the communicator is aborted rather than drained.
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess) {
      ncclCommAbort(comm_);
    } else {
      cudaStreamSynchronize(stream_);
      ncclCommDestroy(comm_);
    }
    cudaEventDestroy(ready_);
    cudaEventDestroy(done_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "nccl"; }
  Device device() const override { return Device::cuda(device_); }

  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    enqueue(tensors, [this](const Tensor& t) {
      NCCL_CHECK(ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_type(t.dtype()), ncclSum, comm_,
                               stream_));
    });
  }

  // A gradient bucket: ordered after the compute stream's work so far, but the compute stream does not wait
  // for it, so the rest of the backward runs while it travels; synchronize() (the host) waits before the
  // reducer reads the sums.
  void start_all_reduce_sum(const Tensor& t) override {
    enqueue(
        {t},
        [this](const Tensor& x) {
          NCCL_CHECK(ncclAllReduce(x.raw_data(), x.raw_data(), size_t(x.numel()), nccl_type(x.dtype()), ncclSum, comm_,
                                   stream_));
        },
        /*compute_waits=*/false);
  }

  void broadcast(const std::vector<Tensor>& tensors, int root) override {
    STGS_CHECK(root >= 0 && root < world_, "broadcast from rank ", root, " of ", world_);
    enqueue(tensors, [this, root](const Tensor& t) {
      NCCL_CHECK(ncclBroadcast(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_type(t.dtype()), root, comm_,
                               stream_));
    });
  }

  std::vector<std::vector<uint8_t>> all_gather_bytes(const std::vector<uint8_t>& mine) override {
    // ncclAllGather takes equal sizes: gather the sizes, then every rank's bytes padded to the largest.
    Tensor sizes = zeros(Shape{world_}, DType::I64, device());
    sizes.narrow(0, rank_, 1).fill_(double(mine.size()));
    all_reduce_sum({sizes});
    const std::vector<int64_t> n = sizes.to_vector<int64_t>();
    int64_t longest = 1;
    for (int64_t v : n) longest = std::max(longest, v);
    const int64_t words = (longest + 7) / 8;  // as I64 words: the dtypes the engine has
    std::vector<int64_t> padded(size_t(words), 0);
    if (!mine.empty()) std::memcpy(padded.data(), mine.data(), mine.size());
    Tensor send = from_vector(padded, Shape{words}).to(device());
    Tensor all = empty(Shape{world_ * words}, DType::I64, device());
    enqueue({send}, [&](const Tensor& t) {
      NCCL_CHECK(ncclAllGather(t.raw_data(), all.raw_data(), size_t(words), ncclInt64, comm_, stream_));
    });
    const std::vector<int64_t> host = all.to_vector<int64_t>();
    std::vector<std::vector<uint8_t>> out(static_cast<size_t>(world_));
    for (int r = 0; r < world_; ++r) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(host.data() + size_t(r) * size_t(words));
      out[size_t(r)].assign(p, p + n[size_t(r)]);
    }
    return out;
  }

  void barrier() override {
    Tensor one = ones(Shape{1}, DType::F32, device());
    all_reduce_sum({one});
    synchronize();
  }

  void synchronize() override {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // the watcher ends the process if this never returns
    check_async_error();
  }

 private:
  // Orders `call` (one NCCL call per tensor, grouped) after the compute stream's work, and (compute_waits)
  // that stream's later work after it.
  template <class Call>
  void enqueue(const std::vector<Tensor>& tensors, const Call& call, bool compute_waits = true) {
    check_async_error();
    for (const Tensor& t : tensors) {
      STGS_CHECK(t.device() == device() && t.is_contiguous(), "NCCL collective on rank ", rank_, ": tensor ", t.str(),
                 " must be contiguous on ", device().str());
      // An unsupported dtype throws here: thrown from `call` it would leave the NCCL group below open, and every
      // later collective of this thread would queue in it and never launch.
      nccl_type(t.dtype());
    }
    cudaStream_t compute = cuda_rt::stream(device_);
    CUDA_CHECK(cudaEventRecord(ready_, compute));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
    NCCL_CHECK(ncclGroupStart());
    for (const Tensor& t : tensors) call(t);
    NCCL_CHECK(ncclGroupEnd());
    CUDA_CHECK(cudaEventRecord(done_, stream_));
    if (compute_waits) CUDA_CHECK(cudaStreamWaitEvent(compute, done_, 0));
    pending_since_.store(steady_seconds());
  }

  void check_async_error() {
    ncclResult_t async = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    STGS_CHECK(async == ncclSuccess, "NCCL on rank ", rank_, ": ", ncclGetErrorString(async));
  }

  // Ends the process on an asynchronous NCCL error or a collective older than the timeout.
  void watch() {
    cudaSetDevice(device_);  // this thread's CUDA calls (cudaEventQuery) go to this rank's GPU, not cuda:0
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_; })) {
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      double since = pending_since_.load();
      const bool pending = since > 0 && cudaEventQuery(done_) == cudaErrorNotReady;
      // Cleared only if no newer collective was queued meanwhile (its start time stays).
      if (!pending && since > 0) pending_since_.compare_exchange_strong(since, 0.0);
      const double waited = pending ? steady_seconds() - since : 0;
      if (async == ncclSuccess && waited < timeout_) continue;
      if (async != ncclSuccess)
        std::fprintf(stderr, "stgs: rank %d: NCCL error: %s (another rank died, or the network failed). ", rank_,
                     ncclGetErrorString(async));
      else
        std::fprintf(stderr, "stgs: rank %d: an NCCL collective has waited %.0f s for the other ranks (one of them "
                     "died or hangs; the limit is STGS_DIST_TIMEOUT=%g s). ", rank_, waited, timeout_);
      std::fprintf(stderr, "Stopping; resume the run from its last checkpoint with --resume.\n");
      std::fflush(stderr);
      ncclCommAbort(comm_);
      std::_Exit(kCollectiveTimeoutExit);
    }
  }

  std::unique_ptr<Communicator> bootstrap_;
  int rank_, world_, device_;
  double timeout_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
  std::atomic<double> pending_since_{0};
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread watcher_;
};

}  // namespace

bool nccl_built() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(const LaunchEnv& env, int device,
                                                     std::unique_ptr<Communicator> bootstrap) {
  STGS_CHECK(device >= 0 && device < cuda_rt::device_count(), "rank ", env.rank, " (local rank ", env.local_rank,
             "): cuda:", device, " does not exist (", cuda_rt::device_count(), " visible); one process per GPU");
  CUDA_CHECK(cudaSetDevice(device));  // before any NCCL call (NCCL user guide)
  return std::make_unique<NcclCommunicator>(env, device, std::move(bootstrap));
}

}  // namespace stgs::dist
