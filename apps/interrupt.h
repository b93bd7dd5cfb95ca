// Ctrl-C for long runs: the first SIGINT or SIGTERM only sets a flag that the training loops poll between
// steps, so they finish the step, write a checkpoint and exit cleanly; a second signal ends the process at
// once (the default action is restored after the first).
// defines: InterruptGuard, interrupt_requested, request_interrupt
#pragma once

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

}  // namespace stgs::apps
