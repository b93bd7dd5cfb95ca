// Tests of the synthetic audio-visual deepfake set (data/synthetic.h) and of `stgs synth`: file formats, the
// manifest, balance, determinism, refusal to overwrite, and that the artefacts are there while real and fake
// clips share duration, loudness and silence structure.
#include <sndfile.h>
#include <stb/stb_image.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "data/synthetic.h"
#include "kernels/check.h"
#include "tests/test_files.h"

using namespace stgs;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system's temp directory, removed when the test ends.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("stgs_test_synth_" + name + "_" + std::to_string(getpid()))) {
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One manifest row as text fields; face_box arrives without its quotes.
struct Row {
  std::string id, split, label, category, frames, audio, face_box, source;
};

// Reads the manifest: the exact header, then rows of 8 fields where only face_box is quoted.
std::vector<Row> read_manifest(const fs::path& dir) {
  std::ifstream in(dir / "manifest.csv");
  std::string line;
  REQUIRE(std::getline(in, line));
  REQUIRE(line == "id,split,label,category,frames,audio,face_box,source");
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    const size_t open = line.find('"'), close = line.rfind('"');
    REQUIRE(open != std::string::npos);
    REQUIRE(close > open);
    std::vector<std::string> head;
    std::stringstream ss(line.substr(0, open));
    for (std::string f; std::getline(ss, f, ',');) head.push_back(f);
    REQUIRE(head.size() == 6);
    REQUIRE(line.substr(close + 1, 1) == ",");
    rows.push_back({head[0], head[1], head[2], head[3], head[4], head[5], line.substr(open + 1, close - open - 1),
                    line.substr(close + 2)});
  }
  return rows;
}

std::vector<int> parse_box(const std::string& text) {
  std::vector<int> v;
  std::stringstream ss(text);
  for (std::string f; std::getline(ss, f, ',');) v.push_back(std::stoi(f));
  return v;
}

// Mono 16-bit 16 kHz WAV as doubles in [-1, 1]; checks the format.
std::vector<double> read_wav(const fs::path& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  REQUIRE(f != nullptr);
  CHECK(info.samplerate == 16000);
  CHECK(info.channels == 1);
  CHECK(info.format == (SF_FORMAT_WAV | SF_FORMAT_PCM_16));
  std::vector<double> x(size_t(info.frames));
  CHECK(sf_read_double(f, x.data(), info.frames) == info.frames);
  sf_close(f);
  return x;
}

struct Frame {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

Frame read_png(const fs::path& path) {
  int w = 0, h = 0, channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &channels, 3);
  REQUIRE(data != nullptr);
  CHECK(channels == 3);
  Frame f{w, h, std::vector<uint8_t>(data, data + size_t(w) * h * 3)};
  stbi_image_free(data);
  return f;
}

std::vector<fs::path> sorted_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Every regular file under dir, relative path -> contents.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_file(e.path());
  return files;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

// |mean(a) - mean(b)| in units of its standard error: a two-sample z statistic.
double z_score(const std::vector<double>& a, const std::vector<double>& b) {
  auto variance = [](const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return s / double(v.size() - 1);
  };
  return std::abs(mean(a) - mean(b)) / std::sqrt(variance(a) / double(a.size()) + variance(b) / double(b.size()));
}

double correlation(const std::vector<double>& a, const std::vector<double>& b) {
  const double ma = mean(a), mb = mean(b);
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i)
    ab += (a[i] - ma) * (b[i] - mb), aa += (a[i] - ma) * (a[i] - ma), bb += (b[i] - mb) * (b[i] - mb);
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

double rms(const std::vector<double>& x, size_t a, size_t b) {
  double s = 0;
  for (size_t i = a; i < b; ++i) s += x[i] * x[i];
  return std::sqrt(s / double(std::max<size_t>(b - a, 1)));
}

}  // namespace

