// CUDA twins of kernels/conv.h: cuDNN convolutions (the legacy cudnnConvolution* API, still shipped by
// cuDNN 9 in libcudnn_cnn) and an own kernel for the bias and its gradient.
// defines: cuda::conv2d_fwd, cuda::conv2d_bwd_data, cuda::conv2d_bwd_weight, cuda::conv2d_bwd_bias
//
// Algorithm choice: by default cuDNN's heuristics (cudnnGet*Algorithm_v7), not cudnnFind*AlgorithmEx. Find times
// every algorithm on the GPU: it synchronises, needs the largest workspace at once, and its pick follows
// timing noise, so two runs of one program can pick different algorithms that round differently, which
// breaks resume-after-kill reproducibility. The heuristics answer from the geometry alone, on the host,
// the same way in every run. Candidates come ranked fastest first; the first one that is supported, uses
// an allowed math mode, is deterministic when that is asked for, and whose workspace can be allocated is
// kept. The choice and its descriptors are cached per (device, direction, dtype, geometry, math), so a
// repeated shape costs no descriptor set-up and no query. With ConvMath::benchmark (cuda_rt::conv_benchmark,
// PyTorch's cudnn.benchmark) the candidates are ranked by cudnnFind*AlgorithmEx instead, once per geometry,
// on the call's own buffers, with the workspace the heuristics' candidates ask for (halved until the pool
// has it); the same filters then apply, and a failed timing run falls back to the heuristics' order.
//
// Math mode: F32 convolutions run with CUDNN_FMA_MATH (plain FP32 FMA kernels) unless TF32 is allowed,
// then CUDNN_TENSOR_OP_MATH. CUDNN_DEFAULT_MATH is not used for F32 because it lets cuDNN pick TF32
// tensor-core kernels on Ampere and later, which would silently break F32 parity. Candidates whose
// math is CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION (down-conversion to FP16) are never taken. F64 uses
// CUDNN_DEFAULT_MATH.
//
// Workspace: cudaMallocAsync / cudaFreeAsync on the stream, i.e. from the device's default memory pool,
// which the engine's allocator retains, so after the first step a workspace is served from memory the
// pool already holds and the free is ordered after the convolution that used it.
//
// Napkin math: each direction is 2 N C_out H_out W_out (C_in / groups) kH kW flops; a ResNet-34 3x3
// conv at 56x56x64, batch 64, is 2 * 64 * 64 * 3136 * 576 = 14.8 GFLOP, ~0.3 ms at 50 TFLOP/s (FP32).
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cuda/common.cuh"

