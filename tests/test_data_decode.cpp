// Data decoding on real files the tests write themselves: images (PNG/JPEG via stb_image_write), audio
// (WAV/FLAC/OGG via libsndfile), their corrupt and truncated variants, manifests (a malformed corpus, skip-bad,
// writer round trip), and the spectrogram against a direct F64 DFT.
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <set>
#include <sstream>
#include <thread>

#include "tests/test_files.h"
#include "data/audio_io.h"
#include "data/image_io.h"
#include "data/manifest.h"
#include "data/spectrogram.h"
#include "engine/io/safetensors.h"
#include "engine/nn/resnet.h"
#include "engine/random.h"

using namespace stgs;
using namespace stgs::data;
namespace fs = std::filesystem;
using Catch::Contains;

// The call throws stgs::Error whose message contains both `a` and `b`.
#define REQUIRE_ERROR_WITH(call, a, b)                                                     \
  do {                                                                                      \
    REQUIRE_THROWS_AS(call, stgs::Error);                                                   \
    REQUIRE_THROWS_WITH(call, Contains(std::string(a)) && Contains(std::string(b)));        \
  } while (0)

namespace {

struct DataTempDir : testing::TempDir {
  DataTempDir() : testing::TempDir("data") {}
};

using testing::read_file_bytes;
using testing::write_file_bytes;

// The first `fraction` of a file, as a truncated download would leave it.
void truncate_copy(const std::string& from, const std::string& to, double fraction) {
  const std::string bytes = read_file_bytes(from);
  write_file_bytes(to, bytes.substr(0, size_t(double(bytes.size()) * fraction)));
}

Image pattern_image(int w, int h) {
  Image img{w, h, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.rgb[(size_t(y) * w + x) * 3 + size_t(c)] = uint8_t((x * 7 + y * 13 + c * 50) % 256);
  return img;
}

Image solid_image(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img{w, h, {}};
  for (int i = 0; i < w * h; ++i) img.rgb.insert(img.rgb.end(), {r, g, b});
  return img;
}

// |sum x[n] exp(-2 pi i f n / rate)|: the strength of frequency f in x.
double tone_strength(const std::vector<float>& x, double f, int rate) {
  std::complex<double> acc = 0;
  for (size_t n = 0; n < x.size(); ++n) acc += double(x[n]) * std::polar(1.0, -2 * std::numbers::pi * f * double(n) / rate);
  return std::abs(acc);
}

// The frequency between lo and hi (1 Hz steps) at which x is strongest.
double dominant_frequency(const std::vector<float>& x, int rate, double lo, double hi) {
  double best_f = lo, best = -1;
  for (double f = lo; f <= hi; f += 1) {
    const double s = tone_strength(x, f, rate);
    if (s > best) best = s, best_f = f;
  }
  return best_f;
}

// Stereo sine: left amplitude a_left, right a_right, same frequency and phase; interleaved.
std::vector<float> stereo_sine(int64_t frames, int rate, double f, double a_left, double a_right) {
  std::vector<float> x(size_t(frames) * 2);
  for (int64_t n = 0; n < frames; ++n) {
    const double s = std::sin(2 * std::numbers::pi * f * double(n) / rate);
    x[size_t(2 * n)] = float(a_left * s);
    x[size_t(2 * n + 1)] = float(a_right * s);
  }
  return x;
}

}  // namespace

// ---- images ---------------------------------------------------------------------------------------------

TEST_CASE("read_image decodes PNG exactly and JPEG closely, converting grey and RGBA to RGB", "[data]") {
  DataTempDir tmp;
  const Image img = pattern_image(37, 23);
  const std::string png = tmp.file("a.png"), jpg = tmp.file("a.jpg");
  REQUIRE(stbi_write_png(png.c_str(), img.width, img.height, 3, img.rgb.data(), img.width * 3) != 0);
  const Image back = read_image(png);
  CHECK(back.width == 37);
  CHECK(back.height == 23);
  CHECK(back.rgb == img.rgb);

  // A smooth image survives JPEG at quality 100 within a few levels.
  Image smooth{64, 48, {}};
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) smooth.rgb.insert(smooth.rgb.end(), {uint8_t(x * 4), uint8_t(y * 5), uint8_t(128)});
  REQUIRE(stbi_write_jpg(jpg.c_str(), 64, 48, 3, smooth.rgb.data(), 100) != 0);
  const Image dec = read_image(jpg);
  REQUIRE(dec.rgb.size() == smooth.rgb.size());
  int worst = 0;
  for (size_t i = 0; i < dec.rgb.size(); ++i) worst = std::max(worst, std::abs(int(dec.rgb[i]) - int(smooth.rgb[i])));
  CHECK(worst <= 6);

  const std::vector<uint8_t> grey = {0, 100, 200, 255};
  const std::string grey_png = tmp.file("grey.png");
  REQUIRE(stbi_write_png(grey_png.c_str(), 2, 2, 1, grey.data(), 2) != 0);
  const Image g = read_image(grey_png);
  CHECK(g.rgb == std::vector<uint8_t>{0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255});
  const std::vector<uint8_t> rgba = {10, 20, 30, 0, 40, 50, 60, 255};
  const std::string rgba_png = tmp.file("rgba.png");
  REQUIRE(stbi_write_png(rgba_png.c_str(), 2, 1, 4, rgba.data(), 8) != 0);
  CHECK(read_image(rgba_png).rgb == std::vector<uint8_t>{10, 20, 30, 40, 50, 60});
}