TEST_CASE("synthetic set: file formats and the manifest", "[data]") {
  TempDir tmp("formats");
  data::SynthConfig c;
  c.clips = 12, c.size = 32, c.frames = 4, c.min_seconds = 1.0, c.max_seconds = 1.2, c.seed = 3;
  const std::vector<data::SynthClip> clips = data::generate_synthetic(tmp.path.string(), c);
  REQUIRE(clips.size() == 12);
  CHECK(fs::exists(tmp.path / "synth.json"));
  CHECK_FALSE(fs::exists(tmp.path / "manifest.csv.tmp"));

  const std::vector<Row> rows = read_manifest(tmp.path);
  REQUIRE(rows.size() == 12);
  std::map<std::string, int> per_category;
  std::set<std::string> ids;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    INFO("row " << i << ": " << r.id);
    CHECK(r.id == clips[i].id);
    if (i > 0) CHECK(rows[i - 1].id < r.id);  // sorted by id, so the row order says nothing either
    ids.insert(r.id);
    // Opaque ids: 16 lowercase hex digits, nothing that names a label or category.
    CHECK(r.id.size() == 16);
    CHECK(r.id.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(r.frames == "clips/" + r.id + "/frames");
    CHECK(r.audio == "clips/" + r.id + "/audio.wav");
    CHECK((r.split == "train" || r.split == "val" || r.split == "test"));
    CHECK((r.category == "A" || r.category == "B" || r.category == "C" || r.category == "D"));
    CHECK(r.label == (r.category == "A" ? "real" : "fake"));
    CHECK(r.source == "synthetic");
    ++per_category[r.category];

    const std::vector<int> box = parse_box(r.face_box);
    REQUIRE(box.size() == 4);
    CHECK(box[0] >= 0);
    CHECK(box[1] >= 0);
    CHECK(box[0] + box[2] <= 32);
    CHECK(box[1] + box[3] <= 32);
    CHECK(box[2] > 8);

    const std::vector<fs::path> frames = sorted_files(tmp.path / r.frames);
    REQUIRE(frames.size() == 4);
    CHECK(frames[0].filename() == "frame_00.png");
    CHECK(frames[3].filename() == "frame_03.png");
    for (const fs::path& f : frames) {
      const Frame image = read_png(f);
      CHECK(image.width == 32);
      CHECK(image.height == 32);
    }
    const std::vector<double> audio = read_wav(tmp.path / r.audio);
    CHECK(audio.size() >= 16000);
    CHECK(audio.size() <= 19200);
  }
  CHECK(ids.size() == 12);
  CHECK(per_category == std::map<std::string, int>{{"A", 3}, {"B", 3}, {"C", 3}, {"D", 3}});
}

TEST_CASE("synthetic set: splits balanced per category; --mix skews the categories", "[data]") {
  TempDir tmp("splits");
  data::SynthConfig c;
  c.clips = 40, c.size = 16, c.frames = 1, c.min_seconds = c.max_seconds = 1.0;
  data::generate_synthetic(tmp.path.string(), c);
  std::map<std::string, std::map<std::string, int>> counts;  // category -> split -> clips
  for (const Row& r : read_manifest(tmp.path)) ++counts[r.category][r.split];
  for (const char* cat : {"A", "B", "C", "D"}) {
    INFO("category " << cat);
    CHECK(counts[cat]["train"] == 7);  // 10 clips: 7 / 1.5 / 1.5, the half clips to the earlier split
    CHECK(counts[cat]["val"] == 2);
    CHECK(counts[cat]["test"] == 1);
  }

  c.force = true, c.clips = 12, c.mix[0] = 2, c.mix[1] = 0, c.mix[2] = 1, c.mix[3] = 1;
  data::generate_synthetic(tmp.path.string(), c);
  std::map<std::string, int> per_category;
  for (const Row& r : read_manifest(tmp.path)) ++per_category[r.category];
  CHECK(per_category == std::map<std::string, int>{{"A", 6}, {"C", 3}, {"D", 3}});
  CHECK(sorted_files(tmp.path / "clips").size() == 12);  // the earlier set's clips are gone
}

TEST_CASE("synthetic set: same seed gives identical bytes whatever the thread count", "[data]") {
  TempDir a("seed_a"), b("seed_b"), d("seed_d");
  data::SynthConfig c;
  c.clips = 8, c.size = 24, c.frames = 3, c.min_seconds = 1.0, c.max_seconds = 1.5, c.seed = 11, c.threads = 1;
  data::generate_synthetic(a.path.string(), c);
  c.threads = 2;
  data::generate_synthetic(b.path.string(), c);
  const auto files_a = snapshot(a.path), files_b = snapshot(b.path);
  CHECK(files_a.size() == 2 + 8 * 4);  // manifest, synth.json, per clip 3 frames and the audio
  CHECK(files_a == files_b);

  c.seed = 12;
  data::generate_synthetic(d.path.string(), c);
  const auto files_d = snapshot(d.path);
  CHECK(files_d.at("manifest.csv") != files_a.at("manifest.csv"));
  std::set<std::string> audio_a, audio_d;
  for (const auto& [name, bytes] : files_a)
    if (name.ends_with(".wav")) audio_a.insert(bytes);
  for (const auto& [name, bytes] : files_d)
    if (name.ends_with(".wav")) CHECK(audio_a.count(bytes) == 0);
}

