// Option values of the subcommands: whole-string numeric parses that throw naming the command, the option and
// the value.
// defines: parse_integer, parse_number, parse_list, parse_device_option
#pragma once

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/storage.h"
#include "kernels/check.h"

namespace stgs::apps {

// An integer in [lo, hi]; `command` prefixes the message ("stgs synth").
inline long long parse_integer(const std::string& command, const std::string& option, const std::string& value,
                               long long lo, long long hi) {
  char* end = nullptr;
  const long long v = std::strtoll(value.c_str(), &end, 10);
  STGS_CHECK(!value.empty() && *end == '\0' && v >= lo && v <= hi, command, ": ", option,
             " expects an integer in [", lo, ", ", hi, "], got '", value, "'");
  return v;
}

inline double parse_number(const std::string& command, const std::string& option, const std::string& value) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  STGS_CHECK(!value.empty() && *end == '\0' && std::isfinite(v), command, ": ", option, " expects a number, got '",
             value, "'");
  return v;
}

// Exactly `count` numbers separated by `separator` (e.g. "0.7,0.15,0.15").
inline std::vector<double> parse_list(const std::string& command, const std::string& option, const std::string& value,
                                      size_t count, char separator) {
  std::vector<double> out;
  size_t start = 0;
  for (;;) {
    const size_t at = value.find(separator, start);
    out.push_back(parse_number(command, option, value.substr(start, at - start)));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  STGS_CHECK(out.size() == count, command, ": ", option, " expects ", count, " numbers separated by '", separator,
             "', got '", value, "'");
  return out;
}

// --device: "auto" is the first GPU when one is visible (in a CUDA build), else the CPU; "cpu", "cuda" and
// "cuda:N" are taken as they are, a GPU only when it is there.
inline Device parse_device_option(const std::string& command, const std::string& value) {
  if (value == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  const Device device = parse_device(value);
  STGS_CHECK(device.is_cpu() || device.index < cuda_device_count(), command, ": --device ", value,
             " asks for a GPU but ", cuda_built() ? std::to_string(cuda_device_count()) + " are visible"
                                                   : std::string("this build has no CUDA"));
  return device;
}

}  // namespace stgs::apps
