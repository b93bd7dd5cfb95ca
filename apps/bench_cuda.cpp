// The CUDA section of `make bench` (build/cuda/stgs_bench [--quick] [--cuda-only]).
//
// Method (after llm.c dev/cuda, performance_anchors.md section 2.2):
//   * every row times one call on the engine's stream of device 0 with a cudaEvent pair, after 3 untimed
//     warm-up calls;
//   * before each timed repeat, outside the timed region, a cudaMemsetAsync over 2x the device's L2 size
//     evicts the previous repeat's data, so every repeat starts cold;
//   * a row reports the median of 20 repeats (5 with --quick).
// Rooflines are measured in the same run and printed first: device-to-device cudaMemcpyAsync bandwidth
// (bytes read + bytes written) for the memory-bound rows, and raw cuBLAS cublasGemmEx in F32 and TF32 for
// the GEMM rows. Byte counts are the minimum traffic a kernel must move (napkin math beside each formula),
// so a kernel that makes extra passes over memory shows it as a lower % of the copy rate.
// Targets come from the CUDA-bench issue: elementwise, softmax, layer-norm and optimizer kernels >= 80% of
// the measured copy bandwidth at >= 16M elements; engine matmul within 5% of raw cuBLAS for the same call.
// Rows without a target are informational and never counted as below target: the cuDNN convolution rows
// (ResNet-34's 3x3 conv at 56x56x64, batch 64, vs the measured SGEMM/TF32 rates) and the batch norm and
// pooling rows (vs copy bandwidth) are informational for now.
#include "apps/bench_cuda.h"

#include <cstdio>

#if defined(STGS_CUDA)

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/cuda/runtime.h"
#include "engine/distributed/nccl_communicator.h"
#include "engine/ops.h"
#include "kernels/batch_norm.h"
#include "kernels/conv.h"
#include "kernels/copy.h"
#include "kernels/cuda/check.cuh"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/glu.h"
#include "kernels/gumbel.h"
#include "kernels/layer_norm.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "kernels/random.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"

#define BENCH_CUBLAS_CHECK(expr)                                                                       \
  do {                                                                                                 \
    const cublasStatus_t bench_status_ = (expr);                                                       \
    if (bench_status_ != CUBLAS_STATUS_SUCCESS)                                                        \
      STGS_FAIL("cuBLAS error in ", #expr, ": ", cublasGetStatusName(bench_status_), ": ",             \
                cublasGetStatusString(bench_status_));                                                 \
  } while (0)

namespace {

using namespace stgs;
namespace kc = stgs::kernels::cuda;
using kernels::BinaryOp;
using kernels::StridedLayout;
using kernels::UnaryOp;

// A cudaMalloc'ed array of n elements, freed on scope exit.
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t n) : n_(n) { CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), size_t(n) * sizeof(T))); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  int64_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  int64_t n_;
};

