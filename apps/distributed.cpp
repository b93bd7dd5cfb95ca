#include "apps/distributed.h"

#include <exception>

#include "apps/options.h"
#include "engine/distributed/mpi_communicator.h"
#include "engine/distributed/process_group.h"
#include "engine/storage.h"

namespace stgs::apps {

Ranks setup_ranks(const std::string& command, const std::string& device_option) {
  Ranks r;
  r.env = dist::detect_launch_env();
  r.device = parse_device_option(command, device_option);
  if (r.env.distributed() && (device_option == "auto" || device_option == "cuda"))
    r.device = cuda_device_count() > r.env.local_rank ? Device::cuda(r.env.local_rank) : Device::cpu();
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

std::string rank_summary(const Ranks& ranks) {
  if (!ranks.distributed() && ranks.comm->backend() == "single") return "";
  return " on " + std::to_string(ranks.comm->world_size()) + " ranks (" + ranks.comm->backend() + ", launched by " +
         ranks.env.launcher + ")";
}

}  // namespace stgs::apps