#define CUDNN_CHECK(expr)                                                                                  \
  do {                                                                                                     \
    const cudnnStatus_t stgs_status_ = (expr);                                                             \
    if (stgs_status_ != CUDNN_STATUS_SUCCESS)                                                              \
      STGS_FAIL("cuDNN error in ", #expr, ": ", cudnnGetErrorString(stgs_status_));                        \
  } while (0)

namespace stgs::kernels::cuda {
namespace {

enum class Direction { Fwd, BwdData, BwdFilter };

const char* direction_name(Direction d) {
  return d == Direction::Fwd       ? "conv2d forward"
         : d == Direction::BwdData ? "conv2d backward data"
                                   : "conv2d backward filter";
}

std::string geometry_str(const ConvGeometry& g) {
  return detail::concat("x (", g.N, ", ", g.C_in, ", ", g.H, ", ", g.W, "), w (", g.C_out, ", ", g.cin_g(), ", ",
                        g.kH, ", ", g.kW, "), stride (", g.stride_h, ", ", g.stride_w, "), padding (", g.pad_h, ", ",
                        g.pad_w, "), dilation (", g.dil_h, ", ", g.dil_w, "), groups ", g.groups);
}

// One cached choice: the descriptors of the problem and the algorithm (a cudnnConvolution*Algo_t of the
// direction) with its workspace size. Plans live until process exit, like the device contexts.
struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // x: (N, C_in, H, W), y: (N, C_out, H_out, W_out)
  cudnnFilterDescriptor_t w = nullptr;               // w: (C_out, C_in / groups, kH, kW)
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algo = 0;
  size_t workspace = 0;
};

// device, direction, dtype, math switches, then every field of the geometry.
using Key = std::array<int64_t, 22>;

Key key_of(int device, Direction d, cudnnDataType_t type, ConvMath m, const ConvGeometry& g) {
  return {device,  int64_t(d), int64_t(type), m.allow_tf32, m.deterministic, m.benchmark, g.N,
          g.C_in,  g.H,        g.W,           g.C_out,      g.kH,            g.kW,        g.stride_h,
          g.stride_w, g.pad_h, g.pad_w,       g.dil_h,      g.dil_w,         g.groups,    g.H_out,
          g.W_out};
}

int as_int(int64_t v, const ConvGeometry& g) {
  STGS_CHECK(v <= INT_MAX, "conv2d on CUDA: size ", v, " exceeds cuDNN's int descriptors for ", geometry_str(g));
  return int(v);
}

template <class T>
cudnnDataType_t data_type() {
  return sizeof(T) == 4 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// The math mode the descriptor is set to before the heuristics query; see the file comment.
cudnnMathType_t requested_math(cudnnDataType_t type, ConvMath m) {
  if (type == CUDNN_DATA_DOUBLE) return CUDNN_DEFAULT_MATH;
  return m.allow_tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

void describe(Plan& p, const ConvGeometry& g, cudnnDataType_t type, cudnnMathType_t math) {
  // cuDNN's 4-d descriptors use int strides: each tensor must stay below 2^31 elements.
  as_int(g.N * g.C_in * g.hw_in(), g);
  as_int(g.N * g.C_out * g.hw_out(), g);
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, type, as_int(g.N, g), as_int(g.C_in, g),
                                         as_int(g.H, g), as_int(g.W, g)));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, type, as_int(g.N, g), as_int(g.C_out, g),
                                         as_int(g.H_out, g), as_int(g.W_out, g)));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.w, type, CUDNN_TENSOR_NCHW, as_int(g.C_out, g), as_int(g.cin_g(), g),
                                         as_int(g.kH, g), as_int(g.kW, g)));
  // Cross-correlation: the CPU reference (and PyTorch) does not flip the kernel.
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p.conv, as_int(g.pad_h, g), as_int(g.pad_w, g), as_int(g.stride_h, g),
                                              as_int(g.stride_w, g), as_int(g.dil_h, g), as_int(g.dil_w, g),
                                              CUDNN_CROSS_CORRELATION, type));
  CUDNN_CHECK(cudnnSetConvolutionGroupCount(p.conv, as_int(g.groups, g)));
  CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, math));
  int n = 0, c = 0, h = 0, w = 0;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &n, &c, &h, &w));
  STGS_CHECK(n == g.N && c == g.C_out && h == g.H_out && w == g.W_out, "conv2d on CUDA: cuDNN computes output (",
             n, ", ", c, ", ", h, ", ", w, ") but the geometry says (", g.N, ", ", g.C_out, ", ", g.H_out, ", ",
             g.W_out, ") for ", geometry_str(g));
}

// The heuristics' ranked candidates of a direction, through one interface.
struct Candidate {
  int algo;
  cudnnStatus_t status;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math;
};

template <class Perf>
Candidate candidate_of(const Perf& p) {
  return {int(p.algo), p.status, p.determinism, p.mathType};
}

// The most candidates a direction has (cudnnGet*AlgorithmMaxCount).
int max_algorithms(cudnnHandle_t h, Direction d) {
  int n = 0;
  switch (d) {
    case Direction::Fwd: CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &n)); break;
    case Direction::BwdData: CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &n)); break;
    case Direction::BwdFilter: CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &n)); break;
  }
  return n;
}

// The candidates a ranking call writes, in its order: query(&count, perf) fills up to max_count Perf records
// (a cudnnGet*Algorithm_v7 or cudnnFind*AlgorithmEx call of one direction).
template <class Perf, class Query>
std::vector<Candidate> ranked_by(int max_count, Query query) {
  std::vector<Perf> perf(static_cast<size_t>(max_count));
  int count = 0;
  query(&count, perf.data());
  std::vector<Candidate> out;
  for (int i = 0; i < count; ++i) out.push_back(candidate_of(perf[size_t(i)]));
  return out;
}

std::vector<Candidate> heuristics(cudnnHandle_t h, Direction d, const Plan& p) {
  const int n = max_algorithms(h, d);
  switch (d) {
    case Direction::Fwd:
      return ranked_by<cudnnConvolutionFwdAlgoPerf_t>(n, [&](int* count, cudnnConvolutionFwdAlgoPerf_t* perf) {
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, n, count, perf));
      });
    case Direction::BwdData:
      return ranked_by<cudnnConvolutionBwdDataAlgoPerf_t>(n, [&](int* count, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x, n, count, perf));
      });
    case Direction::BwdFilter:
      return ranked_by<cudnnConvolutionBwdFilterAlgoPerf_t>(n, [&](int* count,
                                                                   cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w, n, count, perf));
      });
  }
  return {};
}