TEST_CASE("write_png and write_jpeg round trip through read_image", "[data]") {
  DataTempDir tmp;
  const Image img = pattern_image(20, 11);
  write_png(tmp.file("w.png"), img);
  CHECK(read_image(tmp.file("w.png")).rgb == img.rgb);
  write_jpeg(tmp.file("w.jpg"), solid_image(16, 16, 200, 100, 50), 95);
  const Image j = read_image(tmp.file("w.jpg"));
  CHECK(j.width == 16);
  for (size_t i = 0; i < j.rgb.size(); i += 3) CHECK(std::abs(int(j.rgb[i]) - 200) <= 3);
  CHECK(fs::directory_iterator(tmp.dir) != fs::directory_iterator());
  for (const auto& e : fs::directory_iterator(tmp.dir)) CHECK(e.path().string().find(".tmp.") == std::string::npos);
  REQUIRE_ERROR_WITH(write_png(tmp.file("bad.png"), Image{4, 4, std::vector<uint8_t>(5)}), "bad.png", "3 * width");
}

TEST_CASE("corrupt, truncated and missing images give errors naming the file", "[data]") {
  DataTempDir tmp;
  const Image img = pattern_image(64, 64);
  const std::string png = tmp.file("ok.png"), jpg = tmp.file("ok.jpg");
  REQUIRE(stbi_write_png(png.c_str(), 64, 64, 3, img.rgb.data(), 64 * 3) != 0);
  REQUIRE(stbi_write_jpg(jpg.c_str(), 64, 64, 3, img.rgb.data(), 90) != 0);
  truncate_copy(png, tmp.file("cut.png"), 0.6);
  truncate_copy(jpg, tmp.file("cut.jpg"), 0.6);
  std::string garbage = read_file_bytes(png);
  for (size_t i = 8; i < garbage.size(); i += 3) garbage[i] = char(garbage[i] ^ 0x5a);  // keep the signature only
  write_file_bytes(tmp.file("garbled.png"), garbage);
  write_file_bytes(tmp.file("text.jpg"), "this is not an image\n");
  for (const char* name : {"cut.png", "cut.jpg", "garbled.png", "text.jpg"}) {
    INFO(name);
    REQUIRE_ERROR_WITH(read_image(tmp.file(name)), tmp.file(name), "cannot decode image");
  }
  REQUIRE_ERROR_WITH(read_image(tmp.file("missing.png")), tmp.file("missing.png"), "no such file");
}

TEST_CASE("sample_frame_indices spreads K frames evenly over N", "[data]") {
  CHECK(sample_frame_indices(10, 5) == std::vector<int64_t>{1, 3, 5, 7, 9});
  CHECK(sample_frame_indices(8, 8) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(sample_frame_indices(3, 6) == std::vector<int64_t>{0, 0, 1, 1, 2, 2});
  CHECK(sample_frame_indices(100, 1) == std::vector<int64_t>{50});
  CHECK(sample_frame_indices(250, 8) == std::vector<int64_t>{15, 46, 78, 109, 140, 171, 203, 234});
  REQUIRE_THROWS_AS(sample_frame_indices(0, 4), stgs::Error);
}

TEST_CASE("crop_and_resize crops the box, clips it to the image and resizes", "[data]") {
  CHECK(centre_square(640, 480) == PixelBox{80, 0, 480, 480});
  CHECK(centre_square(100, 300) == PixelBox{0, 100, 100, 100});

  // Same size in and out: the pixels of the box, scaled to [0, 1], channel-major.
  const Image img = pattern_image(40, 30);
  const Tensor same = crop_and_resize(img, PixelBox{5, 7, 12, 12}, 12, "test");
  REQUIRE(same.shape() == Shape{3, 12, 12});
  const float* s = same.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 12; ++y)
      for (int x = 0; x < 12; ++x)
        CHECK(s[(c * 12 + y) * 12 + x] ==
              Approx(img.rgb[(size_t(7 + y) * 40 + size_t(5 + x)) * 3 + size_t(c)] / 255.0).margin(1e-5));

  // Left half red, right half blue: a box inside the left half resizes to pure red at any size.
  Image halves = solid_image(50, 20, 255, 0, 0);
  for (int y = 0; y < 20; ++y)
    for (int x = 25; x < 50; ++x) {
      uint8_t* p = &halves.rgb[(size_t(y) * 50 + size_t(x)) * 3];
      p[0] = 0, p[2] = 255;
    }
  const Tensor red = crop_and_resize(halves, PixelBox{2, 3, 20, 15}, 33, "test");
  REQUIRE(red.shape() == Shape{3, 33, 33});
  const std::vector<float> v = red.to_vector<float>();
  const size_t plane = 33 * 33;
  for (size_t i = 0; i < plane; ++i) {
    REQUIRE(v[i] == Approx(1.0).margin(1e-6));
    REQUIRE(v[2 * plane + i] == Approx(0.0).margin(1e-6));
  }
  // A box overhanging the top-left corner is clipped to the part inside (still all red).
  const Tensor clipped = crop_and_resize(halves, PixelBox{-10, -10, 30, 25}, 8, "test");
  CHECK(clipped.to_vector<float>()[0] == Approx(1.0).margin(1e-6));
  REQUIRE_ERROR_WITH(crop_and_resize(halves, PixelBox{60, 0, 10, 10}, 8, "frame 'x.png'"), "frame 'x.png'",
                     "does not overlap the 50x20 image");
  // A box as large as int allows covers the image (its right edge must not wrap around).
  const Tensor whole = crop_and_resize(halves, PixelBox{10, 0, INT32_MAX, INT32_MAX}, 8, "test");
  CHECK(whole.to_vector<float>()[2 * 64 + 63] == Approx(1.0).margin(1e-6));  // blue at the bottom right
}

