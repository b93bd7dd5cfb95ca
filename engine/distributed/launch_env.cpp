#include "engine/distributed/launch_env.h"

#include <cstdlib>

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

}  // namespace

LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get) {
  for (const LauncherVars& l : kLaunchers) {
    const char* rank = get(l.rank);
    const char* world = get(l.world_size);
    if (rank == nullptr || world == nullptr) continue;
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
  return LaunchEnv{};
}

LaunchEnv detect_launch_env() {
  return launch_env_from([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace stgs::dist
