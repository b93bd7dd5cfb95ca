// Tests of the dataset importers (data/importers.h) and `stgs import`, on tiny FakeAVCeleb and SWAN-DF trees the
// tests make with ffmpeg: frames (count, even spacing, decodable), audio (16 kHz mono, duration), the manifest,
// identity-disjoint splits, determinism, resume, unreadable videos and the error messages.
//
// Test videos are 1 s of 32x32 grey frames at 10 fps whose level encodes the frame number (16 + 20 n), so the
// frames an importer keeps say which ones it picked, with 1 s of a 440 Hz tone at 44.1 kHz stereo (AAC).
#include <catch2/catch.hpp>

#include <sndfile.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "data/audio_io.h"
#include "data/ffmpeg.h"
#include "data/image_io.h"
#include "data/importers.h"
#include "data/manifest.h"
#include "kernels/check.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::data;
namespace fs = std::filesystem;
using testing::CommandResult;
using testing::read_file_bytes;
using testing::run_stgs;
using testing::TempDir;
using testing::write_file_bytes;

namespace {

const std::string& ffmpeg_program() {
  static const std::string path = find_program("ffmpeg");
  if (path.empty()) FAIL("the ffmpeg program is not on PATH: the [import] tests make their videos with it (make deps)");
  return path;
}

void run_ffmpeg(std::vector<std::string> args) {
  args.insert(args.begin(), {ffmpeg_program(), "-nostdin", "-v", "error", "-y"});
  const ProcessResult r = run_process(args);
  INFO("ffmpeg: " << r.err);
  REQUIRE(r.status == 0);
}

// A video of `size`x`size` grey frames (level 16 + 20 n in frame n) with a stereo tone, `seconds` long.
void make_video(const std::string& path, int size, double seconds) {
  const std::string s = std::to_string(size), t = std::to_string(seconds);
  const std::string frames =
      "color=c=black:size=" + s + "x" + s + ":rate=10:duration=" + t + ",format=gray,geq=lum='16+N*20'";
  const std::string tone = "sine=frequency=440:sample_rate=44100:duration=" + t;
  run_ffmpeg({"-f", "lavfi", "-i", frames, "-f", "lavfi", "-i", tone, "-ac", "2", "-c:v", "mpeg4", "-q:v", "2",
              "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path});
}

void make_wav(const std::string& path, double seconds) {
  run_ffmpeg({"-f", "lavfi", "-i", "sine=frequency=300:sample_rate=22050:duration=" + std::to_string(seconds), "-ac",
              "2", path});
}

void copy_into(const std::string& from, const fs::path& to) {
  fs::create_directories(to.parent_path());
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

// sources.csv as rows of named fields.
std::vector<std::map<std::string, std::string>> read_sources(const fs::path& dir) {
  const std::string text = read_file_bytes((dir / "sources.csv").string());
  std::vector<std::map<std::string, std::string>> rows;
  std::vector<std::string> header, fields;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    REQUIRE(split_csv_line(text.substr(start, end - start), fields) == "");
    if (header.empty()) {
      header = fields;
      continue;
    }
    REQUIRE(fields.size() == header.size());
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < fields.size(); ++i) row[header[i]] = fields[i];
    rows.push_back(row);
  }
  CHECK(header == std::vector<std::string>{"id", "split", "category", "identities", "method", "video", "audio"});
  return rows;
}

// No identity in two splits, judged from sources.csv; returns the number of identities.
size_t check_identity_disjoint(const fs::path& dir) {
  std::map<std::string, std::set<std::string>> splits_of;
  for (const auto& row : read_sources(dir)) {
    const std::string& who = row.at("identities");
    for (size_t b = 0, e; b <= who.size(); b = e + 1) {
      e = std::min(who.find(';', b), who.size());
      splits_of[who.substr(b, e - b)].insert(row.at("split"));
    }
  }
  for (const auto& [who, splits] : splits_of) {
    INFO("identity " << who);
    CHECK(splits.size() == 1);
  }
  return splits_of.size();
}

// The 16 kHz mono WAV of a clip: checks the format and returns the duration in seconds.
double wav_seconds(const std::string& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  REQUIRE(f != nullptr);
  sf_close(f);
  CHECK(info.samplerate == 16000);
  CHECK(info.channels == 1);
  CHECK((info.format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16);
  return double(info.frames) / info.samplerate;
}

// Frames of a clip: K files, each decodable at the video's size and showing the frame sample_frame_indices picks.
void check_frames(const ManifestRow& row, int k, int size) {
  const std::vector<std::string> files = row.frames();
  REQUIRE(files.size() == size_t(k));
  const std::vector<int64_t> picked = sample_frame_indices(10, k);
  for (int i = 0; i < k; ++i) {
    const Image image = read_image(files[size_t(i)]);
    CHECK(image.width == size);
    CHECK(image.height == size);
    double mean = 0;
    for (uint8_t v : image.rgb) mean += v;
    mean /= double(image.rgb.size());
    INFO(files[size_t(i)]);
    CHECK(std::abs(mean - double(16 + 20 * picked[size_t(i)])) < 5);
  }
}

std::map<std::string, std::string> file_tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file())
      files[entry.path().lexically_relative(dir).string()] = read_file_bytes(entry.path().string());
  return files;
}

// ---- FakeAVCeleb ---------------------------------------------------------------------------------------------

// A FakeAVCeleb v1.2 tree: 6 identities, 12 readable videos over A-D, one row repeated, one corrupt video, one
// listed video that is missing.
struct FakeAVCelebTree {
  TempDir dir{"import_fav"};
  fs::path root = dir.dir / "FakeAVCeleb_v1.2";
  std::map<std::string, Category> category_of;  // video path -> its category
  std::string corrupt, missing;

