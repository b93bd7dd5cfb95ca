// safetensors: bit-exact round trips, the reference writer's layout, atomic replacement, and a hand-built
// file for every malformed case the reader must reject.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/io/safetensors.h"
#include "tests/test_files.h"

using namespace stgs;
namespace fs = std::filesystem;
using Catch::Contains;

// The call throws stgs::Error whose message names `path` and contains `word`.
#define REQUIRE_ST_ERROR(call, path, word)                                  \
  do {                                                                       \
    REQUIRE_THROWS_AS(call, stgs::Error);                                    \
    REQUIRE_THROWS_WITH(call, Contains(path) && Contains(std::string(word))); \
  } while (0)

namespace {

struct TempDir : testing::TempDir {
  TempDir() : testing::TempDir("safetensors") {}
};
using testing::read_file_bytes;
using testing::write_file_bytes;

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

// A file as a foreign writer might produce it: the header exactly as given (no padding), then the data.
std::string st_file(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

// The bytes of a tensor in row-major order.
std::string bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), size_t(c.numel()) * dtype_size(c.dtype()));
}

// A BF16/F16 tensor holding the given raw 16-bit patterns.
Tensor half_bits(DType dtype, const Shape& shape, const std::vector<uint16_t>& bits) {
  Tensor t = empty(shape, dtype);
  std::memcpy(t.raw_data(), bits.data(), bits.size() * 2);
  return t;
}

std::vector<std::string> names_of(const SafetensorsFile& f) {
  std::vector<std::string> names;
  for (const auto& [name, t] : f.tensors) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("safetensors round trip of every dtype is bit-exact", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("all.safetensors");
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"f32", from_vector<float>({1.5f, -0.0f, inf, nan, 1e-45f, 3.4e38f}, {2, 3})},
      {"f64", from_vector<double>({0.1, -1e300, 5e-324}, {3})},
      {"bf16", half_bits(DType::BF16, {2, 2}, {0x3f80, 0x7fc1, 0x0001, 0xff80})},
      {"f16", half_bits(DType::F16, {4}, {0x3c00, 0x7e01, 0x0001, 0xfc00})},
      {"i64", from_vector<int64_t>({(int64_t(1) << 53) + 1, INT64_MIN, INT64_MAX, -1}, {4})},
      {"i32", from_vector<int32_t>({INT32_MIN, 0, INT32_MAX}, {3})},
      {"u8", from_vector<uint8_t>({0, 255, 7}, {3, 1})},
      {"scalar", scalar(2.5)},
      {"scalar_i64", from_vector<int64_t>({(int64_t(1) << 60) + 3}, Shape{})},
      {"empty", empty({0}, DType::F32)},
      {"empty_3d", empty({2, 0, 3}, DType::BF16)},
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "\xc3\xbcnicode \xe2\x9c\x93"}};
  save_safetensors(path, tensors, metadata);
  const SafetensorsFile f = load_safetensors(path);

  CHECK(f.path == path);
  CHECK(f.metadata == metadata);
  // Data order: descending element size, then name.
  CHECK(names_of(f) == std::vector<std::string>{"f64", "i64", "scalar_i64", "empty", "f32", "i32", "scalar", "bf16",
                                                "empty_3d", "f16", "u8"});
  for (const auto& [name, expected] : tensors) {
    INFO(name);
    const Tensor t = f.get(name);
    CHECK(t.device().is_cpu());
    CHECK(t.dtype() == expected.dtype());
    CHECK(t.shape() == expected.shape());
    CHECK(bytes_of(t) == bytes_of(expected));
  }
  CHECK(f.get("scalar").dim() == 0);
  CHECK(f.get("i64").to_vector<int64_t>()[0] == (int64_t(1) << 53) + 1);
  // Storage-only dtypes convert through to(DType) once loaded.
  CHECK(f.get("bf16").to(DType::F32).to_vector<float>()[0] == 1.0f);
  CHECK(f.get("f16").to(DType::F32).to_vector<float>()[0] == 1.0f);
  const std::vector<float> via_bf16 = f.get("f32").to(DType::BF16).to(DType::F32).to_vector<float>();
  CHECK(via_bf16[0] == 1.5f);
  CHECK(via_bf16[2] == inf);
  CHECK(std::isnan(via_bf16[3]));
}

