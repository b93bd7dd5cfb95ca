// `--config FILE` on every subcommand: a value from the file, a flag overriding it (seen in the effect or in the
// saved config.json), and an unknown key refused by name. pretrain and extract are covered with their own
// tests (tests/test_feature_cache.cpp), search and eval with the protocols (tests/test_protocols.cpp).
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "data/manifest.h"
#include "engine/io/safetensors.h"
#include "engine/nn/resnet.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::testing;
namespace fs = std::filesystem;

TEST_CASE("--config: every command refuses an unknown key by name", "[app][cli]") {
  TempDir tmp("configs_unknown");
  const std::string config = tmp.file("c.json");
  write_file_bytes(config, R"({"bogus_key": 1})");
  for (const char* command : {"synth", "import fakeavceleb", "import swan-df", "augment", "show-input", "inspect",
                              "pretrain", "extract", "search", "eval"}) {
    const CommandResult r = run_stgs(std::string(command) + " --config " + config);
    INFO(command << ": " << r.output);
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains(config + ": unknown key \"bogus_key\""));
    CHECK_THAT(run_stgs(std::string(command) + " --help").output, Catch::Contains("--config FILE"));
  }
}

TEST_CASE("--config: synth, show-input, inspect, augment and import take the file's values under the flags'",
          "[app][cli]") {
  TempDir tmp("configs");
  // synth: --clips over the file's; the resolved options saved beside the manifest.
  const std::string set = tmp.file("set");
  write_file_bytes(tmp.file("synth.json"),
                   R"({"clips": 8, "size": 16, "frames": 3, "seconds": "1", "quiet": true})");
  CommandResult r = run_stgs("synth --config " + tmp.file("synth.json") + " --clips 4 --out " + set);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const data::Manifest manifest = data::read_manifest(set + "/manifest.csv");
  CHECK(manifest.rows.size() == 4);
  const nlohmann::json saved = nlohmann::json::parse(read_file_bytes(set + "/config.json"));
  CHECK(saved["clips"] == 4);
  CHECK(saved["size"] == 16);
  CHECK(saved["out"] == set);

  // show-input: --frames over the file's 3.
  write_file_bytes(tmp.file("show.json"), R"({"id": ")" + manifest.rows[0].id + R"(", "frames": 3, "size": 16})");
  r = run_stgs("show-input " + set + "/manifest.csv --config " + tmp.file("show.json") + " --frames 2 --out " +
               tmp.file("view"));
  REQUIRE(r.status == 0);
  CHECK(fs::exists(tmp.file("view/frame_01.png")));
  CHECK_FALSE(fs::exists(tmp.file("view/frame_02.png")));

  // inspect: the file's --model fails, the flag's matches.
  const std::string checkpoint = tmp.file("net.safetensors");
  save_safetensors(checkpoint, ResNet34(ResNetConfig::image(2, 2)).state_dict().entries());
  write_file_bytes(tmp.file("inspect.json"), R"({"model": "resnet50"})");
  r = run_stgs("inspect " + checkpoint + " --config " + tmp.file("inspect.json"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("resnet50"));
  r = run_stgs("inspect " + checkpoint + " --config " + tmp.file("inspect.json") + " --model resnet34-image");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("every key matches"));

  // augment: --list from the file, --no-list over it.
  write_file_bytes(tmp.file("augment.json"), R"({"list": true})");
  CHECK_THAT(run_stgs("augment --config " + tmp.file("augment.json")).output, Catch::Contains("36 augmentations"));
  CHECK(run_stgs("augment --config " + tmp.file("augment.json") + " --no-list").status == 2);

  // import: the file's malformed --split is refused, the flag's replaces it (the run then stops at the root).
  write_file_bytes(tmp.file("import.json"), R"({"split": "1,2", "out": ")" + tmp.file("imported") + R"("})");
  r = run_stgs("import fakeavceleb " + tmp.file("none") + " --config " + tmp.file("import.json"));
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("--split expects 3 numbers"));
  r = run_stgs("import fakeavceleb " + tmp.file("none") + " --config " + tmp.file("import.json") +
               " --split 0.5,0.25,0.25");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, !Catch::Contains("--split") && Catch::Contains(tmp.file("none")));
}
