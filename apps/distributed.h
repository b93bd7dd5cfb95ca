// `stgs search` and `stgs eval` over several processes: the launcher's ranks, the device each drives, the
// communicator, and how an error on one rank ends all of them (README "Distributed training").
// defines: Ranks, rank_device, setup_ranks, run_on_ranks, rank_summary, check_same_on_ranks
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/distributed/communicator.h"
#include "engine/distributed/launch_env.h"
#include "engine/tensor.h"

namespace stgs::apps {

struct Ranks {
  dist::LaunchEnv env;
  Device device;
  std::unique_ptr<dist::Communicator> comm;  // dist::SingleProcess outside a multi-process launch

  bool distributed() const { return comm->world_size() > 1; }
  // Only rank 0 writes the run directory, checkpoints and output.
  bool writes() const { return comm->is_root(); }
};

// The device of a rank of `env` for `--device` (device_option) when it sees `visible_gpus`: with several ranks
// "auto" and "cuda" mean cuda:<local rank>, or cuda:0 when the launcher bound one GPU to each rank
// (`gpus_bound_per_rank`: CUDA_VISIBLE_DEVICES is set, and one GPU is visible), or the CPU (MPI ranks) when
// there is no GPU ("cuda" then throws); a local rank beyond the GPUs throws (it would be the one CPU rank among
// NCCL ranks); an explicit cuda:N or cpu is kept. One process: parse_device_option.
Device rank_device(const std::string& command, const std::string& device_option, const dist::LaunchEnv& env,
                   int visible_gpus, bool gpus_bound_per_rank);

// The launch (dist::detect_launch_env), the device (rank_device) and the communicator (dist::make_communicator).
Ranks setup_ranks(const std::string& command, const std::string& device_option);

// body() with, on several ranks, its errors turned into "<command>: rank R: error: <what>" on stderr and the end
// of every rank (MPI_Abort, exit status 1): the others would wait forever at their next collective. One
// process: errors propagate as usual.
int run_on_ranks(const Ranks& ranks, const std::string& command, const std::function<int()>& body);

// For the run log: "" for one process, else " on 2 ranks (mpi, launched by openmpi)".
std::string rank_summary(const Ranks& ranks);

// Every rank must run the same command on the same data: ranks started with other options or caches would
// otherwise wait for each other at mismatched collectives (a hang until the timeout), or train with rc 0 on
// settings their run's config.json does not record. Gathers each rank's resolved `config` (without the keys
// that may differ: quiet, runs_dir, and the cache paths, which `features_sha256` stands for) and throws on every
// rank, naming the first rank and the options that differ from rank 0's. One process: nothing to compare.
void check_same_on_ranks(const Ranks& ranks, nlohmann::json config, const std::string& features_sha256,
                         const std::string& command);

}  // namespace stgs::apps
