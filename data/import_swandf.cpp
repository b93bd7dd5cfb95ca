// SWAN-DF importer: finds the fake videos and voice-converted wavs by folder and file name, pairs them, and
// optionally pairs the real SWAN recordings (see importers.h).
//
// Accepted layout (any folders above the resolution and wav folders):
//   ROOT/**/<W>x<H>/<subject1>/<recording>-<tags>-<subject2>.mp4   face of subject2 swapped into subject1's
//                                                                  recording (DeepFaceLab, one file per model
//                                                                  and blending)
//   ROOT/**/wav/<subject1>/<recording>-<tags>-<subject2>.wav       subject1's speech converted to subject2's voice
//   REAL/**/<recording>.mp4                                        the real SWAN recording (--real REAL)
// <recording> is the name before the first '-', <subject2> the one after the last '-', <tags> what lies between
// (the models). Videos may also be .avi, .mov, .mkv or .webm. Clips, each showing subject1 and subject2:
//   D  every fake video with a wav of the same (subject1, recording, subject2): the i-th video (in path order)
//      takes the (i mod n)-th of the n wavs, so every model of either kind is used
//   C  every fake video with the real recording's own sound            (needs REAL)
//   B  every wav with the real recording's frames                        (needs REAL)
//   A  every real recording that some fake was made from (shows subject1 only)
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "data/importers.h"
#include "kernels/check.h"