TEST_CASE("safetensors writes views and the map overload", "[safetensors]") {
  TempDir tmp;
  const Tensor base = arange(0, 12, 1, DType::F64).reshape({3, 4});
  const Tensor transposed = base.transpose(0, 1);   // non-contiguous
  const Tensor sliced = base.slice(0, 1, 3);         // contiguous view at an offset
  const std::string path = tmp.file("views.safetensors");
  save_safetensors(path, std::map<std::string, Tensor>{{"t", transposed}, {"s", sliced}});
  const SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.empty());
  CHECK(f.get("t").shape() == Shape{4, 3});
  CHECK(f.get("t").to_vector<double>() == transposed.to_vector<double>());
  CHECK(f.get("s").to_vector<double>() == std::vector<double>{4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(f.contains("t"));
  CHECK_FALSE(f.contains("u"));
  CHECK(tmp.listing() == std::vector<std::string>{"views.safetensors"});
}

TEST_CASE("safetensors header follows the reference writer byte for byte", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("layout.safetensors");
  save_safetensors(path,
                   {{"b", from_vector<float>({1, 2}, {2})},
                    {"a", from_vector<uint8_t>({1, 2, 3}, {3})},
                    {"c", from_vector<int64_t>({5}, {1})},
                    {"z", scalar(3)}},
                   {{"format", "pt"}});
  const std::string expected =
      R"({"__metadata__":{"format":"pt"},"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"z":{"dtype":"F32","shape":[],"data_offsets":[16,20]},)"
      R"("a":{"dtype":"U8","shape":[3],"data_offsets":[20,23]}})";
  const std::string bytes = read_file_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | uint8_t(bytes[size_t(i)]);
  CHECK(n % 8 == 0);
  CHECK(n - expected.size() < 8);
  CHECK(bytes.substr(8, n) == expected + std::string(n - expected.size(), ' '));
  CHECK(bytes.size() == 8 + n + 23);

  // No tensors, no metadata: "{}" padded to 8.
  const std::string empty_path = tmp.file("empty.safetensors");
  save_safetensors(empty_path, std::vector<std::pair<std::string, Tensor>>{});
  CHECK(read_file_bytes(empty_path) == le64(8) + "{}      ");
  CHECK(load_safetensors(empty_path).tensors.empty());
}

TEST_CASE("safetensors reads files from foreign writers", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("foreign.safetensors");
  // Unpadded, keys in no particular order, __metadata__ last, whitespace between tokens.
  const std::string header =
      "{\"w\": {\"shape\": [2], \"data_offsets\": [4, 12], \"dtype\": \"F32\"},\n"
      " \"b\": {\"data_offsets\": [0, 4], \"dtype\": \"I32\", \"shape\": []},\n"
      " \"e\": {\"dtype\": \"F16\", \"shape\": [0, 5], \"data_offsets\": [12, 12]},\n"
      " \"__metadata__\": {\"k\": \"v\"}}";
  REQUIRE(header.size() % 8 != 0);
  const int32_t b = -7;
  const float w[2] = {1.5f, -2.0f};
  std::string data(reinterpret_cast<const char*>(&b), 4);
  data += std::string(reinterpret_cast<const char*>(w), 8);
  write_file_bytes(path, st_file(header, data));

  const SafetensorsFile f = load_safetensors(path);
  CHECK(names_of(f) == std::vector<std::string>{"b", "w", "e"});
  CHECK(f.metadata == std::map<std::string, std::string>{{"k", "v"}});
  CHECK(f.get("b").item() == -7);
  CHECK(f.get("w").to_vector<float>() == std::vector<float>{1.5f, -2.0f});
  CHECK(f.get("e").shape() == Shape{0, 5});
}

