// `stgs import fakeavceleb|swan-df ROOT --out DIR [options]`: turns a downloaded dataset into frames, 16 kHz
// WAV files and a manifest (data/importers.h), resuming where an earlier run stopped.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/options.h"
#include "data/importers.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

void print_import_overview(FILE* out) {
  std::fprintf(out,
               "usage: stgs import <dataset> ROOT --out DIR [options]\n"
               "\n"
               "Extracts K frames and the 16 kHz mono audio of every clip of a downloaded dataset with ffmpeg, and\n"
               "writes DIR/manifest.csv with identity-disjoint train/val/test splits. Re-running resumes.\n"
               "\n"
               "datasets:\n"
               "  fakeavceleb   FakeAVCeleb v1.2: ROOT/meta_data.csv and the videos it lists\n"
               "  swan-df       SWAN-DF: fake videos under <W>x<H>/<subject>/ and wavs under wav/<subject>/\n"
               "\n"
               "Run `stgs import <dataset> --help` for the layout it accepts and the options.\n");
}

void print_import_help(FILE* out, const std::string& dataset) {
  const data::ImportOptions d;
  if (dataset == "fakeavceleb") {
    std::fprintf(out,
                 "usage: stgs import fakeavceleb ROOT --out DIR [options]\n"
                 "\n"
                 "ROOT is FakeAVCeleb v1.2 as downloaded: ROOT/meta_data.csv (source,target1,target2,method,\n"
                 "category,type,race,gender,path,<folder>) and ROOT/<type>/<race>/<gender>/<source>/<file>.mp4, the\n"
                 "folder column's leading 'FakeAVCeleb/' standing for ROOT. One clip per video: category A-D from\n"
                 "the metadata, audio from the video itself, identity = the 'source' column.\n");
  } else {
    std::fprintf(out,
                 "usage: stgs import swan-df ROOT --out DIR [--real REAL] [options]\n"
                 "\n"
                 "ROOT holds SWAN-DF (any folders above these):\n"
                 "  ROOT/**/<W>x<H>/<subject1>/<recording>-<models>-<subject2>.mp4   face-swapped videos\n"
                 "  ROOT/**/wav/<subject1>/<recording>-<models>-<subject2>.wav       voice-converted audio\n"
                 "  REAL/**/<recording>.mp4                                          real SWAN videos (optional)\n"
                 "Category D pairs each fake video with a wav of the same subjects and recording (in turn when there\n"
                 "are several); with --real, each real recording a fake was made from adds A (real), each wav B\n"
                 "(real video, fake voice) and each fake video C (fake video, real voice). Identities: subject1 and\n"
                 "subject2 of every clip, kept in one split.\n");
  }
  std::fprintf(
      out,
      "\n"
      "options:\n"
      "  --out DIR          output directory: DIR/<id>/frame_00.png.., DIR/<id>/audio.wav, DIR/manifest.csv,\n"
      "                     DIR/sources.csv (where each clip came from); clips complete there are reused\n"
      "%s"
      "  --frames K         frames per clip, spread evenly over the video, 1..1000 (default %d)\n"
      "  --format png|jpg   frame image format (default png)\n"
      "  --seed S           seed of the identity shuffle before the split (default %llu)\n"
      "  --split T,V,E      train/val/test shares of the identity groups (default %g,%g,%g)\n"
      "  --jobs N           ffmpeg runs in parallel, 0 = cores, at most 4 (default 0); output does not depend on it\n"
      "  --strict           stop with an error at the first unreadable video (default: list it and skip it)\n"
      "  --quiet            no progress line and no summary (unreadable files are still listed)\n"
      "  -h, --help         show this text\n"
      "\n"
      "Needs the ffmpeg program on PATH. Exit status: 0 on success (also with skipped unreadable videos), 1 on\n"
      "an error, 2 on a usage error.\n",
      dataset == "swan-df" ? "  --real REAL        directory of the real SWAN videos to pair with the fakes\n" : "",
      d.frames, (unsigned long long)d.seed, d.split[0], d.split[1], d.split[2]);
}

std::string duration(double seconds) {
  char text[32];
  const long s = long(seconds + 0.5);
  if (s >= 3600) std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  return text;
}