  FakeAVCelebTree() {
    const std::string video = dir.file("template.mp4");
    make_video(video, 32, 1.0);
    std::string csv = "source,target1,target2,method,category,type,race,gender,path,\n";
    auto add = [&](const std::string& who, Category c, const std::string& race, const std::string& name,
                   const std::string& method, bool make = true) {
      const std::string folder = std::string(category_type(c)) + "/" + race + "/men/" + who;
      csv += who + ",-,-," + method + "," + category_name(c) + "," + category_type(c) + "," + race + ",men," + name +
             ",FakeAVCeleb/" + folder + "\n";
      const fs::path path = root / folder / name;
      if (make) copy_into(video, path);
      category_of[path.string()] = c;
      return path.string();
    };
    const char* races[] = {"African", "Asian (South)", "Caucasian (European)"};
    for (int i = 1; i <= 6; ++i) add("id0000" + std::to_string(i), Category::A, races[i % 3], "00001.mp4", "real");
    add("id00001", Category::B, "African", "00001_fake.mp4", "rtvc");
    add("id00002", Category::B, "African", "00001_fake.mp4", "rtvc");
    add("id00003", Category::C, "Asian (South)", "00001_id00005_wavtolip.mp4", "wav2lip");
    add("id00004", Category::C, "Asian (South)", "00001_3.mp4", "faceswap");
    add("id00005", Category::D, "African", "00001_10_id00001_wavtolip.mp4", "faceswap-wav2lip");
    add("id00006", Category::D, "African", "00001_10_id00002_wavtolip.mp4", "faceswap-wav2lip");
    add("id00006", Category::D, "African", "00001_10_id00002_wavtolip.mp4", "wav2lip");  // v1.2 repeats some rows
    corrupt = add("id00002", Category::C, "African", "00001_2.mp4", "faceswap");
    write_file_bytes(corrupt, "not a video at all");
    missing = add("id00001", Category::D, "African", "00001_4_id00003_wavtolip.mp4", "fsgan-wav2lip", false);
    write_file_bytes((root / "meta_data.csv").string(), csv);
  }
};

const FakeAVCelebTree& fakeavceleb_tree() {
  static const FakeAVCelebTree tree;
  return tree;
}

ImportOptions test_options(const std::string& out, int jobs) {
  ImportOptions o;
  o.out = out;
  o.frames = 4;
  o.seed = 7;
  o.jobs = jobs;
  return o;
}

// The first import of the tree (2 jobs), shared by the cases that only read it.
struct FirstImport {
  TempDir out{"import_fav_out"};
  ImportReport report;
  FirstImport() { report = import_fakeavceleb(fakeavceleb_tree().root.string(), test_options(out.dir.string(), 2)); }
};

const FirstImport& first_import() {
  static const FirstImport first;
  return first;
}

}  // namespace

