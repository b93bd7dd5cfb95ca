// CPU ranks over MPI (OpenMPI from Debian): one process per rank, started by mpirun or srun.
// defines: mpi_built, make_mpi_communicator
//
// The communicator initialises MPI on construction (unless the program already did) and finalises it on
// destruction. Errors return instead of aborting (MPI_ERRORS_RETURN) and become stgs::Error naming the call;
// every collective runs under a CollectiveWatchdog (watchdog.h). Tensors of one call are packed into one
// host buffer, so a list costs one collective; CUDA tensors are staged through that buffer.
#pragma once

#include <memory>
#include <string>

#include "engine/distributed/communicator.h"
#include "engine/distributed/launch_env.h"

namespace stgs::dist {

// True when this build has MPI (STGS_MPI: the Makefile found mpicxx).
bool mpi_built();

// The MPI world; throws when the build has no MPI or when MPI's world size differs from env's (a launcher
// that is not MPI's: CPU ranks need mpirun or srun).
std::unique_ptr<Communicator> make_mpi_communicator(const LaunchEnv& env);

// On an unrecoverable error in a distributed run: prints `message` and ends every rank (MPI_Abort) with
// status `code`. Without MPI (or before it started) it ends this process only.
[[noreturn]] void abort_all_ranks(const std::string& message, int code);

}  // namespace stgs::dist
