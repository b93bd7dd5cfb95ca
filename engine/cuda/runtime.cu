// CUDA runtime glue: device discovery, one context (stream + cuBLAS handle + cuDNN handle) per device, a
// stream-ordered pooled allocator per device, and copies.
//
// The pool's release threshold is raised to "keep everything", so after the first training step
// cudaMallocAsync is served from the pool and never reaches the driver.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/cuda/runtime.h"
#include "kernels/cuda/check.cuh"

namespace stgs::cuda_rt {
namespace {

struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cudnnHandle_t dnn = nullptr;  // created by the first cudnn() call: cudnnCreate loads cuDNN's kernels
  std::once_flag dnn_once;

  explicit Context(int device) {
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    STGS_CHECK(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS, "cuda:", device, ": cublasCreate failed");
    STGS_CHECK(cublasSetStream(blas, stream) == CUBLAS_STATUS_SUCCESS, "cuda:", device, ": cublasSetStream failed");
  }
  // Contexts live until process exit; the driver reclaims streams and handles then, and destroying them
  // from a static destructor after the CUDA runtime has shut down would fail.
};

Context& context(int device) {
  STGS_CHECK(device >= 0 && device < device_count(), "cuda:", device, " requested but ", device_count(),
             " CUDA device(s) are visible");
  static std::mutex mutex;
  static auto contexts = std::vector<Context*>(size_t(device_count()), nullptr);
  std::lock_guard<std::mutex> lock(mutex);
  if (contexts[size_t(device)] == nullptr) contexts[size_t(device)] = new Context(device);
  return *contexts[size_t(device)];
}

class CudaPoolAllocator final : public Allocator {
 public:
  explicit CudaPoolAllocator(int device) : device_(device), stream_(context(device).stream) {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool_, device_));
    uint64_t keep_all = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep_all));
  }

  void* allocate(size_t nbytes) override {
    CUDA_CHECK(cudaSetDevice(device_));
    void* p = nullptr;
    const cudaError_t err = cudaMallocAsync(&p, nbytes == 0 ? 1 : nbytes, stream_);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the error so later calls are not blamed for it
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      STGS_FAIL("out of GPU memory on cuda:", device_, ": requested ", nbytes, " bytes, ", free_bytes, " of ", total,
                " bytes free (", cudaGetErrorString(err), ")");
    }
    bytes_in_use_ += nbytes;
    // A request the pool could not serve from memory it already holds made it grow: that is the
    // driver allocation (cudaMalloc) a steady-state step must not do.
    uint64_t reserved = 0;
    CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved));
    if (reserved > reserved_seen_) {
      reserved_seen_ = reserved;
      ++growths_;
    }
    if (poison_allocations()) CUDA_CHECK(cudaMemsetAsync(p, 0xFF, nbytes, stream_));
    return p;
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (ptr == nullptr) return;
    cudaSetDevice(device_);
    cudaFreeAsync(ptr, stream_);  // destructor path: never throws
    bytes_in_use_ -= nbytes;
  }

  // system_allocations counts the times the pool grew (driver allocations); bytes_cached is the pool's
  // reserved memory not handed out.
  AllocatorStats stats() const override {
    AllocatorStats s;
    s.system_allocations = growths_.load();
    s.bytes_in_use = bytes_in_use_.load();
    uint64_t reserved = 0;
    if (cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved) == cudaSuccess)
      s.bytes_cached = reserved > s.bytes_in_use ? size_t(reserved) - s.bytes_in_use : 0;
    return s;
  }

  void empty_cache() override {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    CUDA_CHECK(cudaMemPoolTrimTo(pool_, 0));
    uint64_t reserved = 0;
    CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved));
    reserved_seen_ = reserved;
  }

 private:
  int device_;
  cudaStream_t stream_;
  cudaMemPool_t pool_ = nullptr;
  std::atomic<uint64_t> reserved_seen_{0}, growths_{0};
  std::atomic<size_t> bytes_in_use_{0};
};