// Median milliseconds of `reps` event-timed calls after `warmup` untimed ones, L2 flushed before each.
class Timer {
 public:
  Timer(cudaStream_t s, size_t flush_bytes, int warmup, int reps)
      : s_(s), flush_bytes_(flush_bytes), warmup_(warmup), reps_(reps) {
    CUDA_CHECK(cudaMalloc(&flush_, flush_bytes_));
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~Timer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
    cudaFree(flush_);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  int reps() const { return reps_; }
  size_t flush_bytes() const { return flush_bytes_; }

  double median_ms(const std::function<void()>& fn) {
    for (int i = 0; i < warmup_; ++i) fn();
    CUDA_CHECK(cudaStreamSynchronize(s_));
    std::vector<float> t;
    for (int i = 0; i < reps_; ++i) {
      CUDA_CHECK(cudaMemsetAsync(flush_, i & 0xff, flush_bytes_, s_));  // untimed: cold L2 for the repeat
      CUDA_CHECK(cudaEventRecord(start_, s_));
      fn();
      CUDA_CHECK(cudaEventRecord(stop_, s_));
      CUDA_CHECK(cudaEventSynchronize(stop_));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      t.push_back(ms);
    }
    CUDA_CHECK(cudaGetLastError());
    std::sort(t.begin(), t.end());
    const size_t m = t.size() / 2;
    return t.size() % 2 ? t[m] : 0.5 * (double(t[m - 1]) + double(t[m]));
  }

 private:
  cudaStream_t s_;
  void* flush_ = nullptr;
  size_t flush_bytes_;
  int warmup_, reps_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

enum class Unit { Bytes, Flops };

// Rate of `amount` bytes (GB/s) or flops (TFLOP/s) moved in `ms`.
double rate_of(Unit unit, double amount, double ms) { return unit == Unit::Bytes ? amount / ms * 1e-6 : amount / ms * 1e-9; }

class Table {
 public:
  int below() const { return below_; }

  void header() const {
    std::printf("%-20s %-24s %12s %12s %16s %19s  %s\n", "row", "shape", "napkin", "median", "rate", "% of roofline",
                "target");
  }

  // One measured row. ref_rate/ref_name: the roofline it is compared with (ref_rate <= 0: it is a roofline);
  // target <= 0: informational.
  void row(const std::string& name, const std::string& shape, Unit unit, double amount, double ms, double ref_rate,
           const char* ref_name, double target) {
    const double rate = rate_of(unit, amount, ms);
    const char* rate_unit = unit == Unit::Bytes ? "GB/s" : "TFLOP/s";
    char moved[32];
    if (unit == Unit::Bytes) std::snprintf(moved, sizeof moved, "%.1f MB", amount * 1e-6);
    else std::snprintf(moved, sizeof moved, "%.1f GFLOP", amount * 1e-9);
    char ratio[48] = "";
    if (ref_rate > 0) std::snprintf(ratio, sizeof ratio, "%6.1f%% of %-8s", 100 * rate / ref_rate, ref_name);
    std::string verdict;
    if (ref_rate <= 0) {
      verdict = "roofline";
    } else if (target <= 0) {
      verdict = "(no target)";
    } else {
      const bool ok = rate / ref_rate >= target;
      if (!ok) ++below_;
      char t[48];
      std::snprintf(t, sizeof t, ">= %2.0f%%  %s", 100 * target, ok ? "ok" : "BELOW TARGET");
      verdict = t;
    }
    std::printf("%-20s %-24s %12s %9.4f ms %8.1f %-7s %19s  %s\n", name.c_str(), shape.c_str(), moved, ms, rate,
                rate_unit, ratio, verdict.c_str());
    std::fflush(stdout);
  }

  // A row whose measurement threw: reported, and counted as below target.
  void error(const std::string& name, const char* what) {
    ++below_;
    std::printf("%-20s ERROR: %s\n", name.c_str(), what);
    std::fflush(stdout);
  }

 private:
  int below_ = 0;
};

std::string mib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", bytes / double(1 << 20));
  return b;
}

StridedLayout layout_1d(int64_t n) {
  StridedLayout l;
  l.ndim = 1;
  l.sizes[0] = n;
  for (auto& s : l.strides) s[0] = 1;
  return l;
}

// The Gumbel-softmax kernels alone, against the copy roofline: 4M rows of K = 5 (the search's gamma rows;
// 21M elements, far above L2), forward with noise, forward without, backward. Informational rows (the
// Gumbel issue sets no target).
void bench_gumbel(Timer& timer, Table& table, double copy_gbs, cudaStream_t s) {
  const int64_t rows = int64_t(4) << 20, K = 5, n = rows * K;
  DeviceBuffer<float> logits(n), soft(n), hard(n), grad(n), dlogits(n);
  DeviceBuffer<int64_t> index(rows);
  kc::uniform_fill<float>(logits.get(), n, 41, 0, -2.0f, 2.0f, s);
  kc::uniform_fill<float>(grad.get(), n, 42, 0, -1.0f, 1.0f, s);
  const double fwd_bytes = 12.0 * double(n) + 8.0 * double(rows);  // read logits, write soft, hard; index: 285 MB
  const double bwd_bytes = 12.0 * double(n);                       // read grad, soft, write dlogits: 252 MB
  auto gumbel_row = [&](const std::string& name, double bytes, const std::function<void()>& fn) {
    try {
      table.row(name, "4Mx5 F32", Unit::Bytes, bytes, timer.median_ms(fn), copy_gbs, "copy", 0);
    } catch (const std::exception& e) {
      table.error(name, e.what());
    }
  };
  gumbel_row("gumbel fwd", fwd_bytes, [&] {
    kc::gumbel_softmax_fwd<float>(soft.get(), hard.get(), index.get(), logits.get(), rows, K, 1.0f, true, 43, 0, s);
  });
  gumbel_row("gumbel fwd no noise", fwd_bytes, [&] {
    kc::gumbel_softmax_fwd<float>(soft.get(), hard.get(), index.get(), logits.get(), rows, K, 1.0f, false, 0, 0, s);
  });
  gumbel_row("gumbel bwd", bwd_bytes, [&] {
    kc::gumbel_softmax_bwd<float>(dlogits.get(), grad.get(), soft.get(), rows, K, 1.0f, s);
  });
}

// NCCL all-reduce of a 256 MB F32 buffer on a one-rank communicator (the distributed issue's row): on one GPU
// it measures NCCL's own reduction kernel and stream hand-offs, read + write of the buffer against the copy
// roofline; the bus bandwidth between GPUs needs several (BENCHMARKS.md then gets one row per world size).
// Informational.
void bench_nccl_all_reduce(Timer& timer, Table& table, double copy_gbs) {
  const int64_t n = int64_t(64) << 20;  // 256 MB
  try {
    dist::LaunchEnv env;  // rank 0 of 1
    const std::unique_ptr<dist::Communicator> comm = dist::make_nccl_communicator(env, 0, nullptr);
    const Tensor buffer = ones(Shape{n}, DType::F32, Device::cuda(0));
    const double bytes = 8.0 * double(n);  // read + write 256 MB
    table.row("nccl all_reduce 1r", "64M F32 (256 MB)", Unit::Bytes, bytes,
              timer.median_ms([&] { comm->all_reduce_sum({buffer}); }), copy_gbs, "copy", 0);
  } catch (const std::exception& e) {
    table.error("nccl all_reduce 1r", e.what());
  }
}

int run_all(bool quick) {
  const int dev = 0;
  CUDA_CHECK(cudaSetDevice(dev));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  const cudaStream_t s = cuda_rt::stream(dev);  // the engine's stream: engine ops and raw launches share it

  const int reps = quick ? 5 : 20;
  Timer timer(s, 2 * size_t(prop.l2CacheSize > 0 ? prop.l2CacheSize : (64 << 20)), 3, reps);
  std::printf("== CUDA ==\n");
  std::printf("device: %s (sm_%d%d), %d SMs, %s GiB memory, L2 %s MiB\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, mib(double(prop.totalGlobalMem) / 1024).c_str(),
              mib(double(prop.l2CacheSize)).c_str());
  std::printf("timing: CUDA events on the engine stream, 3 warm-up calls, median of %d, %s MiB L2 flush before each\n\n",
              reps, mib(double(timer.flush_bytes())).c_str());

  Table table;
  table.header();
  // Runs one row's measurement; a throw (launcher check, CUDA error) becomes an ERROR row.
  auto attempt = [&](const std::string& name, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      table.error(name, e.what());
    }
  };

