// A one-line progress bar on stderr with rate and ETA, drawn only when stderr is a terminal (and the caller
// is not quiet), so logs and pipes get none of its carriage returns.
// defines: ProgressBar
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace stgs::apps {

class ProgressBar {
 public:
  // `unit` names what is counted ("clips", "steps"). Disabled when quiet or stderr is not a terminal.
  ProgressBar(std::string label, int64_t total, std::string unit, bool quiet = false);
  ~ProgressBar();  // ends the line if one was drawn

  // done of total finished; `note` goes at the end of the line (e.g. "loss 0.412"). Redraws at most 10 times
  // a second, and always at the end.
  void update(int64_t done, const std::string& note = "");
  void finish();  // ends the line (idempotent)
  bool enabled() const { return enabled_; }

  // "1:02:03" / "2:03" for a duration in seconds.
  static std::string clock(double seconds);

 private:
  std::string label_, unit_;
  int64_t total_;
  bool enabled_, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace stgs::apps