std::atomic<int> g_allow_tf32{-1};     // -1: not yet read from the environment
std::atomic<int> g_deterministic{-1};  // likewise
std::atomic<int> g_conv_benchmark{-1};  // likewise

// The value of a 0/1 switch: the one set in code, else 1 when the environment variable starts with '1'.
bool env_switch(std::atomic<int>& value, const char* variable) {
  int v = value.load();
  if (v < 0) {
    const char* env = std::getenv(variable);
    v = env != nullptr && env[0] == '1';
    value = v;
  }
  return v == 1;
}

}  // namespace

bool built() { return true; }

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

Allocator& allocator(int device) {
  context(device);  // validates the index
  static std::mutex mutex;
  static auto per_device = std::vector<std::unique_ptr<CudaPoolAllocator>>(size_t(device_count()));
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = per_device[size_t(device)];
  if (!slot) slot = std::make_unique<CudaPoolAllocator>(device);
  return *slot;
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  const Device gpu = dst_device.is_cuda() ? dst_device : src_device;
  const cudaMemcpyKind kind = dst_device.is_cpu()   ? cudaMemcpyDeviceToHost
                              : src_device.is_cpu() ? cudaMemcpyHostToDevice
                                                    : cudaMemcpyDeviceToDevice;
  cudaStream_t s = context(gpu.index).stream;
  const bool between_gpus = dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index;
  if (between_gpus) {
    // Between GPUs: order after the source's work, then copy on the destination's stream.
    CUDA_CHECK(cudaStreamSynchronize(context(src_device.index).stream));
    s = context(dst_device.index).stream;
  }
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, s));
  // Host memory involved: complete on return, so the host may read or free it at once. Between GPUs too:
  // the source's stream knows nothing of this read, so a source block freed on return (a temporary) could
  // be handed out again on that stream and overwritten while the copy still reads it.
  if (kind != cudaMemcpyDeviceToDevice || between_gpus) CUDA_CHECK(cudaStreamSynchronize(s));
}

void synchronize(int device) { CUDA_CHECK(cudaStreamSynchronize(context(device).stream)); }

// Launches go to the current device, so it is made the stream's device first (a no-op when it already is).
kernels::Stream stream(int device) {
  Context& ctx = context(device);
  CUDA_CHECK(cudaSetDevice(device));
  return ctx.stream;
}
kernels::BlasHandle blas(int device) { return context(device).blas; }

kernels::DnnHandle cudnn(int device) {
  Context& ctx = context(device);
  // A throw inside call_once leaves the flag unset, so a failed creation is retried by the next call.
  std::call_once(ctx.dnn_once, [&] {
    CUDA_CHECK(cudaSetDevice(device));
    cudnnHandle_t h = nullptr;
    cudnnStatus_t st = cudnnCreate(&h);
    STGS_CHECK(st == CUDNN_STATUS_SUCCESS, "cuda:", device, ": cudnnCreate failed: ", cudnnGetErrorString(st));
    st = cudnnSetStream(h, ctx.stream);
    STGS_CHECK(st == CUDNN_STATUS_SUCCESS, "cuda:", device, ": cudnnSetStream failed: ", cudnnGetErrorString(st));
    ctx.dnn = h;
  });
  return ctx.dnn;
}

bool allow_tf32() { return env_switch(g_allow_tf32, "STGS_ALLOW_TF32"); }
void set_allow_tf32(bool on) { g_allow_tf32 = on ? 1 : 0; }
bool deterministic() { return env_switch(g_deterministic, "STGS_DETERMINISTIC"); }
void set_deterministic(bool on) { g_deterministic = on ? 1 : 0; }
bool conv_benchmark() { return env_switch(g_conv_benchmark, "STGS_CUDNN_BENCHMARK"); }
void set_conv_benchmark(bool on) { g_conv_benchmark = on ? 1 : 0; }

}  // namespace stgs::cuda_rt