TEST_CASE("import fakeavceleb: frames, 16 kHz mono audio, manifest, identity-disjoint splits", "[import]") {
  const FakeAVCelebTree& tree = fakeavceleb_tree();
  const FirstImport& first = first_import();
  const ImportReport& report = first.report;
  CHECK(report.planned == 14);  // 15 rows, one repeating another
  CHECK(report.extracted == 12);
  CHECK(report.reused == 0);
  REQUIRE(report.failures.size() == 2);
  std::string failed;
  for (const ImportFailure& f : report.failures) failed += f.file + ": " + f.reason + "\n";
  CHECK_THAT(failed, Catch::Contains(tree.corrupt + ": ") && Catch::Contains("Invalid data") &&
                         Catch::Contains(tree.missing + ": no such file"));
  REQUIRE(report.notes.size() == 1);
  CHECK_THAT(report.notes[0], Catch::Contains("1 metadata rows") && Catch::Contains("meta_data.csv:14 repeats line 13"));

  const Manifest manifest = read_manifest(report.manifest);
  REQUIRE(manifest.rows.size() == 12);
  std::map<std::string, std::string> video_of;
  for (const auto& row : read_sources(first.out.dir)) video_of[row.at("id")] = row.at("video");
  int per_category[4] = {0, 0, 0, 0};
  for (const ManifestRow& row : manifest.rows) {
    INFO("clip " << row.id);
    CHECK(row.id.size() == 16);
    CHECK(row.id.find_first_not_of("0123456789abcdef") == std::string::npos);  // opaque: no label, no file name
    CHECK(row.source == "FakeAVCeleb");
    REQUIRE(video_of.count(row.id) == 1);
    CHECK(row.category == tree.category_of.at(video_of[row.id]));
    CHECK(row.label == category_label(row.category));
    CHECK(row.frames_dir == (first.out.dir / row.id).string());
    ++per_category[int(row.category)];
    check_frames(row, 4, 32);
    CHECK(std::abs(wav_seconds(row.audio) - 1.0) < 0.05);  // AAC pads its last frame by up to 23 ms
  }
  CHECK(per_category[0] == 6);
  CHECK(per_category[1] == 2);
  CHECK(per_category[2] == 2);
  CHECK(per_category[3] == 2);

  // 6 identities at 0.7/0.15/0.15: 4 train, 1 val, 1 test, each with all of its clips.
  CHECK(check_identity_disjoint(first.out.dir) == 6);
  CHECK(report.groups == 6);
  std::map<std::string, std::set<std::string>> identities_in;
  for (const auto& row : read_sources(first.out.dir)) identities_in[row.at("split")].insert(row.at("identities"));
  CHECK(identities_in["train"].size() == 4);
  CHECK(identities_in["val"].size() == 1);
  CHECK(identities_in["test"].size() == 1);
}

