// The importers' shared back end (see importers.h): identity-disjoint splits, resumable per-clip extraction
// with ffmpeg on a few threads, and the manifest and sources.csv.
#include "data/importers.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

#include "data/audio_io.h"
#include "data/ffmpeg.h"
#include "engine/io/atomic_file.h"
#include "kernels/check.h"

namespace stgs::data {

namespace fs = std::filesystem;

void ImportOptions::validate() const {
  STGS_CHECK(!out.empty(), "import: no output directory given");
  STGS_CHECK(frames >= 1 && frames <= 1000, "import: frames per clip must be in [1, 1000], got ", frames);
  STGS_CHECK(jobs >= 0 && jobs <= 256, "import: jobs must be in [0, 256] (0 = automatic), got ", jobs);
  double sum = 0;
  for (double s : split) {
    STGS_CHECK(std::isfinite(s) && s >= 0, "import: split shares must be finite and >= 0, got ", split[0], ",",
               split[1], ",", split[2]);
    sum += s;
  }
  STGS_CHECK(sum > 0, "import: the split shares add up to 0");
}

namespace {

// FNV-1a over the bytes, then SplitMix64's finaliser so that similar keys give unrelated words.
uint64_t hash64(const std::string& text) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001B3ull;
  h += 0x9E3779B97F4A7C15ull;
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

std::string clip_id(const std::string& source, const std::string& key) {
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", (unsigned long long)hash64(source + "\n" + key));
  return id;
}

// Split of every clip: identities that share a clip are joined (union-find) into groups; the groups are put in
// a seeded random order and cut into train/val/test by the shares (largest remainder over the group count; a
// split with a positive share gets at least one group when there are enough).
std::vector<Split> assign_splits(const std::vector<ClipSource>& clips, const ImportOptions& options, int64_t& groups) {
  std::map<std::string, std::string> parent;
  auto find = [&](std::string x) {
    while (parent.at(x) != x) x = parent[x] = parent.at(parent.at(x));
    return x;
  };
  for (const ClipSource& c : clips)
    for (const std::string& who : c.identities) parent.emplace(who, who);
  for (const ClipSource& c : clips) {
    for (size_t i = 1; i < c.identities.size(); ++i) {
      // The smaller name becomes the root, so a group is named by its smallest identity whatever the clip order.
      const std::string a = find(c.identities[0]), b = find(c.identities[i]);
      if (a != b) parent[std::max(a, b)] = std::min(a, b);
    }
  }
  std::vector<std::pair<uint64_t, std::string>> order;  // (shuffle key, group name)
  for (const auto& [who, up] : parent)
    if (who == up) order.emplace_back(hash64(std::to_string(options.seed) + "\n" + who), who);
  std::sort(order.begin(), order.end());
  const int64_t n = int64_t(order.size());
  groups = n;

  const double total = options.split[0] + options.split[1] + options.split[2];
  int64_t count[3], assigned = 0;
  double remainder[3];
  for (int s = 0; s < 3; ++s) {
    const double exact = options.split[s] / total * double(n);
    count[s] = int64_t(std::floor(exact));
    remainder[s] = exact - double(count[s]);
    assigned += count[s];
  }
  for (; assigned < n; ++assigned) {
    const int64_t s = std::max_element(remainder, remainder + 3) - remainder;
    ++count[s];
    remainder[s] = -1;
  }
  for (int s = 0; s < 3; ++s) {
    int64_t* largest = std::max_element(count, count + 3);
    if (options.split[s] > 0 && count[s] == 0 && *largest > 1) --*largest, ++count[s];
  }
  std::map<std::string, Split> split_of;
  for (int64_t g = 0; g < n; ++g)
    split_of[order[size_t(g)].second] = g < count[0] ? Split::Train : g < count[0] + count[1] ? Split::Val : Split::Test;
  std::vector<Split> splits;
  for (const ClipSource& c : clips) splits.push_back(split_of.at(find(c.identities[0])));
  return splits;
}

std::string frame_name(int index, int frames, FrameFormat format) {
  const int width = std::max<int>(2, int(std::to_string(frames - 1).size()));
  std::string digits = std::to_string(index);
  digits.insert(0, size_t(width) - std::min(digits.size(), size_t(width)), '0');
  return "frame_" + digits + (format == FrameFormat::Png ? ".png" : ".jpg");
}

// What .complete holds: everything the clip's files depend on.
std::string completion_record(const ClipSource& clip, const ImportOptions& options) {
  return "stgs-import 1\nkey " + clip.key + "\nframes " + std::to_string(options.frames) + "\nformat " +
         (options.format == FrameFormat::Png ? "png" : "jpg") + "\n";
}

bool is_complete(const fs::path& dir, const std::string& record, const ImportOptions& options) {
  std::ifstream in(dir / ".complete", std::ios::binary);
  if (!in || std::string(std::istreambuf_iterator<char>(in), {}) != record) return false;
  std::error_code ec;
  if (!fs::is_regular_file(dir / "audio.wav", ec)) return false;
  int images = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    images += is_frame_file_name(it->path().filename().string());
  if (ec || images != options.frames) return false;
  for (int k = 0; k < options.frames; ++k)
    if (!fs::is_regular_file(dir / frame_name(k, options.frames, options.format), ec)) return false;
  return true;
}

// Decodes first and writes after, so an unreadable file leaves nothing behind; .complete goes last.
void extract_clip(const std::string& ffmpeg, const ClipSource& clip, const fs::path& dir, const std::string& record,
                  const ImportOptions& options) {
  for (const std::string& file : {clip.video, clip.audio}) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) throw DecodeError(file, "no such file");
  }
  const std::vector<Image> frames = decode_sampled_frames(ffmpeg, clip.video, options.frames);
  const std::vector<float> audio = decode_audio_16k(ffmpeg, clip.audio);
  fs::create_directories(dir);
  for (int k = 0; k < options.frames; ++k) {
    const std::string path = (dir / frame_name(k, options.frames, options.format)).string();
    if (options.format == FrameFormat::Png) write_png(path, frames[size_t(k)]);
    else write_jpeg(path, frames[size_t(k)]);
  }
  write_audio((dir / "audio.wav").string(), audio.data(), int64_t(audio.size()), 1, kSampleRate, AudioFormat::WavPcm16);
  write_file_atomically((dir / ".complete").string(), record, "import: ");
}

