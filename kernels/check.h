// The one error type of the project and the throwing checks that raise it.
// defines: stgs::Error, STGS_CHECK(cond, msg...), STGS_FAIL(msg...)
//
// Every failed check throws stgs::Error whose message starts with "file:line: ", so a
// failure deep inside a kernel launcher or a format reader says where it was detected.
// Library code never calls exit(); tests catch the error with REQUIRE_THROWS.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace stgs {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] inline void throw_error(const char* file, int line, const std::string& message) {
  // Keep only the path from the first project directory on, so messages are stable across checkouts.
  std::string path(file);
  for (const char* top : {"kernels/", "engine/", "nas/", "data/", "apps/", "tests/"}) {
    size_t at = path.rfind(top);
    if (at != std::string::npos) {
      path = path.substr(at);
      break;
    }
  }
  throw Error(path + ":" + std::to_string(line) + ": " + message);
}

}  // namespace detail
}  // namespace stgs

// STGS_CHECK(cond, parts...): throws "file:line: <parts...>" when cond is false.
#define STGS_CHECK(cond, ...)                                                             \
  do {                                                                                    \
    if (!(cond)) ::stgs::detail::throw_error(__FILE__, __LINE__, ::stgs::detail::concat(__VA_ARGS__)); \
  } while (0)

// STGS_FAIL(parts...): throws unconditionally.
#define STGS_FAIL(...) ::stgs::detail::throw_error(__FILE__, __LINE__, ::stgs::detail::concat(__VA_ARGS__))
