#include "engine/distributed/process_group.h"

#include <cstdlib>
#include <string>

#include "engine/distributed/mpi_communicator.h"
#include "engine/distributed/nccl_communicator.h"
#include "kernels/check.h"

namespace stgs::dist {

std::unique_ptr<Communicator> make_communicator(const LaunchEnv& env, Device device) {
  const char* forced = std::getenv("STGS_DIST_BACKEND");
  const std::string backend = forced != nullptr && *forced != '\0' ? forced : (device.is_cpu() ? "mpi" : "nccl");
  if (!env.distributed() && (forced == nullptr || *forced == '\0')) return std::make_unique<SingleProcess>();
  STGS_CHECK(backend == "mpi" || backend == "nccl", "STGS_DIST_BACKEND='", backend, "': expected mpi or nccl");
  if (backend == "mpi") return make_mpi_communicator(env);
  STGS_CHECK(device.is_cuda(), "rank ", env.rank, ": the NCCL backend needs a CUDA device, the run is on ",
             device.str());
  const bool mpi_launch = env.launcher == "openmpi" || env.launcher == "slurm";
  return make_nccl_communicator(env, device.index, mpi_built() && mpi_launch ? make_mpi_communicator(env) : nullptr);
}

}  // namespace stgs::dist
