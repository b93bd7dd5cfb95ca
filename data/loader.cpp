// The loader's non-template parts: epoch permutations, batch seeds, worker set-up, batch errors (loader.h).
#include "data/loader.h"

#include <omp.h>

#include <numeric>
#include <string>

#include "kernels/philox.h"

namespace stgs::data {

namespace {

// Keeps the two uses of the seed apart: the same (epoch, n) never yields the same draw for both.
enum Domain : uint32_t { kPermutation = 1, kBatchSeed = 2 };

// 64 random bits addressed by (domain, epoch, n) under `seed`: one Philox block, counter = (n, epoch,
// domain), key = seed. Epochs and counts stay far below 2^32 in practice but use 64 bits anyway.
uint64_t philox_hash(uint64_t seed, Domain domain, int64_t epoch, uint64_t n) {
  const uint64_t e = uint64_t(epoch);
  const kernels::Philox4 r = kernels::philox4x32_10(
      kernels::Philox4{{uint32_t(n), uint32_t(n >> 32), uint32_t(e), uint32_t(e >> 32) ^ (uint32_t(domain) << 24)}},
      uint32_t(seed), uint32_t(seed >> 32));
  return uint64_t(r.v[0]) | uint64_t(r.v[1]) << 32;
}

}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  if (!shuffle) return order;
  // Fisher-Yates from the back: position i swaps with j uniform in [0, i]. j = floor(bits * (i + 1) / 2^64)
  // is uniform up to a bias of (i + 1) / 2^64, far below anything measurable.
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t bits = philox_hash(seed, kPermutation, epoch, uint64_t(i));
    const auto j = int64_t((unsigned __int128)bits * uint64_t(i + 1) >> 64);
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  return order;
}

uint64_t batch_seed(uint64_t seed, int64_t epoch, int64_t batch) {
  return philox_hash(seed, kBatchSeed, epoch, uint64_t(batch));
}

namespace detail {

void begin_worker_thread() { omp_set_num_threads(1); }

void rethrow_batch_error(std::exception_ptr error, int64_t batch, int64_t epoch, const std::vector<int64_t>& indices) {
  std::string where = "loader: batch " + std::to_string(batch) + " of epoch " + std::to_string(epoch) +
                      " (dataset indices";
  constexpr size_t kListed = 8;  // enough to find the clip in a default batch; longer ones are elided
  for (size_t i = 0; i < indices.size() && i < kListed; ++i) where += (i ? ", " : " ") + std::to_string(indices[i]);
  if (indices.size() > kListed) where += ", ...";
  where += "): ";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    throw Error(where + e.what());
  } catch (...) {
    throw Error(where + "a non-standard exception");
  }
}

}  // namespace detail

}  // namespace stgs::data
