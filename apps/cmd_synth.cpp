// `stgs synth --out DIR [options]`: writes the synthetic audio-visual deepfake set (data/synthetic.h): PNG
// frames, 16 kHz WAV files and manifest.csv in the four FakeAVCeleb categories, and config.json (the resolved
// options) beside them.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/options.h"
#include "apps/progress.h"
#include "data/synthetic.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

constexpr const char* kCommand = "stgs synth";

CommandLine synth_flags() {
  const data::SynthConfig d;
  const double seconds[2] = {d.min_seconds, d.max_seconds};
  return CommandLine(
      kCommand, "stgs synth --out DIR [options]",
      "Writes a synthetic audio-visual deepfake set: per clip K PNG frames of a talking face and a 16 kHz\n"
      "mono WAV, in the categories A RealVideo-RealAudio (real), B RealVideo-FakeAudio, C FakeVideo-RealAudio\n"
      "and D FakeVideo-FakeAudio (fake), with DIR/manifest.csv listing them (written last) and DIR/config.json\n"
      "holding these options.\n"
      "\n"
      "exit status: 0 on success, 1 on a bad value or a write error, 2 on a usage error.",
      {Flag{"out", "", "output directory (created; must be empty unless --force)", "DIR"}.required(),
       Flag{"clips", d.clips, "number of clips"}.in(1, 1000000),
       Flag{"seed", int64_t(d.seed), "random seed; the same seed gives byte-identical files"}.at_least(0),
       Flag{"size", d.size, "frame width and height in pixels", "PX"}.in(16, 1024),
       Flag{"frames", d.frames, "frames per clip", "K"}.in(1, 1000),
       {"seconds", number_list(seconds, 2, ':'), "audio duration in seconds, uniform in [A, B] per clip, 1..60",
        "A[:B]"},
       {"strength", d.strength, "artefact strength in [0, 1]; 0 draws fakes exactly like reals"},
       {"split", number_list(d.split, 3, ','), "train/val/test weights, applied within each category", "T,V,E"},
       {"mix", number_list(d.mix, 4, ','), "relative category counts (1,1,1,1: balanced)", "A,B,C,D"},
       Flag{"threads", d.threads, "worker threads, 0 = all cores; the output does not depend on it"}.in(0, 1024),
       {"force", false, "replace an earlier set in DIR (its manifest.csv, synth.json and clips/)"},
       {"quiet", false, "no progress bar and no summary"}});
}

}  // namespace

int run_synth(int argc, char** argv) {
  const CommandLine flags = synth_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  const nlohmann::json& c = cmd.config;
  const std::string out = c["out"];
  const bool quiet = c["quiet"];
  data::SynthConfig config;
  config.clips = c["clips"];
  config.seed = c["seed"];
  config.size = c["size"];
  config.frames = c["frames"];
  const std::string seconds = c["seconds"];
  const std::vector<double> range =
      parse_list(kCommand, "--seconds", seconds, seconds.find(':') == std::string::npos ? 1 : 2, ':');
  config.min_seconds = range.front(), config.max_seconds = range.back();
  config.strength = c["strength"];
  const std::vector<double> split = parse_list(kCommand, "--split", c["split"], 3, ',');
  std::copy(split.begin(), split.end(), config.split);
  const std::vector<double> mix = parse_list(kCommand, "--mix", c["mix"], 4, ',');
  std::copy(mix.begin(), mix.end(), config.mix);
  config.threads = c["threads"];
  config.force = c["force"];

  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar("synth", config.clips, "clips", quiet);
  const std::vector<data::SynthClip> clips =
      data::generate_synthetic(out, config, [&](int64_t done, int64_t) { bar.update(done); });
  bar.finish();
  save_config(out + "/config.json", c, kCommand);
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t per_category[4] = {0, 0, 0, 0}, per_split[3] = {0, 0, 0};
  for (const data::SynthClip& c : clips) {
    ++per_category[c.category[0] - 'A'];
    ++per_split[c.split == "train" ? 0 : c.split == "val" ? 1 : 2];
  }
  for (int s = 0; s < 3; ++s)  // a set too small for its split weights: say so now, not at pretrain
    if (per_split[s] == 0)
      std::fprintf(stderr, "%s: warning: the %s split has no clips (%zu clips, --split %s); pretrain and extract "
                   "need clips in train, val and test\n",
                   kCommand, s == 0 ? "train" : s == 1 ? "val" : "test", clips.size(),
                   c["split"].get<std::string>().c_str());
  if (quiet) return 0;
  std::printf("wrote %zu clips to %s in %.1f s (%dx%d, %d frames, %g-%g s audio, strength %g)\n", clips.size(),
              out.c_str(), elapsed, config.size, config.size, config.frames, config.min_seconds, config.max_seconds,
              config.strength);
  std::printf("  categories: A %lld, B %lld, C %lld, D %lld\n", (long long)per_category[0], (long long)per_category[1],
              (long long)per_category[2], (long long)per_category[3]);
  std::printf("  splits:     train %lld, val %lld, test %lld\n", (long long)per_split[0], (long long)per_split[1],
              (long long)per_split[2]);
  std::printf("  manifest:   %s/manifest.csv (options: config.json)\n", out.c_str());
  return 0;
}

}  // namespace stgs::apps
