// `stgs import fakeavceleb|swan-df ROOT --out DIR [options]`: turns a downloaded dataset into frames, 16 kHz
// WAV files and a manifest (data/importers.h), resuming where an earlier run stopped.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "apps/cli.h"
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

CommandLine import_flags(const std::string& dataset) {
  const data::ImportOptions d;
  const bool swan = dataset == "swan-df";
  const std::string layout =
      swan ? "ROOT holds SWAN-DF (any folders above these):\n"
             "  ROOT/**/<W>x<H>/<subject1>/<recording>-<models>-<subject2>.mp4   face-swapped videos\n"
             "  ROOT/**/wav/<subject1>/<recording>-<models>-<subject2>.wav       voice-converted audio\n"
             "  REAL/**/<recording>.mp4                                          real SWAN videos (optional)\n"
             "Category D pairs each fake video with a wav of the same subjects and recording (in turn when there\n"
             "are several); with --real, each real recording a fake was made from adds A (real), each wav B\n"
             "(real video, fake voice) and each fake video C (fake video, real voice). Identities: subject1 and\n"
             "subject2 of every clip, kept in one split.\n"
           : "ROOT is FakeAVCeleb v1.2 as downloaded: ROOT/meta_data.csv (source,target1,target2,method,\n"
             "category,type,race,gender,path,<folder>) and ROOT/<type>/<race>/<gender>/<source>/<file>.mp4, the\n"
             "folder column's leading 'FakeAVCeleb/' standing for ROOT. One clip per video: category A-D from\n"
             "the metadata, audio from the video itself, identity = the 'source' column.\n";
  std::vector<Flag> flags = {
      Flag{"root", "", "the downloaded dataset", "ROOT"}.positional().required(),
      Flag{"out", "", "output directory (manifest.csv, sources.csv, <id>/); clips complete there are reused", "DIR"}
          .required(),
      Flag{"frames", d.frames, "frames per clip, spread evenly over the video", "K"}.in(1, 1000),
      Flag{"format", "png", "frame image format"}.one_of({"png", "jpg", "jpeg"}),
      Flag{"seed", int64_t(d.seed), "seed of the identity shuffle before the split"}.at_least(0),
      {"split", number_list(d.split, 3, ','), "train/val/test shares of the identity groups", "T,V,E"},
      Flag{"jobs", d.jobs, "ffmpeg runs in parallel, 0 = cores, at most 4; the output does not depend on it", "N"}
          .in(0, 256),
      {"strict", false, "stop with an error at the first unreadable video instead of listing and skipping it"},
      {"quiet", false, "no progress line and no summary (unreadable files are still listed)"}};
  if (swan)
    flags.insert(flags.begin() + 2, {"real", "", "directory of the real SWAN videos to pair with the fakes", "REAL"});
  return CommandLine(
      "stgs import " + dataset,
      "stgs import " + dataset + " ROOT --out DIR" + (swan ? " [--real REAL]" : "") + " [options]",
      layout +
          "\nNeeds the ffmpeg program on PATH. Exit status: 0 on success (also with skipped unreadable videos), 1 on\n"
          "an error, 2 on a usage error.",
      flags);
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
  const CommandLine flags = import_flags(dataset);
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc - 1, argv + 1);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  const nlohmann::json& c = cmd.config;
  const std::string& command = flags.command();
  const std::string root = c["root"];
  data::ImportOptions options;
  options.out = c["out"];
  options.frames = c["frames"];
  options.format = c["format"] == "png" ? data::FrameFormat::Png : data::FrameFormat::Jpeg;
  options.seed = c["seed"];
  const std::vector<double> split = parse_list(command, "--split", c["split"], 3, ',');
  std::copy(split.begin(), split.end(), options.split);
  options.jobs = c["jobs"];
  options.strict = c["strict"];
  if (c.contains("real")) options.real_dir = c["real"];
  const bool quiet = c["quiet"];

  const auto start = std::chrono::steady_clock::now();
  std::function<void(const data::ImportProgress&)> progress;
  if (!quiet && isatty(fileno(stderr))) progress = ProgressLine{};
  const data::ImportReport report = dataset == "fakeavceleb" ? data::import_fakeavceleb(root, options, progress)
                                                             : data::import_swandf(root, options, progress);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const data::ImportFailure& f : report.failures)
    std::fprintf(stderr, "%s: unreadable, skipped: %s: %s\n", command.c_str(), f.file.c_str(), f.reason.c_str());
  // Nothing usable is a failure, not an empty manifest for the next command to trip over.
  STGS_CHECK(!report.rows.empty(), command, ": none of the ", report.planned, " clips could be imported (",
             report.failures.size(), " unreadable, listed above); ", report.manifest, " lists no clip");
  int64_t per_category[4] = {0, 0, 0, 0}, per_split[3] = {0, 0, 0};
  for (const data::ManifestRow& r : report.rows) ++per_category[int(r.category)], ++per_split[int(r.split)];
  for (data::Split s : {data::Split::Train, data::Split::Val, data::Split::Test})
    if (per_split[int(s)] == 0)
      std::fprintf(stderr, "%s: warning: the %s split has no clips (%lld identity groups in all); pretrain and "
                   "extract need clips in train, val and test\n",
                   command.c_str(), data::split_name(s), (long long)report.groups);
  if (quiet) return 0;
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