  // ---- buffers ----------------------------------------------------------------------------------
  // Memory-bound rows: N = 32M F32 elements (128 MiB per operand, far above any L2), viewed as R x C rows
  // where a row structure matters (C = 1024: a transformer width).
  const int64_t N = int64_t(32) << 20, C = 1024, R = N / C;
  const std::string vec_shape = "32M", mat_shape = std::to_string(R) + "x" + std::to_string(C);
  DeviceBuffer<float> x(N), y(N), z(N), wide(2 * N);  // wide: the (R, 2C) GLU input
  DeviceBuffer<float> gamma(C), beta(C), dgamma(C), dbeta(C), mean(R), rstd(R), loss(R), rowsum(R);
  DeviceBuffer<int64_t> targets(R);
  kc::uniform_fill<float>(x.get(), N, 11, 0, -2.0f, 2.0f, s);  // inputs in (-2, 2): exp and softmax stay finite
  kc::uniform_fill<float>(y.get(), N, 12, 0, -2.0f, 2.0f, s);
  kc::uniform_fill<float>(z.get(), N, 13, 0, -2.0f, 2.0f, s);
  kc::uniform_fill<float>(wide.get(), 2 * N, 14, 0, -2.0f, 2.0f, s);
  kc::uniform_fill<float>(gamma.get(), C, 15, 0, 0.5f, 1.5f, s);
  kc::uniform_fill<float>(beta.get(), C, 16, 0, -0.5f, 0.5f, s);
  {
    std::vector<int64_t> t(static_cast<size_t>(R));
    for (int64_t i = 0; i < R; ++i) t[size_t(i)] = (i * 7919) % C;
    CUDA_CHECK(cudaMemcpyAsync(targets.get(), t.data(), t.size() * sizeof(int64_t), cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
  }

  // GEMM operands: G x G for the cuBLAS rooflines; the M x M rows use the leading M*M elements.
  const int G = quick ? 4096 : 8192, M = 4096;
  DeviceBuffer<float> ga(int64_t(G) * G), gb(int64_t(G) * G), gc(int64_t(G) * G);
  kc::uniform_fill<float>(ga.get(), ga.size(), 21, 0, -1.0f, 1.0f, s);
  kc::uniform_fill<float>(gb.get(), gb.size(), 22, 0, -1.0f, 1.0f, s);
  cublasHandle_t handle = nullptr;
  BENCH_CUBLAS_CHECK(cublasCreate(&handle));
  struct HandleGuard {
    cublasHandle_t h;
    ~HandleGuard() { cublasDestroy(h); }
  } handle_guard{handle};
  BENCH_CUBLAS_CHECK(cublasSetStream(handle, s));
  // Raw cuBLAS, row-major C = A B as column-major C^T = B^T A^T (square, so only the operand order changes).
  auto cublas_gemm = [&](int n, cublasComputeType_t compute) {
    const float alpha = 1.0f, beta0 = 0.0f;
    BENCH_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, gb.get(), CUDA_R_32F, n,
                                    ga.get(), CUDA_R_32F, n, &beta0, gc.get(), CUDA_R_32F, n, compute,
                                    CUBLAS_GEMM_DEFAULT));
  };
  CUDA_CHECK(cudaStreamSynchronize(s));