TEST_CASE("decode_clip samples frames evenly in name order, crops, resizes and normalises", "[data]") {
  DataTempDir tmp;
  const fs::path frames = tmp.dir / "frames";
  fs::create_directories(frames);
  // 10 frames of solid colours, written out of order, as PNG and JPEG; plus files that are not frames.
  for (int i : {7, 2, 9, 0, 4, 1, 8, 3, 6, 5}) {
    char name[32];
    std::snprintf(name, sizeof name, "frame_%04d.%s", i, i % 2 ? "jpg" : "png");
    const Image img = solid_image(48, 36, uint8_t(20 * i), uint8_t(255 - 20 * i), 7);
    if (i % 2) {
      write_jpeg((frames / name).string(), img, 100);
    } else {
      write_png((frames / name).string(), img);
    }
  }
  write_file_bytes((frames / "notes.txt").string(), "not a frame");
  const std::vector<std::string> files = list_frame_files(frames.string());
  REQUIRE(files.size() == 10);
  CHECK(fs::path(files.front()).filename() == "frame_0000.png");
  CHECK(fs::path(files.back()).filename() == "frame_0009.jpg");

  ClipOptions raw;
  raw.frames = 5;
  raw.size = 16;
  raw.normalize = false;
  const Tensor clip = decode_clip(files, std::nullopt, raw);
  REQUIRE(clip.shape() == Shape{5, 3, 16, 16});
  const std::vector<float> v = clip.to_vector<float>();
  const int64_t expected_frames[] = {1, 3, 5, 7, 9};
  for (int k = 0; k < 5; ++k) {
    const int64_t i = expected_frames[k];
    for (int c = 0; c < 3; ++c) {
      const double want = (c == 0 ? 20.0 * double(i) : c == 1 ? 255.0 - 20.0 * double(i) : 7.0) / 255.0;
      for (int p = 0; p < 256; p += 37) CHECK(v[size_t((k * 3 + c) * 256 + p)] == Approx(want).margin(4.0 / 255));
    }
  }

  ClipOptions normed = raw;
  normed.normalize = true;
  const std::vector<float> n = decode_clip(files, std::nullopt, normed).to_vector<float>();
  for (size_t i = 0; i < n.size(); i += 97) {
    const size_t c = i / 256 % 3;
    CHECK(n[i] == Approx((v[i] - kImageNetMean[c]) / kImageNetStd[c]).margin(1e-5));
  }

  // A face box selects its region: a green square on a grey frame.
  Image face = solid_image(60, 40, 128, 128, 128);
  for (int y = 10; y < 30; ++y)
    for (int x = 30; x < 50; ++x) {
      uint8_t* p = &face.rgb[(size_t(y) * 60 + size_t(x)) * 3];
      p[0] = 0, p[1] = 255, p[2] = 0;
    }
  write_png(tmp.file("face.png"), face);
  const Tensor crop = decode_clip({tmp.file("face.png")}, PixelBox{30, 10, 20, 20}, raw);
  REQUIRE(crop.shape() == Shape{5, 3, 16, 16});
  const std::vector<float> cv = crop.to_vector<float>();
  CHECK(cv[0] == Approx(0.0).margin(1e-6));
  CHECK(cv[256] == Approx(1.0).margin(1e-6));
  CHECK(std::equal(cv.begin(), cv.begin() + 768, cv.begin() + 4 * 768));  // one frame, repeated K times

  REQUIRE_ERROR_WITH(list_frame_files(tmp.file("nowhere")), "nowhere", "does not exist");
  fs::create_directories(tmp.dir / "empty");
  REQUIRE_ERROR_WITH(list_frame_files(tmp.file("empty")), "empty", "holds no .png");
  write_file_bytes(tmp.file("broken.png"), "\x89PNG\r\n\x1a\n broken");
  REQUIRE_ERROR_WITH(decode_clip({tmp.file("broken.png")}, std::nullopt, raw), "broken.png", "cannot decode image");
}

// ---- audio ----------------------------------------------------------------------------------------------

TEST_CASE("audio at 44.1 kHz stereo becomes 16 kHz mono with its length and frequency kept", "[data]") {
  DataTempDir tmp;
  const int rate = 44100;
  const int64_t frames = 66150;  // 1.5 s
  const std::vector<float> stereo = stereo_sine(frames, rate, 1000.0, 0.5, 0.3);
  for (auto [name, format] : {std::pair{"s.wav", AudioFormat::WavPcm16}, std::pair{"s.flac", AudioFormat::Flac16},
                              std::pair{"s.ogg", AudioFormat::OggVorbis}}) {
    INFO(name);
    const std::string path = tmp.file(name);
    write_audio(path, stereo.data(), frames, 2, rate, format);
    const Audio audio = read_audio(path);
    CHECK(audio.sample_rate == rate);
    REQUIRE(audio.samples.size() == size_t(frames));
    if (format != AudioFormat::OggVorbis) {  // lossless: the mean of the channels, to 16-bit precision
      for (int64_t n = 0; n < frames; n += 1013)
        CHECK(audio.samples[size_t(n)] == Approx(0.4 * std::sin(2 * std::numbers::pi * 1000.0 * double(n) / rate)).margin(1e-4));
    }
    const std::vector<float> mono16 = load_audio_16k(path);
    CHECK(mono16.size() == size_t(24000));  // round(66150 * 16000 / 44100)
    // The middle second (away from the filter's edge transients): still a 1 kHz tone of amplitude 0.4.
    const std::vector<float> mid(mono16.begin() + 4000, mono16.begin() + 20000);
    CHECK(dominant_frequency(mid, kSampleRate, 900, 1100) == Approx(1000).margin(1));
    double sum_sq = 0;
    for (float x : mid) sum_sq += double(x) * x;
    CHECK(std::sqrt(sum_sq / double(mid.size())) == Approx(0.4 / std::sqrt(2.0)).epsilon(0.02));
  }
  // Float WAV keeps samples exactly; 16 kHz input is passed through unresampled.
  std::vector<float> ramp(1600);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = float(i) / 1600.0f - 0.5f;
  write_audio(tmp.file("f.wav"), ramp.data(), 1600, 1, kSampleRate, AudioFormat::WavFloat);
  CHECK(load_audio_16k(tmp.file("f.wav")) == ramp);
  CHECK(resample(ramp, 16000, 8000).size() == 800);
  CHECK(resample(ramp, 16000, 48000).size() == 4800);
}

