// CUDA runtime glue: device discovery, a stream-ordered pooled allocator per device, and copies.
// The pool's release threshold is raised to "keep everything", so after the first training step
// cudaMallocAsync is served from the pool and never reaches the driver.
#include <cuda_runtime.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "engine/cuda/runtime.h"
#include "kernels/cuda/check.cuh"

namespace stgs::cuda_rt {
namespace {

class CudaPoolAllocator final : public Allocator {
 public:
  explicit CudaPoolAllocator(int device) : device_(device) {
    CUDA_CHECK(cudaSetDevice(device_));
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_));
    uint64_t keep_all = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all));
  }

  void* allocate(size_t nbytes) override {
    CUDA_CHECK(cudaSetDevice(device_));
    void* p = nullptr;
    cudaError_t err = cudaMallocAsync(&p, nbytes == 0 ? 1 : nbytes, cudaStreamPerThread);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state of a failed allocation
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      STGS_FAIL("out of GPU memory on cuda:", device_, ": requested ", nbytes, " bytes, ", free_bytes, " of ", total,
                " bytes free (", cudaGetErrorString(err), ")");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.system_allocations;
    stats_.bytes_in_use += nbytes;
    return p;
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (ptr == nullptr) return;
    cudaSetDevice(device_);
    cudaFreeAsync(ptr, cudaStreamPerThread);  // destructor path: never throws
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.bytes_in_use -= nbytes;
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void empty_cache() override {
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_));
    CUDA_CHECK(cudaStreamSynchronize(cudaStreamPerThread));
    CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
  }

 private:
  int device_;
  mutable std::mutex mutex_;
  AllocatorStats stats_;
};

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
  STGS_CHECK(device >= 0 && device < device_count(), "cuda:", device, " requested but ", device_count(),
             " CUDA device(s) are visible");
  static std::mutex mutex;
  static std::vector<std::unique_ptr<CudaPoolAllocator>> per_device(device_count());
  std::lock_guard<std::mutex> lock(mutex);
  if (!per_device[device]) per_device[device] = std::make_unique<CudaPoolAllocator>(device);
  return *per_device[device];
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  cudaMemcpyKind kind = dst_device.is_cpu() ? cudaMemcpyDeviceToHost
                        : src_device.is_cpu() ? cudaMemcpyHostToDevice
                                              : cudaMemcpyDeviceToDevice;
  // Ordered after the producer kernels on the per-thread stream, and complete on return so host
  // memory is safe to read or free.
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, cudaStreamPerThread));
  CUDA_CHECK(cudaStreamSynchronize(cudaStreamPerThread));
}

void synchronize(int device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace stgs::cuda_rt
