// Distributed training: the launch environment, the bucketed gradient reducer (with a communicator that
// records its calls, no MPI), synchronised batch norm against the plain one (two ranks as two threads), and
// `mpirun -np 2` end to end:
// a search and an eval over two ranks equal the single-process runs, and a rank that dies stops the others.
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <optional>
#include <sstream>
#include <string>

#include "apps/distributed.h"
#include "apps/run_dir.h"
#include "engine/distributed/batch_norm_group.h"
#include "engine/distributed/gradient_reducer.h"
#include "engine/distributed/launch_env.h"
#include "engine/io/safetensors.h"
#include "engine/nn/layers.h"
#include "engine/ops.h"
#include "tests/compare.h"
#include "tests/feature_cache_fixture.h"
#include "tests/test_files.h"

using namespace stgs;
using stgs::testing::CommandResult;
using stgs::testing::max_abs_diff;
using stgs::testing::only_run;
using stgs::testing::run_stgs;
using stgs::testing::slurp;
using stgs::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// A world of `world` ranks that all hold this rank's values: all_reduce multiplies by the world size (every
// peer contributes the same), and every call is recorded.
class RecordingCommunicator final : public dist::Communicator {
 public:
  explicit RecordingCommunicator(int world) : world_(world) {}
  int rank() const override { return 0; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "recording"; }
  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    for (const Tensor& t : tensors) {
      reduced_sizes.push_back(t.numel());
      Tensor target = t;
      target.copy_(t * double(world_));
    }
  }
  void broadcast(const std::vector<Tensor>&, int) override {}
  std::vector<std::vector<uint8_t>> all_gather_bytes(const std::vector<uint8_t>& mine) override {
    return std::vector<std::vector<uint8_t>>(size_t(world_), mine);
  }
  void barrier() override {}

  std::vector<int64_t> reduced_sizes;  // numel of every all-reduced tensor, in call order

 private:
  int world_;
};

// Two ranks as two threads of this process: all_reduce_sum adds the threads' tensors (F64 on the CPU, enough
// for the batch norm's sums).
class ThreadPair {
 public:
  class Rank final : public dist::Communicator {
   public:
    Rank(ThreadPair& pair, int rank) : pair_(pair), rank_(rank) {}
    int rank() const override { return rank_; }
    int world_size() const override { return 2; }
    std::string backend() const override { return "threads"; }
    void all_reduce_sum(const std::vector<Tensor>& tensors) override {
      for (const Tensor& t : tensors) {
        REQUIRE(t.dtype() == DType::F64);
        std::vector<double> mine = t.to_vector<double>();
        pair_.exchange(rank_, mine);
        Tensor target = t;
        target.copy_(from_vector(mine, t.shape()));
      }
    }
    void broadcast(const std::vector<Tensor>&, int) override {}
    std::vector<std::vector<uint8_t>> all_gather_bytes(const std::vector<uint8_t>& mine) override { return {mine}; }
    void barrier() override {}

   private:
    ThreadPair& pair_;
    int rank_;
  };

