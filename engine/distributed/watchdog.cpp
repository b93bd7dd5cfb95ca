#include "engine/distributed/watchdog.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "kernels/check.h"

namespace stgs::dist {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double collective_timeout_seconds() {
  const char* v = std::getenv("STGS_DIST_TIMEOUT");
  if (v == nullptr || *v == '\0') return 600;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  STGS_CHECK(end != v && *end == '\0' && s > 0, "STGS_DIST_TIMEOUT='", v, "': expected seconds > 0");
  return s;
}

CollectiveWatchdog::CollectiveWatchdog(int rank, double timeout_seconds)
    : rank_(rank), timeout_(timeout_seconds), thread_([this] { watch(); }) {}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

CollectiveWatchdog::Guard::Guard(CollectiveWatchdog& w, const char* call) : w_(w) {
  w_.since_.store(steady_seconds());
  w_.call_.store(call);
}

CollectiveWatchdog::Guard::~Guard() { w_.call_.store(nullptr); }

void CollectiveWatchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  // Polls a few times a second: a timeout is reported within ~0.2 s of its expiry.
  while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_; })) {
    const char* call = call_.load();
    if (call == nullptr) continue;
    const double waited = steady_seconds() - since_.load();
    if (waited < timeout_) continue;
    std::fprintf(stderr,
                 "stgs: rank %d: %s has waited %.0f s for the other ranks (one of them died or hangs; the limit is "
                 "STGS_DIST_TIMEOUT=%g s). Stopping; resume the run from its last checkpoint with --resume.\n",
                 rank_, call, waited, timeout_);
    std::fflush(stderr);
    std::_Exit(kCollectiveTimeoutExit);
  }
}

}  // namespace stgs::dist