TEST_CASE("import fakeavceleb: same files whatever the job count; resume redoes only incomplete clips", "[import]") {
  const FakeAVCelebTree& tree = fakeavceleb_tree();
  const FirstImport& first = first_import();
  TempDir out("import_fav_again");
  const ImportReport one_job = import_fakeavceleb(tree.root.string(), test_options(out.dir.string(), 1));
  CHECK(one_job.extracted == 12);
  CHECK(file_tree(out.dir) == file_tree(first.out.dir));  // ids, splits, frames and audio byte for byte

  // Nothing new: every clip reused, the same manifest.
  const std::string manifest = read_file_bytes(one_job.manifest);
  ImportReport again = import_fakeavceleb(tree.root.string(), test_options(out.dir.string(), 2));
  CHECK(again.extracted == 0);
  CHECK(again.reused == 12);
  CHECK(again.failures.size() == 2);
  CHECK(read_file_bytes(again.manifest) == manifest);

  // A deleted clip, a partial one, an unfinished one and one made with other options are redone, nothing else.
  const std::vector<ManifestRow>& rows = one_job.rows;
  fs::remove_all(out.dir / rows[0].id);
  fs::remove(out.dir / rows[1].id / "audio.wav");  // .complete still there: the files are checked too
  fs::remove(out.dir / rows[2].id / ".complete");  // killed before the clip was finished
  std::string record = read_file_bytes((out.dir / rows[3].id / ".complete").string());
  REQUIRE(record.find("\nframes 4\n") != std::string::npos);
  record.replace(record.find("\nframes 4\n"), 10, "\nframes 8\n");
  write_file_bytes((out.dir / rows[3].id / ".complete").string(), record);
  const auto untouched = fs::last_write_time(out.dir / rows[4].id / "frame_00.png");
  again = import_fakeavceleb(tree.root.string(), test_options(out.dir.string(), 2));
  CHECK(again.extracted == 4);
  CHECK(again.reused == 8);
  CHECK(fs::last_write_time(out.dir / rows[4].id / "frame_00.png") == untouched);
  CHECK(file_tree(out.dir) == file_tree(first.out.dir));

  // Another seed and shares move whole identities between splits; the clips stay.
  ImportOptions other = test_options(out.dir.string(), 2);
  other.seed = 8;
  other.split[0] = 0.5, other.split[1] = 0.0, other.split[2] = 0.5;
  again = import_fakeavceleb(tree.root.string(), other);
  CHECK(again.extracted == 0);
  for (const ManifestRow& r : again.rows) CHECK(r.split != Split::Val);
  CHECK(check_identity_disjoint(out.dir) == 6);

  ImportOptions strict = test_options(out.dir.string(), 1);
  strict.strict = true;
  CHECK_THROWS_WITH(import_fakeavceleb(tree.root.string(), strict), Catch::Contains("unreadable video or audio file"));
}

TEST_CASE("ffmpeg decoding: a file without an audio or a video stream says so", "[import]") {
  TempDir tmp("ffmpeg_streams");
  const std::string silent = tmp.file("silent.mp4"), sound = tmp.file("sound.wav");
  run_ffmpeg({"-f", "lavfi", "-i", "color=c=black:size=32x32:rate=10:duration=0.5", "-c:v", "mpeg4", silent});
  make_wav(sound, 0.5);
  CHECK_THROWS_WITH(decode_audio_16k(ffmpeg_program(), silent),
                    Catch::Contains("'" + silent + "': no audio stream"));
  CHECK_THROWS_WITH(decode_sampled_frames(ffmpeg_program(), sound, 2),
                    Catch::Contains("'" + sound + "': no video stream"));
  CHECK(decode_sampled_frames(ffmpeg_program(), silent, 2).size() == 2);
}

TEST_CASE("decode_sampled_frames: past the raw-size limit only the picked frames leave ffmpeg, the same frames",
          "[import]") {
  TempDir tmp("ffmpeg_select");
  const std::string video = tmp.file("v.mp4");
  make_video(video, 32, 1.0);  // 10 frames, frame n at grey level 16 + 20 n
  for (int k : {4, 16}) {      // 16 > 10: frames picked twice
    INFO("K = " << k);
    const std::vector<Image> whole = decode_sampled_frames(ffmpeg_program(), video, k);
    setenv("STGS_FFMPEG_RAW_LIMIT", "1", 1);
    const std::vector<Image> selected = decode_sampled_frames(ffmpeg_program(), video, k);
    unsetenv("STGS_FFMPEG_RAW_LIMIT");
    REQUIRE(whole.size() == size_t(k));
    REQUIRE(selected.size() == size_t(k));
    for (int i = 0; i < k; ++i) {
      CHECK(selected[size_t(i)].width == 32);
      CHECK(selected[size_t(i)].rgb == whole[size_t(i)].rgb);
    }
  }
}

