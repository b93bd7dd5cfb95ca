// `stgs augment --list`: prints the augmentation catalogue (data/augment.h), one row per augmentation.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "data/augment.h"

namespace stgs::apps {
namespace {

CommandLine augment_flags() {
  return CommandLine(
      "stgs augment", "stgs augment --list",
      "The 36 augmentations applied offline when the feature cache is built: 24 on the face frames\n"
      "(flip, rotations, scale, translation, brightness, contrast, saturation, hue, blur, pixel noise,\n"
      "JPEG, grayscale) and 12 on the audio (white noise at a set SNR, time shift, gain, pitch shift,\n"
      "time stretch, time reverse on the 16 kHz waveform; SpecAugment time and frequency masks on the\n"
      "magnitude spectrogram). Each has a fixed strength, named in it (rotate_10: up to 10 degrees).\n"
      "Random parameters (an angle, a shift, a noise field, a mask) come from a Philox generator keyed\n"
      "by a seed, so the same seed gives bitwise the same output.\n"
      "\n"
      "exit status: 0 on success, 2 on a usage error.",
      {{"list", false, "print index (0-based, the catalogue order), name, target and description"}});
}

void print_catalogue() {
  const std::vector<data::Augmentation>& catalogue = data::augmentation_catalogue();
  size_t width = 4;
  for (const data::Augmentation& a : catalogue) width = std::max(width, a.name.size());
  std::printf("%5s  %-*s  %-11s  %s\n", "index", int(width), "name", "target", "description");
  int counts[3] = {0, 0, 0};
  for (size_t i = 0; i < catalogue.size(); ++i) {
    const data::Augmentation& a = catalogue[i];
    std::printf("%5zu  %-*s  %-11s  %s\n", i, int(width), a.name.c_str(), data::augment_target_name(a.target),
                a.description.c_str());
    ++counts[int(a.target)];
  }
  std::printf("%zu augmentations: %d frames, %d waveform, %d spectrogram\n", catalogue.size(), counts[0], counts[1],
              counts[2]);
}

}  // namespace

int run_augment(int argc, char** argv) {
  const CommandLine flags = augment_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  if (!cmd.config["list"].get<bool>()) throw UsageError("stgs augment: --list is required (the only thing it does)");
  print_catalogue();
  return 0;
}

}  // namespace stgs::apps
