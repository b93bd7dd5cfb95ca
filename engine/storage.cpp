// CPU caching allocator, Storage, and device-agnostic byte copies.
#include "engine/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

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

  // A block's size is a pure function of the requested size (round_up), so deallocate() recomputes it
  // from the Storage's nbytes: no per-pointer bookkeeping, and small blocks never take the lock.
  void* allocate(size_t nbytes) override {
    const size_t size = round_up(nbytes);
    if (size >= kCacheFrom) {
      // Exact size-class match: a training loop requests the same sizes every step.
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        bytes_cached_ -= size;
        bytes_in_use_ += size;
        ++cache_hits_;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlignment, size);
    if (p == nullptr) {
      empty_cache();  // give cached blocks back and try once more before reporting
      p = std::aligned_alloc(kAlignment, size);
    }
    STGS_CHECK(p != nullptr, "out of CPU memory: failed to allocate ", size, " bytes (", bytes_in_use_.load(),
               " bytes in use by tensors)");
    ++system_allocations_;
    bytes_in_use_ += size;
    return p;
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (ptr == nullptr) return;
    const size_t size = round_up(nbytes);
    bytes_in_use_ -= size;
    if (size >= kCacheFrom) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (bytes_cached_ + size <= kCacheLimit) {
        free_.emplace(size, ptr);
        bytes_cached_ += size;
        return;
      }
    }
    std::free(ptr);
  }

  AllocatorStats stats() const override {
    AllocatorStats s;
    s.system_allocations = system_allocations_.load();
    s.cache_hits = cache_hits_.load();
    s.bytes_in_use = bytes_in_use_.load();
    s.bytes_cached = bytes_cached_.load();
    return s;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, p] : free_) std::free(p);
    free_.clear();
    bytes_cached_ = 0;
  }

 private:
  static size_t round_up(size_t n) {
    if (n == 0) n = 1;
    const size_t unit = n >= kCacheFrom ? kRounding : kAlignment;
    return (n + unit - 1) / unit * unit;
  }

  std::mutex mutex_;  // guards free_
  std::multimap<size_t, void*> free_;
  std::atomic<uint64_t> system_allocations_{0}, cache_hits_{0};
  std::atomic<size_t> bytes_in_use_{0}, bytes_cached_{0};
};

}  // namespace

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) {
    static CpuCachingAllocator cpu;
    return cpu;
  }
  return cuda_rt::allocator(device.index);
}

namespace {
std::atomic<bool> g_poison{false};
}  // namespace

void set_poison_allocations(bool on) { g_poison = on; }
bool poison_allocations() { return g_poison.load(std::memory_order_relaxed); }

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  data = allocator_for(d).allocate(n);
  if (d.is_cpu() && poison_allocations()) std::memset(data, 0xFF, n);  // CUDA blocks: in their allocator
}

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
