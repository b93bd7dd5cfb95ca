#include "apps/distributed.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <vector>

#include "apps/options.h"
#include "engine/distributed/mpi_communicator.h"
#include "engine/distributed/process_group.h"
#include "engine/storage.h"

namespace stgs::apps {

Device rank_device(const std::string& command, const std::string& device_option, const dist::LaunchEnv& env,
                   int visible_gpus, bool gpus_bound_per_rank) {
  if (!env.distributed() || (device_option != "auto" && device_option != "cuda"))
    return parse_device_option(command, device_option);
  if (visible_gpus == 0) {
    STGS_CHECK(device_option == "auto", command, ": --device cuda asks for a GPU but none is visible");
    return Device::cpu();
  }
  // A launcher that binds one GPU to each rank (srun --gpus-per-task=1, a per-rank CUDA_VISIBLE_DEVICES) shows
  // every rank its own GPU as device 0.
  if (gpus_bound_per_rank && visible_gpus == 1) return Device::cuda(0);
  // A rank without a GPU of its own would pick MPI while its GPU neighbours pick NCCL: their collectives could
  // never meet.
  STGS_CHECK(env.local_rank < visible_gpus, command, ": local rank ", env.local_rank, " has no GPU of its own (",
             visible_gpus, " visible to it): start at most ", visible_gpus,
             " ranks per machine, bind one GPU to each rank (CUDA_VISIBLE_DEVICES), or pass --device cpu for CPU "
             "ranks");
  return Device::cuda(env.local_rank);
}

Ranks setup_ranks(const std::string& command, const std::string& device_option) {
  Ranks r;
  r.env = dist::detect_launch_env();
  const bool bound = std::getenv("CUDA_VISIBLE_DEVICES") != nullptr;
  r.device = rank_device(command, device_option, r.env, cuda_device_count(), bound);
  r.comm = dist::make_communicator(r.env, r.device);
  return r;
}

int run_on_ranks(const Ranks& ranks, const std::string& command, const std::function<int()>& body) {
  if (!ranks.distributed()) return body();
  try {
    return body();
  } catch (const std::exception& e) {
    dist::abort_all_ranks(command + ": rank " + std::to_string(ranks.comm->rank()) + " of " +
                              std::to_string(ranks.comm->world_size()) + ": error: " + e.what(),
                          1);
  }
}

void check_same_on_ranks(const Ranks& ranks, nlohmann::json config, const std::string& features_sha256,
                         const std::string& command) {
  if (!ranks.distributed()) return;
  for (const char* key : {"quiet", "runs_dir", "features", "test_features"}) config.erase(key);
  config["features_sha256"] = features_sha256;
  const std::string mine = config.dump();
  const std::vector<std::vector<uint8_t>> all = ranks.comm->all_gather_bytes(std::vector<uint8_t>(mine.begin(), mine.end()));
  const nlohmann::json first = nlohmann::json::parse(all[0].begin(), all[0].end());
  for (size_t r = 1; r < all.size(); ++r) {
    const nlohmann::json other = nlohmann::json::parse(all[r].begin(), all[r].end());
    if (other == first) continue;
    std::vector<std::string> differ;
    for (const auto& [key, value] : first.items()) {
      if (other.contains(key) && other.at(key) == value) continue;
      std::string flag = key;  // config keys spell a flag's '-' as '_'
      std::replace(flag.begin(), flag.end(), '_', '-');
      differ.push_back(key == "features_sha256" ? "the feature caches' contents"
                                                : "--" + flag + " (" + value.dump() + " vs " +
                                                      (other.contains(key) ? other.at(key).dump() : "unset") + ")");
    }
    STGS_FAIL(command, ": rank ", r, " was started with other options or data than rank 0: ", join_list(differ, ", "),
              "; every rank must run the same command on the same feature caches");
  }
}

std::string rank_summary(const Ranks& ranks) {
  if (!ranks.distributed() && ranks.comm->backend() == "single") return "";
  return " on " + std::to_string(ranks.comm->world_size()) + " ranks (" + ranks.comm->backend() + ", launched by " +
         ranks.env.launcher + ")";
}

}  // namespace stgs::apps
