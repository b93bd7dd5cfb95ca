// Temporary file + fsync + rename: the atomic replacement every writer of the project uses.
#include "engine/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "kernels/check.h"

namespace stgs {

namespace {

std::string errno_text(int err) { return std::generic_category().message(err); }

// A name no other writer (thread or process) uses, next to the target.
std::string temporary_path(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

// Makes the rename itself durable. Best effort: the new file is already complete and in place.
void sync_parent_directory(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::string path, std::string where)
    : path_(std::move(path)), tmp_(temporary_path(path_)), where_(std::move(where)) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  const int err = errno;
  STGS_CHECK(fd_ >= 0, where_, "cannot create the temporary file '", tmp_, "': ", errno_text(err));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  STGS_CHECK(fd_ >= 0, where_, "writing '", tmp_, "' after commit()");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    // At most 1 GiB per call: Linux transfers no more than about 2 GiB in one write().
    const ssize_t written = ::write(fd_, p, std::min(n, size_t(1) << 30));
    if (written < 0 && errno == EINTR) continue;
    const int err = errno;
    STGS_CHECK(written > 0, where_, "writing '", tmp_, "' failed: ", errno_text(err));
    p += written;
    n -= size_t(written);
  }
}

void AtomicFile::commit() {
  STGS_CHECK(fd_ >= 0 && !committed_, where_, "commit() of '", tmp_, "' called twice");
  const int synced = ::fsync(fd_);
  const int sync_err = errno;
  STGS_CHECK(synced == 0, where_, "fsync of '", tmp_, "' failed: ", errno_text(sync_err));
  const int closed = ::close(fd_);
  const int close_err = errno;
  fd_ = -1;
  STGS_CHECK(closed == 0, where_, "closing '", tmp_, "' failed: ", errno_text(close_err));
  const int renamed = ::rename(tmp_.c_str(), path_.c_str());
  const int rename_err = errno;
  STGS_CHECK(renamed == 0, where_, "renaming '", tmp_, "' to '", path_, "' failed: ", errno_text(rename_err));
  committed_ = true;
  sync_parent_directory(path_);
}

void check_writable(const std::string& path, const std::string& where) {
  STGS_CHECK(!path.empty() && path.back() != '/' && !std::filesystem::is_directory(path), where, "'", path,
             "' is a directory; expected the path of a file to write");
  AtomicFile probe(path, where);  // removed again when it goes out of scope uncommitted
}

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& where) {
  AtomicFile file(path, where);
  file.write(bytes);
  file.commit();
}

}  // namespace stgs
