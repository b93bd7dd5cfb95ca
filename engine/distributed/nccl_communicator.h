// GPU ranks over NCCL: one process per GPU, all-reduce, broadcast and all-gather on a stream of their own.
// defines: nccl_built, make_nccl_communicator
//
// Bootstrap (NCCL user guide): rank 0 creates the unique id and every rank receives it before
// ncclCommInitRank, here through `bootstrap` (the MPI communicator) when given, else through the file named
// by STGS_NCCL_ID_FILE (rank 0 writes it, the others wait for it: a path every rank sees, fresh per run).
// Each rank drives cuda:<device>, normally its local rank.
//
// Collectives wait on an event of the device's compute stream, run on the NCCL stream, and the compute
// stream waits on their completion event: the host never blocks, so a bucket's all-reduce overlaps the rest
// of the backward. A watcher thread polls ncclCommGetAsyncError and the age of the oldest unfinished
// collective; on an error or after STGS_DIST_TIMEOUT seconds it aborts the communicator (ncclCommAbort),
// prints what happened and ends the process, so the launcher stops the other ranks.
#pragma once

#include <memory>

#include "engine/distributed/communicator.h"
#include "engine/distributed/launch_env.h"

namespace stgs::dist {

// True in CUDA builds (NCCL comes with the CUDA toolkit's packages).
bool nccl_built();

// `bootstrap` (may be null) is kept alive as long as the NCCL communicator: MPI stays initialised.
std::unique_ptr<Communicator> make_nccl_communicator(const LaunchEnv& env, int device,
                                                     std::unique_ptr<Communicator> bootstrap);

}  // namespace stgs::dist