TEST_CASE("synthetic set: refuses a non-empty directory unless forced; rejects bad values", "[data]") {
  TempDir tmp("force");
  fs::create_directories(tmp.path);
  { std::ofstream(tmp.path / "notes.txt") << "keep me"; }
  data::SynthConfig c;
  c.clips = 4, c.size = 16, c.frames = 1, c.min_seconds = c.max_seconds = 1.0;
  CHECK_THROWS_WITH(data::generate_synthetic(tmp.path.string(), c), Catch::Contains("is not empty"));
  CHECK_FALSE(fs::exists(tmp.path / "manifest.csv"));
  c.force = true;
  data::generate_synthetic(tmp.path.string(), c);
  CHECK(read_manifest(tmp.path).size() == 4);
  CHECK(read_file(tmp.path / "notes.txt") == "keep me");  // --force removes only the generator's own files

  data::SynthConfig bad;
  bad.strength = 1.5;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("strength must be in [0, 1], got 1.5"));
  bad = {};
  bad.min_seconds = 0.5;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("seconds must satisfy"));
  bad = {};
  bad.mix[0] = bad.mix[1] = bad.mix[2] = bad.mix[3] = 0;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("category weights are all zero"));
  bad = {};
  bad.size = 8;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("size must be in [16, 1024] pixels, got 8"));
}

// The statistics a detector could use: reals and fakes must agree on duration, loudness and leading silence,
// while fake audio lacks upper-band energy and a fake video's mouth does not follow the audio.
TEST_CASE("synthetic set: artefacts present; no loudness or timing shortcut", "[data]") {
  TempDir tmp("stats");
  data::SynthConfig c;
  c.clips = 64, c.size = 40, c.frames = 16, c.min_seconds = 2.0, c.max_seconds = 2.5, c.seed = 5, c.strength = 1.0;
  data::generate_synthetic(tmp.path.string(), c);

  std::vector<double> duration[2], loudness[2], lead[2], upper[2], sync[2];  // [fake audio or video?]
  for (const Row& r : read_manifest(tmp.path)) {
    const bool fake_audio = r.category == "B" || r.category == "D", fake_video = r.category == "C" || r.category == "D";
    const std::vector<double> x = read_wav(tmp.path / r.audio);
    duration[fake_audio].push_back(double(x.size()) / 16000);
    loudness[fake_audio].push_back(20 * std::log10(rms(x, 0, x.size())));
    // Leading silence: the first 20 ms window louder than 1/10 of the clip's RMS.
    const size_t w = 320;
    size_t onset = 0;
    while (onset + w < x.size() && rms(x, onset, onset + w) < 0.1 * rms(x, 0, x.size())) onset += w;
    lead[fake_audio].push_back(double(onset) / 16000);
    // Upper-band weight: energy of the second difference (gain 16 sin^4(pi f / fs), so mostly above 4 kHz)
    // over the signal's energy.
    double d2 = 0, e = 0;
    for (size_t i = 1; i + 1 < x.size(); ++i) d2 += std::pow(x[i + 1] - 2 * x[i] + x[i - 1], 2), e += x[i] * x[i];
    upper[fake_audio].push_back(d2 / e);

    // Mouth darkness at each frame (centre of the mouth: (0.5, 0.75) of the face box) against the audio's
    // loudness over the 40 ms around the frame's instant.
    const std::vector<int> box = parse_box(r.face_box);
    const std::vector<fs::path> frames = sorted_files(tmp.path / r.frames);
    REQUIRE(frames.size() == 16);
    std::vector<double> darkness, level;
    for (size_t k = 0; k < frames.size(); ++k) {
      const Frame f = read_png(frames[k]);
      const int mx = box[0] + box[2] / 2, my = box[1] + box[3] * 3 / 4, hw = std::max(1, box[2] / 8),
                hh = std::max(1, box[3] / 12);
      double sum = 0;
      int count = 0;
      for (int y = my - hh; y <= my + hh; ++y)
        for (int x2 = mx - hw; x2 <= mx + hw; ++x2)
          for (int ch = 0; ch < 3; ++ch) sum += f.rgb[(size_t(y) * f.width + x2) * 3 + ch], ++count;
      darkness.push_back(-sum / count);
      const double t = (double(k) + 0.5) * double(x.size()) / 16000 / double(frames.size());
      const size_t a = size_t(std::max(0.0, t - 0.02) * 16000), b = std::min(x.size(), size_t((t + 0.02) * 16000));
      level.push_back(rms(x, a, b));
    }
    sync[fake_video].push_back(correlation(darkness, level));
  }
  REQUIRE(duration[0].size() == 32);
  REQUIRE(sync[1].size() == 32);
  INFO("duration real/fake " << mean(duration[0]) << " / " << mean(duration[1]));
  INFO("loudness dB real/fake " << mean(loudness[0]) << " / " << mean(loudness[1]));
  INFO("leading silence s real/fake " << mean(lead[0]) << " / " << mean(lead[1]));
  INFO("upper-band weight real/fake " << mean(upper[0]) << " / " << mean(upper[1]));
  INFO("mouth-audio correlation real/fake video " << mean(sync[0]) << " / " << mean(sync[1]));
  // Same distributions: the means differ by less than 3 standard errors (and by little in absolute terms).
  CHECK(z_score(duration[0], duration[1]) < 3);
  CHECK(z_score(loudness[0], loudness[1]) < 3);
  CHECK(z_score(lead[0], lead[1]) < 3);
  CHECK(std::abs(mean(loudness[0]) - mean(loudness[1])) < 2.0);
  CHECK(std::abs(mean(lead[0]) - mean(lead[1])) < 0.1);
  CHECK(mean(upper[1]) < 0.5 * mean(upper[0]));
  CHECK(mean(sync[0]) > 0.5);
  CHECK(mean(sync[1]) < mean(sync[0]) - 0.3);
}