  // Replaces `values` with the element-wise sum of both threads' values.
  void exchange(int rank, std::vector<double>& values) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t round = round_;
    parts_[rank] = values;
    if (++arrived_ == 2) {
      arrived_ = 0;
      ++round_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return round_ != round; });
    }
    for (size_t i = 0; i < values.size(); ++i) values[i] = parts_[0][i] + parts_[1][i];
    // Both read before either writes the next round's part: a second barrier.
    if (++read_ == 2) {
      read_ = 0;
      ++read_round_;
      cv_.notify_all();
    } else {
      const uint64_t r = read_round_;
      cv_.wait(lock, [&] { return read_round_ != r; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<double> parts_[2];
  int arrived_ = 0, read_ = 0;
  uint64_t round_ = 0, read_round_ = 0;
};

}  // namespace

TEST_CASE("launch environment: torchrun, OpenMPI and Slurm variables", "[dist]") {
  std::map<std::string, std::string> vars;
  auto get = [&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  dist::LaunchEnv e = dist::launch_env_from(get);
  CHECK((e.rank == 0 && e.world_size == 1 && e.launcher == "none" && !e.distributed()));

  vars = {{"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "0"}, {"SLURM_NTASKS", "4"}};  // a batch script: one process
  e = dist::launch_env_from(get);
  CHECK((e.world_size == 1 && e.launcher == "none"));
  vars = {{"SLURM_PROCID", "3"}, {"SLURM_LOCALID", "1"}, {"SLURM_NTASKS", "4"}, {"SLURM_STEP_ID", "0"}};  // srun
  e = dist::launch_env_from(get);
  CHECK((e.rank == 3 && e.local_rank == 1 && e.world_size == 4 && e.launcher == "slurm" && e.distributed()));

  vars["OMPI_COMM_WORLD_RANK"] = "1";  // OpenMPI's variables win over Slurm's
  vars["OMPI_COMM_WORLD_SIZE"] = "2";
  e = dist::launch_env_from(get);
  CHECK((e.rank == 1 && e.local_rank == 1 && e.world_size == 2 && e.launcher == "openmpi"));

  vars["RANK"] = "5";  // torchrun's and OpenMPI's must agree (leftover RANK/WORLD_SIZE under mpirun)
  vars["WORLD_SIZE"] = "8";
  CHECK_THROWS_WITH(dist::launch_env_from(get),
                    Catch::Contains("RANK=5 WORLD_SIZE=8 disagree with OpenMPI's OMPI_COMM_WORLD_RANK=1"));
  vars.erase("OMPI_COMM_WORLD_RANK");
  vars.erase("OMPI_COMM_WORLD_SIZE");
  e = dist::launch_env_from(get);  // torchrun's win over Slurm's; without LOCAL_RANK the local rank is the rank
  CHECK((e.rank == 5 && e.local_rank == 5 && e.world_size == 8 && e.launcher == "torchrun"));
  vars.erase("WORLD_SIZE");
  CHECK_THROWS_WITH(dist::launch_env_from(get), Catch::Contains("RANK is set but WORLD_SIZE is not"));
  vars["WORLD_SIZE"] = "8";

  vars["RANK"] = "8";
  CHECK_THROWS_WITH(dist::launch_env_from(get), Catch::Contains("RANK=8 is outside WORLD_SIZE=8"));
  vars["RANK"] = "x1";
  CHECK_THROWS_WITH(dist::launch_env_from(get), Catch::Contains("RANK='x1' is not a non-negative integer"));

  // The real environment, through setenv.
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "3", 1);
  e = dist::detect_launch_env();
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  CHECK((e.rank == 1 && e.world_size == 3));
}

TEST_CASE("rank_device: one GPU per local rank, CPU ranks on a machine without GPUs, never a mix", "[dist]") {
  dist::LaunchEnv env;
  env.launcher = "openmpi";
  env.world_size = 4;
  env.rank = env.local_rank = 2;
  CHECK(apps::rank_device("stgs search", "auto", env, 4, false) == Device::cuda(2));
  CHECK(apps::rank_device("stgs search", "cuda", env, 4, false) == Device::cuda(2));
  CHECK(apps::rank_device("stgs search", "auto", env, 0, false) == Device::cpu());
  CHECK(apps::rank_device("stgs search", "cpu", env, 4, false) == Device::cpu());
  CHECK_THROWS_WITH(apps::rank_device("stgs search", "cuda", env, 0, false), Catch::Contains("none is visible"));
  CHECK_THROWS_WITH(apps::rank_device("stgs search", "auto", env, 2, false),
                    Catch::Contains("local rank 2 has no GPU of its own (2 visible to it)"));
  // One GPU bound to each rank by the launcher (srun --gpus-per-task=1): every rank's is its device 0.
  CHECK(apps::rank_device("stgs search", "auto", env, 1, true) == Device::cuda(0));
  CHECK_THROWS_WITH(apps::rank_device("stgs search", "auto", env, 1, false), Catch::Contains("has no GPU of its own"));
}

TEST_CASE("shard_range cuts n items into near-equal contiguous parts", "[dist]") {
  CHECK(dist::shard_range(8, 0, 2) == std::pair<int64_t, int64_t>{0, 4});
  CHECK(dist::shard_range(8, 1, 2) == std::pair<int64_t, int64_t>{4, 8});
  CHECK(dist::shard_range(7, 0, 3) == std::pair<int64_t, int64_t>{0, 2});
  CHECK(dist::shard_range(7, 1, 3) == std::pair<int64_t, int64_t>{2, 4});
  CHECK(dist::shard_range(7, 2, 3) == std::pair<int64_t, int64_t>{4, 7});
  CHECK_THROWS(dist::shard_range(7, 3, 3));
}

TEST_CASE("plan_buckets: reverse registration order, capped by bytes, one oversized parameter alone", "[dist]") {
  // F32 sizes in bytes: 120, 400, 8, 16, 4000
  const std::vector<Tensor> params = {zeros({30}), zeros({10, 10}), zeros({2}), zeros({4}), zeros({1000})};
  const std::vector<dist::GradientBucket> b = dist::plan_buckets(params, 500);
  REQUIRE(b.size() == 3);
  CHECK(b[0].params == std::vector<size_t>{4});           // 4000 B > cap: alone
  CHECK(b[1].params == std::vector<size_t>{3, 2, 1});     // 16 + 8 + 400 = 424 <= 500; + 120 would not fit
  CHECK(b[2].params == std::vector<size_t>{0});
  CHECK(b[1].offsets == std::vector<int64_t>{0, 4, 6});
  CHECK(b[1].numel == 106);
  // A dtype change starts a new bucket even below the cap.
  const std::vector<dist::GradientBucket> mixed =
      dist::plan_buckets({zeros({2}), zeros({2}, DType::F64), zeros({2}, DType::F64)}, 1 << 20);
  REQUIRE(mixed.size() == 2);
  CHECK(mixed[0].params == std::vector<size_t>{2, 1});
  CHECK(mixed[1].params == std::vector<size_t>{0});
  CHECK_THROWS(dist::plan_buckets(params, 0));
}

TEST_CASE("GradientReducer: buckets start in order as they complete, finish averages over the ranks", "[dist]") {
  RecordingCommunicator comm(2);
  std::vector<Tensor> params = {randn({3}).set_requires_grad(true), randn({4}).set_requires_grad(true),
                                randn({5}).set_requires_grad(true)};
  for (Tensor& p : params) p.set_requires_grad(true);
  // Cap 20 bytes: buckets {2} (20 B), {1} (16 B; + 12 B would pass the cap), {0}.
  dist::GradientReducer reducer(comm, params, 20);
  REQUIRE(reducer.buckets().size() == 3);
  CHECK(reducer.buckets()[1].params == std::vector<size_t>{1});

  reducer.prepare();
  const std::vector<Tensor> grads = {full({3}, 1.0), full({4}, 2.0), full({5}, 3.0)};
  reducer.on_gradient(0, grads[0]);  // bucket 2 complete, but buckets 0 and 1 are not started: it waits
  CHECK(comm.reduced_sizes.empty());
  CHECK(reducer.buckets_started() == 0);
  reducer.on_gradient(2, grads[2]);  // bucket 0 starts
  CHECK(comm.reduced_sizes == std::vector<int64_t>{5});
  reducer.on_gradient(1, grads[1]);  // bucket 1, then the waiting bucket 2
  CHECK(comm.reduced_sizes == std::vector<int64_t>{5, 4, 3});
  for (size_t i = 0; i < params.size(); ++i) params[i].set_grad(grads[i] * 7.0);  // what backward would leave
  reducer.finish();
  for (size_t i = 0; i < params.size(); ++i) CHECK(max_abs_diff(params[i].grad(), grads[i]) == 0.0);  // 2 g / 2

  // finish() with a parameter that got no gradient: its bucket is reduced (zeros there), it stays without one.
  for (Tensor& p : params) p.zero_grad();
  reducer.prepare();
  reducer.on_gradient(2, grads[2]);
  params[2].set_grad(grads[2]);
  reducer.finish();
  CHECK(comm.reduced_sizes == std::vector<int64_t>{5, 4, 3, 5, 4, 3});
  CHECK(!params[0].grad().defined());
  CHECK(!params[1].grad().defined());
  CHECK(max_abs_diff(params[2].grad(), grads[2]) == 0.0);

  params[2].zero_grad();
  params[0].set_grad(grads[0]);
  CHECK_THROWS_WITH(reducer.prepare(), Catch::Contains("call zero_grad() first"));
}

TEST_CASE("GradientReducer in a real backward: buckets start before the backward ends, gradients kept", "[dist]") {
  RecordingCommunicator comm(2);
  Generator gen(3);
  Linear a(6, 5, true, &gen), b(5, 4, true, &gen);
  std::vector<Tensor> params = a.parameters();
  for (const Tensor& p : b.parameters()) params.push_back(p);
  const Tensor x = randn({3, 6}, DType::F32, Device::cpu(), &gen);
  auto loss_of = [&] { return sum(relu(b.forward(relu(a.forward(x))))); };
  loss_of().backward();
  std::vector<Tensor> expected;
  for (Tensor& p : params) {
    expected.push_back(p.grad().clone());
    p.zero_grad();
  }

  dist::GradientReducer reducer(comm, params, 64);  // small buckets: several per backward
  size_t started_during_backward = 0;
  params[0].register_hook([&](const Tensor&) {  // a.weight: among the last gradients of the backward
    started_during_backward = reducer.buckets_started();
    return Tensor();
  });
  reducer.prepare();
  loss_of().backward();
  reducer.finish();
  CHECK(reducer.buckets().size() >= 3);
  CHECK(started_during_backward >= 1);
  CHECK(comm.reduced_sizes.size() == reducer.buckets().size());
  for (size_t i = 0; i < params.size(); ++i) CHECK(max_abs_diff(params[i].grad(), expected[i]) < 1e-6);
}

TEST_CASE("synchronised batch norm over two ranks (threads) equals the plain one on the whole batch", "[dist]") {
  Generator gen(7);
  const int64_t groups = 2, N = 6;  // two groups of 3 samples; rank 0 holds 2 of each group, rank 1 one
  const Tensor x0 = (randn({N, 3, 5}, DType::F64, Device::cpu(), &gen) * 2.0 + 1.0).contiguous();
  const Tensor w0 = randn({3}, DType::F64, Device::cpu(), &gen), b0 = randn({3}, DType::F64, Device::cpu(), &gen);
  const Tensor r = randn({N, 3, 5}, DType::F64, Device::cpu(), &gen);
  // The whole batch in one process.
  Tensor x = x0.clone().set_requires_grad(true), w = w0.clone().set_requires_grad(true),
         b = b0.clone().set_requires_grad(true);
  Tensor rm = zeros({3}, DType::F64), rv = ones({3}, DType::F64);
  Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5, groups);
  sum(y * r).backward();
  // Each rank: its rows of every group; the loss is its part of the sum (the gradient reduction sums them).
  const std::vector<std::vector<int64_t>> rows = {{0, 1, 3, 4}, {2, 5}};
  ThreadPair pair;
  std::vector<Tensor> ys(2), dxs(2), dws(2), rms(2), rvs(2);
  auto rank_main = [&](int k) {
    ThreadPair::Rank comm(pair, k);
    const dist::BatchNormGroupScope scope(comm);
    std::vector<Tensor> xs, rs;
    for (int64_t i : rows[size_t(k)]) {
      xs.push_back(x0.narrow(0, i, 1));
      rs.push_back(r.narrow(0, i, 1));
    }
    Tensor xk = concat(xs, 0).set_requires_grad(true), wk = w0.clone().set_requires_grad(true),
           bk = b0.clone().set_requires_grad(true);
    rms[size_t(k)] = zeros({3}, DType::F64);
    rvs[size_t(k)] = ones({3}, DType::F64);
    ys[size_t(k)] = batch_norm(xk, wk, bk, rms[size_t(k)], rvs[size_t(k)], true, 0.1, 1e-5, groups);
    sum(ys[size_t(k)] * concat(rs, 0)).backward();
    dxs[size_t(k)] = xk.grad();
    dws[size_t(k)] = wk.grad();
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  for (int k = 0; k < 2; ++k) {
    const std::vector<int64_t>& rk = rows[size_t(k)];
    for (size_t j = 0; j < rk.size(); ++j) {
      INFO("rank " << k << ", row " << rk[j]);
      CHECK(max_abs_diff(ys[size_t(k)].narrow(0, int64_t(j), 1), y.detach().narrow(0, rk[j], 1)) < 1e-12);
      CHECK(max_abs_diff(dxs[size_t(k)].narrow(0, int64_t(j), 1), x.grad().narrow(0, rk[j], 1)) < 1e-12);
    }
    CHECK(max_abs_diff(rms[size_t(k)], rm) < 1e-12);
    CHECK(max_abs_diff(rvs[size_t(k)], rv) < 1e-12);
  }
  CHECK(max_abs_diff(dws[0] + dws[1], w.grad()) < 1e-12);
}

namespace {

// y, dx, dgamma, dbeta and the running statistics of a training-mode batch norm on x: (4, 3, 5) + its
// parameters, on `device`, with its statistics taken through a one-rank group when `synced`.
std::vector<Tensor> batch_norm_results(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& r,
                                       int64_t groups, bool synced, Device device) {
  // Fresh leaves every call (to() on the tensor's own device returns the tensor itself).
  Tensor x = x0.clone().to(device).set_requires_grad(true), w = w0.clone().to(device).set_requires_grad(true),
         b = b0.clone().to(device).set_requires_grad(true);
  Tensor rm = zeros({3}, x0.dtype(), device), rv = ones({3}, x0.dtype(), device);
  dist::SingleProcess one;
  std::optional<dist::BatchNormGroupScope> scope;
  if (synced) scope.emplace(one);
  Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5, groups);
  sum(y * r.to(device)).backward();
  return {y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
}

}  // namespace

TEST_CASE("synchronised batch norm over one rank equals the plain batch norm", "[dist]") {
  Generator gen(5);
  for (int64_t groups : {1, 2}) {
    const Tensor x0 = (randn({4, 3, 5}, DType::F64, Device::cpu(), &gen) * 2.0 + 1.0).contiguous();
    const Tensor w0 = randn({3}, DType::F64, Device::cpu(), &gen), b0 = randn({3}, DType::F64, Device::cpu(), &gen);
    const Tensor r = randn({4, 3, 5}, DType::F64, Device::cpu(), &gen);
    const std::vector<Tensor> plain = batch_norm_results(x0, w0, b0, r, groups, false, Device::cpu());
    const std::vector<Tensor> synced = batch_norm_results(x0, w0, b0, r, groups, true, Device::cpu());
    for (size_t i = 0; i < plain.size(); ++i) {
      INFO("groups " << groups << ", output " << i);
      CHECK(max_abs_diff(plain[i], synced[i]) < 1e-12);
    }
  }
}

TEST_CASE("synchronised batch norm on CUDA (moment and gradient sums, dx from sums) equals the CPU's", "[dist][cuda]") {
  Generator gen(6);
  for (int64_t groups : {1, 2}) {
    const Tensor x0 = (randn({4, 3, 5}, DType::F32, Device::cpu(), &gen) * 2.0 + 1.0).contiguous();
    const Tensor w0 = randn({3}, DType::F32, Device::cpu(), &gen), b0 = randn({3}, DType::F32, Device::cpu(), &gen);
    const Tensor r = randn({4, 3, 5}, DType::F32, Device::cpu(), &gen);
    const std::vector<Tensor> cpu = batch_norm_results(x0, w0, b0, r, groups, true, Device::cpu());
    const std::vector<Tensor> gpu = batch_norm_results(x0, w0, b0, r, groups, true, Device::cuda(0));
    for (size_t i = 0; i < cpu.size(); ++i) {
      INFO("groups " << groups << ", output " << i);
      CHECK(max_abs_diff(cpu[i], gpu[i].to(Device::cpu())) < 1e-5);
    }
  }
}

namespace {

// `stgs args` on `ranks` MPI ranks (one thread each: the machine may have few cores). Leak checking is off in
// the ranks: OpenMPI keeps allocations until exit, which LeakSanitizer would report in the ASan build.
CommandResult run_stgs_ranks(int ranks, const std::string& args, const std::string& env = "") {
  return testing::run_command("mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) +
                              " -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS=detect_leaks=0 " + env + " " +
                              std::string(STGS_BINARY) + " " + args);
}

// Tensors whose true gradient is 0 (every 1x1 conv feeds a batch norm: its bias), and what follows them (the
// running means of those batch norms): the computed gradient is rounding noise, which two runs round differently.
const std::vector<std::string> kNoiseDriven = {"conv.bias", "bn.running_mean"};

// The largest difference between same-named tensors under `prefix` of two safetensors files (all must match),
// over the noise-driven ones (`noise_driven`) or the others.
double checkpoint_diff(const fs::path& a, const fs::path& b, const std::string& prefix, bool noise_driven = false) {
  const SafetensorsFile fa = load_safetensors(a.string()), fb = load_safetensors(b.string());
  std::map<std::string, Tensor> tb(fb.tensors.begin(), fb.tensors.end());
  double worst = 0;
  size_t compared = 0;
  for (const auto& [name, t] : fa.tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    bool noisy = false;
    for (const std::string& part : kNoiseDriven) noisy = noisy || name.find(part) != std::string::npos;
    if (noisy != noise_driven) continue;
    INFO(name);
    REQUIRE(tb.count(name) == 1);
    if (t.dtype() == DType::I64) {
      CHECK(t.to_vector<int64_t>() == tb.at(name).to_vector<int64_t>());
      continue;
    }
    worst = std::max(worst, max_abs_diff(t, tb.at(name)));
    ++compared;
  }
  CHECK(compared > 0);
  return worst;
}

// Every number of a CSV table but its last column (seconds); both tables must have the same shape.
double csv_diff(const fs::path& a, const fs::path& b) {
  std::istringstream ia(slurp(a)), ib(slurp(b));
  std::string la, lb;
  double worst = 0;
  std::getline(ia, la);
  std::getline(ib, lb);
  CHECK(la == lb);
  size_t rows = 0;
  while (std::getline(ia, la)) {
    REQUIRE(std::getline(ib, lb));
    std::istringstream fa(la.substr(0, la.rfind(','))), fb(lb.substr(0, lb.rfind(',')));
    std::string x, y;
    while (std::getline(fa, x, ',')) {
      REQUIRE(std::getline(fb, y, ','));
      worst = std::max(worst, std::abs(std::stod(x) - std::stod(y)));
    }
    ++rows;
  }
  CHECK(rows > 0);
  return worst;
}

}  // namespace

TEST_CASE("mpirun -np 2: search and eval equal the single-process runs", "[dist][e2e][mpi]") {
  TempDir tmp("dist");
  const fs::path cache = tmp.dir / "features";
  testing::write_feature_cache(cache, 11, 4, {20, 12, 12});
  // Dropout on (each rank applies its rows of the global masks). Batch 6: the last batch of the training split
  // (20 = 3 x 6 + 2) is cut 1 + 1 between the ranks. Weights by SGD (the paper's): Adam divides a gradient by
  // its own size. The noise-driven tensors (kNoiseDriven) are held to 1e-3, the rest to 1e-5.
  const std::string search = " --epochs 2 --samples 1 --channels 8 --lambda 1 --weight-lr 0.05"
                             " --arch-lr 0.05 --dropout 0.2 --batch 6 --quiet --no-plots";
  CommandResult one = run_stgs("search " + cache.string() + " --runs-dir " + (tmp.dir / "one").string() + search);
  INFO(one.output);
  REQUIRE(one.status == 0);
  CommandResult two =
      run_stgs_ranks(2, "search " + cache.string() + " --runs-dir " + (tmp.dir / "two").string() + search);
  INFO(two.output);
  REQUIRE(two.status == 0);
  const fs::path a = only_run(tmp.dir / "one", "search-"), b = only_run(tmp.dir / "two", "search-");
  const fs::path ca = a / "checkpoints/last.safetensors", cb = b / "checkpoints/last.safetensors";
  CHECK(checkpoint_diff(ca, cb, "net.") < 1e-5);
  CHECK(checkpoint_diff(ca, cb, "net.", true) < 1e-3);
  CHECK(checkpoint_diff(ca, cb, "arch.") < 1e-5);
  CHECK(csv_diff(a / "metrics.csv", b / "metrics.csv") < 1e-5);
  CHECK(slurp(a / "genotype.json") == slurp(b / "genotype.json"));
  CHECK(slurp(b / "log.txt").find("on 2 ranks (mpi, launched by openmpi)") != std::string::npos);

  const std::string eval = " --epochs 2 --lr 0.001 --batch 6 --no-unimodal --quiet --no-plots";  // Adam
  one = run_stgs("eval " + a.string() + " --runs-dir " + (tmp.dir / "eval-one").string() + eval);
  INFO(one.output);
  REQUIRE(one.status == 0);
  two = run_stgs_ranks(2, "eval " + a.string() + " --runs-dir " + (tmp.dir / "eval-two").string() + eval);
  INFO(two.output);
  REQUIRE(two.status == 0);
  const fs::path e1 = only_run(tmp.dir / "eval-one", "eval-"), e2 = only_run(tmp.dir / "eval-two", "eval-");
  const fs::path c1 = e1 / "checkpoints/last.safetensors", c2 = e2 / "checkpoints/last.safetensors";
  for (const char* part : {"net.", "best."}) {
    CHECK(checkpoint_diff(c1, c2, part) < 1e-5);
    CHECK(checkpoint_diff(c1, c2, part, true) < 1e-3);
  }
  CHECK(csv_diff(e1 / "metrics.csv", e2 / "metrics.csv") < 1e-5);
  const nlohmann::json r1 = apps::RunDir::open(e1.string()).read_json("results.json"),
                       r2 = apps::RunDir::open(e2.string()).read_json("results.json");
  for (const char* key : {"test_auc", "test_acc", "test_eer", "best_val_auc"}) {
    INFO(key);
    CHECK(std::abs(r1[key].get<double>() - r2[key].get<double>()) < 1e-5);
  }
  CHECK(r1["best_epoch"] == r2["best_epoch"]);

  // M = 2 stacked draws (grouped, synchronised batch norms) over one epoch. With the architecture held still
  // (--arch-lr 1e-6) the runs agree as closely as M = 1's. With it moving they agree less: some logits get
  // gradients of ~1e-7 (the two draws' terms cancel), and Adam scales those to lr-sized steps, float rounding
  // (~1e-9 there) included; the gap then grows with training. So that run is held to metrics at 1e-4 and
  // parameters at 1e-3 after one epoch (a wrong statistic or mask moves the first epoch's losses by far more).
  const std::string stacked = " --epochs 1 --samples 2 --channels 8 --lambda 1 --weight-lr 0.05 --dropout 0.2"
                              " --batch 6 --quiet --no-plots --arch-lr ";
  for (const char* arch_lr : {"1e-6", "0.05"}) {
    INFO("--arch-lr " << arch_lr);
    const bool still = std::string(arch_lr) == "1e-6";
    const fs::path dir_one = tmp.dir / ("m2-one-" + std::string(arch_lr)),
                   dir_two = tmp.dir / ("m2-two-" + std::string(arch_lr));
    one = run_stgs("search " + cache.string() + " --runs-dir " + dir_one.string() + stacked + arch_lr);
    REQUIRE(one.status == 0);
    two = run_stgs_ranks(2, "search " + cache.string() + " --runs-dir " + dir_two.string() + stacked + arch_lr);
    INFO(two.output);
    REQUIRE(two.status == 0);
    const fs::path m1 = only_run(dir_one, "search-"), m2 = only_run(dir_two, "search-");
    const fs::path k1 = m1 / "checkpoints/last.safetensors", k2 = m2 / "checkpoints/last.safetensors";
    CHECK(csv_diff(m1 / "metrics.csv", m2 / "metrics.csv") < (still ? 1e-5 : 1e-4));
    CHECK(checkpoint_diff(k1, k2, "arch.") < (still ? 1e-5 : 1e-3));
    CHECK(checkpoint_diff(k1, k2, "net.") < (still ? 1e-5 : 1e-3));
    if (still) CHECK(checkpoint_diff(k1, k2, "net.", true) < 1e-3);
  }
}

TEST_CASE("mpirun: ranks started with other options or caches are refused at once, naming what differs",
          "[dist][e2e][mpi]") {
  TempDir tmp("dist_mismatch");
  const fs::path a = tmp.dir / "a", b = tmp.dir / "b";
  testing::write_feature_cache(a, 12, 4, {20, 12, 12});
  testing::write_feature_cache(b, 13, 4, {20, 12, 12});
  // Two app contexts (MPMD): rank 0 runs the first command, rank 1 the second.
  auto two_commands = [&](const std::string& first, const std::string& second) {
    const std::string mpirun = "mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1 "
                               "-x ASAN_OPTIONS=detect_leaks=0 -x STGS_DIST_TIMEOUT=20 ";
    return testing::run_command(mpirun + "-np 1 " + std::string(STGS_BINARY) + " " + first + " : -np 1 " +
                                std::string(STGS_BINARY) + " " + second);
  };
  const std::string flags = " --runs-dir " + (tmp.dir / "runs").string() + " --epochs 1 --samples 1 --channels 8 "
                            "--quiet --no-plots";
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  CommandResult r = two_commands("search " + a.string() + flags, "search " + a.string() + flags + " --weight-lr 0.5");
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Catch::Contains("rank 1 was started with other options or data than rank 0: --weight-lr "
                                       "(0.003 vs 0.5)"));
  r = two_commands("search " + a.string() + flags, "search " + b.string() + flags);
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Catch::Contains("the feature caches' contents"));
  CHECK(std::chrono::duration<double>(clock::now() - start).count() < 20);  // no wait for a collective timeout
  CHECK_FALSE(fs::exists(tmp.dir / "runs"));  // refused before a run directory was made
}

TEST_CASE("mpirun -np 2: a rank that dies or hangs stops the other with a message within seconds", "[dist][e2e][mpi]") {
  TempDir tmp("dist_fail");
  const fs::path cache = tmp.dir / "features";
  testing::write_feature_cache(cache, 12, 4, {20, 12, 12});
  const std::string search = "search " + cache.string() + " --runs-dir " + tmp.dir.string() +
                             " --epochs 50 --samples 1 --channels 8 --quiet --no-plots";
  using clock = std::chrono::steady_clock;

  // Rank 1 exits after 2 steps: mpirun ends rank 0, which was waiting at its next collective.
  auto start = clock::now();
  CommandResult r = run_stgs_ranks(2, search, "-x STGS_FAULT_RANK_EXIT=1@2");
  double seconds = std::chrono::duration<double>(clock::now() - start).count();
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK(r.output.find("fault injection: rank 1 exits after 2 steps") != std::string::npos);
  CHECK(r.output.find("exited") != std::string::npos);  // mpirun's report of the rank that exited
  CHECK(seconds < 30);

  // Rank 1 hangs after 2 steps: rank 0's collective times out (STGS_DIST_TIMEOUT) and says so.
  start = clock::now();
  r = run_stgs_ranks(2, search, "-x STGS_FAULT_RANK_HANG=1@2 -x STGS_DIST_TIMEOUT=2");
  seconds = std::chrono::duration<double>(clock::now() - start).count();
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK(r.output.find("rank 0: MPI_Allreduce has waited 2 s for the other ranks") != std::string::npos);
  CHECK(seconds < 30);
}

TEST_CASE("mpirun -np 2: a search and an eval stopped by a dead rank resume to the uninterrupted results",
          "[dist][e2e][mpi]") {
  TempDir tmp("dist_resume");
  const fs::path cache = tmp.dir / "features";
  testing::write_feature_cache(cache, 13, 4, {20, 12, 12});
  // Batch 6 over 20 clips: 4 steps per epoch. Rank 1 dies after step 6, in epoch 2, after the checkpoint of
  // epoch 1; the resumed run redoes epoch 2 and runs epoch 3.
  const std::string options = " --epochs 3 --samples 2 --channels 8 --batch 6 --dropout 0.2 --quiet --no-plots";
  CommandResult whole = run_stgs_ranks(2, "search " + cache.string() + " --runs-dir " + (tmp.dir / "whole").string() +
                                              options);
  INFO(whole.output);
  REQUIRE(whole.status == 0);
  CommandResult died = run_stgs_ranks(2, "search " + cache.string() + " --runs-dir " + (tmp.dir / "cut").string() +
                                             options, "-x STGS_FAULT_RANK_EXIT=1@6");
  INFO(died.output);
  REQUIRE(died.status != 0);
  const fs::path cut = only_run(tmp.dir / "cut", "search-");
  REQUIRE(fs::exists(cut / "checkpoints/last.safetensors"));
  const std::string before = slurp(cut / "metrics.csv");
  CHECK(std::count(before.begin(), before.end(), '\n') == 2);  // the header and epoch 1: stopped in epoch 2
  CommandResult resumed = run_stgs_ranks(2, "search --resume " + cut.string());
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  const fs::path a = only_run(tmp.dir / "whole", "search-");
  CHECK(csv_diff(a / "metrics.csv", cut / "metrics.csv") == 0);
  CHECK(checkpoint_diff(a / "checkpoints/last.safetensors", cut / "checkpoints/last.safetensors", "arch.") == 0);
  CHECK(checkpoint_diff(a / "checkpoints/last.safetensors", cut / "checkpoints/last.safetensors", "net.") == 0);
  CHECK(checkpoint_diff(a / "checkpoints/last.safetensors", cut / "checkpoints/last.safetensors", "net.", true) == 0);
  CHECK(slurp(a / "genotype.json") == slurp(cut / "genotype.json"));

  // The same for an evaluation of that genotype (Adam; one model).
  const std::string eval = " --epochs 3 --batch 6 --no-unimodal --quiet --no-plots";
  whole = run_stgs_ranks(2, "eval " + a.string() + " --runs-dir " + (tmp.dir / "eval-whole").string() + eval);
  INFO(whole.output);
  REQUIRE(whole.status == 0);
  died = run_stgs_ranks(2, "eval " + a.string() + " --runs-dir " + (tmp.dir / "eval-cut").string() + eval,
                        "-x STGS_FAULT_RANK_EXIT=1@6");
  INFO(died.output);
  REQUIRE(died.status != 0);
  const fs::path e_cut = only_run(tmp.dir / "eval-cut", "eval-");
  CHECK_FALSE(fs::exists(e_cut / "results.json"));
  resumed = run_stgs_ranks(2, "eval --resume " + e_cut.string());
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  const fs::path e_whole = only_run(tmp.dir / "eval-whole", "eval-");
  CHECK(csv_diff(e_whole / "metrics.csv", e_cut / "metrics.csv") == 0);
  for (const char* part : {"net.", "best."}) {
    CHECK(checkpoint_diff(e_whole / "checkpoints/last.safetensors", e_cut / "checkpoints/last.safetensors", part) == 0);
    CHECK(checkpoint_diff(e_whole / "checkpoints/last.safetensors", e_cut / "checkpoints/last.safetensors", part,
                          true) == 0);
  }
  const nlohmann::json r1 = apps::RunDir::open(e_whole.string()).read_json("results.json"),
                       r2 = apps::RunDir::open(e_cut.string()).read_json("results.json");
  for (const char* key : {"test_auc", "test_acc", "test_eer", "best_val_auc"}) CHECK(r1[key] == r2[key]);
}