TEST_CASE("unreadable, corrupt and truncated audio files give errors naming the file", "[data]") {
  DataTempDir tmp;
  const std::vector<float> stereo = stereo_sine(44100, 44100, 440.0, 0.5, 0.5);
  write_audio(tmp.file("ok.wav"), stereo.data(), 44100, 2, 44100, AudioFormat::WavPcm16);
  write_audio(tmp.file("ok.flac"), stereo.data(), 44100, 2, 44100, AudioFormat::Flac16);
  truncate_copy(tmp.file("ok.wav"), tmp.file("cut.wav"), 0.5);
  truncate_copy(tmp.file("ok.flac"), tmp.file("cut.flac"), 0.5);
  REQUIRE_ERROR_WITH(read_audio(tmp.file("cut.wav")), tmp.file("cut.wav"), "truncated");
  REQUIRE_ERROR_WITH(read_audio(tmp.file("cut.flac")), tmp.file("cut.flac"), "truncated or corrupt");
  write_file_bytes(tmp.file("noise.wav"), std::string(4000, '\x37'));
  REQUIRE_ERROR_WITH(read_audio(tmp.file("noise.wav")), tmp.file("noise.wav"), "cannot open audio file");
  REQUIRE_ERROR_WITH(read_audio(tmp.file("missing.flac")), tmp.file("missing.flac"), "no such file");
  write_audio(tmp.file("empty.wav"), nullptr, 0, 1, 16000, AudioFormat::WavPcm16);
  REQUIRE_ERROR_WITH(read_audio(tmp.file("empty.wav")), tmp.file("empty.wav"), "holds no samples");
  std::vector<float> with_nan(100, 0.1f);
  with_nan[42] = std::nanf("");
  write_audio(tmp.file("nan.wav"), with_nan.data(), 100, 1, 16000, AudioFormat::WavFloat);
  REQUIRE_ERROR_WITH(read_audio(tmp.file("nan.wav")), tmp.file("nan.wav"), "non-finite sample at frame 42");
  // A rate libsamplerate cannot convert from is refused before anything is allocated for the output.
  const std::vector<float> quiet(200000, 0.1f);
  write_audio(tmp.file("slow.wav"), quiet.data(), int64_t(quiet.size()), 1, 1, AudioFormat::WavPcm16);
  REQUIRE_ERROR_WITH(load_audio_16k(tmp.file("slow.wav")), tmp.file("slow.wav"), "declares a sample rate of 1 Hz");
  REQUIRE_ERROR_WITH(resample(quiet, 1, 16000), "1 -> 16000 Hz", "outside libsamplerate's ratio range");
}

// ---- manifests ------------------------------------------------------------------------------------------

namespace {

// A dataset directory with clip0..clip2 (frames directories with one PNG each, and a WAV each).
struct ManifestFixture {
  DataTempDir tmp;
  ManifestFixture() {
    const std::vector<float> silence(1600, 0.0f);
    for (int i = 0; i < 3; ++i) {
      const std::string clip = "clip" + std::to_string(i);
      fs::create_directories(tmp.dir / "frames" / clip);
      write_png((tmp.dir / "frames" / clip / "0000.png").string(), solid_image(8, 8, 10, 20, 30));
      write_audio(tmp.file(clip + ".wav"), silence.data(), 1600, 1, 16000, AudioFormat::WavPcm16);
    }
  }
  // Writes `body` under the standard header as m.csv and returns its path.
  std::string manifest(const std::string& body, const std::string& header = "id,split,label,category,frames,audio,face_box,source") const {
    const std::string path = tmp.file("m.csv");
    write_file_bytes(path, header + "\n" + body);
    return path;
  }
};

const char* const kGoodRow = "c0,train,real,A,frames/clip0,clip0.wav,,synthetic\n";

}  // namespace