  // ---- rooflines --------------------------------------------------------------------------------
  const double copy_bytes = 2.0 * double(N) * 4;  // read N + write N floats: 268 MB; ~90 us at 3 TB/s
  const double copy_ms = timer.median_ms([&] {
    CUDA_CHECK(cudaMemcpyAsync(z.get(), x.get(), size_t(N) * sizeof(float), cudaMemcpyDeviceToDevice, s));
  });
  const double copy_gbs = rate_of(Unit::Bytes, copy_bytes, copy_ms);
  table.row("copy d2d", vec_shape + " F32", Unit::Bytes, copy_bytes, copy_ms, 0, "", 0);

  const double g_flops = 2.0 * double(G) * G * G;  // 2 G^3: 1.1 TFLOP at 8192 (~20 ms at 55 TFLOP/s F32)
  const std::string g_shape = std::to_string(G) + "^3";
  double sgemm_peak = 0, tf32_peak = 0;
  attempt("cublas sgemm", [&] {
    const double ms = timer.median_ms([&] { cublas_gemm(G, CUBLAS_COMPUTE_32F); });
    sgemm_peak = rate_of(Unit::Flops, g_flops, ms);
    table.row("cublas sgemm", g_shape + " F32", Unit::Flops, g_flops, ms, 0, "", 0);
  });
  attempt("cublas tf32", [&] {
    const double ms = timer.median_ms([&] { cublas_gemm(G, CUBLAS_COMPUTE_32F_FAST_TF32); });
    tf32_peak = rate_of(Unit::Flops, g_flops, ms);
    table.row("cublas tf32", g_shape + " F32", Unit::Flops, g_flops, ms, 0, "", 0);
  });
  std::printf("\n");

  // ---- memory-bound kernels, vs copy bandwidth ----------------------------------------------------
  // mem_row: time fn, report `bytes` against the copy roofline with `target` (0: informational).
  auto mem_row = [&](const std::string& name, const std::string& shape, double bytes, double target,
                     const std::function<void()>& fn) {
    attempt(name, [&] {
      const double ms = timer.median_ms(fn);
      table.row(name, shape, Unit::Bytes, bytes, ms, copy_gbs, "copy", target);
    });
  };
  const double n = double(N), r = double(R), c = double(C);
  constexpr double kMem = 0.80;