TEST_CASE("import fakeavceleb: a missing root or meta_data.csv and malformed rows are named with file:line",
          "[import]") {
  TempDir dir("import_fav_errors");
  const ImportOptions options = test_options(dir.file("out"), 1);
  const std::string root = dir.file("root");
  CHECK_THROWS_WITH(import_fakeavceleb(root, options), Catch::Contains("FakeAVCeleb root '" + root + "' does not exist"));
  fs::create_directories(root);
  CHECK_THROWS_WITH(import_fakeavceleb(root, options),
                    Catch::Contains("cannot read the FakeAVCeleb metadata '" + root + "/meta_data.csv': no such file"));
  fs::create_directories(root + "/meta_data.csv");
  CHECK_THROWS_WITH(import_fakeavceleb(root, options), Catch::Contains("meta_data.csv': is a directory"));
  fs::remove(root + "/meta_data.csv");

  const std::string header = "source,target1,target2,method,category,type,race,gender,path,\n";
  const std::string good = "id00001,-,-,real,A,RealVideo-RealAudio,African,men,00001.mp4,FakeAVCeleb/x/id00001\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {header + good + "id00002,-,-,real,E,RealVideo-RealAudio,African,men,00001.mp4,FakeAVCeleb/x/id00002\n",
       "meta_data.csv:3: unknown category 'E' (expected A, B, C or D)"},
      {header + "id00002,-,-,real,A,African,men,00001.mp4\n", "meta_data.csv:2: 8 fields, but the header has 10 columns"},
      {header + ",-,-,real,A,RealVideo-RealAudio,African,men,00001.mp4,FakeAVCeleb/x\n",
       "meta_data.csv:2: empty 'source' field"},
      {header + "id00002,-,-,real,A,RealVideo-RealAudio,African,men,\"00001.mp4,FakeAVCeleb/x\n",
       "meta_data.csv:2: unterminated quoted field"},
      {"source,target1,target2,method,type,race,gender,path,\n",
       "meta_data.csv:1: the header lacks the column 'category'"},
      {"source,target1,target2,method,category,type,race,gender,path\n" + good,
       "meta_data.csv:1: the header has no unnamed folder column after 'path'"},
      {header, "meta_data.csv: no video rows after the header"},
  };
  for (const auto& [csv, message] : cases) {
    INFO(csv);
    write_file_bytes(root + "/meta_data.csv", csv);
    CHECK_THROWS_WITH(import_fakeavceleb(root, options), Catch::Contains(root + "/" + message));
  }
}

TEST_CASE("stgs import fakeavceleb: summary, resume, listed unreadable videos, usage errors, missing ffmpeg",
          "[import][cli]") {
  const FakeAVCelebTree& tree = fakeavceleb_tree();
  const FirstImport& first = first_import();
  int64_t per_split[3] = {0, 0, 0};
  for (const ManifestRow& row : first.report.rows) ++per_split[int(row.split)];
  TempDir out("import_fav_cli");
  fs::copy(first.out.dir, out.dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const std::string manifest = read_file_bytes(first.report.manifest);
  const std::string root = "'" + tree.root.string() + "'";

  CommandResult r = run_stgs("import fakeavceleb " + root + " --out " + out.dir.string() + " --frames 4 --seed 7");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("imported 12 of 14 clips into " + out.dir.string()) &&
                           Catch::Contains("0 extracted, 12 reused, 2 unreadable (listed above)") &&
                           Catch::Contains("unreadable, skipped: " + tree.corrupt + ": ") &&
                           Catch::Contains("unreadable, skipped: " + tree.missing + ": no such file") &&
                           Catch::Contains("categories: A 6, B 2, C 2, D 2") &&
                           Catch::Contains("splits:     train " + std::to_string(per_split[0]) + ", val " +
                                           std::to_string(per_split[1]) + ", test " + std::to_string(per_split[2]) +
                                           " (6 identity groups)"));
  CHECK(read_file_bytes(out.file("manifest.csv")) == manifest);  // moved directory, same relative manifest

  r = run_stgs("import fakeavceleb " + root + " --out " + out.dir.string() + " --frames 4 --seed 7 --strict");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("stgs import: error: unreadable video or audio file"));
  // The previous manifest went before any clip was touched: none is left naming clips this run changed.
  CHECK_FALSE(fs::exists(out.file("manifest.csv")));
  CHECK_FALSE(fs::exists(out.file("sources.csv")));

  // No readable clip at all: an error, not an empty manifest for the next command.
  TempDir empty("import_fav_none");
  write_file_bytes(empty.file("meta_data.csv"),
                   "source,target1,target2,method,category,type,race,gender,path,\n"
                   "id00001,-,-,real,A,RealVideo-RealAudio,African,men,00001.mp4,FakeAVCeleb/x/id00001\n");
  r = run_stgs("import fakeavceleb " + empty.dir.string() + " --out " + empty.file("out") + " --frames 2");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("none of the 1 clips could be imported"));

  r = run_stgs("import fakeavceleb --help");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("meta_data.csv") && Catch::Contains("--frames K") && Catch::Contains("--jobs N"));
  r = run_stgs("import");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("fakeavceleb") && Catch::Contains("swan-df"));
  r = run_stgs("import celebdf x --out y");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("unknown dataset 'celebdf'"));
  r = run_stgs("import fakeavceleb " + root);
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("--out DIR is required"));
  r = run_stgs("import fakeavceleb " + root + " --out " + out.dir.string() + " --split 1,2");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--split expects 3 numbers"));
  r = run_stgs("import fakeavceleb /nonexistent/fav --out " + out.dir.string());
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("FakeAVCeleb root '/nonexistent/fav' does not exist"));

  const std::string path = getenv("PATH");
  setenv("PATH", "/nonexistent", 1);
  r = run_stgs("import fakeavceleb " + root + " --out " + out.dir.string());
  setenv("PATH", path.c_str(), 1);
  CHECK(r.status == 1);
  CHECK_THAT(r.output,
             Catch::Contains("'ffmpeg' program was not found on PATH") && Catch::Contains("apt-get install ffmpeg"));
}