TEST_CASE("read_manifest parses rows, resolving paths against the manifest's directory", "[data]") {
  ManifestFixture fx;
  const std::string path = fx.manifest(
      "# a comment line\n"
      "\n"
      "c0,train,real,A,frames/clip0,clip0.wav,,synthetic\r\n"
      "  c1 , val , fake , RealVideo-FakeAudio , frames/clip1/ , clip1.wav , 1 2 30 40 , \"FakeAVCeleb, v1.2\"\n"
      "\"c,2\",test,fake,D,frames/clip2/0000.png;frames/clip0/0000.png,clip2.wav,\"-4,-2,10,10\",\n");
  const Manifest m = read_manifest(path);
  REQUIRE(m.rows.size() == 3);
  CHECK(m.skipped.empty());
  const ManifestRow& a = m.rows[0];
  CHECK(a.id == "c0");
  CHECK(a.split == Split::Train);
  CHECK(a.label == Label::Real);
  CHECK(a.category == Category::A);
  CHECK(a.frames_dir == (fx.tmp.dir / "frames/clip0").string());
  CHECK(a.audio == fx.tmp.file("clip0.wav"));
  CHECK(!a.face_box);
  CHECK(a.source == "synthetic");
  CHECK(a.line == 4);
  CHECK(a.frames().size() == 1);
  const ManifestRow& b = m.rows[1];
  CHECK(b.id == "c1");
  CHECK(b.split == Split::Val);
  CHECK(b.category == Category::B);
  CHECK(b.frames_dir == (fx.tmp.dir / "frames/clip1/").string());
  REQUIRE(b.face_box);
  CHECK(*b.face_box == PixelBox{1, 2, 30, 40});
  CHECK(b.source == "FakeAVCeleb, v1.2");
  const ManifestRow& c = m.rows[2];
  CHECK(c.id == "c,2");
  CHECK(c.split == Split::Test);
  CHECK(c.frames_dir.empty());
  CHECK(c.frame_files == std::vector<std::string>{(fx.tmp.dir / "frames/clip2/0000.png").string(),
                                                  (fx.tmp.dir / "frames/clip0/0000.png").string()});
  CHECK(*c.face_box == PixelBox{-4, -2, 10, 10});
  CHECK(c.source.empty());

  // Columns in any order; the optional ones may be left out; a UTF-8 byte-order mark is ignored.
  const std::string reordered =
      fx.manifest("frames/clip1,clip1.wav,fake,C,x9,test\n", "\xEF\xBB\xBF" "frames,audio,label,category,id,split");
  const Manifest r = read_manifest(reordered);
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0].id == "x9");
  CHECK(r.rows[0].category == Category::C);
  CHECK(r.rows[0].split == Split::Test);
}

TEST_CASE("read_manifest reports every malformed row with file:line and the problem", "[data]") {
  ManifestFixture fx;
  const std::string where = fx.tmp.file("m.csv") + ":3: ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"c1,train,real,A,frames/clip1,clip1.wav,\n", "7 fields, but the header has 8 columns"},
      {"c1,train,real,A,frames/clip1,clip1.wav,,src,extra\n", "9 fields, but the header has 8 columns"},
      {"c1,train,maybe,A,frames/clip1,clip1.wav,,\n", "unknown label 'maybe' (expected real or fake)"},
      {"c1,dev,real,A,frames/clip1,clip1.wav,,\n", "unknown split 'dev' (expected train, val or test)"},
      {"c1,train,fake,E,frames/clip1,clip1.wav,,\n", "unknown category 'E'"},
      {"c1,train,real,C,frames/clip1,clip1.wav,,\n", "label 'real' contradicts category C (FakeVideo-RealAudio), which is fake"},
      {"c1,train,fake,A,frames/clip1,clip1.wav,,\n", "label 'fake' contradicts category A"},
      {"c0,train,real,A,frames/clip1,clip1.wav,,\n", "duplicate id 'c0' (first on line 2)"},
      {",train,real,A,frames/clip1,clip1.wav,,\n", "empty id"},
      {"c1,train,real,A,frames/clip1,nothere.wav,,\n", "audio file '" + fx.tmp.file("nothere.wav") + "' does not exist"},
      {"c1,train,real,A,frames/none,clip1.wav,,\n", "frames directory '" + fx.tmp.file("frames/none") + "' does not exist"},
      {"c1,train,real,A,clip1.wav,clip1.wav,,\n", "is not a directory"},
      {"c1,train,real,A,frames,clip1.wav,,\n", "holds no .png, .jpg or .jpeg file"},
      {"c1,train,real,A,frames/clip1/0000.png;frames/clip1/0001.png,clip1.wav,,\n", "frame file '" + fx.tmp.file("frames/clip1/0001.png") + "' does not exist"},
      {"c1,train,real,A,frames/clip1/0000.png;clip1.wav,clip1.wav,,\n", "frames list entry 'clip1.wav' is not a .png"},
      {"c1,train,real,A,,clip1.wav,,\n", "empty frames field"},
      {"c1,train,real,A,frames/clip1,,,\n", "empty audio field"},
      {"c1,train,real,A,frames/clip1,clip1.wav,1 2 3,\n", "face_box '1 2 3' is not four integers 'x y w h'"},
      {"c1,train,real,A,frames/clip1,clip1.wav,1 2 3 x,\n", "face_box '1 2 3 x' is not four integers"},
      {"c1,train,real,A,frames/clip1,clip1.wav,\"1,2,3 4\",\n", "face_box '1,2,3 4' is not four integers"},
      {"c1,train,real,A,frames/clip1,clip1.wav,1 2 0 5,\n", "face_box '1 2 0 5' has a width or height <= 0"},
      {"c1,train,real,A,frames/clip1,clip1.wav,,\"unclosed\n", "unterminated quoted field at column 41"},
      {"c1,train,real,A,frames/clip1,clip1.wav,,say \"hi\"\n", "a quote inside the unquoted field"},
  };
  for (const auto& [row, problem] : cases) {
    INFO(row);
    const std::string path = fx.manifest(std::string(kGoodRow) + row);
    REQUIRE_ERROR_WITH(read_manifest(path), where, problem);
  }
  // check_files = false accepts paths that do not exist (importers write manifests before extracting).
  ManifestReadOptions no_files;
  no_files.check_files = false;
  CHECK(read_manifest(fx.manifest("c1,train,real,A,frames/none,nothere.wav,,\n"), no_files).rows.size() == 1);

  // Problems with the file or the header always throw, naming the line.
  const std::string m = fx.tmp.file("m.csv");
  REQUIRE_ERROR_WITH(read_manifest(fx.manifest(kGoodRow, "id,split,label,categroy,frames,audio")), m + ":1: ",
                     "unknown column 'categroy'");
  REQUIRE_ERROR_WITH(read_manifest(fx.manifest(kGoodRow, "id,split,label,frames,audio")), m + ":1: ",
                     "lacks the required column 'category'");
  REQUIRE_ERROR_WITH(read_manifest(fx.manifest(kGoodRow, "id,split,label,category,frames,audio,id")), m + ":1: ",
                     "column 'id' appears twice");
  write_file_bytes(m, "# only a comment\n\n");
  REQUIRE_ERROR_WITH(read_manifest(m), m, "no header line");
  REQUIRE_ERROR_WITH(read_manifest(fx.tmp.file("none.csv")), fx.tmp.file("none.csv"), "no such file");
  REQUIRE_ERROR_WITH(read_manifest(fx.tmp.dir.string()), "cannot read manifest '" + fx.tmp.dir.string(),
                     "is a directory");
  write_file_bytes(m, std::string("RIFF\x24\0\0\0WAVE", 12));
  REQUIRE_ERROR_WITH(read_manifest(m), m, "is not a CSV text file (it holds NUL bytes at byte 5)");
}