  mem_row("relu", vec_shape, 8 * n, kMem,  // read x, write y: 8 B/elem, 268 MB
          [&] { kc::unary_fwd<float>(UnaryOp::Relu, y.get(), x.get(), N, 0.0f, s); });
  mem_row("exp", vec_shape, 8 * n, kMem,  // read x, write y: 8 B/elem
          [&] { kc::unary_fwd<float>(UnaryOp::Exp, y.get(), x.get(), N, 0.0f, s); });
  const StridedLayout flat = layout_1d(N);
  mem_row("add", vec_shape, 12 * n, kMem,  // read a, b, write out: 12 B/elem, 403 MB
          [&] { kc::binary_fwd<float>(BinaryOp::Add, z.get(), x.get(), y.get(), flat, s); });
  mem_row("mul", vec_shape, 12 * n, kMem,  // read a, b, write out: 12 B/elem
          [&] { kc::binary_fwd<float>(BinaryOp::Mul, z.get(), x.get(), y.get(), flat, s); });
  {
    StridedLayout bc;  // out (R, C) = a (R, C) + b (C): b's row stride is 0
    bc.ndim = 2;
    bc.sizes[0] = R, bc.sizes[1] = C;
    bc.strides[0][0] = C, bc.strides[0][1] = 1;
    bc.strides[1][0] = C, bc.strides[1][1] = 1;
    bc.strides[2][0] = 0, bc.strides[2][1] = 1;
    mem_row("add broadcast", mat_shape + " + " + std::to_string(C), 8 * n + 4 * c, kMem,  // read a, write out; b 4 KB
            [&] { kc::binary_fwd<float>(BinaryOp::Add, z.get(), x.get(), y.get(), bc, s); });
  }
  mem_row("softmax", mat_shape, 8 * n, kMem,  // read x, write y: 8 B/elem (one pass if rows stay on chip)
          [&] { kc::softmax_fwd<float>(y.get(), x.get(), R, C, 1, s); });
  mem_row("log_softmax", mat_shape, 8 * n, kMem,  // read x, write y: 8 B/elem
          [&] { kc::log_softmax_fwd<float>(y.get(), x.get(), R, C, 1, s); });
  mem_row("cross_entropy fwd", mat_shape, 4 * n + 12 * r, 0,  // read logits 4 B/elem + targets 8R + loss 4R
          [&] { kc::cross_entropy_fwd<float>(loss.get(), x.get(), targets.get(), R, C, s); });
  mem_row("layer_norm fwd", mat_shape, 8 * n + 8 * c + 8 * r, kMem,  // read x, write y; gamma, beta 8C; mean, rstd 8R
          [&] { kc::layer_norm_fwd<float>(y.get(), mean.get(), rstd.get(), x.get(), gamma.get(), beta.get(), R, C,
                                          1e-5f, s); });
  // Backward rows use the mean/rstd the forward row saved (the last forward left them in place).
  mem_row("layer_norm bwd", mat_shape, 12 * n + 8 * r + 12 * c, kMem,  // read dy, x, write dx; mean, rstd 8R;
          [&] {                                                       // gamma 4C, dgamma, dbeta 8C
            kc::layer_norm_bwd<float>(z.get(), dgamma.get(), dbeta.get(), y.get(), x.get(), mean.get(), rstd.get(),
                                      gamma.get(), R, C, s);
          });
  mem_row("layer_norm bwd dx", mat_shape, 12 * n + 8 * r + 4 * c, kMem,  // dx only: read dy, x, write dx
          [&] {
            kc::layer_norm_bwd<float>(z.get(), nullptr, nullptr, y.get(), x.get(), mean.get(), rstd.get(),
                                      gamma.get(), R, C, s);
          });
  mem_row("sum_dim rows", mat_shape + " -> " + std::to_string(R), 4 * n + 4 * r, 0,  // read x 4 B/elem, write R
          [&] { kc::sum_dim<float>(rowsum.get(), x.get(), R, C, 1, s); });
  mem_row("sum_dim columns", mat_shape + " -> " + std::to_string(C), 4 * n + 4 * c, 0,  // read x, write C
          [&] { kc::sum_dim<float>(dgamma.get(), x.get(), 1, R, C, s); });
  mem_row("dropout fwd p=0.1", vec_shape, 8 * n, kMem,  // read x, write y (mask regenerated, never stored)
          [&] { kc::dropout_fwd<float>(y.get(), x.get(), N, 0.1f, 99, 0, s); });
  mem_row("uniform_fill", vec_shape, 4 * n, 0,  // write only: 4 B/elem (the copy roofline mixes reads and writes)
          [&] { kc::uniform_fill<float>(y.get(), N, 99, 0, 0.0f, 1.0f, s); });
  mem_row("glu fwd", std::to_string(R) + "x" + std::to_string(2 * C) + " -> " + mat_shape, 12 * n, kMem,
          [&] { kc::glu_fwd<float>(y.get(), wide.get(), R, C, 1, s); });  // read 2N, write N: 12 B per output
  {
    StridedLayout tr;  // dst (C, R) contiguous = src (R, C) transposed
    tr.ndim = 2;
    tr.sizes[0] = C, tr.sizes[1] = R;
    tr.strides[0][0] = R, tr.strides[0][1] = 1;  // dst
    tr.strides[1][0] = 1, tr.strides[1][1] = C;  // src
    mem_row("strided_copy T", mat_shape + " -> T", 8 * n, 0,  // read N, write N: 8 B/elem
            [&] { kc::strided_copy(y.get(), x.get(), tr, sizeof(float), s); });
  }
  {
    // The engine op through the Tensor API: validation, output allocation from the stream pool, dispatch and
    // the free of the output all sit inside the timed region, so framework overhead shows.
    Generator g(7);
    const Tensor ta = rand({N}, DType::F32, Device::cuda(dev), &g), tb = rand({N}, DType::F32, Device::cuda(dev), &g);
    mem_row("engine add(Tensor)", vec_shape, 12 * n, kMem, [&] { Tensor out = add(ta, tb); });
  }
  {
    // Fused multi-tensor optimizer launchers over a transformer-like list: 32 weight matrices of 1024x1024
    // and 32 bias/norm vectors of 1024 (32M + 32K elements, several launches per call).
    std::vector<int64_t> sizes;
    for (int i = 0; i < 32; ++i) sizes.push_back(C * C), sizes.push_back(C);
    int64_t total = 0;
    for (int64_t k : sizes) total += k;
    DeviceBuffer<float> param(total), grad(total), m1(total), m2(total);
    kc::uniform_fill<float>(param.get(), total, 31, 0, -1.0f, 1.0f, s);
    kc::uniform_fill<float>(grad.get(), total, 32, 0, -1e-2f, 1e-2f, s);
    CUDA_CHECK(cudaMemsetAsync(m1.get(), 0, size_t(total) * sizeof(float), s));
    CUDA_CHECK(cudaMemsetAsync(m2.get(), 0, size_t(total) * sizeof(float), s));
    kc::TensorList<float> list;
    std::vector<const float*> grads;
    std::vector<float*> grads_mut;
    for (int64_t k = 0, at = 0; k < int64_t(sizes.size()); at += sizes[size_t(k)], ++k) {
      list.push_back({param.get() + at, grad.get() + at, m1.get() + at, m2.get() + at, sizes[size_t(k)]});
      grads.push_back(grad.get() + at);
      grads_mut.push_back(grad.get() + at);
    }
    const std::string shape = std::to_string(sizes.size()) + " tensors, " + mib(double(total) * 4) + " MiB";
    const double t = double(total);
    mem_row("sgd_update_multi", shape + " mom", 20 * t, kMem,  // param r+w, momentum r+w, grad r: 20 B/elem
            [&] { kc::sgd_update_multi<float>(list, 0.01, 0.9, 0.0, 0.0, false, false, s); });
    mem_row("adam_update_multi", shape, 28 * t, kMem,  // param, m, v r+w, grad r: 28 B/elem, 940 MB
            [&] { kc::adam_update_multi<float>(list, 1e-3, 0.9, 0.999, 1e-8, 0.01, true, 10, s); });
    double norm2 = 0;  // synchronises inside the timed region (the value comes back to the host)
    mem_row("sum_squares_multi", shape, 4 * t, 0,  // read grad: 4 B/elem
            [&] { kc::sum_squares_multi<float>(&norm2, grads, sizes, s); });
    mem_row("scale_multi", shape, 8 * t, kMem,  // grad r+w: 8 B/elem
            [&] { kc::scale_multi<float>(grads_mut, sizes, 0.999, s); });
  }
  bench_gumbel(timer, table, copy_gbs, s);
  bench_nccl_all_reduce(timer, table, copy_gbs);
  std::printf("\n");

