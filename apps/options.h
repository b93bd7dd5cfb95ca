// Option values of the subcommands: whole-string numeric parses that throw naming the command, the option and
// the value.
// defines: parse_integer, parse_number, split_list, join_list, parse_list, number_list, parse_device_option
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
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

// The pieces of `value` between `separators` ("a,b,,c" -> a, b, "", c); none for "".
inline std::vector<std::string> split_list(const std::string& value, char separator) {
  std::vector<std::string> out;
  for (size_t start = 0; !value.empty() && start <= value.size();) {
    const size_t at = std::min(value.find(separator, start), value.size());
    out.push_back(value.substr(start, at - start));
    start = at + 1;
  }
  return out;
}

// The inverse of split_list: the items with `separator` between them.
inline std::string join_list(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

// Exactly `count` numbers separated by `separator` (e.g. "0.7,0.15,0.15").
inline std::vector<double> parse_list(const std::string& command, const std::string& option, const std::string& value,
                                      size_t count, char separator) {
  std::vector<double> out;
  for (const std::string& piece : split_list(value, separator)) out.push_back(parse_number(command, option, piece));
  STGS_CHECK(out.size() == count, command, ": ", option, " expects ", count, " numbers separated by '", separator,
             "', got '", value, "'");
  return out;
}

// The inverse of parse_list: "0.7,0.15,0.15" from {0.7, 0.15, 0.15} (%g), as a list flag's default.
inline std::string number_list(const double* values, size_t count, char separator) {
  std::string out;
  char buf[32];
  for (size_t i = 0; i < count; ++i) {
    std::snprintf(buf, sizeof buf, "%g", values[i]);
    out += (i ? std::string(1, separator) : "") + buf;
  }
  return out;
}

// --device: "auto" is the first GPU when one is visible (in a CUDA build), else the CPU; "cpu", "cuda" and
// "cuda:N" are taken as they are, a GPU only when it is there.
inline Device parse_device_option(const std::string& command, const std::string& value) {
  if (value == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  Device device;
  try {
    device = parse_device(value);
  } catch (const Error&) {
    STGS_FAIL(command, ": --device expects auto, cpu, cuda or cuda:N, got '", value, "'");
  }
  STGS_CHECK(device.is_cpu() || device.index < cuda_device_count(), command, ": --device ", value,
             " asks for a GPU but ", cuda_built() ? std::to_string(cuda_device_count()) + " are visible"
                                                   : std::string("this build has no CUDA"));
  return device;
}

}  // namespace stgs::apps
