// Ends the process when a collective waits too long: a rank that died or hangs would otherwise keep every
// other rank blocked forever. The message names the call, the rank and the time waited; the exit (status
// kCollectiveTimeoutExit, without finalising the library) makes mpirun or srun stop the remaining ranks.
// defines: CollectiveWatchdog, collective_timeout_seconds, steady_seconds, kCollectiveTimeoutExit
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace stgs::dist {

constexpr int kCollectiveTimeoutExit = 124;

// STGS_DIST_TIMEOUT (seconds, > 0) or 600: long enough for rank 0 to write a checkpoint and plots while the
// others wait at the next collective.
double collective_timeout_seconds();

// Seconds on the steady clock (the deadlines and waiting times of the collectives).
double steady_seconds();

class CollectiveWatchdog {
 public:
  CollectiveWatchdog(int rank, double timeout_seconds);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // Marks one collective (a string literal naming it) as in progress for the guard's lifetime.
  class Guard {
   public:
    Guard(CollectiveWatchdog& w, const char* call);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    CollectiveWatchdog& w_;
  };

 private:
  void watch();

  int rank_;
  double timeout_;
  std::atomic<const char*> call_{nullptr};
  std::atomic<double> since_{0};  // steady-clock seconds when call_ began
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace stgs::dist