TEST_CASE("safetensors get() names the file and the available tensors", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("names.safetensors");
  save_safetensors(path, {{"alpha", scalar(1)}, {"beta", scalar(2)}});
  const SafetensorsFile f = load_safetensors(path);
  REQUIRE_ST_ERROR(f.get("gamma"), path, "gamma");
  REQUIRE_THROWS_WITH(f.get("gamma"), Contains("alpha") && Contains("beta"));
  REQUIRE_ST_ERROR(load_safetensors(tmp.file("missing.safetensors")), tmp.file("missing.safetensors"),
                   "No such file");
}

TEST_CASE("safetensors reader rejects malformed files", "[safetensors]") {
  TempDir tmp;
  // A valid U8[1] entry for the files that need one besides the broken part.
  const std::string u8 = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  auto one = [](const std::string& entry) { return R"({"a":)" + entry + "}"; };
  struct Case {
    const char* what;
    std::string bytes;
    const char* word;
  };
  const std::vector<Case> cases = {
      {"empty file", "", "8 bytes"},
      {"shorter than 8 bytes", "\x01\x02\x03\x04\x05", "8 bytes"},
      {"header length over the limit", le64(100'000'001) + "{}", "too large"},
      {"header length 2^64-1", le64(UINT64_MAX) + "{}", "too large"},
      {"header past the end of the file", le64(50) + "{}", "past the end"},
      {"empty header", le64(0), "'{'"},
      {"header starting with a space", st_file(" {}"), "'{'"},
      {"header that is an array", st_file("[]"), "'{'"},
      {"invalid UTF-8 byte", st_file("{\"a\xff\":" + u8 + "}", "x"), "UTF-8"},
      {"overlong UTF-8", st_file("{\"a\xc0\xaf\":" + u8 + "}", "x"), "UTF-8"},
      {"UTF-8 surrogate", st_file("{\"a\xed\xa0\x80\":" + u8 + "}", "x"), "UTF-8"},
      {"truncated UTF-8 sequence", st_file("{\"a\":" + u8 + "}\xe2\x9c"), "UTF-8"},
      {"unterminated JSON", st_file(R"({"a":)"), "JSON"},
      {"JSON with trailing garbage", st_file("{} x"), "JSON"},
      {"JSON with NUL padding", st_file(std::string("{}\0\0", 4)), "JSON"},
      {"JSON with garbage after a NUL", st_file(std::string("{}\0x", 4)), "JSON"},
      {"NUL inside a key", st_file(std::string("{\"a\0\":", 7) + u8 + "}", "x"), "JSON"},
      {"duplicate tensor name", st_file(R"({"a":)" + u8 + R"(,"a":)" + u8 + "}", "x"), "duplicate"},
      {"duplicate field", st_file(one(R"({"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]})"), "x"),
       "duplicate"},
      {"duplicate metadata key", st_file(R"({"__metadata__":{"k":"1","k":"2"}})"), "duplicate"},
      {"entry that is a list", st_file(one("[0,1]"), "x"), "object"},
      {"entry that is a string", st_file(one(R"("U8")"), "x"), "object"},
      {"unknown dtype", st_file(one(R"({"dtype":"Q8","shape":[1],"data_offsets":[0,1]})"), "x"), "dtype"},
      {"dtype the engine lacks", st_file(one(R"({"dtype":"BOOL","shape":[1],"data_offsets":[0,1]})"), "x"), "dtype"},
      {"lower-case dtype", st_file(one(R"({"dtype":"u8","shape":[1],"data_offsets":[0,1]})"), "x"), "dtype"},
      {"numeric dtype", st_file(one(R"({"dtype":6,"shape":[1],"data_offsets":[0,1]})"), "x"), "dtype"},
      {"missing dtype", st_file(one(R"({"shape":[1],"data_offsets":[0,1]})"), "x"), "dtype"},
      {"shape not a list", st_file(one(R"({"dtype":"U8","shape":1,"data_offsets":[0,1]})"), "x"), "shape"},
      {"negative dimension", st_file(one(R"({"dtype":"U8","shape":[-1],"data_offsets":[0,1]})"), "x"), "shape"},
      {"fractional dimension", st_file(one(R"({"dtype":"U8","shape":[1.0],"data_offsets":[0,1]})"), "x"), "shape"},
      {"string dimension", st_file(one(R"({"dtype":"U8","shape":["1"],"data_offsets":[0,1]})"), "x"), "shape"},
      {"missing shape", st_file(one(R"({"dtype":"U8","data_offsets":[0,1]})"), "x"), "shape"},
      {"nine dimensions", st_file(one(R"({"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]})"), "x"),
       "dimensions"},
      {"shape whose size overflows",
       st_file(one(R"({"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,1]})"), "x"), "too large"},
      {"one offset", st_file(one(R"({"dtype":"U8","shape":[1],"data_offsets":[0]})"), "x"), "data_offsets"},
      {"three offsets", st_file(one(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1,2]})"), "x"), "data_offsets"},
      {"negative offset", st_file(one(R"({"dtype":"U8","shape":[0],"data_offsets":[-1,-1]})"), "x"), "data_offsets"},
      {"fractional offset", st_file(one(R"({"dtype":"U8","shape":[1],"data_offsets":[0.0,1]})"), "x"),
       "data_offsets"},
      {"offsets not a list", st_file(one(R"({"dtype":"U8","shape":[1],"data_offsets":"0,1"})"), "x"), "data_offsets"},
      {"missing offsets", st_file(one(R"({"dtype":"U8","shape":[1]})"), "x"), "data_offsets"},
      {"end before begin", st_file(one(R"({"dtype":"U8","shape":[1],"data_offsets":[1,0]})"), "x"), "end before"},
      {"byte count off by one", st_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,7]})"), "1234567"),
       "bytes"},
      {"byte count of a dtype", st_file(one(R"({"dtype":"F16","shape":[2],"data_offsets":[0,8]})"), "12345678"),
       "bytes"},
      {"hole before the first tensor", st_file(one(R"({"dtype":"U8","shape":[1],"data_offsets":[4,5]})"), "12345"),
       "hole"},
      {"hole between tensors",
       st_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
               R"("b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})",
               "123"),
       "hole"},
      {"overlapping tensors",
       st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
               R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
               "123"),
       "overlap"},
      {"two tensors on the same bytes",
       st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
               R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
               "12"),
       "overlap"},
      {"trailing bytes", st_file(one(u8), "xy"), "trailing"},
      {"trailing bytes without tensors", st_file("{}", "x"), "trailing"},
      {"truncated data", st_file(one(R"({"dtype":"U8","shape":[3],"data_offsets":[0,3]})"), "xy"), "truncated"},
      {"metadata value not a string", st_file(R"({"__metadata__":{"k":1}})"), "__metadata__"},
      {"metadata value an object", st_file(R"({"__metadata__":{"k":{"x":"y"}}})"), "__metadata__"},
      {"metadata a string", st_file(R"({"__metadata__":"k"})"), "__metadata__"},
      {"metadata null", st_file(R"({"__metadata__":null})"), "__metadata__"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    INFO(c.what);
    const std::string path = tmp.file("bad" + std::to_string(i) + ".safetensors");
    write_file_bytes(path, c.bytes);
    REQUIRE_ST_ERROR(load_safetensors(path), path, c.word);
  }
  // A directory is not a safetensors file.
  REQUIRE_ST_ERROR(load_safetensors(tmp.dir.string()), tmp.dir.string(), "regular file");
}