  // ---- GEMM, vs raw cuBLAS for the same call ------------------------------------------------------
  const double m_flops = 2.0 * double(M) * M * M;  // 2 M^3: 137 GFLOP at 4096 (~2.5 ms at 55 TFLOP/s F32)
  const std::string m_shape = std::to_string(M) + "^3";
  double sgemm_m = 0, tf32_m = 0;
  attempt("cublas sgemm", [&] {
    const double ms = timer.median_ms([&] { cublas_gemm(M, CUBLAS_COMPUTE_32F); });
    sgemm_m = rate_of(Unit::Flops, m_flops, ms);
    table.row("cublas sgemm", m_shape + " F32", Unit::Flops, m_flops, ms, sgemm_peak, "sgemm", 0);
  });
  auto gemm_row = [&](const std::string& name, const char* type, double ref, const char* ref_name,
                      const std::function<void()>& fn) {
    attempt(name, [&] {
      STGS_CHECK(ref > 0, "no cuBLAS reference for this row");
      const double ms = timer.median_ms(fn);
      table.row(name, m_shape + " " + type, Unit::Flops, m_flops, ms, ref, ref_name, 0.95);
    });
  };
  gemm_row("gemm_batched", "F32", sgemm_m, "cublas", [&] {
    kc::gemm_batched<float>(false, false, M, M, M, 1.0f, ga.get(), M, 0, gb.get(), M, 0, 0.0f, gc.get(), M, 0, 1,
                            false, cuda_rt::blas(dev), s);
  });
  {
    Generator g(8);
    const Tensor ta = rand({M, M}, DType::F32, Device::cuda(dev), &g), tb = rand({M, M}, DType::F32, Device::cuda(dev), &g);
    const bool tf32_was = cuda_rt::allow_tf32();
    cuda_rt::set_allow_tf32(false);
    gemm_row("engine matmul", "F32", sgemm_m, "cublas", [&] { Tensor out = matmul(ta, tb); });

    attempt("cublas tf32", [&] {
      const double ms = timer.median_ms([&] { cublas_gemm(M, CUBLAS_COMPUTE_32F_FAST_TF32); });
      tf32_m = rate_of(Unit::Flops, m_flops, ms);
      table.row("cublas tf32", m_shape + " F32", Unit::Flops, m_flops, ms, tf32_peak, "tf32", 0);
    });
    cuda_rt::set_allow_tf32(true);
    gemm_row("engine matmul tf32", "F32", tf32_m, "cublas", [&] { Tensor out = matmul(ta, tb); });
    cuda_rt::set_allow_tf32(tf32_was);
  }
  std::printf("\n");