// Workspace bytes of `algo` under the descriptor's current math mode; false when cuDNN does not support
// the combination.
bool workspace_size(cudnnHandle_t h, Direction d, const Plan& p, int algo, size_t* bytes) {
  cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
  switch (d) {
    case Direction::Fwd:
      st = cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, cudnnConvolutionFwdAlgo_t(algo), bytes);
      break;
    case Direction::BwdData:
      st = cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, cudnnConvolutionBwdDataAlgo_t(algo),
                                                        bytes);
      break;
    case Direction::BwdFilter:
      st = cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w,
                                                          cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
      break;
  }
  return st == CUDNN_STATUS_SUCCESS;
}

// A workspace from the stream-ordered pool, freed (stream-ordered) when it goes out of scope, also on a throw.
class Workspace {
 public:
  Workspace(size_t bytes, cudaStream_t s) : s_(s) {
    if (bytes == 0) return;
    const cudaError_t err = cudaMallocAsync(&p_, bytes, s);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear it: the caller decides whether this is fatal
      p_ = nullptr;
    }
  }
  ~Workspace() {
    if (p_ != nullptr) cudaFreeAsync(p_, s_);  // destructor path: never throws
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
  cudaStream_t s_;
};

// The buffers of one call, for the timed choice: cudnnFind*Ex runs the candidates on them (and writes the
// output, which the call then overwrites). a, b are the direction's inputs in cuDNN's argument order
// (Fwd: x, w; BwdData: w, dy; BwdFilter: x, dy), out its output (y, dx, dw).
struct Buffers {
  const void* a;
  const void* b;
  void* out;
};

// The candidates ranked by their measured time (cudnnFind*AlgorithmEx on `buf`), with a workspace as large
// as the heuristics' candidates want, halved until the pool can give it.
std::vector<Candidate> timed(cudnnHandle_t h, Direction d, Plan& p, const std::vector<Candidate>& ranked,
                             const Buffers& buf, cudaStream_t s) {
  size_t want = 0;
  for (const Candidate& c : ranked) {
    size_t bytes = 0;
    if (c.status == CUDNN_STATUS_SUCCESS && workspace_size(h, d, p, c.algo, &bytes)) want = std::max(want, bytes);
  }
  std::unique_ptr<Workspace> ws;
  for (size_t bytes = want;; bytes /= 2) {
    ws = std::make_unique<Workspace>(bytes, s);
    if (bytes == 0 || ws->get() != nullptr) {
      want = bytes;
      break;
    }
  }
  const int n = max_algorithms(h, d);
  void* const space = ws->get();
  std::vector<Candidate> out;
  switch (d) {
    case Direction::Fwd:
      out = ranked_by<cudnnConvolutionFwdAlgoPerf_t>(n, [&](int* count, cudnnConvolutionFwdAlgoPerf_t* perf) {
        CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, p.x, buf.a, p.w, buf.b, p.conv, p.y, buf.out, n, count,
                                                           perf, space, want));
      });
      break;
    case Direction::BwdData:
      out = ranked_by<cudnnConvolutionBwdDataAlgoPerf_t>(n, [&](int* count, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
        CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, buf.a, p.y, buf.b, p.conv, p.x, buf.out, n,
                                                                count, perf, space, want));
      });
      break;
    case Direction::BwdFilter:
      out = ranked_by<cudnnConvolutionBwdFilterAlgoPerf_t>(n, [&](int* count,
                                                                  cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
        CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, buf.a, p.y, buf.b, p.conv, p.w, buf.out, n,
                                                                  count, perf, space, want));
      });
      break;
  }
  // The heuristics' candidates Find did not time go last, so the filters below still have them to fall back
  // on. Find lists the ones it could not run with a failure status (CUDNN_STATUS_ALLOC_FAILED when the
  // halved workspace was too small, say), which the filters skip: those do not count as timed.
  for (const Candidate& c : ranked) {
    bool listed = false;
    for (const Candidate& o : out) listed = listed || (o.algo == c.algo && o.status == CUDNN_STATUS_SUCCESS);
    if (!listed) out.push_back(c);
  }
  return out;
}

