// ffmpeg as a subprocess: spawning, collecting its output, and parsing the frame and sample streams (see
// ffmpeg.h).
#include "data/ffmpeg.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "kernels/check.h"

extern char** environ;

namespace stgs::data {

namespace fs = std::filesystem;

namespace {

// Closes a descriptor once, on every path out of run_process.
struct Fd {
  int fd = -1;
  ~Fd() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Reads one decimal field of a PPM header at `at` (after skipping whitespace); -1 when there is none.
long ppm_number(const std::string& s, size_t& at) {
  while (at < s.size() && is_space(s[at])) ++at;
  long v = -1;
  while (at < s.size() && s[at] >= '0' && s[at] <= '9' && v < (1l << 24)) v = (v < 0 ? 0 : v * 10) + (s[at++] - '0');
  return v;
}

// ffmpeg's reason for a failed run: its last stderr line, or the exit status when it wrote nothing.
// `stream`: "video" or "audio", the stream the command mapped. A file without one makes ffmpeg end with advice
// about its -map syntax ("To ignore this, add a trailing '?'..."), which would only puzzle a user of stgs.
std::string failure_reason(const ProcessResult& r, const char* stream) {
  if (r.err.find("matches no streams") != std::string::npos) return std::string("no ") + stream + " stream";
  const std::string line = last_line(r.err);
  return line.empty() ? "exit status " + std::to_string(r.status) + " without a message" : line;
}

}  // namespace

DecodeError::DecodeError(std::string file, std::string reason)
    : Error("unreadable video or audio file '" + file + "': " + reason),
      file_(std::move(file)),
      reason_(std::move(reason)) {}

ProcessResult run_process(const std::vector<std::string>& argv) {
  STGS_CHECK(!argv.empty(), "run_process: empty command");
  const std::string program = find_program(argv[0]);
  STGS_CHECK(!program.empty(), "cannot run '", argv[0], "': not found on PATH");
  // O_CLOEXEC: children spawned at the same time by other threads must not inherit these pipe ends, or a
  // pipe would stay open (no end of file) until those unrelated children exit.
  int out_pipe[2], err_pipe[2];
  STGS_CHECK(pipe2(out_pipe, O_CLOEXEC) == 0, "cannot create a pipe for '", argv[0], "': ", std::strerror(errno));
  Fd out_read{out_pipe[0]}, out_write{out_pipe[1]};
  STGS_CHECK(pipe2(err_pipe, O_CLOEXEC) == 0, "cannot create a pipe for '", argv[0], "': ", std::strerror(errno));
  Fd err_read{err_pipe[0]}, err_write{err_pipe[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.fd, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  STGS_CHECK(spawned == 0, "cannot run '", program, "': ", std::strerror(spawned));
  out_write.close();
  err_write.close();

  ProcessResult result;
  pollfd fds[2] = {{out_read.fd, POLLIN, 0}, {err_read.fd, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  char buffer[1 << 16];
  for (int open = 2; open > 0;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, size_t(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;  // end of file (poll ignores negative descriptors)
        --open;
      }
    }
  }
  // Closed before waiting, so a child still writing (only after a failed poll) ends on a broken pipe.
  out_read.close();
  err_read.close();
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string find_program(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* env = std::getenv("PATH");
  const std::string path = env ? env : "/usr/local/bin:/usr/bin:/bin";
  for (size_t b = 0; b <= path.size();) {
    const size_t e = std::min(path.find(':', b), path.size());
    const std::string candidate = path.substr(b, e - b) + "/" + name;
    if (e > b && access(candidate.c_str(), X_OK) == 0) return candidate;
    b = e + 1;
  }
  return "";
}

std::string find_ffmpeg() {
  const std::string ffmpeg = find_program("ffmpeg");
  STGS_CHECK(!ffmpeg.empty(),
             "the 'ffmpeg' program was not found on PATH; the importers run it to decode videos. Install it "
             "(Debian/Ubuntu: apt-get install ffmpeg, or `make deps`) or add its directory to PATH");
  return ffmpeg;
}

std::string last_line(const std::string& text) {
  size_t end = text.size();
  while (end > 0) {
    while (end > 0 && is_space(text[end - 1])) --end;
    const size_t begin = text.rfind('\n', end == 0 ? 0 : end - 1);
    const size_t from = begin == std::string::npos ? 0 : begin + 1;
    std::string line = text.substr(from, end - from);
    size_t b = 0;
    while (b < line.size() && is_space(line[b])) ++b;
    if (b < line.size()) return line.substr(b);
    end = from;
  }
  return "";
}

namespace {

// The frames of ffmpeg's image2pipe PPM output, in order: where each one's pixels start, and its size.
struct PpmFrame {
  size_t offset;
  int width, height;
};

std::vector<PpmFrame> parse_ppm_frames(const std::string& out, const std::string& path) {
  std::vector<PpmFrame> frames;
  for (size_t at = 0; at < out.size();) {
    // One frame: "P6" <ws> width <ws> height <ws> 255 <one ws byte> then width * height * 3 bytes.
    const std::string frame = "frame " + std::to_string(frames.size());
    if (out.compare(at, 2, "P6") != 0) throw DecodeError(path, frame + " of ffmpeg's output is not a PPM image");
    at += 2;
    const long w = ppm_number(out, at), h = ppm_number(out, at), maxval = ppm_number(out, at);
    if (w <= 0 || h <= 0 || maxval != 255 || at >= out.size())
      throw DecodeError(path, frame + " of ffmpeg's output has a malformed PPM header");
    ++at;
    const size_t bytes = size_t(w) * size_t(h) * 3;
    if (out.size() - at < bytes) throw DecodeError(path, "ffmpeg's output ends inside " + frame);
    frames.push_back({at, int(w), int(h)});
    at += bytes;
  }
  return frames;
}

Image ppm_image(const std::string& out, const PpmFrame& f) {
  Image image;
  image.width = f.width, image.height = f.height;
  const auto begin = out.begin() + long(f.offset);
  image.rgb.assign(begin, begin + long(size_t(f.width) * size_t(f.height) * 3));
  return image;
}

// The first video stream's width, height and packet count from ffprobe (demuxing only, no decoding); nullopt
// when ffprobe is missing (beside ffmpeg, else on PATH) or does not say.
struct VideoProbe {
  int64_t width = 0, height = 0, packets = 0;
};
std::optional<VideoProbe> probe_video(const std::string& ffmpeg, const std::string& path) {
  std::string ffprobe = find_program((fs::path(ffmpeg).parent_path() / "ffprobe").string());
  if (ffprobe.empty()) ffprobe = find_program("ffprobe");
  if (ffprobe.empty()) return std::nullopt;
  const ProcessResult r = run_process({ffprobe, "-v", "error", "-select_streams", "v:0", "-count_packets",
                                       "-show_entries", "stream=width,height,nb_read_packets", "-of", "csv=p=0", path});
  VideoProbe p;
  if (r.status != 0 || std::sscanf(r.out.c_str(), "%" SCNd64 ",%" SCNd64 ",%" SCNd64, &p.width, &p.height,
                                   &p.packets) != 3 || p.width <= 0 || p.height <= 0 || p.packets <= 0)
    return std::nullopt;
  return p;
}

// Above this many bytes of raw RGB for the whole video, only the picked frames are decoded out of ffmpeg.
int64_t raw_video_limit() {
  const char* env = std::getenv("STGS_FFMPEG_RAW_LIMIT");  // tests set it low to take the bounded path
  return env != nullptr ? std::atoll(env) : int64_t(1) << 30;
}

}  // namespace

std::vector<Image> decode_sampled_frames(const std::string& ffmpeg, const std::string& path, int k) {
  // A long or large video would be held whole in memory (4 s of 4K: 3 GB). Past raw_video_limit() ffmpeg's
  // select filter passes only the frames sample_frame_indices picks, N being ffprobe's packet count (one per
  // frame for the usual codecs; a decoder that drops leading frames can shift the picks by those frames, and
  // fewer frames than picks is an error). Files under 1 MiB (the limit / 1024: videos compress 50-300x) are
  // not probed, which spares an import of short clips a second process each.
  const int64_t limit = raw_video_limit();
  std::error_code size_error;
  const uintmax_t file_bytes = fs::file_size(path, size_error);
  const bool large = !size_error && file_bytes >= uintmax_t(std::max<int64_t>(limit / 1024, 0));
  const std::optional<VideoProbe> probe = large ? probe_video(ffmpeg, path) : std::nullopt;
  const bool selecting = probe && probe->width * probe->height * 3 * probe->packets > limit;
  const int64_t packets = selecting ? probe->packets : 0;

  // -vsync passthrough: every decoded (or selected) frame once, none duplicated or dropped to fit a frame rate.
  std::vector<std::string> args = {ffmpeg, "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0"};
  std::vector<int64_t> picks, selected;  // frame numbers picked; selecting: the distinct ones ffmpeg passes
  if (selecting) {
    picks = sample_frame_indices(packets, k);
    selected = picks;
    selected.erase(std::unique(selected.begin(), selected.end()), selected.end());  // picks are sorted
    // Quoted for the filtergraph, so the commas stay inside the expression: select='eq(n,3)+eq(n,10)+...'.
    std::string select = "select='";
    for (size_t i = 0; i < selected.size(); ++i)
      select += (i ? "+eq(n," : "eq(n,") + std::to_string(selected[i]) + ")";
    args.insert(args.end(), {"-vf", select + "'"});
  }
  args.insert(args.end(), {"-vsync", "passthrough", "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "-"});
  const ProcessResult r = run_process(args);
  if (r.status != 0) throw DecodeError(path, failure_reason(r, "video"));
  const std::vector<PpmFrame> frames = parse_ppm_frames(r.out, path);
  if (!selecting) {
    if (frames.empty()) throw DecodeError(path, "no video frame");
    picks = sample_frame_indices(int64_t(frames.size()), k);
  } else if (frames.size() != selected.size()) {
    throw DecodeError(path, "picking " + std::to_string(selected.size()) + " of its " + std::to_string(packets) +
                                " video packets gave " + std::to_string(frames.size()) +
                                " frames (packets that are not one frame each)");
  }
  std::vector<Image> picked;
  for (int64_t index : picks) {
    const size_t at = selecting ? size_t(std::lower_bound(selected.begin(), selected.end(), index) - selected.begin())
                                : size_t(index);
    picked.push_back(ppm_image(r.out, frames[at]));
  }
  return picked;
}

std::vector<float> decode_audio_16k(const std::string& ffmpeg, const std::string& path) {
  const ProcessResult r = run_process({ffmpeg, "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-ac", "1",
                                       "-ar", "16000", "-f", "f32le", "-c:a", "pcm_f32le", "-"});
  if (r.status != 0) throw DecodeError(path, failure_reason(r, "audio"));
  if (r.out.size() % sizeof(float) != 0) throw DecodeError(path, "ffmpeg's audio output ends inside a sample");
  std::vector<float> samples(r.out.size() / sizeof(float));
  if (samples.empty()) throw DecodeError(path, "no audio sample");
  std::memcpy(samples.data(), r.out.data(), r.out.size());
  return samples;
}

}  // namespace stgs::data