TEST_CASE("read_manifest with skip_bad lists and skips bad rows", "[data]") {
  ManifestFixture fx;
  const std::string path = fx.manifest(std::string(kGoodRow) +
                                       "c1,train,maybe,A,frames/clip1,clip1.wav,,\n"
                                       "c1,val,fake,B,frames/clip1,clip1.wav,,\n"
                                       "c0,test,fake,D,frames/clip2,clip2.wav,,\n"
                                       "c2,test,fake,D,frames/clip2,clip2.wav\n"
                                       "c3,test,fake,D,frames/clip2,missing.wav,,\n"
                                       "c4,test,fake,D,frames/clip2,clip2.wav,,\n");
  ManifestReadOptions skip;
  skip.skip_bad = true;
  const Manifest m = read_manifest(path, skip);
  std::vector<std::string> ids;
  for (const ManifestRow& r : m.rows) ids.push_back(r.id);
  CHECK(ids == std::vector<std::string>{"c0", "c1", "c4"});
  REQUIRE(m.skipped.size() == 4);
  CHECK_THAT(m.skipped[0], Contains(path + ":3: unknown label 'maybe'"));
  CHECK_THAT(m.skipped[1], Contains(path + ":5: duplicate id 'c0' (first on line 2)"));
  CHECK_THAT(m.skipped[2], Contains(path + ":6: 6 fields, but the header has 8 columns"));
  CHECK_THAT(m.skipped[3], Contains(path + ":7: audio file"));
  // Without skip_bad the first bad row stops the read.
  REQUIRE_ERROR_WITH(read_manifest(path), path + ":3: ", "unknown label");
}

TEST_CASE("write_manifest round trips through read_manifest with relative paths", "[data]") {
  ManifestFixture fx;
  std::vector<ManifestRow> rows(3);
  rows[0].id = "#hash first";
  rows[0].split = Split::Val;
  rows[0].label = Label::Fake;
  rows[0].category = Category::D;
  rows[0].frames_dir = (fx.tmp.dir / "frames/clip0").string();
  rows[0].audio = fx.tmp.file("clip0.wav");
  rows[0].face_box = PixelBox{-3, 4, 50, 60};
  rows[0].source = "say \"hi\", twice ";
  rows[1].id = "plain";
  rows[1].frame_files = {(fx.tmp.dir / "frames/clip1/0000.png").string(), (fx.tmp.dir / "frames/clip2/0000.png").string()};
  rows[1].audio = fx.tmp.file("clip1.wav");
  rows[2].id = "c,omma";
  rows[2].split = Split::Test;
  rows[2].label = Label::Fake;
  rows[2].category = Category::B;
  rows[2].frames_dir = (fx.tmp.dir / "frames/clip2").string();
  rows[2].audio = fx.tmp.file("clip2.wav");
  fs::create_directories(fx.tmp.dir / "lists");
  const std::string path = (fx.tmp.dir / "lists" / "out.csv").string();
  write_manifest(path, rows);

  const std::string text = read_file_bytes(path);
  CHECK(text.rfind("id,split,label,category,frames,audio,face_box,source\n", 0) == 0);
  CHECK(text.find(fx.tmp.dir.string()) == std::string::npos);  // relative paths only
  CHECK_THAT(text, Contains("../frames/clip1/0000.png;../frames/clip2/0000.png,../clip1.wav"));

  const Manifest m = read_manifest(path);
  REQUIRE(m.rows.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    INFO(rows[i].id);
    const ManifestRow& a = rows[i];
    const ManifestRow& b = m.rows[i];
    CHECK(b.id == a.id);
    CHECK(b.split == a.split);
    CHECK(b.label == a.label);
    CHECK(b.category == a.category);
    CHECK(b.frames_dir == a.frames_dir);
    CHECK(b.frame_files == a.frame_files);
    CHECK(b.audio == a.audio);
    CHECK(b.face_box == a.face_box);
    CHECK(b.source == a.source);
  }

  std::vector<ManifestRow> dup = {rows[1], rows[1]};
  REQUIRE_ERROR_WITH(write_manifest(path, dup), "row 1 (id 'plain')", "duplicate id");
  std::vector<ManifestRow> wrong = {rows[1]};
  wrong[0].category = Category::C;
  REQUIRE_ERROR_WITH(write_manifest(path, wrong), path, "contradicts category C");
  wrong[0].category = Category::A;
  wrong[0].frames_dir = "frames";
  REQUIRE_ERROR_WITH(write_manifest(path, wrong), path, "exactly one of frames_dir and frame_files");
  CHECK(read_manifest(path).rows.size() == 3);  // failed writes left the file alone
}

// ---- spectrogram ----------------------------------------------------------------------------------------

