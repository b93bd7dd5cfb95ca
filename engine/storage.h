// Raw memory behind tensors: allocators per device and the reference-counted Storage block.
// defines: Allocator, AllocatorStats, allocator_for, Storage, copy_bytes, cuda_device_count, cuda_available
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/dtype.h"

namespace stgs {

struct AllocatorStats {
  uint64_t system_allocations = 0;  // blocks obtained from the OS/driver (malloc, cudaMallocAsync)
  uint64_t cache_hits = 0;          // requests served from cached blocks
  size_t bytes_in_use = 0;          // handed out and not yet returned
  size_t bytes_cached = 0;          // returned and kept for reuse
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void empty_cache() = 0;  // give cached blocks back to the system
};

// The CPU allocator is a caching allocator: large blocks are kept and reused by size so a steady-state
// training step neither calls mmap nor page-faults on fresh memory. CUDA allocators come from the CUDA
// runtime glue (engine/cuda/), one per device.
Allocator& allocator_for(Device device);

struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;

  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

// Test switch: while on, every new block is filled with 0xFF bytes (NaN for floats), so a kernel that
// leaves part of its output unwritten shows up in a comparison. Off by default.
void set_poison_allocations(bool on);
bool poison_allocations();

// Copies nbytes between any two devices (host<->device, device<->device, host<->host).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

// Number of usable CUDA devices: 0 when built without CUDA or when no GPU/driver is present.
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }
// True when this binary was compiled with the CUDA backend.
bool cuda_built();

}  // namespace stgs
