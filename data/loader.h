// Worker threads that load batches ahead of the trainer: decoding, augmenting and batching run on `workers`
// threads while the consumer (a training or evaluation step) works on the previous batch.
// defines: LoaderOptions, LoadedBatch, Loader, epoch_permutation, batch_seed
//
// An epoch is a permutation of the dataset's indices cut into batches. Workers claim batches in order
// (0, 1, 2, ...) and at most `prefetch` batches are claimed beyond the last one next() handed out, so at
// most `prefetch` batches are loading or waiting at any time, whatever the speed of the consumer. next()
// hands them out in order; nothing busy-waits (workers and consumer sleep on condition variables).
//
// Determinism: the permutation depends on (seed, epoch) and each batch's seed on (seed, epoch, batch
// number) only, so the batches, their contents and any randomness drawn from batch_seed are the same for
// any worker count and any timing. Each worker runs its kernels on one OpenMP thread: the parallelism
// comes from the workers (nested teams would oversubscribe the cores), and kernel results cannot depend on
// the consumer's thread count.
//
// Threading contract: one consumer thread calls start_epoch() and next(); load() runs concurrently on the
// worker threads, so it must be safe to call from several threads at once.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "kernels/check.h"

namespace stgs::data {

struct LoaderOptions {
  int workers = 2;          // decoding threads (>= 1)
  int64_t batch_size = 8;
  int prefetch = 4;         // batches ready ahead of the consumer (bounded queue; memory stays bounded)
  bool shuffle = true;      // a fresh permutation per epoch from (seed, epoch)
  bool drop_last = false;
  uint64_t seed = 1;
};

template <class T>
struct LoadedBatch {
  int64_t number = 0;            // batch index within the epoch
  std::vector<int64_t> indices;  // dataset indices, in order
  T data;
};

// The order of an epoch: 0 .. n-1 shuffled by a Fisher-Yates walk on Philox draws keyed by (seed, epoch), or
// in order without shuffle.
std::vector<int64_t> epoch_permutation(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);

// The seed handed to load() for one batch: a Philox hash of (seed, epoch, batch number).
uint64_t batch_seed(uint64_t seed, int64_t epoch, int64_t batch);

namespace detail {
// Called first on every worker thread (one OpenMP thread per worker; see the header comment).
void begin_worker_thread();
// What next() throws for a failed batch: stgs::Error "loader: batch B of epoch E (dataset indices ...): what".
[[noreturn]] void rethrow_batch_error(std::exception_ptr error, int64_t batch, int64_t epoch,
                                      const std::vector<int64_t>& indices);
}  // namespace detail

// Worker threads call load(indices, batch_seed) for each batch of an epoch, ahead of the consumer. next()
// returns batches in order 0, 1, 2, ... of the epoch's permutation whatever the worker count and timing;
// batch_seed derives from (seed, epoch, batch number) only, so results are deterministic given the seed
// (and independent of the worker count). A worker's exception is rethrown by next() (naming the batch); that
// batch is then consumed, and the following next() continues with the batch after it.
template <class T>
class Loader {
 public:
  using LoadFn = std::function<T(const std::vector<int64_t>& indices, uint64_t batch_seed)>;

  Loader(int64_t dataset_size, LoaderOptions options, LoadFn load)
      : size_(dataset_size), options_(options), load_(std::move(load)) {
    STGS_CHECK(size_ >= 0, "Loader: dataset size ", size_, " must be >= 0");
    STGS_CHECK(options_.workers >= 1, "Loader: workers must be >= 1, got ", options_.workers);
    STGS_CHECK(options_.batch_size >= 1, "Loader: batch_size must be >= 1, got ", options_.batch_size);
    STGS_CHECK(options_.prefetch >= 1, "Loader: prefetch must be >= 1, got ", options_.prefetch);
    STGS_CHECK(load_ != nullptr, "Loader: no load function");
    batches_ = options_.drop_last ? size_ / options_.batch_size
                                  : (size_ + options_.batch_size - 1) / options_.batch_size;
  }
  ~Loader() { stop(); }
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // (Re)starts the pipeline for `epoch` (>= 0): stops the workers of an unfinished epoch (waiting for the
  // batches they are loading), drops its undelivered batches and starts loading the new one.
  void start_epoch(int64_t epoch) {
    STGS_CHECK(epoch >= 0, "Loader::start_epoch: epoch ", epoch, " must be >= 0");
    stop();
    order_ = epoch_permutation(size_, options_.shuffle, options_.seed, epoch);
    epoch_ = epoch;
    claimed_ = returned_ = 0;
    ready_.clear();
    stopping_ = false;
    wait_s_ = 0;
    start_ = Clock::now();
    end_.reset();
    for (int w = 0; w < options_.workers; ++w) threads_.emplace_back([this] { work(); });
  }