// ---- SWAN-DF -------------------------------------------------------------------------------------------------

namespace {

// A SWAN-DF tree: pairs (00001, 00002) both ways, (00003, 00004) and (00005, 00006); real recordings r1-r3 (48x48
// frames, unlike the 32x32 fakes) and r9, from which no fake was made.
struct SwanTree {
  TempDir dir{"import_swan"};
  fs::path root = dir.dir / "SWAN-DF", real = dir.dir / "SWAN-Idiap";

  SwanTree() {
    const std::string fake = dir.file("fake.mp4"), real_video = dir.file("real.mp4"), wav = dir.file("vc.wav");
    make_video(fake, 32, 1.0);
    make_video(real_video, 48, 1.0);
    make_wav(wav, 0.6);
    for (const char* path :
         {"256x256/00001/r1-dfl_256d-blend_m1s4-00002.mp4", "320x320/00001/r1-dfl_320d-blend_m2h1-00002.mp4",
          "160x160/00002/r2-dfl_160d-blend_m1s4-00001.mp4", "256x256/00003/r3-dfl_256d-blend_m4s4-00004.mp4",
          "256x256/00005/r5-dfl_256d-blend_m4s4-00006.mp4"})
      copy_into(fake, root / "videos" / path);
    for (const char* path :
         {"wav/00001/r1-freevc-pretrained-tuned70k-00002.wav", "wav/00002/r2-freevc-24hz-notuning-00001.wav",
          "wav/00002/r2-yourtts-pretrained-notuning-00001.wav", "wav/00003/r3-diffvc-x-y-00004.wav",
          "wav/00005/r5-hifivc-x-y-00006.wav"})
      copy_into(wav, root / "audio" / path);
    write_file_bytes((root / "audio/wav/00001/notes.txt").string(), "not audio");
    copy_into(wav, root / "audio/wav/00001/unnamed.wav");
    // Links back up the tree (a loop) and across it: every file is still found once.
    fs::create_directory_symlink("../..", root / "videos/256x256/loop");
    fs::create_directory_symlink("../audio", root / "videos/audio_again");
    for (const char* name : {"r1.mp4", "r2.mp4", "session_01/r3.mp4", "r9.mp4"}) copy_into(real_video, real / name);
  }
};

const SwanTree& swan_tree() {
  static const SwanTree tree;
  return tree;
}

}  // namespace

