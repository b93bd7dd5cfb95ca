// The `stgs` command: one binary, subcommands (apps/cmd_*.cpp). Exit status: what the subcommand returns,
// 1 on an error it raises, 2 on a usage error (an unknown command, flag or config key; a missing argument).
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "apps/cli.h"
#include "apps/commands.h"
#include "engine/distributed/launch_env.h"
#include "engine/storage.h"
#include "engine/version.h"

namespace {

void print_help(FILE* out) {
  std::fprintf(out,
               "stgs %s: STGS-BMNAS audio-visual deepfake detection on a from-scratch C++/CUDA engine\n"
               "\n"
               "usage: stgs <command> [options]\n"
               "\n"
               "commands:\n"
               "  augment     list the 36 augmentations (frames, waveform, spectrogram)\n"
               "  detect      P(fake) of a clip (or a manifest) with a trained eval run, and each modality's evidence\n"
               "  eval        train a searched genotype's fixed network; test AUC, ACC, EER, report\n"
               "  import      import FakeAVCeleb or SWAN-DF: frames, 16 kHz WAV and a manifest (needs ffmpeg)\n"
               "  inspect     list the tensors of a safetensors checkpoint; compare them with a model\n"
               "  search      STGS-BMNAS architecture search over a feature cache (resumable run directory)\n"
               "  synth       write the synthetic audio-visual deepfake set (PNG frames, WAV, manifest)\n"
               "  show-input  write what the model sees for one clip: face crops and spectrogram (PNG, safetensors)\n"
               "  pretrain    train a ResNet-34 backbone as a unimodal real/fake classifier\n"
               "  report      regenerate a run's report.md and plots; compare several runs (tables, entropy curves)\n"
               "  extract     run both backbones over a manifest and write the feature cache\n"
               "  version     print the version, the build (CPU/CUDA) and the visible GPUs\n"
               "  help        show this text\n"
               "\n"
               "Run `stgs <command> --help` for a command's options.\n",
               stgs::kVersion);
}

int print_version() {
  std::printf("stgs %s\n", stgs::kVersion);
  std::printf("build: %s\n", stgs::cuda_built() ? "CPU + CUDA" : "CPU only");
  std::printf("cuda devices: %d\n", stgs::cuda_device_count());
  return 0;
}

// The subcommands: how each runs, and whether it may run on several ranks (search and eval only: under mpirun or
// srun the others would run once per rank and race on the same output files).
struct Command {
  int (*run)(int argc, char** argv);
  bool multi_rank;
};
const std::map<std::string, Command> kCommands = {
    {"augment", {stgs::apps::run_augment, false}},   {"inspect", {stgs::apps::run_inspect, false}},
    {"synth", {stgs::apps::run_synth, false}},       {"import", {stgs::apps::run_import, false}},
    {"show-input", {stgs::apps::run_show_input, false}}, {"pretrain", {stgs::apps::run_pretrain, false}},
    {"extract", {stgs::apps::run_extract, false}},   {"search", {stgs::apps::run_search, true}},
    {"eval", {stgs::apps::run_eval, true}},          {"detect", {stgs::apps::run_detect, false}},
    {"report", {stgs::apps::run_report, false}},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_help(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  // "stgs help search" is "stgs search --help": the same argv shape, argv[1] the command. `stgs help`,
  // `--help` and `-h` alone (or before anything but a command) print this overview.
  const bool help_word = cmd == "help" || cmd == "--help" || cmd == "-h";
  char help_flag[] = "--help";
  char* help_argv[] = {argv[0], argc >= 3 ? argv[2] : argv[1], help_flag, nullptr};
  if (help_word && argc >= 3 && kCommands.count(argv[2])) {
    cmd = argv[2];
    argc = 3;
    argv = help_argv;
  } else if (help_word) {
    print_help(stdout);
    return 0;
  }
  if (cmd == "version" || cmd == "--version") {
    if (argc == 2) return print_version();
    std::fprintf(stderr, "stgs version: unexpected argument '%s'\n", argv[2]);
    return 2;
  }
  const auto command = kCommands.find(cmd);
  if (command == kCommands.end()) {
    std::fprintf(stderr, "stgs: unknown command '%s'\n\n", cmd.c_str());
    print_help(stderr);
    return 2;
  }
  // usage hint: `stgs import DATASET --help` for the importers, whose options differ by dataset.
  const std::string help_command = cmd == "import" && argc > 2 && argv[2][0] != '-' ? cmd + " " + argv[2] : cmd;
  try {
    if (!command->second.multi_rank && stgs::dist::detect_launch_env().distributed())
      throw stgs::apps::UsageError("stgs " + cmd + " runs in one process: start it without mpirun or srun (or with "
                                   "one rank); only search and eval run on several ranks");
    return command->second.run(argc - 2, argv + 2);
  } catch (const stgs::apps::UsageError& e) {
    std::fprintf(stderr, "%s\n(`stgs %s --help` lists the options)\n", e.what(), help_command.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stgs %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
