#include "engine/distributed/launch_env.h"

#include <cstdlib>
#include <optional>

#include "kernels/check.h"

namespace stgs::dist {
namespace {

struct LauncherVars {
  const char* launcher;
  const char* rank;
  const char* local_rank;
  const char* world_size;
};

constexpr LauncherVars kLaunchers[] = {
    {"torchrun", "RANK", "LOCAL_RANK", "WORLD_SIZE"},
    {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE"},
    {"slurm", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS"},
};

int integer_variable(const char* name, const char* value) {
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  STGS_CHECK(end != value && *end == '\0' && v >= 0 && v <= 1'000'000, "launch environment: ", name, "='", value,
             "' is not a non-negative integer");
  return int(v);
}

// The launch one launcher's variables describe; nullopt when they are absent.
std::optional<LaunchEnv> launch_of(const LauncherVars& l, const std::function<const char*(const char*)>& get) {
  const char* rank = get(l.rank);
  const char* world = get(l.world_size);
  if (rank == nullptr || world == nullptr) return std::nullopt;
  LaunchEnv env;
  env.launcher = l.launcher;
  env.rank = integer_variable(l.rank, rank);
  env.world_size = integer_variable(l.world_size, world);
  const char* local = get(l.local_rank);
  env.local_rank = local != nullptr ? integer_variable(l.local_rank, local) : env.rank;
  STGS_CHECK(env.world_size >= 1 && env.rank < env.world_size, "launch environment (", l.launcher, "): ", l.rank,
             "=", env.rank, " is outside ", l.world_size, "=", env.world_size);
  return env;
}

}  // namespace

LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get) {
  const LauncherVars& torchrun = kLaunchers[0];
  // Half a torchrun set is a leftover or a typo, not a launch: running alone would silently ignore it.
  const bool has_rank = get(torchrun.rank) != nullptr;
  STGS_CHECK(has_rank == (get(torchrun.world_size) != nullptr), "launch environment: ",
             has_rank ? "RANK" : "WORLD_SIZE", " is set but ", has_rank ? "WORLD_SIZE" : "RANK",
             " is not; set both or neither");
  const std::optional<LaunchEnv> from_torchrun = launch_of(torchrun, get), from_mpi = launch_of(kLaunchers[1], get);
  // RANK/WORLD_SIZE left in the environment of an mpirun launch would split it into unrelated runs. (Slurm's
  // variables may disagree with OpenMPI's legitimately: mpirun inside an sbatch allocation inherits them.)
  if (from_torchrun && from_mpi)
    STGS_CHECK(from_torchrun->rank == from_mpi->rank && from_torchrun->world_size == from_mpi->world_size,
               "launch environment: RANK=", from_torchrun->rank, " WORLD_SIZE=", from_torchrun->world_size,
               " disagree with OpenMPI's OMPI_COMM_WORLD_RANK=", from_mpi->rank, " OMPI_COMM_WORLD_SIZE=",
               from_mpi->world_size, " (left over in the environment? unset RANK and WORLD_SIZE under mpirun)");
  if (from_torchrun) return *from_torchrun;
  if (from_mpi) return *from_mpi;
  // Slurm's variables count only inside an srun step (SLURM_STEP_ID): a batch script or salloc shell has
  // SLURM_PROCID=0 and SLURM_NTASKS=<the allocation's tasks> too, and is one process.
  if (get("SLURM_STEP_ID") != nullptr)
    if (std::optional<LaunchEnv> from_slurm = launch_of(kLaunchers[2], get)) return *from_slurm;
  return LaunchEnv{};
}

LaunchEnv detect_launch_env() {
  return launch_env_from([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace stgs::dist
