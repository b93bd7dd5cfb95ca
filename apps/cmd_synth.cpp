// `stgs synth --out DIR [options]`: writes the synthetic audio-visual deepfake set (data/synthetic.h): PNG
// frames, 16 kHz WAV files and manifest.csv in the four FakeAVCeleb categories.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/progress.h"
#include "data/synthetic.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

constexpr const char* kCommand = "stgs synth";

void print_synth_help(FILE* out) {
  const data::SynthConfig d;
  std::fprintf(
      out,
      "usage: stgs synth --out DIR [options]\n"
      "\n"
      "Writes a synthetic audio-visual deepfake set: per clip K PNG frames of a talking face and a 16 kHz\n"
      "mono WAV, in the categories A RealVideo-RealAudio (real), B RealVideo-FakeAudio, C FakeVideo-RealAudio\n"
      "and D FakeVideo-FakeAudio (fake), with DIR/manifest.csv listing them (written last).\n"
      "\n"
      "options:\n"
      "  --out DIR         output directory (created; must be empty unless --force)\n"
      "  --clips N         number of clips (default %lld)\n"
      "  --seed S          random seed; the same seed gives byte-identical files (default %llu)\n"
      "  --size PX         frame width and height in pixels, 16..1024 (default %d)\n"
      "  --frames K        frames per clip, 1..1000 (default %d)\n"
      "  --seconds A[:B]   audio duration in seconds, uniform in [A, B] per clip, 1..60 (default %g:%g)\n"
      "  --strength X      artefact strength in [0, 1]; 0 draws fakes exactly like reals (default %g)\n"
      "  --split T,V,E     train/val/test weights, applied within each category (default %g,%g,%g)\n"
      "  --mix A,B,C,D     relative category counts (default %g,%g,%g,%g: balanced)\n"
      "  --threads N       worker threads, 0 = all cores; the output does not depend on it (default 0)\n"
      "  --force           replace an earlier set in DIR (its manifest.csv, synth.json and clips/)\n"
      "  --quiet           no progress bar and no summary\n"
      "  -h, --help        show this text\n"
      "\n"
      "exit status: 0 on success, 1 on a bad value or a write error, 2 on a usage error.\n",
      (long long)d.clips, (unsigned long long)d.seed, d.size, d.frames, d.min_seconds, d.max_seconds, d.strength,
      d.split[0], d.split[1], d.split[2], d.mix[0], d.mix[1], d.mix[2], d.mix[3]);
}

}  // namespace

int run_synth(int argc, char** argv) {
  data::SynthConfig config;
  std::string out;
  bool quiet = false;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      STGS_CHECK(i + 1 < argc, "stgs synth: ", arg, " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      print_synth_help(stdout);
      return 0;
    } else if (arg == "--out") {
      out = value();
    } else if (arg == "--clips") {
      config.clips = parse_integer(kCommand, arg, value(), 1, 1000000);
    } else if (arg == "--seed") {
      config.seed = uint64_t(parse_integer(kCommand, arg, value(), 0, (1ll << 62)));
    } else if (arg == "--size") {
      config.size = int(parse_integer(kCommand, arg, value(), 16, 1024));
    } else if (arg == "--frames") {
      config.frames = int(parse_integer(kCommand, arg, value(), 1, 1000));
    } else if (arg == "--seconds") {
      const std::string v = value();
      const std::vector<double> range = parse_list(kCommand, arg, v, v.find(':') == std::string::npos ? 1 : 2, ':');
      config.min_seconds = range.front(), config.max_seconds = range.back();
    } else if (arg == "--strength") {
      config.strength = parse_number(kCommand, arg, value());
    } else if (arg == "--split") {
      const std::vector<double> w = parse_list(kCommand, arg, value(), 3, ',');
      std::copy(w.begin(), w.end(), config.split);
    } else if (arg == "--mix") {
      const std::vector<double> w = parse_list(kCommand, arg, value(), 4, ',');
      std::copy(w.begin(), w.end(), config.mix);
    } else if (arg == "--threads") {
      config.threads = int(parse_integer(kCommand, arg, value(), 0, 1024));
    } else if (arg == "--force") {
      config.force = true;
    } else if (arg == "--quiet") {
      quiet = true;
    } else {
      std::fprintf(stderr, "stgs synth: unknown argument '%s'\n\n", arg.c_str());
      print_synth_help(stderr);
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "stgs synth: --out DIR is required\n\n");
    print_synth_help(stderr);
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar("synth", config.clips, "clips", quiet);
  const std::vector<data::SynthClip> clips =
      data::generate_synthetic(out, config, [&](int64_t done, int64_t) { bar.update(done); });
  bar.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (quiet) return 0;
  int64_t per_category[4] = {0, 0, 0, 0}, per_split[3] = {0, 0, 0};
  for (const data::SynthClip& c : clips) {
    ++per_category[c.category[0] - 'A'];
    ++per_split[c.split == "train" ? 0 : c.split == "val" ? 1 : 2];
  }
  std::printf("wrote %zu clips to %s in %.1f s (%dx%d, %d frames, %g-%g s audio, strength %g)\n", clips.size(),
              out.c_str(), seconds, config.size, config.size, config.frames, config.min_seconds, config.max_seconds,
              config.strength);
  std::printf("  categories: A %lld, B %lld, C %lld, D %lld\n", (long long)per_category[0], (long long)per_category[1],
              (long long)per_category[2], (long long)per_category[3]);
  std::printf("  splits:     train %lld, val %lld, test %lld\n", (long long)per_split[0], (long long)per_split[1],
              (long long)per_split[2]);
  std::printf("  manifest:   %s/manifest.csv\n", out.c_str());
  return 0;
}

}  // namespace stgs::apps
