// safetensors writer (reference conventions, atomic replace) and validating reader.
#include "engine/io/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "engine/io/atomic_file.h"
#include "engine/io/json_strict.h"

namespace stgs {

// Tensor bytes go to and from the file as they are in memory; the format is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's HeaderTooLarge limit
constexpr size_t kMaxNamesListed = 64;             // in the "no such tensor" message

// The engine's dtype names are the format's dtype strings.
constexpr DType kDTypes[] = {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64, DType::I32, DType::U8};

bool parse_dtype(const std::string& name, DType* out) {
  for (DType t : kDTypes) {
    if (name == dtype_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

// Offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or npos when the whole string is valid.
size_t find_invalid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((lead & 0xE0) == 0xC0) {
      len = 2, cp = lead & 0x1F, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      len = 3, cp = lead & 0x0F, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      len = 4, cp = lead & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (s.size() - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = cp << 6 | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

std::string errno_text(int err) { return std::generic_category().message(err); }

// ---- writer -------------------------------------------------------------------------------------

struct OutEntry {
  const std::string* name;
  const Tensor* tensor;
  uint64_t begin = 0, end = 0;
};

// Compact JSON, "__metadata__" first (omitted when empty), then the tensors in data order; each entry's
// fields in the reference order dtype, shape, data_offsets. Padded with spaces to a multiple of 8 bytes so
// that the data starts 8-aligned.
std::string build_header(const std::vector<OutEntry>& entries, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const OutEntry& e : entries) {
    header[*e.name] = {{"dtype", dtype_name(e.tensor->dtype())},
                       {"shape", e.tensor->shape().vec()},
                       {"data_offsets", {e.begin, e.end}}};
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// ---- reader -------------------------------------------------------------------------------------

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

struct InEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

void read_exact(std::FILE* f, void* out, size_t n, const std::string& where) {
  STGS_CHECK(std::fread(out, 1, n, f) == n, where, "reading ", n, " bytes failed (",
             std::ferror(f) ? "read error" : "unexpected end of file; was it modified while being read?", ")");
}

std::map<std::string, std::string> parse_metadata(const json& value, const std::string& where) {
  STGS_CHECK(value.is_object(), where, "__metadata__ must be an object mapping strings to strings, got ",
             value.type_name());
  std::map<std::string, std::string> metadata;
  for (const auto& [key, v] : value.items()) {
    STGS_CHECK(v.is_string(), where, "__metadata__ must map strings to strings, but \"", key, "\" holds ",
               v.type_name(), " ", v.dump());
    metadata[key] = v.get<std::string>();
  }
  return metadata;
}

InEntry parse_entry(const std::string& name, const json& value, const std::string& where) {
  const std::string tensor = "tensor \"" + name + "\": ";
  STGS_CHECK(value.is_object(), where, tensor, "expected an object with dtype, shape and data_offsets, got ",
             value.type_name());
  InEntry e;
  e.name = name;

  const auto dtype = value.find("dtype");
  STGS_CHECK(dtype != value.end() && dtype->is_string(), where, tensor, "expected a string \"dtype\"");
  STGS_CHECK(parse_dtype(dtype->get<std::string>(), &e.dtype), where, tensor, "unsupported dtype \"",
             dtype->get<std::string>(), "\" (this engine reads F32, F64, BF16, F16, I64, I32, U8)");
  const uint64_t itemsize = dtype_size(e.dtype);

  // The shape's extent (product of its non-zero dims, in bytes) must fit an int64 so that strides and byte
  // counts cannot overflow, even for tensors that a zero dimension makes empty.
  const auto shape = value.find("shape");
  STGS_CHECK(shape != value.end() && shape->is_array(), where, tensor,
             "expected \"shape\" to be a list of non-negative integers");
  STGS_CHECK(shape->size() <= size_t(kMaxDims), where, tensor, "shape has ", shape->size(),
             " dimensions, at most ", kMaxDims, " are supported");
  uint64_t extent = itemsize;
  bool has_zero = false;
  for (const json& d : *shape) {
    STGS_CHECK(d.is_number_unsigned(), where, tensor, "expected \"shape\" to be a list of non-negative integers, got ",
               shape->dump());
    const uint64_t n = d.get<uint64_t>();
    has_zero |= n == 0;
    STGS_CHECK(!__builtin_mul_overflow(extent, std::max<uint64_t>(n, 1), &extent) && extent <= uint64_t(INT64_MAX),
               where, tensor, "shape ", shape->dump(), " is too large");
    e.shape.push_back(int64_t(n));
  }
  const uint64_t nbytes = has_zero ? 0 : extent;

  const auto offsets = value.find("data_offsets");
  STGS_CHECK(offsets != value.end() && offsets->is_array() && offsets->size() == 2 &&
                 (*offsets)[0].is_number_unsigned() && (*offsets)[1].is_number_unsigned(),
             where, tensor, "expected \"data_offsets\" to be two non-negative integers [begin, end]");
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  STGS_CHECK(e.end >= e.begin, where, tensor, "data_offsets ", offsets->dump(), " end before they begin");
  STGS_CHECK(e.end - e.begin == nbytes, where, tensor, "data_offsets ", offsets->dump(), " span ", e.end - e.begin,
             " bytes, but ", dtype_name(e.dtype), e.shape.str(), " takes ", nbytes, " bytes");
  return e;
}

}  // namespace

// ---- save -----------------------------------------------------------------------------------------

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = "save_safetensors '" + path + "': ";
  std::set<std::string> seen;
  std::vector<OutEntry> entries;
  for (const auto& [name, t] : tensors) {
    STGS_CHECK(seen.insert(name).second, where, "tensor name \"", name, "\" appears more than once");
    STGS_CHECK(name != "__metadata__", where, "\"__metadata__\" is reserved and cannot name a tensor");
    STGS_CHECK(find_invalid_utf8(name) == std::string::npos, where, "tensor name \"", name, "\" is not valid UTF-8");
    STGS_CHECK(t.defined(), where, "tensor \"", name, "\" is undefined");
    entries.push_back({&name, &t});
  }
  for (const auto& [key, value] : metadata) {
    STGS_CHECK(find_invalid_utf8(key) == std::string::npos && find_invalid_utf8(value) == std::string::npos, where,
               "metadata entry \"", key, "\" is not valid UTF-8");
  }

  // Reference order: larger elements first (so every tensor starts aligned to its element size once the
  // header is padded to 8), ties broken by name.
  std::sort(entries.begin(), entries.end(), [](const OutEntry& a, const OutEntry& b) {
    const size_t sa = dtype_size(a.tensor->dtype()), sb = dtype_size(b.tensor->dtype());
    return sa != sb ? sa > sb : *a.name < *b.name;
  });
  uint64_t offset = 0;
  for (OutEntry& e : entries) {
    e.begin = offset;
    offset += uint64_t(e.tensor->numel()) * dtype_size(e.tensor->dtype());
    e.end = offset;
  }
  const std::string header = build_header(entries, metadata);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(uint64_t(header.size()) >> (8 * i));

  AtomicFile file(path, where);
  file.write(length, 8);
  file.write(header);
  for (const OutEntry& e : entries) {
    // One tensor at a time on the host, so saving GPU weights needs no second full copy in memory.
    const Tensor host = e.tensor->detach().to(Device::cpu()).contiguous();
    file.write(host.raw_data(), size_t(e.end - e.begin));
  }
  file.commit();
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, std::vector<std::pair<std::string, Tensor>>(tensors.begin(), tensors.end()), metadata);
}

// ---- load -----------------------------------------------------------------------------------------

namespace {

// An open file whose header has been read and fully validated against the file's size; the stream is
// positioned at the start of the data, and `entries` are sorted by position (they cover the data exactly).
struct OpenedFile {
  std::unique_ptr<std::FILE, FileCloser> file;
  std::map<std::string, std::string> metadata;
  std::vector<InEntry> entries;
};

OpenedFile open_and_validate(const std::string& path, const std::string& where) {
  OpenedFile out;
  out.file.reset(std::fopen(path.c_str(), "rb"));
  const int open_err = errno;
  STGS_CHECK(out.file != nullptr, where, "cannot open: ", errno_text(open_err));
  std::FILE* file = out.file.get();
  struct stat st;
  STGS_CHECK(::fstat(::fileno(file), &st) == 0 && S_ISREG(st.st_mode), where, "not a regular file");
  const uint64_t file_size = uint64_t(st.st_size);

  STGS_CHECK(file_size >= 8, where, "the file has ", file_size,
             " bytes, fewer than the 8 bytes of the header length; not a safetensors file");
  unsigned char length[8];
  read_exact(file, length, 8, where);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | length[i];
  STGS_CHECK(n <= kMaxHeaderBytes, where, "header length ", n, " is too large (the limit is ", kMaxHeaderBytes,
             " bytes); not a safetensors file?");
  STGS_CHECK(n <= file_size - 8, where, "header length ", n, " runs past the end of the ", file_size,
             "-byte file (truncated?)");
  std::string text(n, '\0');
  read_exact(file, text.data(), n, where);
  STGS_CHECK(n > 0 && text[0] == '{', where, "the header must be a JSON object starting with '{'");
  const size_t bad = find_invalid_utf8(text);
  STGS_CHECK(bad == std::string::npos, where, "the header is not valid UTF-8 (at header byte ", bad, ")");
  const json header = parse_json_strict(text, where, "header");

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      out.metadata = parse_metadata(value, where);
    } else {
      out.entries.push_back(parse_entry(key, value, where));
    }
  }

  // The data must be covered exactly: sorted by position, each tensor starts where the previous ended.
  std::vector<InEntry>& entries = out.entries;
  std::sort(entries.begin(), entries.end(), [](const InEntry& a, const InEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const InEntry& e = entries[i];
    if (i == 0) {
      STGS_CHECK(e.begin == 0, where, "the first tensor \"", e.name, "\" starts at data byte ", e.begin,
                 ", expected 0 (a hole before it)");
    } else {
      STGS_CHECK(e.begin == covered, where, "tensor \"", e.name, "\" starts at data byte ", e.begin, " but \"",
                 entries[i - 1].name, "\" ends at ", covered, e.begin > covered ? " (a hole)" : " (an overlap)");
    }
    covered = e.end;
  }
  const uint64_t data_bytes = file_size - 8 - n;
  STGS_CHECK(covered <= data_bytes, where, "the file is truncated: the tensors need ", covered,
             " bytes of data but only ", data_bytes, " follow the header");
  STGS_CHECK(covered == data_bytes, where, "the file has ", data_bytes - covered,
             " trailing bytes after the last tensor's data (the format does not allow any)");
  return out;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  const std::string where = "safetensors file '" + path + "': ";
  OpenedFile opened = open_and_validate(path, where);
  SafetensorsFile out;
  out.path = path;
  out.metadata = std::move(opened.metadata);
  // The offsets are contiguous from the end of the header, so the tensors are read in one forward pass.
  for (const InEntry& e : opened.entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.end > e.begin) read_exact(opened.file.get(), t.raw_data(), size_t(e.end - e.begin), where);
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  OpenedFile opened = open_and_validate(path, "safetensors file '" + path + "': ");
  SafetensorsHeader out;
  out.path = path;
  out.metadata = std::move(opened.metadata);
  for (const InEntry& e : opened.entries) out.tensors.push_back({e.name, e.dtype, e.shape});
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& entry) { return entry.first == name; });
}

Tensor SafetensorsFile::get(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::string names;
  for (size_t i = 0; i < tensors.size() && i < kMaxNamesListed; ++i) names += (i ? ", " : "") + tensors[i].first;
  if (tensors.size() > kMaxNamesListed) names += ", ... (" + std::to_string(tensors.size() - kMaxNamesListed) + " more)";
  STGS_FAIL("safetensors file '", path, "' has no tensor \"", name, "\"; it holds ", tensors.size(), " tensors",
            tensors.empty() ? "" : ": ", names);
}

}  // namespace stgs
