// Ctrl-C for long runs: the first SIGINT or SIGTERM only sets a flag that the training loops poll between
// steps, so they finish the step, write a checkpoint and exit cleanly; a second signal ends the process at
// once (the default action is restored after the first).
// defines: InterruptGuard, interrupt_requested, request_interrupt, FaultInjection
#pragma once

#include <cstdint>

namespace stgs::apps {

// Installs the handlers for its lifetime and restores the previous ones after; clears the flag on entry.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

bool interrupt_requested();
// Sets the flag as a signal would (tests, and loops that stop themselves for the same clean exit).
void request_interrupt();

// Fault injection for the resume tests (read once from the environment; unset in normal use):
//   STGS_FAULT_KILL_AFTER_TABLES=N   SIGKILL right after epoch N's tables are written, before its checkpoint:
//                                    the worst moment for a resume
//   STGS_FAULT_INTERRUPT_AT_STEP=K   behave as if Ctrl-C came after K steps of this process
//   STGS_FAULT_RANK_EXIT=R@K         rank R of a distributed run exits (status 3, no goodbye) after K steps
//   STGS_FAULT_RANK_HANG=R@K         rank R stops answering (sleeps) after K steps
struct FaultInjection {
  static void after_tables(int64_t epoch);  // epoch: 1-based
  static void after_step(int rank);  // after each training step, with this process's rank (0 alone)
};

}  // namespace stgs::apps