// One status line on stderr, redrawn in place at most 5 times a second and at the end:
// "import 120/500 clips  3.2 clips/s  ETA 1m58s  (10 reused, 1 unreadable)". The rate counts only clips this
// run extracted, so reused ones do not make the estimate optimistic.
struct ProgressLine {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now(), last{};
  void operator()(const data::ImportProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (p.done < p.total && now - last < std::chrono::milliseconds(200)) return;
    last = now;
    const double elapsed = std::chrono::duration<double>(now - start).count();
    const double rate = elapsed > 0 ? double(p.done - p.reused) / elapsed : 0;
    std::string eta = rate > 0 ? duration(double(p.total - p.done) / rate) : "?";
    std::fprintf(stderr, "\rimport %lld/%lld clips  %.1f clips/s  ETA %s  (%lld reused, %lld unreadable)\033[K",
                 (long long)p.done, (long long)p.total, rate, eta.c_str(), (long long)p.reused, (long long)p.failed);
    if (p.done == p.total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }
};

}  // namespace

int run_import(int argc, char** argv) {
  if (argc < 1 || std::string(argv[0]) == "-h" || std::string(argv[0]) == "--help") {
    print_import_overview(argc < 1 ? stderr : stdout);
    return argc < 1 ? 2 : 0;
  }
  const std::string dataset = argv[0];
  if (dataset != "fakeavceleb" && dataset != "swan-df") {
    std::fprintf(stderr, "stgs import: unknown dataset '%s' (expected fakeavceleb or swan-df)\n\n", dataset.c_str());
    print_import_overview(stderr);
    return 2;
  }
  const std::string command = "stgs import " + dataset;
  data::ImportOptions options;
  std::string root;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      STGS_CHECK(i + 1 < argc, command, ": ", arg, " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      print_import_help(stdout, dataset);
      return 0;
    } else if (arg == "--out") {
      options.out = value();
    } else if (arg == "--frames") {
      options.frames = int(parse_integer(command, arg, value(), 1, 1000));
    } else if (arg == "--format") {
      const std::string f = value();
      STGS_CHECK(f == "png" || f == "jpg" || f == "jpeg", command, ": --format expects png or jpg, got '", f, "'");
      options.format = f == "png" ? data::FrameFormat::Png : data::FrameFormat::Jpeg;
    } else if (arg == "--seed") {
      options.seed = uint64_t(parse_integer(command, arg, value(), 0, (1ll << 62)));
    } else if (arg == "--split") {
      const std::vector<double> w = parse_list(command, arg, value(), 3, ',');
      std::copy(w.begin(), w.end(), options.split);
    } else if (arg == "--jobs") {
      options.jobs = int(parse_integer(command, arg, value(), 0, 256));
    } else if (arg == "--strict") {
      options.strict = true;
    } else if (arg == "--quiet") {
      quiet = true;
    } else if (arg == "--real" && dataset == "swan-df") {
      options.real_dir = value();
    } else if (root.empty() && !arg.empty() && arg[0] != '-') {
      root = arg;
    } else {
      std::fprintf(stderr, "%s: unexpected argument '%s'\n\n", command.c_str(), arg.c_str());
      print_import_help(stderr, dataset);
      return 2;
    }
  }
  if (root.empty() || options.out.empty()) {
    std::fprintf(stderr, "%s: %s is required\n\n", command.c_str(), root.empty() ? "ROOT" : "--out DIR");
    print_import_help(stderr, dataset);
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  std::function<void(const data::ImportProgress&)> progress;
  if (!quiet && isatty(fileno(stderr))) progress = ProgressLine{};
  const data::ImportReport report = dataset == "fakeavceleb" ? data::import_fakeavceleb(root, options, progress)
                                                             : data::import_swandf(root, options, progress);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const data::ImportFailure& f : report.failures)
    std::fprintf(stderr, "%s: unreadable, skipped: %s: %s\n", command.c_str(), f.file.c_str(), f.reason.c_str());
  if (quiet) return 0;
  int64_t per_category[4] = {0, 0, 0, 0}, per_split[3] = {0, 0, 0};
  for (const data::ManifestRow& r : report.rows) ++per_category[int(r.category)], ++per_split[int(r.split)];
  std::printf("imported %zu of %lld clips into %s in %.1f s: %lld extracted, %lld reused, %zu unreadable%s\n",
              report.rows.size(), (long long)report.planned, options.out.c_str(), seconds, (long long)report.extracted,
              (long long)report.reused, report.failures.size(), report.failures.empty() ? "" : " (listed above)");
  std::printf("  categories: A %lld, B %lld, C %lld, D %lld\n", (long long)per_category[0], (long long)per_category[1],
              (long long)per_category[2], (long long)per_category[3]);
  std::printf("  splits:     train %lld, val %lld, test %lld (%lld identity groups)\n", (long long)per_split[0],
              (long long)per_split[1], (long long)per_split[2], (long long)report.groups);
  for (const std::string& note : report.notes) std::printf("  note:       %s\n", note.c_str());
  std::printf("  manifest:   %s\n", report.manifest.c_str());
  return 0;
}

}  // namespace stgs::apps
