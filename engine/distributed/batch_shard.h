// Which rows of a global batch this rank holds, for the ops whose random draws depend on a sample's position:
// inside a BatchShardScope, dropout draws for each of its rows the counters that row has in the global batch,
// so R ranks together apply exactly the single-process run's mask. Per-thread, like grad mode.
// defines: BatchShard, BatchShardScope, current_batch_shard
#pragma once

#include <cstdint>

namespace stgs::dist {

// Rows [first_row, first_row + rows) of a global batch of global_rows. A tensor whose dim 0 is k * rows holds k
// such blocks back to back (k stacked architecture draws), block d standing for rows
// [d * global_rows + first_row, ...) of the global tensor.
struct BatchShard {
  int64_t first_row = 0;
  int64_t rows = 0;
  int64_t global_rows = 0;
};

class BatchShardScope {
 public:
  explicit BatchShardScope(const BatchShard& shard);
  ~BatchShardScope();
  BatchShardScope(const BatchShardScope&) = delete;
  BatchShardScope& operator=(const BatchShardScope&) = delete;

 private:
  const BatchShard* previous_;
  BatchShard shard_;
};

// The innermost scope's shard on this thread, or null (this process holds the whole batch).
const BatchShard* current_batch_shard();

}  // namespace stgs::dist