namespace stgs::data {

namespace fs = std::filesystem;

namespace {

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}

bool is_video_file(const fs::path& path) {
  const std::string ext = lower_extension(path);
  return ext == ".mp4" || ext == ".avi" || ext == ".mov" || ext == ".mkv" || ext == ".webm";
}

bool is_wav_file(const fs::path& path) { return lower_extension(path) == ".wav"; }

// "160x160", "256x256", ...: the folders DeepFaceLab's outputs are sorted into by model resolution.
bool is_resolution_folder(const std::string& name) {
  const size_t x = name.find('x');
  auto digits = [&](size_t b, size_t e) { return e > b && name.find_first_not_of("0123456789", b) >= e; };
  return x != std::string::npos && digits(0, x) && digits(x + 1, name.size());
}

// A source file: a fake under ROOT or a real recording.
struct MediaFile {
  std::string path;  // as found
  std::string key;   // "df/" or "real/" + the path below ROOT or REAL (part of clip keys)
  std::string tags;  // provenance: the models (resolution/tags for videos, tags for wavs) or "real"
};

// (subject1, recording, subject2): what a fake video and a wav must share to be paired.
using PairKey = std::tuple<std::string, std::string, std::string>;

struct Pairing {
  std::vector<MediaFile> videos, wavs;
};

// Adds the regular files below `dir` to `files`, visiting entries in name order and following directory
// links; a directory reached again (a link loop, or two routes to one place) is entered only the first time
// in that order, so which path a file is listed under depends on the tree, never on the file system's order.
void collect_files(const fs::path& dir, std::set<fs::path>& visited, std::vector<fs::path>& files) {
  std::vector<fs::path> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
  STGS_CHECK(!ec, "scanning the SWAN-DF tree: '", dir.string(), "': ", ec.message());
  std::sort(entries.begin(), entries.end());
  for (const fs::path& entry : entries) {
    if (fs::is_directory(entry, ec)) {
      const fs::path real = fs::canonical(entry, ec);
      STGS_CHECK(!ec, "scanning the SWAN-DF tree: '", entry.string(), "': ", ec.message());
      if (visited.insert(real).second) collect_files(entry, visited, files);
    } else if (fs::is_regular_file(entry, ec)) {
      files.push_back(entry);
    }
  }
}

// Every regular file below `dir` (see collect_files), in path order so plans do not depend on the file system.
std::vector<fs::path> files_below(const fs::path& dir) {
  std::vector<fs::path> files;
  std::set<fs::path> visited{fs::canonical(dir)};
  collect_files(dir, visited, files);
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

ImportReport import_swandf(const std::string& root, const ImportOptions& options,
                           const std::function<void(const ImportProgress&)>& progress) {
  std::error_code ec;
  STGS_CHECK(fs::exists(root, ec), "SWAN-DF root '", root, "' does not exist");
  STGS_CHECK(fs::is_directory(root, ec), "SWAN-DF root '", root, "' is not a directory");
  if (!options.real_dir.empty())
    STGS_CHECK(fs::is_directory(options.real_dir, ec), "SWAN real-video directory '", options.real_dir, "' ",
               fs::exists(options.real_dir, ec) ? "is not a directory" : "does not exist");

  std::map<PairKey, Pairing> pairs;
  int64_t unrecognised = 0;
  std::string first_unrecognised;
  for (const fs::path& file : files_below(root)) {
    const std::string folder = file.parent_path().parent_path().filename().string();
    const bool video = is_resolution_folder(folder) && is_video_file(file), wav = folder == "wav" && is_wav_file(file);
    if (!video && !wav) continue;
    const std::string stem = file.stem().string();
    const size_t first = stem.find('-'), last = stem.rfind('-');
    if (first == std::string::npos || first == 0 || last + 1 == stem.size()) {
      if (unrecognised++ == 0) first_unrecognised = file.string();
      continue;
    }
    const PairKey key{file.parent_path().filename().string(), stem.substr(0, first), stem.substr(last + 1)};
    MediaFile fake{file.string(), "df/" + file.lexically_relative(root).generic_string(),
                  first < last ? stem.substr(first + 1, last - first - 1) : ""};
    if (video) fake.tags = folder + (fake.tags.empty() ? "" : "/" + fake.tags);
    (video ? pairs[key].videos : pairs[key].wavs).push_back(std::move(fake));
  }

  std::map<std::string, MediaFile> real_of;  // recording name -> real video
  int64_t repeated_real = 0;
  if (!options.real_dir.empty()) {
    for (const fs::path& file : files_below(options.real_dir)) {
      if (!is_video_file(file)) continue;
      const std::string key = "real/" + file.lexically_relative(options.real_dir).generic_string();
      repeated_real += !real_of.emplace(file.stem().string(), MediaFile{file.string(), key, "real"}).second;
    }
  }

  std::vector<ClipSource> clips;
  auto add = [&](Category category, const MediaFile& video, const MediaFile& audio, std::vector<std::string> who) {
    clips.push_back({video.key + "|" + audio.key, video.path, audio.path, category, std::move(who),
                     video.tags + "+" + audio.tags});
  };
  std::map<std::string, std::set<std::string>> subjects_of;  // recording -> the subject1 folders it appears in
  int64_t unpaired_videos = 0, unpaired_wavs = 0;
  for (const auto& [key, pairing] : pairs) {
    const auto& [subject1, recording, subject2] = key;
    subjects_of[recording].insert(subject1);
    const auto real = real_of.find(recording);
    const MediaFile* real_video = real == real_of.end() ? nullptr : &real->second;
    const std::vector<MediaFile>&videos = pairing.videos, &wavs = pairing.wavs;
    for (size_t i = 0; i < videos.size(); ++i) {
      if (!wavs.empty()) add(Category::D, videos[i], wavs[i % wavs.size()], {subject1, subject2});
      if (real_video) add(Category::C, videos[i], *real_video, {subject1, subject2});
      unpaired_videos += wavs.empty() && !real_video;
    }
    for (size_t j = 0; j < wavs.size(); ++j) {
      if (real_video) add(Category::B, *real_video, wavs[j], {subject1, subject2});
      unpaired_wavs += !real_video && j >= videos.size();
    }
  }
  int64_t unused_real = 0;
  for (const auto& [recording, real] : real_of) {
    const auto subjects = subjects_of.find(recording);
    if (subjects == subjects_of.end()) {
      ++unused_real;
      continue;
    }
    add(Category::A, real, real, std::vector<std::string>(subjects->second.begin(), subjects->second.end()));
  }
  STGS_CHECK(!clips.empty(), "found no SWAN-DF clip under '", root,
             "': expected fake videos ROOT/**/<W>x<H>/<subject1>/<recording>-<models>-<subject2>.mp4 with wavs "
             "ROOT/**/wav/<subject1>/<recording>-<models>-<subject2>.wav of the same three names, or real "
             "recordings (--real) to pair them with");

  ImportReport report = import_clips("SWAN-DF", std::move(clips), options, progress);
  if (unrecognised > 0)
    report.notes.push_back(std::to_string(unrecognised) + " files in resolution or wav folders have no " +
                           "<recording>-...-<subject2> name and were left out (first: " + first_unrecognised + ")");
  if (unpaired_videos > 0)
    report.notes.push_back(std::to_string(unpaired_videos) + " fake videos have no wav of the same subjects and " +
                           "recording and no real recording to pair with, and were left out");
  if (unpaired_wavs > 0)
    report.notes.push_back(std::to_string(unpaired_wavs) + " wavs outnumber the fake videos of their subjects and " +
                           "recording and have no real recording to pair with, and were left out");
  if (unused_real > 0)
    report.notes.push_back(std::to_string(unused_real) + " real videos are not the recording of any fake and were " +
                           "left out");
  if (repeated_real > 0)
    report.notes.push_back(std::to_string(repeated_real) + " real videos repeat the name of another and were left out");
  if (options.real_dir.empty())
    report.notes.push_back("no real recordings given (--real): categories A, B and C are empty");
  return report;
}

}  // namespace stgs::data
