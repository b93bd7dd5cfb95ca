#include "apps/interrupt.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

namespace stgs::apps {
namespace {

volatile std::sig_atomic_t g_requested = 0;
struct sigaction g_old_int, g_old_term;

void on_signal(int) {
  g_requested = 1;
  // The next signal takes the default action: a user who presses Ctrl-C twice means it.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

}  // namespace

InterruptGuard::InterruptGuard() {
  g_requested = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool interrupt_requested() { return g_requested != 0; }

void request_interrupt() { g_requested = 1; }

namespace {
int64_t fault_setting(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoll(v) : -1;
}
// "R@K" -> (R, K); (-1, -1) when unset.
std::pair<int64_t, int64_t> rank_at_step(const char* name) {
  const char* v = std::getenv(name);
  long long rank = -1, step = -1;
  if (v == nullptr || std::sscanf(v, "%lld@%lld", &rank, &step) != 2) return {-1, -1};
  return {rank, step};
}
}  // namespace

void FaultInjection::after_tables(int64_t epoch) {
  static const int64_t kill_after = fault_setting("STGS_FAULT_KILL_AFTER_TABLES");
  if (epoch == kill_after) std::raise(SIGKILL);
}

void FaultInjection::after_step(int rank) {
  static const int64_t interrupt_at = fault_setting("STGS_FAULT_INTERRUPT_AT_STEP");
  static const auto exit_at = rank_at_step("STGS_FAULT_RANK_EXIT");
  static const auto hang_at = rank_at_step("STGS_FAULT_RANK_HANG");
  static int64_t steps = 0;
  if (++steps == interrupt_at) request_interrupt();
  if (rank == exit_at.first && steps == exit_at.second) {
    std::fprintf(stderr, "fault injection: rank %d exits after %lld steps\n", rank, (long long)steps);
    std::_Exit(3);
  }
  if (rank == hang_at.first && steps == hang_at.second) {
    std::fprintf(stderr, "fault injection: rank %d hangs after %lld steps\n", rank, (long long)steps);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(60));
  }
}

}  // namespace stgs::apps