TEST_CASE("safetensors writer rejects bad names before touching the target", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("model.safetensors");
  write_file_bytes(path, "previous contents");
  const Tensor t = scalar(1);
  REQUIRE_ST_ERROR(save_safetensors(path, {{"a", t}, {"b", t}, {"a", t}}), path, "more than once");
  REQUIRE_ST_ERROR(save_safetensors(path, {{"__metadata__", t}}), path, "reserved");
  REQUIRE_ST_ERROR(save_safetensors(path, {{"bad\xff", t}}), path, "UTF-8");
  REQUIRE_ST_ERROR(save_safetensors(path, {{"a", t}}, {{"k", "\xc0\xaf"}}), path, "UTF-8");
  REQUIRE_ST_ERROR(save_safetensors(path, {{"a", Tensor()}}), path, "undefined");
  CHECK(read_file_bytes(path) == "previous contents");
  CHECK(tmp.listing() == std::vector<std::string>{"model.safetensors"});
}

TEST_CASE("safetensors writes atomically", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("model.safetensors");
  const Tensor big = zeros({256, 1024});  // 1 MiB

  SECTION("replacing an existing file leaves nothing else behind") {
    write_file_bytes(path, "previous contents");
    save_safetensors(path, {{"w", big}});
    CHECK(load_safetensors(path).get("w").shape() == Shape{256, 1024});
    CHECK(tmp.listing() == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("a missing directory fails naming the path and the reason") {
    const std::string missing = tmp.file("no/such/dir/model.safetensors");
    REQUIRE_ST_ERROR(save_safetensors(missing, {{"w", big}}), missing, "No such file or directory");
    CHECK(tmp.listing().empty());
  }
  SECTION("a failed rename removes the temporary file") {
    fs::create_directory(path);  // rename() cannot replace a directory with a file
    fs::create_directory(tmp.dir / "model.safetensors" / "inside");
    REQUIRE_ST_ERROR(save_safetensors(path, {{"w", big}}), path, "renaming");
    CHECK(tmp.listing() == std::vector<std::string>{"model.safetensors"});
    CHECK(fs::is_directory(tmp.dir / "model.safetensors" / "inside"));
  }
  SECTION("a failed write removes the temporary file and keeps the old one") {
    write_file_bytes(path, "previous contents");
    // Cap the file size this process may write, so the data write fails part way (EFBIG, not SIGXFSZ).
    rlimit saved;
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    rlimit capped = saved;
    capped.rlim_cur = 64 * 1024;
    auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &capped) == 0);
    std::string message;
    try {
      save_safetensors(path, {{"w", big}});
    } catch (const stgs::Error& e) {
      message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old_handler);
    CHECK_THAT(message, Contains(path) && Contains("writing") && Contains("too large"));
    CHECK(read_file_bytes(path) == "previous contents");
    CHECK(tmp.listing() == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("a read-only directory fails and keeps the old file") {
    write_file_bytes(path, "previous contents");
    fs::permissions(tmp.dir, fs::perms::owner_read | fs::perms::owner_exec);
    // Root writes regardless of permissions; there the case says nothing.
    if (::access(tmp.dir.c_str(), W_OK) != 0) {
      REQUIRE_ST_ERROR(save_safetensors(path, {{"w", big}}), path, "Permission denied");
      CHECK(read_file_bytes(path) == "previous contents");
      CHECK(tmp.listing() == std::vector<std::string>{"model.safetensors"});
    }
    fs::permissions(tmp.dir, fs::perms::owner_all);
  }
}

TEST_CASE("safetensors saves CUDA tensors", "[safetensors][cuda]") {
  TempDir tmp;
  const std::string path = tmp.file("gpu.safetensors");
  const Tensor host = arange(0, 6).reshape({2, 3});
  save_safetensors(path, {{"x", host.to(Device::cuda())}, {"h", half_bits(DType::BF16, {2}, {1, 2}).to(Device::cuda())}});
  const SafetensorsFile f = load_safetensors(path);
  CHECK(f.get("x").device().is_cpu());
  CHECK(bytes_of(f.get("x")) == bytes_of(host));
  CHECK(bytes_of(f.get("h")) == bytes_of(half_bits(DType::BF16, {2}, {1, 2})));
}
