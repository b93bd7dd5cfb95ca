#include "engine/distributed/batch_shard.h"

#include "kernels/check.h"

namespace stgs::dist {
namespace {
thread_local const BatchShard* t_shard = nullptr;
}  // namespace

BatchShardScope::BatchShardScope(const BatchShard& shard) : previous_(t_shard), shard_(shard) {
  STGS_CHECK(shard.rows >= 1 && shard.first_row >= 0 && shard.first_row + shard.rows <= shard.global_rows,
             "BatchShardScope: rows [", shard.first_row, ", ", shard.first_row + shard.rows, ") of ",
             shard.global_rows);
  t_shard = &shard_;
}

BatchShardScope::~BatchShardScope() { t_shard = previous_; }

const BatchShard* current_batch_shard() { return t_shard; }

}  // namespace stgs::dist
