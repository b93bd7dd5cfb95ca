// The communicator a launch asks for: which backend, for which device.
// defines: make_communicator
//
// A single process (world 1, STGS_DIST_BACKEND unset) gets SingleProcess. Otherwise the backend is
// STGS_DIST_BACKEND ("mpi" or "nccl") or follows the device: NCCL for CUDA tensors, MPI for CPU ones.
// Setting STGS_DIST_BACKEND in a single process runs the real backend with one rank (a check that it
// changes nothing).
#pragma once

#include <memory>

#include "engine/distributed/communicator.h"
#include "engine/distributed/launch_env.h"

namespace stgs::dist {

// device: where the run's tensors live (NCCL: this rank's GPU). NCCL's unique id travels over MPI when the
// build has it and an MPI launcher started the ranks, else through STGS_NCCL_ID_FILE.
std::unique_ptr<Communicator> make_communicator(const LaunchEnv& env, Device device);

}  // namespace stgs::dist