enum class Outcome { Pending, Extracted, Reused, Failed };

}  // namespace

ImportReport import_clips(const std::string& source, std::vector<ClipSource> clips, const ImportOptions& options,
                          const std::function<void(const ImportProgress&)>& progress) {
  options.validate();
  const std::string ffmpeg = find_ffmpeg();
  const fs::path out(options.out);
  std::error_code ec;
  STGS_CHECK(!fs::exists(out, ec) || fs::is_directory(out, ec), "import: output '", options.out,
             "' exists and is not a directory");
  fs::create_directories(out);

  // Clip order is id order from here on: the manifest's order, and the order failures are listed in.
  std::vector<std::string> ids;
  for (const ClipSource& c : clips) {
    STGS_CHECK(!c.identities.empty(), "import: clip '", c.key, "' has no identity");
    ids.push_back(clip_id(source, c.key));
  }
  std::vector<size_t> order(clips.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a] < ids[b]; });
  for (size_t i = 1; i < order.size(); ++i)
    STGS_CHECK(ids[order[i]] != ids[order[i - 1]], "import: clips '", clips[order[i]].key, "' and '",
               clips[order[i - 1]].key, "' map to the same id ", ids[order[i]],
               clips[order[i]].key == clips[order[i - 1]].key ? " (the same source listed twice)" : " (hash collision)");
  {
    std::vector<ClipSource> sorted;
    std::vector<std::string> sorted_ids;
    for (size_t i : order) sorted.push_back(std::move(clips[i])), sorted_ids.push_back(ids[i]);
    clips = std::move(sorted), ids = std::move(sorted_ids);
  }

  ImportReport report;
  report.planned = int64_t(clips.size());
  const std::vector<Split> splits = assign_splits(clips, options, report.groups);

  // Workers take the next clip index; each clip's files depend only on the clip, so the thread count and the
  // order clips finish in change nothing but the time taken.
  // The plan is complete and valid. The previous run's manifest goes before any clip directory is touched: a
  // run killed while clips are being redone (other options) must not leave a manifest naming removed or
  // half-changed clips. The complete set gets its new manifest at the end.
  for (const char* name : {"manifest.csv", "sources.csv"}) {
    fs::remove(out / name, ec);
    STGS_CHECK(!ec, "import: cannot remove the previous '", (out / name).string(), "': ", ec.message());
  }
  std::vector<Outcome> outcome(clips.size(), Outcome::Pending);
  std::vector<ImportFailure> failure(clips.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;  // guards state, first_error and calls of `progress`
  std::exception_ptr first_error;
  ImportProgress state;
  state.total = int64_t(clips.size());
  auto worker = [&] {
    for (size_t i; !stop && (i = next++) < clips.size();) {
      const fs::path dir = out / ids[i];
      const std::string record = completion_record(clips[i], options);
      try {
        if (is_complete(dir, record, options)) {
          outcome[i] = Outcome::Reused;
        } else {
          fs::remove_all(dir);
          extract_clip(ffmpeg, clips[i], dir, record, options);
          outcome[i] = Outcome::Extracted;
        }
      } catch (const DecodeError& e) {
        std::error_code ignored;  // a directory that cannot be removed is redone next time all the same
        fs::remove_all(dir, ignored);
        outcome[i] = Outcome::Failed;
        failure[i] = {e.file(), e.reason()};
        if (options.strict) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!first_error) first_error = std::current_exception();
          stop = true;
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first_error) first_error = std::current_exception();
        stop = true;
      }
      std::lock_guard<std::mutex> lock(mutex);
      ++state.done;
      state.reused += outcome[i] == Outcome::Reused;
      state.failed += outcome[i] == Outcome::Failed;
      if (progress && !stop) progress(state);
    }
  };
  const int jobs = options.jobs > 0 ? options.jobs
                                    : int(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1u, 4u));
  std::vector<std::thread> threads;
  for (int t = 1; t < std::min<int64_t>(jobs, int64_t(clips.size())); ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);

  std::string sources = "id,split,category,identities,method,video,audio\n";
  for (size_t i = 0; i < clips.size(); ++i) {
    if (outcome[i] == Outcome::Failed) {
      report.failures.push_back(failure[i]);
      continue;
    }
    ++(outcome[i] == Outcome::Reused ? report.reused : report.extracted);
    ManifestRow row;
    row.id = ids[i];
    row.split = splits[i];
    row.category = clips[i].category;
    row.label = category_label(row.category);
    row.frames_dir = (out / ids[i]).string();
    row.audio = (out / ids[i] / "audio.wav").string();
    row.source = source;
    report.rows.push_back(row);
    std::string identities;
    for (const std::string& who : clips[i].identities) identities += (identities.empty() ? "" : ";") + who;
    auto absolute = [](const std::string& path) { return fs::absolute(path).lexically_normal().string(); };
    const std::string fields[] = {row.id,          split_name(row.split),    category_name(row.category), identities,
                                  clips[i].method, absolute(clips[i].video), absolute(clips[i].audio)};
    for (const std::string& field : fields) sources += csv_field(field) + (&field == std::end(fields) - 1 ? "\n" : ",");
  }
  write_file_atomically((out / "sources.csv").string(), sources, "import: ");
  report.manifest = (out / "manifest.csv").string();
  write_manifest(report.manifest, report.rows);
  return report;
}

}  // namespace stgs::data
