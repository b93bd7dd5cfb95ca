// One process at a time in a directory it writes (a run, a sweep, a feature cache).
// defines: DirectoryLock
//
// An exclusive flock(2) on DIR/.lock for the object's lifetime. A second process asking for it fails at once,
// naming the directory and the holder's pid, instead of both writing the same checkpoints and tables. The
// kernel drops the lock when its holder exits, however it exits (SIGKILL included), so a crashed run never
// leaves a stale lock behind; the file itself stays and is reused. On a file system without flock (ENOSYS,
// ENOLCK, EOPNOTSUPP) it warns on stderr and guards nothing.
#pragma once

#include <string>

namespace stgs {

class DirectoryLock {
 public:
  // `what` names the command for the message ("stgs search"). Throws stgs::Error when the directory is locked
  // by another process or the lock file cannot be created.
  DirectoryLock(const std::string& dir, const std::string& what);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace stgs
