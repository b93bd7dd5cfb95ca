#include "engine/io/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/check.h"

namespace stgs {

DirectoryLock::DirectoryLock(const std::string& dir, const std::string& what) {
  const std::string path = dir + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0 && errno == EACCES) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // another user's lock file
  const int open_err = errno;
  STGS_CHECK(fd_ >= 0, what, ": cannot create the lock file '", path, "': ", std::strerror(open_err));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int lock_err = errno;
    if (lock_err == ENOSYS || lock_err == ENOLCK || lock_err == EOPNOTSUPP) {
      // A file system without flock (Lustre without -o flock, some NFS): run unguarded rather than not at all.
      std::fprintf(stderr, "%s: warning: '%s' cannot be locked here (%s); make sure no other process writes it\n",
                   what.c_str(), dir.c_str(), std::strerror(lock_err));
      ::close(fd_);
      fd_ = -1;
      return;
    }
    char holder[32] = {0};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    STGS_CHECK(lock_err != EWOULDBLOCK, what, ": '", dir, "' is in use by another stgs process",
               n > 0 ? " (pid " + std::string(holder, size_t(n)) + ")" : std::string(),
               "; wait for it to finish, or stop it first");
    STGS_FAIL(what, ": cannot lock '", path, "': ", std::strerror(lock_err));
  }
  // The holder's pid, for the message another process gets (informational: the flock is the lock).
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) {
    const ssize_t written = ::pwrite(fd_, pid.data(), pid.size(), 0);
    (void)written;  // best effort
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace stgs
