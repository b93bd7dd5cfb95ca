// Feature cache files: layout validation shared by the writer, the reader and the reuse check.
#include "data/feature_cache.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "engine/io/safetensors.h"
#include "kernels/check.h"

namespace stgs::data {

namespace {

// What the layout check needs of a tensor, from a loaded tensor or from a header entry.
struct TensorInfo {
  DType dtype;
  Shape shape;
};

// Checks the names, dtypes and shapes of a cache file's tensors against each other and the metadata's
// "clips"; returns N. `where` prefixes every message.
int64_t check_layout(const std::map<std::string, TensorInfo>& tensors, const std::map<std::string, std::string>& meta,
                     const std::string& where) {
  auto get = [&](const std::string& name) -> const TensorInfo& {
    auto it = tensors.find(name);
    STGS_CHECK(it != tensors.end(), where, "tensor \"", name, "\" is missing");
    return it->second;
  };
  const TensorInfo& labels = get("labels");
  STGS_CHECK(labels.dtype == DType::I64 && labels.shape.size() == 1, where, "tensor \"labels\" is ",
             dtype_name(labels.dtype), labels.shape.str(), ", expected I64 (N)");
  const int64_t n = labels.shape[0];
  const TensorInfo& categories = get("categories");
  STGS_CHECK(categories.dtype == DType::I64 && categories.shape == Shape{n}, where, "tensor \"categories\" is ",
             dtype_name(categories.dtype), categories.shape.str(), ", expected I64 [", n, "] like \"labels\"");
  const TensorInfo& ids = get("ids");
  STGS_CHECK(ids.dtype == DType::U8 && ids.shape.size() == 2 && ids.shape[0] == n && ids.shape[1] >= 1, where,
             "tensor \"ids\" is ", dtype_name(ids.dtype), ids.shape.str(), ", expected U8 (", n, ", W >= 1)");
  int64_t L = -1;
  for (const char* name : kFeatureNames) {
    const TensorInfo& f = get(name);
    STGS_CHECK(f.dtype == DType::F32 && f.shape.size() == 3 && f.shape[0] == n && f.shape[1] > 0 && f.shape[2] > 0,
               where, "tensor \"", name, "\" is ", dtype_name(f.dtype), f.shape.str(),
               ", expected F32 (N, C, L) with N = ", n, " like \"labels\"");
    if (L < 0) L = f.shape[2];
    STGS_CHECK(f.shape[2] == L, where, "tensor \"", name, "\" has L = ", f.shape[2], " but \"", kFeatureNames[0],
               "\" has ", L);
  }
  for (const auto& [name, info] : tensors) {
    const bool known = name == "labels" || name == "categories" || name == "ids" ||
                       std::find_if(kFeatureNames.begin(), kFeatureNames.end(),
                                    [&](const char* f) { return name == f; }) != kFeatureNames.end();
    STGS_CHECK(known, where, "unexpected tensor \"", name, "\"");
  }
  auto clips = meta.find("clips");
  STGS_CHECK(clips != meta.end() && clips->second == std::to_string(n), where, "metadata \"clips\" is ",
             clips == meta.end() ? "missing" : "'" + clips->second + "'", " but the tensors hold ", n, " clips");
  return n;
}

void check_format(const std::map<std::string, std::string>& meta, const std::string& where) {
  auto format = meta.find("format");
  STGS_CHECK(format != meta.end() && format->second == kFeatureCacheFormat, where, "metadata \"format\" is ",
             format == meta.end() ? "missing" : "'" + format->second + "'", ", expected '", kFeatureCacheFormat,
             "' (not a feature cache file)");
  auto version = meta.find("version");
  STGS_CHECK(version != meta.end() && version->second == std::to_string(kFeatureCacheVersion), where,
             "feature cache version ", version == meta.end() ? "missing" : "'" + version->second + "'",
             ", this build reads version ", kFeatureCacheVersion, " (run `stgs extract` again)");
}

std::string where_for(const std::string& path) { return "feature cache '" + path + "': "; }

}  // namespace

std::vector<int64_t> FeatureSplit::channels() const {
  std::vector<int64_t> out;
  for (const Tensor& f : features) out.push_back(f.size(1));
  return out;
}

void write_feature_split(const std::string& path, const FeatureSplit& split) {
  const std::string where = where_for(path);
  STGS_CHECK(split.features.size() == kFeatureNames.size(), where, "expected ", kFeatureNames.size(),
             " feature tensors, got ", split.features.size());
  const int64_t n = split.size();
  STGS_CHECK(split.labels.defined() && split.categories.defined(), where, "labels and categories are required");
  // ids -> (N, W) U8, NUL-padded; NUL inside an id would make it ambiguous.
  size_t width = 1;
  for (const std::string& id : split.ids) {
    STGS_CHECK(!id.empty() && id.find('\0') == std::string::npos, where, "clip id '", id,
               "' is empty or holds a NUL byte");
    width = std::max(width, id.size());
  }
  Tensor ids = zeros({n, int64_t(width)}, DType::U8);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(ids.data<uint8_t>() + i * int64_t(width), split.ids[i].data(), split.ids[i].size());

  const Tensor labels = split.labels.to(Device::cpu()).contiguous(),
               categories = split.categories.to(Device::cpu()).contiguous();
  std::map<std::string, std::string> meta = split.metadata;
  meta["format"] = kFeatureCacheFormat;
  meta["version"] = std::to_string(kFeatureCacheVersion);
  meta["split"] = split.split;
  meta["clips"] = std::to_string(n);

  std::vector<std::pair<std::string, Tensor>> tensors = {{"labels", labels}, {"categories", categories}, {"ids", ids}};
  for (size_t i = 0; i < kFeatureNames.size(); ++i) tensors.emplace_back(kFeatureNames[i], split.features[i]);
  std::map<std::string, TensorInfo> infos;
  for (const auto& [name, t] : tensors) infos[name] = {t.dtype(), t.shape()};
  check_layout(infos, meta, where);
  for (int64_t v : labels.to_vector<int64_t>()) STGS_CHECK(v == 0 || v == 1, where, "label ", v, " is not 0 or 1");
  for (int64_t v : categories.to_vector<int64_t>())
    STGS_CHECK(v >= 0 && v <= 3, where, "category ", v, " is outside 0..3");
  save_safetensors(path, tensors, meta);
}

FeatureSplit read_feature_split(const std::string& path) {
  const std::string where = where_for(path);
  const SafetensorsFile file = load_safetensors(path);  // its errors name the file
  check_format(file.metadata, where);
  std::map<std::string, TensorInfo> infos;
  for (const auto& [name, t] : file.tensors) infos[name] = {t.dtype(), t.shape()};
  const int64_t n = check_layout(infos, file.metadata, where);

  FeatureSplit out;
  out.path = path;
  out.metadata = file.metadata;
  out.split = file.metadata.count("split") ? file.metadata.at("split") : "";
  out.labels = file.get("labels");
  out.categories = file.get("categories");
  for (int64_t v : out.labels.to_vector<int64_t>())
    STGS_CHECK(v == 0 || v == 1, where, "tensor \"labels\" holds ", v, ", expected 0 (real) or 1 (fake)");
  for (int64_t v : out.categories.to_vector<int64_t>())
    STGS_CHECK(v >= 0 && v <= 3, where, "tensor \"categories\" holds ", v, ", expected 0..3 (A..D)");
  const Tensor ids = file.get("ids");
  const int64_t width = ids.size(1);
  for (int64_t i = 0; i < n; ++i) {
    const char* row = reinterpret_cast<const char*>(ids.data<uint8_t>() + i * width);
    out.ids.emplace_back(row, strnlen(row, size_t(width)));
    STGS_CHECK(!out.ids.back().empty(), where, "tensor \"ids\": row ", i, " is empty");
  }
  for (const char* name : kFeatureNames) out.features.push_back(file.get(name));
  return out;
}

std::string feature_split_staleness(const std::string& path, const std::map<std::string, std::string>& key) {
  if (!std::filesystem::exists(path)) return "missing";
  SafetensorsHeader header;
  try {
    header = read_safetensors_header(path);
    check_format(header.metadata, "");
    std::map<std::string, TensorInfo> infos;
    for (const auto& e : header.tensors) infos[e.name] = {e.dtype, e.shape};
    check_layout(infos, header.metadata, "");
  } catch (const Error& e) {
    return std::string("unreadable (") + e.what() + ")";
  }
  for (const auto& [name, value] : key) {
    auto it = header.metadata.find(name);
    if (it == header.metadata.end() || it->second != value) return name + " changed";
  }
  return "";
}

}  // namespace stgs::data
