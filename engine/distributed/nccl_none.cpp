// The NCCL entry points of a build without CUDA (the CUDA build has nccl_communicator.cu).
#include "engine/distributed/nccl_communicator.h"

#include "kernels/check.h"

#if !STGS_CUDA
namespace stgs::dist {

bool nccl_built() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(const LaunchEnv& env, int, std::unique_ptr<Communicator>) {
  STGS_FAIL("rank ", env.rank, ": NCCL needs the CUDA build (this one is CPU only); use --device cpu for MPI ranks");
}

}  // namespace stgs::dist
#endif