TEST_CASE("import swan-df: fakes paired by subjects and recording; real videos add A, B and C", "[import]") {
  const SwanTree& tree = swan_tree();
  TempDir out("import_swan_out");
  ImportOptions options = test_options(out.dir.string(), 2);

  // Without real videos: category D only, the i-th fake video of a pair with its (i mod n)-th wav.
  const ImportReport fakes = import_swandf(tree.root.string(), options);
  CHECK(fakes.planned == 5);
  CHECK(fakes.failures.empty());
  for (const ManifestRow& r : fakes.rows) CHECK(r.category == Category::D);
  std::string notes;
  for (const std::string& n : fakes.notes) notes += n + "\n";
  CHECK_THAT(notes, Catch::Contains("1 files in resolution or wav folders have no") &&
                        Catch::Contains("unnamed.wav") && Catch::Contains("1 wavs outnumber the fake videos") &&
                        Catch::Contains("categories A, B and C are empty"));

  options.real_dir = tree.real.string();
  const ImportReport all = import_swandf(tree.root.string(), options);
  CHECK(all.planned == 16);
  CHECK(all.reused == 5);  // the D clips of the first run
  CHECK(all.extracted == 11);
  CHECK(all.groups == 3);
  CHECK_THAT(all.notes.back(), Catch::Contains("1 real videos are not the recording of any fake"));
  int per_category[4] = {0, 0, 0, 0};
  for (const ManifestRow& row : read_manifest(all.manifest).rows) {
    INFO("clip " << row.id << " category " << category_name(row.category));
    ++per_category[int(row.category)];
    CHECK(row.source == "SWAN-DF");
    // A and B show the real 48x48 recording, C and D the 32x32 fake; A and C carry its 1 s of sound, B and D a wav.
    const bool real_video = row.category == Category::A || row.category == Category::B;
    const bool real_audio = row.category == Category::A || row.category == Category::C;
    check_frames(row, 4, real_video ? 48 : 32);
    CHECK(std::abs(wav_seconds(row.audio) - (real_audio ? 1.0 : 0.6)) < 0.05);
  }
  CHECK(per_category[0] == 3);  // r1, r2, r3
  CHECK(per_category[1] == 4);  // one per wav of r1, r2, r3
  CHECK(per_category[2] == 4);  // one per fake video of r1, r2, r3
  CHECK(per_category[3] == 5);
  CHECK(check_identity_disjoint(out.dir) == 6);
  for (const auto& row : read_sources(out.dir)) {
    INFO(row.at("audio"));
    CHECK(row.at("audio").find("audio_again") == std::string::npos);  // the first route in name order, always
    CHECK(row.at("video").find("loop") == std::string::npos);
  }
  for (const auto& row : read_sources(out.dir))
    if (row.at("category") == "D" && row.at("video").find("r2-") != std::string::npos)
      CHECK(row.at("method") == "160x160/dfl_160d-blend_m1s4+freevc-24hz-notuning");
}

TEST_CASE("stgs import swan-df: summary and errors", "[import][cli]") {
  const SwanTree& tree = swan_tree();
  TempDir out("import_swan_cli");
  CommandResult r = run_stgs("import swan-df " + tree.root.string() + " --out " + out.dir.string() +
                             " --frames 2 --format jpg --jobs 2 --quiet");
  CHECK(r.status == 0);
  CHECK(r.output.empty());
  const Manifest manifest = read_manifest(out.file("manifest.csv"));
  REQUIRE(manifest.rows.size() == 5);
  const std::string first_clip = out.file(manifest.rows[0].id);
  CHECK(manifest.rows[0].frames() ==
        std::vector<std::string>{first_clip + "/frame_00.jpg", first_clip + "/frame_01.jpg"});

  r = run_stgs("import swan-df " + tree.root.string() + " --out " + out.dir.string() + " --frames 2 --format jpg");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("imported 5 of 5 clips") &&
                           Catch::Contains("0 extracted, 5 reused, 0 unreadable") &&
                           Catch::Contains("note:"));

  r = run_stgs("import swan-df --help");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("<W>x<H>/<subject1>/<recording>-<models>-<subject2>.mp4") &&
                           Catch::Contains("--real REAL"));
  r = run_stgs("import swan-df " + tree.root.string() + " --out " + out.dir.string() + " --real " + out.file("none"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("SWAN real-video directory '" + out.file("none") + "' does not exist"));
  r = run_stgs("import swan-df " + out.file("none") + " --out " + out.dir.string());
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("SWAN-DF root '" + out.file("none") + "' does not exist"));
  r = run_stgs("import swan-df " + tree.real.string() + " --out " + out.file("o2"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("found no SWAN-DF clip under"));
}
