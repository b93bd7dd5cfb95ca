// Where this process sits in a multi-process launch: its rank, its rank on this machine, the world size,
// read from whichever launcher started it.
// defines: LaunchEnv, launch_env_from, detect_launch_env
//
// Launchers and their variables, read in this order (the first set present wins):
//   torchrun and most others   RANK, LOCAL_RANK, WORLD_SIZE
//   OpenMPI's mpirun           OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_LOCAL_RANK, OMPI_COMM_WORLD_SIZE
//   Slurm's srun               SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS
// None of them: a single process (rank 0 of 1). A missing local rank counts as the rank (one machine).
#pragma once

#include <functional>
#include <string>

namespace stgs::dist {

struct LaunchEnv {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  std::string launcher = "none";  // "torchrun", "openmpi", "slurm" or "none"

  bool distributed() const { return world_size > 1; }
};

// The launch read through `get` (a getenv: a variable's value, or null when unset). Throws naming the
// variable when a value is not an integer or the rank is outside [0, world size).
LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get);

// launch_env_from(std::getenv).
LaunchEnv detect_launch_env();

}  // namespace stgs::dist