  // ---- convolution (cuDNN), vs the measured GEMM rates ---------------------------------------------
  {
    // ResNet-34 layer1 3x3 conv, pad 1: x, y (64, 64, 56, 56) = 12.8M floats (51 MB each), w (64, 64, 3, 3).
    kernels::ConvGeometry g;
    g.N = 64, g.C_in = 64, g.H = 56, g.W = 56, g.C_out = 64, g.kH = 3, g.kW = 3, g.pad_h = 1, g.pad_w = 1;
    g.H_out = 56, g.W_out = 56;
    const int64_t act = g.N * g.C_in * g.hw_in(), wn = g.C_out * g.cin_g() * g.kk();
    DeviceBuffer<float> cx(act), cy(act), cw(wn), cdx(act), cdw(wn);
    kc::uniform_fill<float>(cx.get(), act, 41, 0, -1.0f, 1.0f, s);
    kc::uniform_fill<float>(cy.get(), act, 42, 0, -1.0f, 1.0f, s);
    kc::uniform_fill<float>(cw.get(), wn, 43, 0, -0.05f, 0.05f, s);
    const kernels::DnnHandle dnn = cuda_rt::cudnn(dev);
    // 2 N C_out H_out W_out C_in kH kW = 14.8 GFLOP per direction (~0.3 ms at 50 TFLOP/s).
    const double conv_flops = 2.0 * double(g.N * g.C_out * g.hw_out()) * double(g.cin_g() * g.kk());
    const std::string conv_shape = "64x64x56x56 3x3";
    for (const bool tf32 : {false, true}) {
      const kernels::ConvMath math{tf32, false};
      const double ref = tf32 ? tf32_peak : sgemm_peak;
      const char* ref_name = tf32 ? "tf32" : "sgemm";
      const std::string suffix = tf32 ? " tf32" : "";
      auto conv_row = [&](const std::string& name, const std::function<void()>& fn) {
        attempt(name, [&] {
          STGS_CHECK(ref > 0, "no cuBLAS reference for this row");
          const double ms = timer.median_ms(fn);
          table.row(name, conv_shape + (tf32 ? " TF32" : " F32"), Unit::Flops, conv_flops, ms, ref, ref_name, 0);
        });
      };
      conv_row("conv fwd" + suffix,
               [&] { kc::conv2d_fwd<float>(cy.get(), cx.get(), cw.get(), nullptr, g, math, dnn, s); });
      conv_row("conv bwd-data" + suffix,
               [&] { kc::conv2d_bwd_data<float>(cdx.get(), cy.get(), cw.get(), g, math, dnn, s); });
      conv_row("conv bwd-filter" + suffix,
               [&] { kc::conv2d_bwd_weight<float>(cdw.get(), cy.get(), cx.get(), g, math, dnn, s); });
    }
  }
  std::printf("\n");

