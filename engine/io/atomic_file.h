// Replacing a file so that readers see either its old contents or the complete new ones, never a mix.
// defines: AtomicFile, write_file_atomically, check_writable
//
// The data goes to a temporary file in the target's directory (so the final rename() stays on one file
// system and is atomic), is fsync'ed, and is then renamed over the target; the directory is synced last so
// the rename itself survives a crash. Any failure removes the temporary file and leaves the target as it
// was. Every error starts with the caller's `where` prefix and names the path and the system's reason.
#pragma once

#include <cstddef>
#include <string>

namespace stgs {

class AtomicFile {
 public:
  // Creates the temporary file next to `path`; throws when it cannot (e.g. missing or read-only directory).
  AtomicFile(std::string path, std::string where);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends n bytes; throws on a failed or short write.
  void write(const void* data, size_t n);
  void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }
  // fsync, close, rename over the target, then sync the directory (best effort). Call once.
  void commit();

 private:
  std::string path_, tmp_, where_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole of `bytes` as the new contents of `path`, atomically (see AtomicFile).
void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& where);

// For commands that write their result after long work: throws (prefixed by `where`) now, rather than at the
// end, when `path` names a directory or an atomic write there would fail (creates and removes the temporary
// file an AtomicFile would). The path's directory must exist.
void check_writable(const std::string& path, const std::string& where);

}  // namespace stgs
