#include "engine/io/read_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "kernels/check.h"

namespace stgs {

std::string read_file(const std::string& path, const std::string& what, const std::string& hint) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  // Only a missing file is "no such file"; a directory on the way that cannot be searched says so.
  STGS_CHECK(!ec || ec == std::errc::no_such_file_or_directory, "cannot read ", what, " '", path, "': ",
             ec.message(), hint);
  STGS_CHECK(fs::exists(status), "cannot read ", what, " '", path, "': no such file", hint);
  STGS_CHECK(!fs::is_directory(status), "cannot read ", what, " '", path, "': is a directory", hint);
  std::ifstream in(path, std::ios::binary);
  const int open_err = errno;
  STGS_CHECK(in.good(), "cannot read ", what, " '", path, "': ", std::strerror(open_err), hint);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  STGS_CHECK(!in.bad(), "cannot read ", what, " '", path, "': read error", hint);
  return text;
}

}  // namespace stgs