// The cached plan of a problem, chosen on first use (see the file comment).
const Plan& plan_for(cudnnHandle_t h, Direction d, cudnnDataType_t type, ConvMath m, const ConvGeometry& g,
                     cudaStream_t s, const Buffers& buf) {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const Key key = key_of(device, d, type, m, g);
  static std::mutex mutex;
  static auto* plans = new std::map<Key, std::unique_ptr<Plan>>();  // never destroyed: see Plan
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = plans->find(key); it != plans->end()) return *it->second;

  auto plan = std::make_unique<Plan>();
  const cudnnMathType_t math = requested_math(type, m);
  describe(*plan, g, type, math);
  const bool fma_only = type == CUDNN_DATA_FLOAT && !m.allow_tf32;
  std::vector<Candidate> candidates = heuristics(h, d, *plan);
  if (m.benchmark) {
    // The timed ranking replaces the heuristics' order when it runs; a failure keeps the heuristics.
    try {
      candidates = timed(h, d, *plan, candidates, buf, s);
    } catch (const Error& e) {
      static std::once_flag said;  // once per process: a bench row that fell back should be noticeable
      std::call_once(said, [&] {
        std::fprintf(stderr, "stgs: %s: timing cuDNN's algorithms failed, using its heuristics' order (%s)\n",
                     direction_name(d), e.what());
      });
    }
    CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv, math));
  }
  std::string rejected;
  for (const Candidate& c : candidates) {
    if (c.status != CUDNN_STATUS_SUCCESS) continue;
    if (m.deterministic && c.determinism != CUDNN_DETERMINISTIC) continue;
    if (c.math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION || (fma_only && c.math == CUDNN_TENSOR_OP_MATH)) continue;
    // cuDNN asks that the descriptor carry the candidate's math mode; with TF32 off it stays FMA, so an
    // algorithm reported under DEFAULT math runs with FMA kernels only (or is rejected just below).
    const cudnnMathType_t run_math = fma_only ? CUDNN_FMA_MATH : c.math;
    CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv, run_math));
    size_t bytes = 0;
    if (!workspace_size(h, d, *plan, c.algo, &bytes)) continue;
    const Workspace trial(bytes, s);
    if (bytes > 0 && trial.get() == nullptr) {
      rejected += detail::concat(" algo ", c.algo, " (workspace ", bytes, " bytes: out of memory)");
      continue;
    }
    plan->algo = c.algo;
    plan->workspace = bytes;
    return *plans->emplace(key, std::move(plan)).first->second;
  }
  STGS_FAIL(direction_name(d), ": no usable cuDNN algorithm among ", candidates.size(), " candidates",
            m.deterministic ? " (deterministic only)" : "", fma_only ? " (FP32 FMA math only)" : "", " for ",
            geometry_str(g), rejected.empty() ? "" : ";", rejected);
}

// The workspace a plan needs, for an actual call: running out of memory here is an error.
void* require(const Workspace& ws, const Plan& p, Direction d, const ConvGeometry& g) {
  STGS_CHECK(p.workspace == 0 || ws.get() != nullptr, direction_name(d), ": out of GPU memory for a ",
             p.workspace, "-byte cuDNN workspace, ", geometry_str(g));
  return ws.get();
}

// y: (rows = N * C, hw) += bias[row % C]; one block per row (grid-stride), threads along the row.
template <class T>
__global__ void add_bias_kernel(T* y, const T* bias, int64_t rows, int64_t C, int64_t hw) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T b = bias[r % C];
    T* yr = y + r * hw;
    for (int64_t s = threadIdx.x; s < hw; s += blockDim.x) yr[s] += b;
  }
}

// db[c] = sum over n, s of dy[(n * C + c) * hw + s]; one block per channel, double accumulator, fixed tree.
template <class T>
__global__ void bias_grad_kernel(T* db, const T* dy, int64_t N, int64_t C, int64_t hw) {
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {  // uniform across the block: block_sum is safe
    double acc = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = dy + (n * C + c) * hw;
      for (int64_t s = threadIdx.x; s < hw; s += blockDim.x) acc += double(p[s]);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) db[c] = T(acc);
  }
}

unsigned row_blocks(int64_t rows) {
  const int64_t cap = 132 * 16;
  return unsigned(rows < 1 ? 1 : (rows < cap ? rows : cap));
}

}  // namespace

