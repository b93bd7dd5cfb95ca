// Reading and writing safetensors files (the Hugging Face format: u64 header length, JSON header, raw bytes).
// defines: save_safetensors, SafetensorsFile, load_safetensors, SafetensorsHeader, read_safetensors_header
//
// The writer follows the reference writer's conventions (tensors ordered by descending dtype alignment then
// name, contiguous offsets, compact JSON with __metadata__ first, header padded with spaces to a multiple of
// 8) and replaces the target atomically, so a crash or a failed write never leaves a half-written checkpoint.
// The reader applies every validation rule of the reference reader and throws stgs::Error naming the file
// and what it expected; it accepts files from writers that neither pad nor order their headers.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace stgs {

// Writes the tensors (any device, any layout; dtypes F32, F64, BF16, F16, I64, I32, U8) and the string
// metadata to `path`. Names must be unique, valid UTF-8 and not "__metadata__". The data goes to a
// temporary file next to `path`, is fsync'ed and then renamed over `path`; on failure the temporary file is
// removed, `path` is left as it was, and the error names the path and the system's reason.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// A braced list ({{"w", w}, {"b", b}}) converts to both containers above; this overload takes it instead.
inline void save_safetensors(const std::string& path, std::initializer_list<std::pair<std::string, Tensor>> tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  save_safetensors(path, std::vector<std::pair<std::string, Tensor>>(tensors), metadata);
}

struct SafetensorsFile {
  std::string path;                                    // where it was read from, for error messages
  std::vector<std::pair<std::string, Tensor>> tensors;  // CPU tensors, in the order of their data in the file
  std::map<std::string, std::string> metadata;         // the "__metadata__" map, empty when absent

  bool contains(const std::string& name) const;
  // The tensor called `name`; throws naming the file and the available names when there is none.
  Tensor get(const std::string& name) const;
};

SafetensorsFile load_safetensors(const std::string& path);

// What a file holds without its data: every check of load_safetensors that needs no tensor bytes (the header,
// and that the offsets cover the file's data exactly), so a large file can be recognised cheaply.
struct SafetensorsHeader {
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
  };
  std::string path;
  std::vector<Entry> tensors;                   // in the order of their data in the file
  std::map<std::string, std::string> metadata;  // the "__metadata__" map, empty when absent
};

SafetensorsHeader read_safetensors_header(const std::string& path);

}  // namespace stgs
