#include "engine/distributed/communicator.h"

#include <cstring>

#include "engine/ops.h"
#include "kernels/check.h"

namespace stgs::dist {

std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world) {
  STGS_CHECK(world >= 1 && rank >= 0 && rank < world && n >= 0, "shard_range: rank ", rank, " of ", world, ", ", n,
             " items");
  return {n * rank / world, n * (rank + 1) / world};
}

std::vector<double> all_gather_doubles(Communicator& comm, const std::vector<double>& mine) {
  std::vector<uint8_t> bytes(mine.size() * sizeof(double));
  if (!bytes.empty()) std::memcpy(bytes.data(), mine.data(), bytes.size());
  std::vector<double> all;
  for (const std::vector<uint8_t>& part : comm.all_gather_bytes(bytes)) {
    STGS_CHECK(part.size() % sizeof(double) == 0, "all_gather_doubles: a rank sent ", part.size(), " bytes");
    const size_t at = all.size();
    all.resize(at + part.size() / sizeof(double));
    if (!part.empty()) std::memcpy(all.data() + at, part.data(), part.size());
  }
  return all;
}

void all_reduce_sum_doubles(Communicator& comm, std::vector<double>& values) {
  if (comm.world_size() == 1 || values.empty()) return;
  Tensor t = from_vector(values, Shape{int64_t(values.size())}).to(comm.device());
  comm.all_reduce_sum({t});
  values = t.to_vector<double>();
}

double mean_over_ranks(Communicator& comm, double mine) {
  std::vector<double> v{mine};
  all_reduce_sum_doubles(comm, v);
  return v[0] / double(comm.world_size());
}

bool any_rank(Communicator& comm, bool mine) {
  std::vector<double> flag{mine ? 1.0 : 0.0};
  all_reduce_sum_doubles(comm, flag);
  return flag[0] > 0;
}

void broadcast_from_root(Communicator& comm, const StateDict& state) {
  if (comm.world_size() == 1) return;
  for (DType dtype : {DType::F32, DType::F64, DType::I64}) {
    std::vector<Tensor> tensors;
    for (const auto& [name, t] : state)
      if (t.dtype() == dtype && t.numel() > 0) {
        STGS_CHECK(t.is_contiguous(), "broadcast_from_root: ", name, " (", t.str(), ") is not contiguous");
        tensors.push_back(t);
      }
    if (!tensors.empty()) comm.broadcast(tensors, 0);
  }
}

}  // namespace stgs::dist