  // ---- batch norm and pooling, vs copy bandwidth ---------------------------------------------------
  {
    // The 32M-element buffers viewed as (64, 128, 64, 64): channels of 64 x 4096 = 262144 elements.
    const int64_t bn_n = 64, bn_c = 128, side = 64, bn_s = side * side;
    const std::string bn_shape = "64x128x64x64";
    DeviceBuffer<float> stats(4 * bn_c);  // save_mean, save_invstd, running_mean, running_var
    float* save_mean = stats.get();
    float* save_invstd = stats.get() + bn_c;
    float* run_mean = stats.get() + 2 * bn_c;
    float* run_var = stats.get() + 3 * bn_c;
    kc::uniform_fill<float>(run_mean, bn_c, 51, 0, -0.1f, 0.1f, s);
    kc::uniform_fill<float>(run_var, bn_c, 52, 0, 0.9f, 1.1f, s);
    mem_row("bn fwd train", bn_shape, 8 * n, 0,  // read x, write y: 8 B/elem minimum (the kernel reads x twice)
            [&] {
              kc::batch_norm_fwd_train<float>(y.get(), save_mean, save_invstd, run_mean, run_var, x.get(), gamma.get(),
                                              beta.get(), bn_n, bn_c, bn_s, 0.1f, 1e-5f, s);
            });
    mem_row("bn fwd eval", bn_shape, 8 * n, 0,  // read x, write y
            [&] {
              kc::batch_norm_fwd_eval<float>(y.get(), save_mean, save_invstd, x.get(), gamma.get(), beta.get(),
                                             run_mean, run_var, bn_n, bn_c, bn_s, 1e-5f, s);
            });
    mem_row("bn bwd", bn_shape, 12 * n, 0,  // read dy, x, write dx: 12 B/elem minimum (the kernel reads dy, x twice)
            [&] {
              kc::batch_norm_bwd<float>(z.get(), dgamma.get(), dbeta.get(), y.get(), x.get(), save_mean, save_invstd,
                                        gamma.get(), bn_n, bn_c, bn_s, true, s);
            });

    // Pools over the same buffer as 8192 planes of 64 x 64 (ResNet's stem pool: 3x3, stride 2, pad 1 -> 32 x 32).
    const int64_t planes = bn_n * bn_c, out_side = 32, out = planes * out_side * out_side;
    const kernels::PoolWindow win{3, 3, 2, 2, 1, 1};
    DeviceBuffer<int64_t> argmax(out);
    const double o = double(out);
    const std::string pool_shape = bn_shape + " 3x3 s2";
    mem_row("max_pool fwd", pool_shape, 4 * n + 12 * o, 0,  // read x; write y 4 B + argmax 8 B per output
            [&] {
              kc::max_pool2d_fwd<float>(z.get(), argmax.get(), x.get(), planes, side, side, out_side, out_side, win, s);
            });
    mem_row("max_pool bwd", pool_shape, 12 * o + 4 * n, 0,  // read dy 4 B + argmax 8 B per output; write dx
            [&] {
              kc::max_pool2d_bwd<float>(y.get(), z.get(), argmax.get(), planes, side, side, out_side, out_side, win, s);
            });
    mem_row("avg_pool fwd", pool_shape, 4 * n + 4 * o, 0,  // read x, write y
            [&] { kc::avg_pool2d_fwd<float>(z.get(), x.get(), planes, side, side, out_side, out_side, win, true, s); });
    mem_row("avg_pool bwd", pool_shape, 4 * o + 4 * n, 0,  // read dy, write dx
            [&] { kc::avg_pool2d_bwd<float>(y.get(), z.get(), planes, side, side, out_side, out_side, win, true, s); });
    mem_row("adaptive_avg -> 1x1", bn_shape + " -> 1x1", 4 * n + 4 * double(planes), 0,  // read x, write one per plane
            [&] { kc::adaptive_avg_pool2d_fwd<float>(z.get(), x.get(), planes, side, side, 1, 1, s); });
  }

  CUDA_CHECK(cudaStreamSynchronize(s));
  std::printf("\n%d CUDA row(s) below target\n", table.below());
  return table.below();
}

}  // namespace

int run_cuda_benchmarks(bool quick) {
  if (stgs::cuda_rt::device_count() == 0) {
    std::printf("CUDA section skipped: no CUDA device\n");
    return 0;
  }
  try {
    return run_all(quick);
  } catch (const std::exception& e) {
    std::printf("CUDA section aborted: %s\n", e.what());
    return 1;
  }
}

#else  // !STGS_CUDA

int run_cuda_benchmarks(bool) {
  std::printf("CUDA section skipped: built without CUDA\n");
  return 0;
}

#endif