// ---- the command line ---------------------------------------------------------------------------------

namespace {

using testing::CommandResult;

testing::CommandResult run_synth(const std::string& args) { return testing::run_stgs("synth " + args); }

}  // namespace

TEST_CASE("stgs synth: writes and reports a set; rejects bad values", "[data][cli]") {
  TempDir tmp("cli");
  const std::string out = " --out " + tmp.path.string();
  const std::string small = out + " --clips 8 --size 16 --frames 2 --seconds 1:1.2";

  CommandResult r = run_synth(small + " --seed 4");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("wrote 8 clips"));
  CHECK_THAT(r.output, Catch::Contains("categories: A 2, B 2, C 2, D 2"));
  CHECK(read_manifest(tmp.path).size() == 8);

  r = run_synth(small);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("is not empty; use --force"));
  r = run_synth(small + " --force --quiet --strength 0.5 --split 1,1,0 --mix 1,1,1,1 --threads 1");
  CHECK(r.status == 0);
  // Quiet, but a split left empty is still worth a word: pretrain and extract would refuse the set.
  CHECK(r.output == "stgs synth: warning: the test split has no clips (8 clips, --split 1,1,0); pretrain and "
                    "extract need clips in train, val and test\n");

  r = run_synth("--help");
  CHECK(r.status == 0);
  for (const char* option : {"--out", "--clips", "--seed", "--size", "--frames", "--seconds", "--strength", "--split",
                             "--mix", "--threads", "--force", "--quiet", "(default 200)", "(default 3:3.5)"})
    CHECK_THAT(r.output, Catch::Contains(option));

  r = run_synth(out + " --strength 2");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("strength must be in [0, 1], got 2"));
  r = run_synth(out + " --clips many");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--clips expects an integer in [1, 1000000], got 'many'"));
  r = run_synth(out + " --split 70,30");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--split expects 3 numbers"));
  r = run_synth(out + " --seconds 2:x");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--seconds expects a number, got 'x'"));
  r = run_synth(out + " --frames");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("--frames expects a value"));
  r = run_synth("--clips 4");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("--out DIR is required"));
  r = run_synth(out + " --bogus");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("unknown flag --bogus"));
}