namespace {

// The reference: |sum_j frame[j] w[j] e^{-2 pi i j k / 512}| in F64, with the padding built by the
// definition (mirror at either end until inside, or zeros) and the window written out in full.
std::vector<double> reference_spectrogram(const std::vector<float>& x, bool reflect) {
  const int64_t n = int64_t(x.size());
  const int64_t frames = 1 + n / 160;
  std::vector<double> window(512, 0.0);
  for (int i = 0; i < 400; ++i) window[size_t(56 + i)] = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / 400.0);
  auto sample = [&](int64_t i) -> double {
    if (!reflect && (i < 0 || i >= n)) return 0.0;
    while (n > 1 && (i < 0 || i >= n)) i = i < 0 ? -i : 2 * (n - 1) - i;
    return x[size_t(n > 1 ? i : 0)];
  };
  std::vector<double> out(size_t(frames) * 257);
  for (int64_t t = 0; t < frames; ++t)
    for (int k = 0; k < 257; ++k) {
      std::complex<double> acc = 0;
      for (int j = 0; j < 512; ++j)
        acc += sample(t * 160 - 256 + j) * window[size_t(j)] * std::polar(1.0, -2 * std::numbers::pi * j * k / 512.0);
      out[size_t(t * 257 + k)] = std::abs(acc);
    }
  return out;
}

std::vector<float> random_signal(int64_t n, uint64_t seed) {
  Generator g(seed);
  return rand({n}, DType::F32, Device::cpu(), &g, -1, 1).to_vector<float>();
}

}  // namespace

TEST_CASE("spectrogram matches a direct F64 DFT with reflect and zero padding", "[data]") {
  for (int64_t n : {int64_t(4321), int64_t(160), int64_t(100), int64_t(1)}) {
    const std::vector<float> x = random_signal(n, 11 + uint64_t(n));
    for (bool reflect : {true, false}) {
      INFO("n = " << n << (reflect ? " reflect" : " zero"));
      const Tensor spec = spectrogram(x, reflect ? PadMode::Reflect : PadMode::Zero);
      REQUIRE(spec.shape() == Shape{1 + n / 160, 257});
      const std::vector<float> got = spec.to_vector<float>();
      const std::vector<double> ref = reference_spectrogram(x, reflect);
      double peak = 0;
      for (double v : ref) peak = std::max(peak, v);
      double worst = 0;
      for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - ref[i]));
      CHECK(worst <= 2e-6 * std::max(peak, 1.0));
    }
  }
  CHECK(spectrogram_frames(48000) == 301);
  REQUIRE_ERROR_WITH(spectrogram(std::vector<float>{}), "spectrogram", "empty");
}

TEST_CASE("spectrogram is thread-safe and reproducible", "[data]") {
  std::vector<std::vector<float>> signals;
  for (uint64_t s = 0; s < 8; ++s) signals.push_back(random_signal(16000 + int64_t(s) * 77, 100 + s));
  std::vector<std::vector<float>> serial, parallel(signals.size());
  for (const auto& x : signals) serial.push_back(spectrogram(x).to_vector<float>());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < signals.size(); ++i)
    threads.emplace_back([&, i] {
      for (int rep = 0; rep < 3; ++rep) parallel[i] = spectrogram(signals[i]).to_vector<float>();
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < signals.size(); ++i) CHECK(parallel[i] == serial[i]);
}

TEST_CASE("normalize_volume raises quiet audio to -30 dBFS and never lowers", "[data]") {
  auto rms = [](const std::vector<float>& x) {
    double s = 0;
    for (float v : x) s += double(v) * v;
    return std::sqrt(s / double(x.size()));
  };
  std::vector<float> quiet(16000), loud(16000), silent(16000, 0.0f);
  for (size_t i = 0; i < quiet.size(); ++i) {
    const double s = std::sin(2 * std::numbers::pi * 440.0 * double(i) / 16000);
    quiet[i] = float(0.01 * s);  // about -43 dBFS
    loud[i] = float(0.5 * s);    // about -9 dBFS
  }
  const double before = rms(quiet);
  const double gain = normalize_volume(quiet);
  CHECK(gain == Approx(std::pow(10.0, -1.5) / before).epsilon(1e-9));
  CHECK(20 * std::log10(rms(quiet)) == Approx(-30.0).margin(1e-4));
  const std::vector<float> loud_before = loud;
  CHECK(normalize_volume(loud) == 1.0);
  CHECK(loud == loud_before);
  CHECK(normalize_volume(silent) == 1.0);
  CHECK(rms(silent) == 0.0);
  // A different target works the same way.
  std::vector<float> q2(quiet.size());
  for (size_t i = 0; i < q2.size(); ++i) q2[i] = quiet[i] * 0.1f;
  normalize_volume(q2, -20.0);
  CHECK(20 * std::log10(rms(q2)) == Approx(-20.0).margin(1e-4));
}

TEST_CASE("spectrogram_from_file runs the whole recipe", "[data]") {
  DataTempDir tmp;
  const std::vector<float> stereo = stereo_sine(44100, 44100, 1000.0, 0.01, 0.01);
  write_audio(tmp.file("a.flac"), stereo.data(), 44100, 2, 44100, AudioFormat::Flac16);
  const Tensor spec = spectrogram_from_file(tmp.file("a.flac"));
  REQUIRE(spec.shape() == Shape{101, 257});
  // The tone sits in bin 1000 / (16000 / 512) = 32, raised to -30 dBFS: peak |X| = A * sum(w) / 2 = A * 100.
  const std::vector<float> v = spec.to_vector<float>();
  const float* mid = v.data() + 50 * 257;
  CHECK(std::max_element(mid, mid + 257) - mid == 32);
  CHECK(mid[32] == Approx(std::sqrt(2.0) * std::pow(10.0, -1.5) * 100.0).epsilon(0.02));
}

