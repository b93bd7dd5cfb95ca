#include "apps/model_file.h"

#include "apps/options.h"
#include "engine/io/safetensors.h"
#include "kernels/check.h"

namespace stgs::apps {

void save_model_file(const std::string& path, const ModelFile& model) {
  save_safetensors(path, model.weights.entries(),
                   {{"format", kModelFileFormat},
                    {"version", "1"},
                    {"model", model.name},
                    {"best_epoch", std::to_string(model.best_epoch)},
                    {"genotype", nas::genotype_to_json(model.genotype)}});
}

ModelFile load_model_file(const std::string& path) {
  const SafetensorsFile file = load_safetensors(path);
  auto entry = [&](const std::string& key) -> const std::string& {
    const auto it = file.metadata.find(key);
    STGS_CHECK(it != file.metadata.end(), path, ": no \"", key, "\" in the metadata; not a model file of `stgs eval`");
    return it->second;
  };
  STGS_CHECK(entry("format") == kModelFileFormat, path, ": format \"", entry("format"), "\", expected \"",
             kModelFileFormat, "\"");
  STGS_CHECK(entry("version") == "1", path, ": version ", entry("version"), " (this build reads version 1)");
  ModelFile model;
  model.name = entry("model");
  model.best_epoch = parse_integer(path, "metadata \"best_epoch\"", entry("best_epoch"), 0, int64_t(1) << 40);
  model.genotype = nas::parse_genotype(entry("genotype"), path + ": genotype");
  model.weights = StateDict(file.tensors);
  return model;
}

}  // namespace stgs::apps
