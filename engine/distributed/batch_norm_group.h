// Synchronised batch norm for data-parallel runs: inside a BatchNormGroupScope, batch norms in training mode
// take their statistics over the batches of every rank of a communicator, as one process would over the
// whole global batch. Forward all-reduces per channel (and per group of a grouped batch norm) the sums of x
// and x^2 and the element count; backward all-reduces the sums of dy and dy * xhat. Running statistics are
// updated from the global statistics, identically on every rank. Per-thread, like grad mode.
// defines: BatchNormGroupScope, batch_norm_group
#pragma once

#include "engine/distributed/communicator.h"

namespace stgs::dist {

class BatchNormGroupScope {
 public:
  explicit BatchNormGroupScope(Communicator& comm);
  ~BatchNormGroupScope();
  BatchNormGroupScope(const BatchNormGroupScope&) = delete;
  BatchNormGroupScope& operator=(const BatchNormGroupScope&) = delete;

 private:
  Communicator* previous_;
};

// The innermost scope's communicator on this thread, or null (statistics of this process's batch).
Communicator* batch_norm_group();

}  // namespace stgs::dist
