// A progress bar for long commands, on stderr and only when stderr is a terminal (logs and pipes stay clean).
// defines: progress_wanted, draw_progress
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace stgs::apps {

// Whether a command should draw a bar: not asked to be quiet, and stderr is a terminal.
inline bool progress_wanted(bool quiet) { return !quiet && isatty(fileno(stderr)); }

// Redraws "<task> [#########           ] 90/200 <unit>" in place at each whole percent; ends the line when
// done == total. Call with done = 1 .. total, from one thread at a time.
inline void draw_progress(const char* task, const char* unit, int64_t done, int64_t total) {
  if (done < total && done * 100 / total == (done - 1) * 100 / total) return;
  constexpr int kWidth = 30;
  const int filled = int(kWidth * done / total);
  std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %s", task, std::string(filled, '#').c_str(),
               std::string(kWidth - filled, ' ').c_str(), (long long)done, (long long)total, unit);
  if (done == total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace stgs::apps