  // The next batch of the epoch, in order; nullopt at the end of the epoch. Blocks while it is loading.
  std::optional<LoadedBatch<T>> next() {
    STGS_CHECK(epoch_ >= 0, "Loader::next: call start_epoch first");
    std::unique_lock<std::mutex> lock(mutex_);
    if (returned_ == batches_) {
      if (!end_) end_ = Clock::now();
      return std::nullopt;
    }
    const int64_t number = returned_;
    const auto t0 = Clock::now();
    ready_cv_.wait(lock, [&] { return ready_.count(number) > 0; });
    wait_s_ += seconds(t0, Clock::now());
    Slot slot = std::move(ready_.at(number));
    ready_.erase(number);
    ++returned_;
    lock.unlock();
    work_cv_.notify_all();  // one more batch may be claimed
    std::vector<int64_t> indices = batch_indices(number);
    if (slot.error) detail::rethrow_batch_error(slot.error, number, epoch_, indices);
    return LoadedBatch<T>{number, std::move(indices), std::move(*slot.data)};
  }

  int64_t batches_per_epoch() const { return batches_; }

  // Time next() spent blocked this epoch (the consumer starved).
  double wait_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return wait_s_;
  }
  // Wall time of the epoch so far (up to the next() that reported its end).
  double busy_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return epoch_ < 0 ? 0.0 : seconds(start_, end_ ? *end_ : Clock::now());
  }

 private:
  using Clock = std::chrono::steady_clock;
  // A loaded batch or the exception its load threw.
  struct Slot {
    std::optional<T> data;
    std::exception_ptr error;
  };

  static double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  // Dataset indices of batch `number`: its slice of the epoch's order (read-only while workers run).
  std::vector<int64_t> batch_indices(int64_t number) const {
    const int64_t begin = number * options_.batch_size, end = std::min(begin + options_.batch_size, size_);
    return std::vector<int64_t>(order_.begin() + begin, order_.begin() + end);
  }

  void work() {
    detail::begin_worker_thread();
    for (;;) {
      int64_t number;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        // The bound: batch b may start only once next() has handed out batch b - prefetch.
        work_cv_.wait(lock, [&] {
          return stopping_ || claimed_ == batches_ || claimed_ < returned_ + options_.prefetch;
        });
        if (stopping_ || claimed_ == batches_) return;
        number = claimed_++;
      }
      Slot slot;
      try {
        slot.data.emplace(load_(batch_indices(number), batch_seed(options_.seed, epoch_, number)));
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.emplace(number, std::move(slot));
      }
      ready_cv_.notify_one();  // only the consumer waits on it
    }
  }

  // Stops and joins the workers; a worker inside load() finishes that batch first.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  const int64_t size_;
  const LoaderOptions options_;
  const LoadFn load_;
  int64_t batches_ = 0;

  // Per epoch; order_ and epoch_ change only while no worker runs.
  std::vector<int64_t> order_;
  int64_t epoch_ = -1;
  std::vector<std::thread> threads_;

  // Guarded by mutex_.
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;   // workers: a batch may be claimed, or stop
  std::condition_variable ready_cv_;  // consumer: a batch finished loading
  bool stopping_ = false;
  int64_t claimed_ = 0;                // batches workers have taken: 0 .. claimed_ - 1
  int64_t returned_ = 0;               // batches next() has handed out
  std::map<int64_t, Slot> ready_;      // loaded, not yet handed out (at most prefetch with those loading)
  double wait_s_ = 0;
  Clock::time_point start_{};
  std::optional<Clock::time_point> end_;
};

}  // namespace stgs::data
