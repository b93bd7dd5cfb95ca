// CPU caching allocator, Storage, and device-agnostic byte copies.
#include "engine/storage.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "engine/cuda/runtime.h"

namespace stgs {
namespace {

// Blocks below kCacheFrom bytes go straight to malloc (glibc already serves those from its arenas
// without page faults); larger ones are rounded to 64 KiB and cached by size, up to kCacheLimit bytes.
constexpr size_t kAlignment = 64;
constexpr size_t kCacheFrom = 256 * 1024;
constexpr size_t kRounding = 64 * 1024;
constexpr size_t kCacheLimit = size_t(4) << 30;

class CpuCachingAllocator final : public Allocator {
 public:
  ~CpuCachingAllocator() override { empty_cache(); }

  void* allocate(size_t nbytes) override {
    size_t size = round_up(nbytes == 0 ? 1 : nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    if (size >= kCacheFrom) {
      // Best fit among cached blocks, accepting at most 25% slack so small requests do not pin big blocks.
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= size + size / 4) {
        void* p = it->second;
        stats_.bytes_cached -= it->first;
        stats_.bytes_in_use += it->first;
        live_[p] = it->first;
        free_.erase(it);
        ++stats_.cache_hits;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlignment, size);
    if (p == nullptr) {
      // Release the cache and try once more before reporting.
      release_cache_locked();
      p = std::aligned_alloc(kAlignment, size);
    }
    STGS_CHECK(p != nullptr, "out of CPU memory: failed to allocate ", size, " bytes (", stats_.bytes_in_use,
               " bytes in use by tensors)");
    ++stats_.system_allocations;
    stats_.bytes_in_use += size;
    live_[p] = size;
    return p;
  }

  void deallocate(void* ptr, size_t) override {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    size_t size = it->second;
    live_.erase(it);
    stats_.bytes_in_use -= size;
    if (size >= kCacheFrom && stats_.bytes_cached + size <= kCacheLimit) {
      free_.emplace(size, ptr);
      stats_.bytes_cached += size;
    } else {
      std::free(ptr);
    }
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cache_locked();
  }

 private:
  static size_t round_up(size_t n) {
    size_t unit = n >= kCacheFrom ? kRounding : kAlignment;
    return (n + unit - 1) / unit * unit;
  }
  void release_cache_locked() {
    for (auto& [size, p] : free_) std::free(p);
    free_.clear();
    stats_.bytes_cached = 0;
  }

  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> live_;
  AllocatorStats stats_;
};

}  // namespace

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) {
    static CpuCachingAllocator cpu;
    return cpu;
  }
  return cuda_rt::allocator(device.index);
}

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) { data = allocator_for(d).allocate(n); }

Storage::~Storage() { allocator_for(device).deallocate(data, nbytes); }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  cuda_rt::copy(dst, dst_device, src, src_device, nbytes);
}

int cuda_device_count() { return cuda_rt::device_count(); }
bool cuda_built() { return cuda_rt::built(); }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device::cuda(0);
  if (name.rfind("cuda:", 0) == 0) {
    const std::string idx = name.substr(5);
    if (!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos && idx.size() < 4)
      return Device::cuda(std::stoi(idx));
  }
  STGS_FAIL("unknown device '", name, "': expected cpu, cuda or cuda:N");
}

}  // namespace stgs
