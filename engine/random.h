// Random number state: a (seed, offset) pair for the counter-based Philox generator.
// defines: Generator, default_generator, manual_seed
//
// Every draw reserves a range of counters and advances the offset explicitly (never from wall time),
// so a run is reproduced by restoring (seed, offset) — which is what checkpoints store.
#pragma once

#include <cstdint>
#include <mutex>

#include "kernels/check.h"

namespace stgs {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = seed;
    offset_ = 0;
  }
  void set_state(uint64_t seed, uint64_t offset) {
    STGS_CHECK(offset % 4 == 0, "Generator::set_state: offset ", offset,
               " is not a multiple of 4 (offsets come from draws, which reserve whole Philox blocks)");
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves `count` counters and returns the first; offsets stay multiples of 4 (one Philox block).
  uint64_t reserve(uint64_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    const uint64_t first = offset_;
    offset_ += (count + 3) / 4 * 4;
    return first;
  }

 private:
  std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace stgs
