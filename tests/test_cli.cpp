// Tests of the `stgs` command line (the binary built beside this test program): exit statuses, output and
// error messages of its subcommands.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "engine/io/safetensors.h"
#include "engine/nn/resnet.h"
#include "tests/test_files.h"

using namespace stgs;

using testing::CommandResult;
using testing::run_stgs;

TEST_CASE("stgs: help, version, unknown command", "[cli]") {
  CommandResult r = run_stgs("--help");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("inspect"));
  r = run_stgs("version");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("build:"));
  r = run_stgs("frobnicate");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("unknown command 'frobnicate'"));
  r = run_stgs("version extra");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("stgs version: unexpected argument 'extra'"));
  r = run_stgs("help search");  // a command's own help
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("usage: stgs search FEATURES_DIR"));
  r = run_stgs("search");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("FEATURES_DIR (or --resume RUN_DIR) is required"));
  r = run_stgs("import fakeavceleb");  // the hint names the dataset's own help
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("`stgs import fakeavceleb --help` lists the options"));
  r = run_stgs("search x --device gpu");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--device expects auto, cpu, cuda or cuda:N, got 'gpu'"));
  // Commands that write one set of outputs refuse a multi-rank launch (each rank would write the same files).
  r = testing::run_command("RANK=1 WORLD_SIZE=2 " + std::string(STGS_BINARY) + " synth --out /nonexistent/x");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("stgs synth runs in one process"));
}

TEST_CASE("stgs inspect: lists tensors and compares keys with a model", "[cli]") {
  const std::string good = "/tmp/stgs_test_cli_good.safetensors", bad = "/tmp/stgs_test_cli_bad.safetensors";
  ResNet34 net(ResNetConfig::image(2, 5));
  save_safetensors(good, net.state_dict().entries(), {{"note", "cli test"}});
  std::vector<std::pair<std::string, Tensor>> entries;
  for (const auto& [name, t] : net.state_dict())
    if (name != "layer2.1.bn1.running_var") entries.emplace_back(name == "fc.bias" ? "head.bias" : name, t);
  save_safetensors(bad, entries);

  CommandResult r = run_stgs("inspect " + good);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("218 tensors"));
  CHECK_THAT(r.output, Catch::Contains("metadata note = cli test"));
  CHECK_THAT(r.output, Catch::Contains("layer2.0.downsample.0.weight"));
  CHECK_THAT(r.output, Catch::Contains("[4, 2, 1, 1]"));

  r = run_stgs("inspect " + good + " --model resnet34-image");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("width 2, 5-class head 'fc'"));
  CHECK_THAT(r.output, Catch::Contains("every key matches"));

  r = run_stgs("inspect " + bad + " --model resnet34-image");
  CHECK(r.status == 3);
  CHECK_THAT(r.output, Catch::Contains("missing:     2"));  // the dropped running_var and fc.bias
  CHECK_THAT(r.output, Catch::Contains("layer2.1.bn1.running_var"));
  CHECK_THAT(r.output, Catch::Contains("unexpected:  1"));
  CHECK_THAT(r.output, Catch::Contains("head.bias"));

  r = run_stgs("inspect " + good + " --model resnet34-audio");  // 3-channel stem, "fc" head: not AutoSpeech
  CHECK(r.status == 3);
  CHECK_THAT(r.output, Catch::Contains("conv1.weight: file [2, 3, 7, 7], model [2, 1, 7, 7]"));

  r = run_stgs("inspect /nonexistent/x.safetensors");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("/nonexistent/x.safetensors"));
  r = run_stgs("inspect " + good + " --model resnet50");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("expected resnet34-image or resnet34-audio"));
  r = run_stgs("inspect " + good + " --width zero");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--width expects an integer in [0, 1024], got 'zero'"));
  r = run_stgs("inspect --bogus");
  CHECK(r.status == 2);
  r = run_stgs("inspect --help");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("usage: stgs inspect"));
  std::remove(good.c_str());
  std::remove(bad.c_str());
}