TEST_CASE("crop_window centres in evaluation, crops randomly in training and tiles short clips", "[data]") {
  // spec[t][k] = t * 1000 + k identifies each frame.
  auto make = [](int64_t t_count) {
    std::vector<float> v(size_t(t_count) * 4);
    for (int64_t t = 0; t < t_count; ++t)
      for (int k = 0; k < 4; ++k) v[size_t(t * 4 + k)] = float(t * 1000 + k);
    return from_vector(v, {t_count, 4});
  };
  auto first_frame = [](const Tensor& w) { return int64_t(w.to_vector<float>()[0]) / 1000; };
  auto consecutive_from = [](const Tensor& w, int64_t start, int64_t t_count) {
    const std::vector<float> v = w.to_vector<float>();
    for (int64_t t = 0; t < w.size(0); ++t)
      if (v[size_t(t * 4 + 3)] != float((start + t) % t_count * 1000 + 3)) return false;
    return true;
  };

  const Tensor spec = make(500);
  const Tensor centre = crop_window(spec, 300);
  REQUIRE(centre.shape() == Shape{300, 4});
  CHECK(consecutive_from(centre, 100, 500));

  Generator g(7);
  std::set<int64_t> starts;
  for (int i = 0; i < 40; ++i) {
    const Tensor w = crop_window(spec, 300, &g);
    const int64_t s = first_frame(w);
    CHECK(s >= 0);
    CHECK(s <= 200);
    CHECK(consecutive_from(w, s, 500));
    starts.insert(s);
  }
  CHECK(starts.size() >= 20);
  CHECK(*starts.begin() < 50);
  CHECK(*starts.rbegin() > 150);
  Generator g1(99), g2(99);
  CHECK(crop_window(spec, 300, &g1).to_vector<float>() == crop_window(spec, 300, &g2).to_vector<float>());

  // Exactly 300 frames: the whole clip either way.
  CHECK(consecutive_from(crop_window(make(300), 300, &g), 0, 300));

  // 120 frames tiled to 300: frame t is t mod 120 (evaluation) or (s + t) mod 120 (training).
  const Tensor short_spec = make(120);
  const Tensor tiled = crop_window(short_spec, 300);
  REQUIRE(tiled.shape() == Shape{300, 4});
  CHECK(consecutive_from(tiled, 0, 120));
  const Tensor tiled_train = crop_window(short_spec, 300, &g);
  CHECK(consecutive_from(tiled_train, first_frame(tiled_train), 120));
  CHECK(consecutive_from(crop_window(make(1), 300), 0, 1));
  REQUIRE_ERROR_WITH(crop_window(make(10), 0), "crop_window", "must be >= 1");
}

TEST_CASE("SpectrogramStats accumulates, merges, normalises and round trips through safetensors", "[data]") {
  DataTempDir tmp;
  Generator g(5);
  const Tensor a = rand({40, 257}, DType::F32, Device::cpu(), &g, 0, 3);
  const Tensor b = rand({25, 257}, DType::F32, Device::cpu(), &g, 1, 5);
  SpectrogramStats sa, sb, all;
  sa.add(a);
  sb.add(b);
  all.add(a);
  all.add(b);
  SpectrogramStats merged = sa;
  merged.merge(sb);
  CHECK(merged.frames() == 65);
  CHECK(merged.mean().to_vector<float>() == all.mean().to_vector<float>());
  CHECK(merged.std().to_vector<float>() == all.std().to_vector<float>());

  // Against a direct two-pass computation per bin.
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  const std::vector<float> mean = merged.mean().to_vector<float>(), sd = merged.std().to_vector<float>();
  for (int k = 0; k < 257; k += 16) {
    std::vector<double> col;
    for (int t = 0; t < 40; ++t) col.push_back(va[size_t(t * 257 + k)]);
    for (int t = 0; t < 25; ++t) col.push_back(vb[size_t(t * 257 + k)]);
    double m = 0, var = 0;
    for (double x : col) m += x;
    m /= double(col.size());
    for (double x : col) var += (x - m) * (x - m);
    var /= double(col.size());
    CHECK(mean[size_t(k)] == Approx(m).epsilon(1e-6));
    CHECK(sd[size_t(k)] == Approx(std::sqrt(var)).epsilon(1e-5));
  }

  // Normalising the data it was computed on gives zero mean and unit std per bin.
  SpectrogramStats check;
  check.add(merged.normalize(a));
  check.add(merged.normalize(b));
  for (float m : check.mean().to_vector<float>()) CHECK(m == Approx(0.0).margin(1e-5));
  for (float s : check.std().to_vector<float>()) CHECK(s == Approx(1.0).epsilon(1e-4));

  const std::string path = tmp.file("stats.safetensors");
  merged.save(path);
  const SpectrogramStats back = SpectrogramStats::load(path);
  CHECK(back.frames() == 65);
  CHECK(back.mean().to_vector<float>() == mean);
  CHECK(back.std().to_vector<float>() == sd);
  const SafetensorsFile file = load_safetensors(path);
  CHECK(file.get("mean").to_vector<float>() == mean);
  CHECK(file.metadata.at("n_fft") == "512");

  save_safetensors(tmp.file("other.safetensors"), {{"sum", zeros({257}, DType::F64)}}, {{"format", "something-else"}});
  REQUIRE_ERROR_WITH(SpectrogramStats::load(tmp.file("other.safetensors")), tmp.file("other.safetensors"),
                     "metadata format is 'something-else'");
  REQUIRE_ERROR_WITH(SpectrogramStats().mean(), "SpectrogramStats", "no frames");
  REQUIRE_ERROR_WITH(sa.add(zeros({3, 256})), "SpectrogramStats::add", "(T, 257)");
}
