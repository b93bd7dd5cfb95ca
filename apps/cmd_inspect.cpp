// `stgs inspect FILE.safetensors [--model NAME]`: lists a checkpoint's tensors and, given a model, which of
// its keys match the model's state dict, are missing from the file or are unexpected.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "engine/io/safetensors.h"
#include "engine/nn/resnet.h"

namespace stgs::apps {
namespace {

CommandLine inspect_flags() {
  return CommandLine(
      "stgs inspect", "stgs inspect FILE.safetensors [--model NAME] [--width W] [--classes N]",
      "Prints every tensor of a safetensors checkpoint (name, dtype, shape) and the file's metadata.\n"
      "\n"
      "exit status: 0 when the file reads (and, with --model, every key matches), 3 when keys or\n"
      "shapes differ, 1 on a read error, 2 on a usage error.",
      {Flag{"file", "", "the safetensors file", "FILE.safetensors"}.positional().required(),
       {"model", "",
        "also compare the keys with a model's state dict: resnet34-image (torchvision names) or resnet34-audio "
        "(AutoSpeech); lists matching, missing and unexpected keys and shape mismatches",
        "NAME"},
       Flag{"width", 0, "the model's layer1 width; 0: read from conv1.weight, else 64", "W"}.in(0, 1024),
       Flag{"classes", 0, "the model's head size; 0: read from the head's weight, else no head"}.in(0, 1000000)});
}

// Compares the file's tensors with the model's state dict; returns the exit status (0 or 3).
int compare_with_model(const SafetensorsFile& file, const std::string& model, int64_t width, int64_t classes) {
  ResNetConfig config = ResNetConfig::preset(model);
  std::map<std::string, Shape> in_file;
  for (const auto& [name, t] : file.tensors) in_file[name] = t.shape();
  // Unset sizes come from the file itself, so a checkpoint of any width or head size can be checked.
  if (width == 0) width = in_file.count("conv1.weight") ? in_file["conv1.weight"][0] : 64;
  const std::string head = config.head_name + ".weight";
  if (classes == 0 && in_file.count(head) && in_file[head].size() == 2) classes = in_file[head][0];
  config = ResNetConfig::preset(model, width, classes);
  const ResNet34 net(config);

  std::vector<std::string> matching, missing, unexpected, mismatched;
  std::map<std::string, Shape> in_model;
  for (const auto& [name, t] : net.state_dict()) {
    in_model[name] = t.shape();
    auto it = in_file.find(name);
    if (it == in_file.end())
      missing.push_back(name);
    else if (it->second != t.shape())
      mismatched.push_back(name + ": file " + it->second.str() + ", model " + t.shape().str());
    else
      matching.push_back(name);
  }
  for (const auto& [name, t] : file.tensors)
    if (!in_model.count(name)) unexpected.push_back(name);

  std::printf("\nmodel %s (width %lld, %s): %zu keys\n", model.c_str(), (long long)width,
              classes > 0 ? (std::to_string(classes) + "-class head '" + config.head_name + "'").c_str() : "no head",
              in_model.size());
  std::printf("  matching:    %zu\n", matching.size());
  auto list = [](const char* title, const std::vector<std::string>& names) {
    std::printf("  %-12s %zu\n", title, names.size());
    for (const std::string& n : names) std::printf("    %s\n", n.c_str());
  };
  list("missing:", missing);
  list("unexpected:", unexpected);
  list("mismatched:", mismatched);
  const bool ok = missing.empty() && unexpected.empty() && mismatched.empty();
  std::printf("%s\n", ok ? "every key matches" : "the checkpoint does not match the model");
  return ok ? 0 : 3;
}

}  // namespace

int run_inspect(int argc, char** argv) {
  const CommandLine flags = inspect_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  const std::string path = cmd.config["file"], model = cmd.config["model"];
  const int64_t width = cmd.config["width"], classes = cmd.config["classes"];
  if (!model.empty()) ResNetConfig::preset(model);  // reject a bad name before reading a large file

  const SafetensorsFile file = load_safetensors(path);
  size_t name_width = 4;
  int64_t elements = 0, bytes = 0;
  for (const auto& [name, t] : file.tensors) {
    name_width = std::max(name_width, name.size());
    elements += t.numel();
    bytes += t.numel() * int64_t(dtype_size(t.dtype()));
  }
  std::printf("%s: %zu tensors, %lld elements, %.2f MB\n", path.c_str(), file.tensors.size(), (long long)elements,
              double(bytes) / 1e6);
  for (const auto& [key, value] : file.metadata) std::printf("  metadata %s = %s\n", key.c_str(), value.c_str());
  std::printf("%-*s  %-5s  %s\n", int(name_width), "name", "dtype", "shape");
  for (const auto& [name, t] : file.tensors)
    std::printf("%-*s  %-5s  %s\n", int(name_width), name.c_str(), dtype_name(t.dtype()), t.shape().str().c_str());
  return model.empty() ? 0 : compare_with_model(file, model, width, classes);
}

}  // namespace stgs::apps
