// Working memory of the CPU kernels that go through a batch in chunks of images (im2col convolution,
// Winograd convolution): a grow-only per-thread buffer, and how many images a chunk takes.
// defines: cpu::thread_scratch, cpu::images_per_chunk
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace stgs::kernels::cpu {

// Grow-only per-thread scratch of n elements of T (contents undefined): a fresh multi-megabyte buffer per call
// would page-fault and zero its memory every time. Each Slot is a buffer of its own, for a kernel that needs
// two at once; a buffer is only valid until the next call with the same (T, Slot) on this thread.
template <class T, int Slot = 0>
T* thread_scratch(size_t n) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local size_t capacity = 0;
  if (n > capacity) {
    buf.reset();  // free the old block before taking the larger one
    buf.reset(new T[n]);
    capacity = n;
  }
  return buf.get();
}

// Images per chunk of a batch of N: as many as fit budget_bytes at bytes_per_image each (at least 1), evened
// out over the chunks so the last one is not a sliver (N = 8 with room for 5 gives chunks of 4, 4, not 5, 3).
inline int64_t images_per_chunk(int64_t N, int64_t bytes_per_image, int64_t budget_bytes) {
  const int64_t fit = std::clamp<int64_t>(budget_bytes / std::max<int64_t>(1, bytes_per_image), 1,
                                          std::max<int64_t>(N, 1));
  const int64_t chunks = (N + fit - 1) / fit;
  return chunks == 0 ? 1 : (N + chunks - 1) / chunks;
}

}  // namespace stgs::kernels::cpu
