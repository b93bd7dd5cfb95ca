// SHA-256 (FIPS 180-4) of bytes and of files, as lowercase hex: the fingerprints the feature cache and the
// pretrained backbones record so that a stale file is noticed.
// defines: Sha256, sha256_hex, sha256_file
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace stgs {

// Incremental hashing: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  // Pads, finishes and returns the 64-character digest; the object must not be updated afterwards.
  std::string hex();

 private:
  void compress(const uint8_t* block);  // one 64-byte block

  std::array<uint32_t, 8> state_;
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(const std::string& bytes);
// Streams the file in 1 MiB pieces; throws naming the file and the system's reason when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace stgs