template <class T>
void conv2d_fwd(T* y, const T* x, const T* w, const T* bias, const ConvGeometry& g, ConvMath math, DnnHandle handle,
                Stream stream) {
  if (g.N * g.C_out * g.hw_out() == 0) return;
  if (g.C_in == 0) {
    // Empty sums: y = 0 (+ bias), as on the CPU; cuDNN rejects a 0-channel descriptor (BAD_PARAM).
    CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(g.N * g.C_out * g.hw_out()) * sizeof(T), stream));
  } else {
    const Direction d = Direction::Fwd;
    CUDNN_CHECK(cudnnSetStream(handle, stream));
    const Plan& p = plan_for(handle, d, data_type<T>(), math, g, stream, {x, w, y});
    const Workspace ws(p.workspace, stream);
    const T one = 1, zero = 0;
    CUDNN_CHECK(cudnnConvolutionForward(handle, &one, p.x, x, p.w, w, p.conv, cudnnConvolutionFwdAlgo_t(p.algo),
                                        require(ws, p, d, g), p.workspace, &zero, p.y, y));
  }
  if (bias != nullptr) {
    const int64_t rows = g.N * g.C_out;
    add_bias_kernel<T><<<row_blocks(rows), kThreads, 0, stream>>>(y, bias, rows, g.C_out, g.hw_out());
    CUDA_CHECK_LAUNCH();
  }
}

template <class T>
void conv2d_bwd_data(T* dx, const T* dy, const T* w, const ConvGeometry& g, ConvMath math, DnnHandle handle,
                     Stream stream) {
  const int64_t dx_numel = g.N * g.C_in * g.hw_in();
  if (dx_numel == 0) return;
  if (g.C_out == 0) {  // nothing flows back: dx is zero, as on the CPU
    CUDA_CHECK(cudaMemsetAsync(dx, 0, size_t(dx_numel) * sizeof(T), stream));
    return;
  }
  const Direction d = Direction::BwdData;
  CUDNN_CHECK(cudnnSetStream(handle, stream));
  const Plan& p = plan_for(handle, d, data_type<T>(), math, g, stream, {w, dy, dx});
  const Workspace ws(p.workspace, stream);
  const T one = 1, zero = 0;
  CUDNN_CHECK(cudnnConvolutionBackwardData(handle, &one, p.w, w, p.y, dy, p.conv,
                                           cudnnConvolutionBwdDataAlgo_t(p.algo), require(ws, p, d, g), p.workspace,
                                           &zero, p.x, dx));
}

template <class T>
void conv2d_bwd_weight(T* dw, const T* dy, const T* x, const ConvGeometry& g, ConvMath math, DnnHandle handle,
                       Stream stream) {
  const int64_t dw_numel = g.C_out * g.cin_g() * g.kk();
  if (dw_numel == 0) return;
  if (g.N == 0) {  // an empty batch contributes nothing: dw is zero, as on the CPU
    CUDA_CHECK(cudaMemsetAsync(dw, 0, size_t(dw_numel) * sizeof(T), stream));
    return;
  }
  const Direction d = Direction::BwdFilter;
  CUDNN_CHECK(cudnnSetStream(handle, stream));
  const Plan& p = plan_for(handle, d, data_type<T>(), math, g, stream, {x, dy, dw});
  const Workspace ws(p.workspace, stream);
  const T one = 1, zero = 0;
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle, &one, p.x, x, p.y, dy, p.conv,
                                             cudnnConvolutionBwdFilterAlgo_t(p.algo), require(ws, p, d, g),
                                             p.workspace, &zero, p.w, dw));
}

template <class T>
void conv2d_bwd_bias(T* db, const T* dy, const ConvGeometry& g, Stream stream) {
  if (g.C_out == 0) return;
  bias_grad_kernel<T><<<row_blocks(g.C_out), kThreads, 0, stream>>>(db, dy, g.N, g.C_out, g.hw_out());
  CUDA_CHECK_LAUNCH();
}

#define STGS_INSTANTIATE(T)                                                                                    \
  template void conv2d_fwd<T>(T*, const T*, const T*, const T*, const ConvGeometry&, ConvMath, DnnHandle,      \
                              Stream);                                                                         \
  template void conv2d_bwd_data<T>(T*, const T*, const T*, const ConvGeometry&, ConvMath, DnnHandle, Stream);  \
  template void conv2d_bwd_weight<T>(T*, const T*, const T*, const ConvGeometry&, ConvMath, DnnHandle, Stream); \
  template void conv2d_bwd_bias<T>(T*, const T*, const ConvGeometry&, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
