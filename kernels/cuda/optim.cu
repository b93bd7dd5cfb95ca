// CUDA twins of kernels/optim.h as fused multi-tensor kernels: SGD and Adam/AdamW updates, sum of squares
// and scaling for gradient clipping, each over a whole list of tensors per launch.
// defines: cuda::sgd_update_multi, cuda::adam_update_multi, cuda::sum_squares_multi, cuda::scale_multi
//
// Scheme (apex's multi_tensor_apply): every tensor is cut into kChunk-element chunks; a launch carries,
// by value in its kernel arguments, the pointers and sizes of up to kMaxTensors<D> tensors (D arrays per
// tensor) and a table of up to kMaxBlocks (tensor slot, chunk) pairs, one block per pair. A list that does
// not fit takes several launches; a tensor whose chunks straddle two launches reappears in the next one.
// The argument block stays under the 4 KB kernel-parameter limit (static_asserts below).
//
// Napkin math: Adam reads param, grad, m, v and writes param, m, v: 28 B per F32 element, so 100 M
// parameters move 2.8 GB, ~1 ms at an H100's 3.35 TB/s; bandwidth-bound, and fusing the list removes the
// per-tensor launch overhead (~3-5 us each) that dominates for models with many small tensors.
//
// Element math: the CPU formula in T, operation by operation, each rounded on its own through the _rn
// intrinsics (nvcc would otherwise contract a*b + c into an FMA). Division and sqrt are the correctly
// rounded __fdiv_rn/__fsqrt_rn (double: __ddiv_rn/__dsqrt_rn). The scalars (bias corrections, 1 - beta,
// ...) are computed on the host in double exactly as the CPU kernel computes them, then rounded to T.
#include <algorithm>
#include <array>
#include <climits>
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/optim.h"

namespace stgs::kernels::cuda {
namespace {

constexpr int64_t kChunk = 16384;  // elements per block (64 per thread at 256 threads)
constexpr int kMaxBlocks = 320;    // chunks per launch
// Elements each thread loads before it computes: a launch has at most kMaxBlocks x 256 threads, and with one
// load per array in flight per thread that is ~1 MB in flight, about a third of what an H200's bandwidth
// times its memory latency needs (measured: SGD at 37% of the copy rate); four in flight cover it.
constexpr int kIlp = 4;
// One-array kernels (scale, sum of squares) move a quarter of the bytes per element of Adam, so they need
// four times the loads in flight: at kIlp they reached only ~58% of the copy rate.
constexpr int kIlpOneArray = 16;
template <int D>
constexpr int kMaxTensors = D == 1 ? 110 : D == 2 ? 64 : D == 3 ? 48 : 36;  // tensors per launch

// The by-value argument block of one launch: D arrays per tensor slot, and the block -> (slot, chunk) table.
template <class P, int D>
struct Batch {
  P* ptr[D][kMaxTensors<D>];
  int64_t n[kMaxTensors<D>];
  unsigned char slot[kMaxBlocks];
  int chunk[kMaxBlocks];
};
static_assert(sizeof(Batch<float, 1>) <= 3584 && sizeof(Batch<float, 2>) <= 3584 &&
                  sizeof(Batch<float, 3>) <= 3584 && sizeof(Batch<float, 4>) <= 3584,
              "multi-tensor argument block must leave room under the 4 KB kernel-parameter limit");
static_assert(kMaxTensors<1> <= 255 && kMaxTensors<4> <= 255, "slot indices are unsigned char");

// Calls launch(batch, blocks) for consecutive batches covering every chunk of every non-empty tensor, in
// list order.
template <class P, int D, class Launch>
void for_each_batch(const std::vector<std::array<P*, D>>& ptrs, const std::vector<int64_t>& ns, Launch&& launch) {
  constexpr int max_tensors = kMaxTensors<D>;
  Batch<P, D> b{};
  int tensors = 0, blocks = 0;
  for (size_t k = 0; k < ns.size(); ++k) {
    const int64_t n = ns[k];
    if (n <= 0) continue;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    STGS_CHECK(chunks <= INT_MAX, "multi-tensor launch: a tensor of ", n, " elements is too large");
    for (int d = 0; d < D; ++d) b.ptr[d][tensors] = ptrs[k][size_t(d)];
    b.n[tensors] = n;
    ++tensors;
    for (int64_t c = 0; c < chunks; ++c) {
      b.slot[blocks] = (unsigned char)(tensors - 1);
      b.chunk[blocks] = int(c);
      ++blocks;
      const bool last_chunk = c == chunks - 1;
      if (blocks == kMaxBlocks || (tensors == max_tensors && last_chunk)) {
        launch(b, blocks);
        blocks = 0;
        if (last_chunk) {
          tensors = 0;
        } else {  // the rest of this tensor goes on in slot 0 of the next batch
          for (int d = 0; d < D; ++d) b.ptr[d][0] = b.ptr[d][tensors - 1];
          b.n[0] = b.n[tensors - 1];
          tensors = 1;
        }
      }
    }
  }
  if (blocks > 0) launch(b, blocks);
}

// The chunk [lo, hi) this block owns, and its tensor slot.
template <class P, int D>
__device__ __forceinline__ int chunk_range(const Batch<P, D>& b, int64_t& lo, int64_t& hi) {
  const int t = b.slot[blockIdx.x];
  lo = int64_t(b.chunk[blockIdx.x]) * kChunk;
  const int64_t n = b.n[t];
  hi = lo + kChunk < n ? lo + kChunk : n;
  return t;
}

// Separately rounded operations (no contraction into FMA).
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double div(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

template <class T>
struct SgdArgs {
  T lr, momentum, keep, weight_decay;  // keep = 1 - dampening
  bool use_weight_decay, use_momentum, nesterov, first_step;
};

// Arrays: 0 param, 1 grad, 2 momentum buffer (unused without momentum).
template <class T>
__global__ void sgd_kernel(Batch<T, 3> b, SgdArgs<T> a) {
  int64_t lo, hi;
  const int t = chunk_range(b, lo, hi);
  T* param = b.ptr[0][t];
  const T* grad = b.ptr[1][t];
  T* buf = b.ptr[2][t];
  const bool read_buf = a.use_momentum && !a.first_step;
  for (int64_t base = lo + threadIdx.x; base < hi; base += int64_t(blockDim.x) * kIlp) {
    T p[kIlp], g[kIlp], m[kIlp] = {};
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t(k) * blockDim.x;
      if (i >= hi) break;
      p[k] = param[i];
      g[k] = grad[i];
      if (read_buf) m[k] = buf[i];
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t(k) * blockDim.x;
      if (i >= hi) break;
      T gk = g[k];
      if (a.use_weight_decay) gk = add(gk, mul(a.weight_decay, p[k]));
      if (a.use_momentum) {
        const T mk = a.first_step ? gk : add(mul(a.momentum, m[k]), mul(a.keep, gk));
        buf[i] = mk;
        gk = a.nesterov ? add(gk, mul(a.momentum, mk)) : mk;
      }
      param[i] = sub(p[k], mul(a.lr, gk));
    }
  }
}

template <class T>
struct AdamArgs {
  T step_size, bias2_sqrt, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay, decay;
  bool use_weight_decay, decoupled;
};

// Arrays: 0 param, 1 grad, 2 exp_avg, 3 exp_avg_sq.
template <class T>
__global__ void adam_kernel(Batch<T, 4> b, AdamArgs<T> a) {
  int64_t lo, hi;
  const int t = chunk_range(b, lo, hi);
  T* param = b.ptr[0][t];
  const T* grad = b.ptr[1][t];
  T* m = b.ptr[2][t];
  T* v = b.ptr[3][t];
  for (int64_t base = lo + threadIdx.x; base < hi; base += int64_t(blockDim.x) * kIlp) {
    T p[kIlp], g[kIlp], mo[kIlp], vo[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t(k) * blockDim.x;
      if (i >= hi) break;
      p[k] = param[i];
      g[k] = grad[i];
      mo[k] = m[i];
      vo[k] = v[i];
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t(k) * blockDim.x;
      if (i >= hi) break;
      T gk = g[k], pk = p[k];
      if (a.use_weight_decay) {
        if (a.decoupled) {
          pk = mul(pk, a.decay);
        } else {
          gk = add(gk, mul(a.weight_decay, pk));
        }
      }
      // The CPU's  b1 * m + (1 - b1) * g  and  b2 * v + (1 - b2) * g * g  (left to right).
      const T mi = add(mul(a.beta1, mo[k]), mul(a.one_minus_beta1, gk));
      const T vi = add(mul(a.beta2, vo[k]), mul(mul(a.one_minus_beta2, gk), gk));
      m[i] = mi;
      v[i] = vi;
      // p - step_size * mi / (sqrt(vi) / bias2_sqrt + eps), the product before the quotient.
      param[i] = sub(pk, div(mul(a.step_size, mi), add(div(sqrt_rn(vi), a.bias2_sqrt), a.eps)));
    }
  }
}

// partial[blockIdx.x] = sum over this block's chunk of x^2, in double (a fixed tree per chunk).
template <class T>
__global__ void sum_squares_kernel(Batch<const T, 1> b, double* partial) {
  int64_t lo, hi;
  const int t = chunk_range(b, lo, hi);
  const T* x = b.ptr[0][t];
  double acc = 0;
  for (int64_t base = lo + threadIdx.x; base < hi; base += int64_t(blockDim.x) * kIlpOneArray) {
    T xs[kIlpOneArray];
#pragma unroll
    for (int k = 0; k < kIlpOneArray; ++k) {
      const int64_t i = base + int64_t(k) * blockDim.x;
      xs[k] = i < hi ? x[i] : T(0);
    }
#pragma unroll
    for (int k = 0; k < kIlpOneArray; ++k) acc += double(xs[k]) * double(xs[k]);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// out[0] = sum of partial[0, count): one block, each thread a fixed strided slice, then a fixed tree.
__global__ void combine_kernel(double* out, const double* partial, int64_t count) {
  double acc = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) acc += partial[j];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[0] = acc;
}

template <class T>
__global__ void scale_kernel(Batch<T, 1> b, T s) {
  int64_t lo, hi;
  const int t = chunk_range(b, lo, hi);
  T* x = b.ptr[0][t];
  for (int64_t base = lo + threadIdx.x; base < hi; base += int64_t(blockDim.x) * kIlpOneArray) {
    T xs[kIlpOneArray];
#pragma unroll
    for (int k = 0; k < kIlpOneArray; ++k) {
      const int64_t i = base + int64_t(k) * blockDim.x;
      if (i < hi) xs[k] = x[i];
    }
#pragma unroll
    for (int k = 0; k < kIlpOneArray; ++k) {
      const int64_t i = base + int64_t(k) * blockDim.x;
      if (i < hi) x[i] = mul(xs[k], s);
    }
  }
}

}  // namespace

template <class T>
void sgd_update_multi(const TensorList<T>& list, double lr, double momentum, double dampening, double weight_decay,
                      bool nesterov, bool first_step, Stream stream) {
  cudaStream_t s = stream;
  // The CPU kernel's scalars, rounded to T the same way.
  const SgdArgs<T> args{T(lr),       T(momentum), T(1 - dampening), T(weight_decay), weight_decay != 0,
                        momentum != 0, nesterov,    first_step};
  std::vector<std::array<T*, 3>> ptrs;
  std::vector<int64_t> ns;
  ptrs.reserve(list.size());
  ns.reserve(list.size());
  for (const OptimTensor<T>& e : list) {
    STGS_CHECK(e.n == 0 || (e.param != nullptr && e.grad != nullptr && (momentum == 0 || e.state1 != nullptr)),
               "sgd_update_multi: missing param, grad or momentum buffer pointer");
    ptrs.push_back({e.param, const_cast<T*>(e.grad), e.state1});
    ns.push_back(e.n);
  }
  for_each_batch<T, 3>(ptrs, ns, [&](const Batch<T, 3>& b, int blocks) {
    sgd_kernel<T><<<unsigned(blocks), kThreads, 0, s>>>(b, args);
    CUDA_CHECK_LAUNCH();
  });
}

template <class T>
void adam_update_multi(const TensorList<T>& list, double lr, double beta1, double beta2, double eps,
                       double weight_decay, bool decoupled, int64_t step, Stream stream) {
  cudaStream_t s = stream;
  // Scalars in double exactly as cpu::adam_update computes them, then rounded to T.
  const double bias1 = 1 - std::pow(beta1, double(step));
  const double bias2 = 1 - std::pow(beta2, double(step));
  AdamArgs<T> args;
  args.step_size = T(lr / bias1);
  args.bias2_sqrt = T(std::sqrt(bias2));
  args.beta1 = T(beta1);
  args.beta2 = T(beta2);
  args.one_minus_beta1 = T(1 - beta1);
  args.one_minus_beta2 = T(1 - beta2);
  args.eps = T(eps);
  args.weight_decay = T(weight_decay);
  args.decay = T(1 - lr * weight_decay);
  args.use_weight_decay = weight_decay != 0;
  args.decoupled = decoupled;
  std::vector<std::array<T*, 4>> ptrs;
  std::vector<int64_t> ns;
  ptrs.reserve(list.size());
  ns.reserve(list.size());
  for (const OptimTensor<T>& e : list) {
    STGS_CHECK(e.n == 0 || (e.param != nullptr && e.grad != nullptr && e.state1 != nullptr && e.state2 != nullptr),
               "adam_update_multi: missing param, grad, exp_avg or exp_avg_sq pointer");
    ptrs.push_back({e.param, const_cast<T*>(e.grad), e.state1, e.state2});
    ns.push_back(e.n);
  }
  for_each_batch<T, 4>(ptrs, ns, [&](const Batch<T, 4>& b, int blocks) {
    adam_kernel<T><<<unsigned(blocks), kThreads, 0, s>>>(b, args);
    CUDA_CHECK_LAUNCH();
  });
}

template <class T>
void sum_squares_multi(double* out_host, const std::vector<const T*>& xs, const std::vector<int64_t>& ns,
                       Stream stream) {
  cudaStream_t s = stream;
  STGS_CHECK(xs.size() == ns.size(), "sum_squares_multi: ", xs.size(), " arrays but ", ns.size(), " sizes");
  std::vector<std::array<const T*, 1>> ptrs;
  ptrs.reserve(xs.size());
  int64_t total_chunks = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    STGS_CHECK(ns[k] <= 0 || xs[k] != nullptr, "sum_squares_multi: array ", k, " is null");
    ptrs.push_back({xs[k]});
    if (ns[k] > 0) total_chunks += (ns[k] + kChunk - 1) / kChunk;
  }
  if (total_chunks == 0) {
    out_host[0] = 0;
    return;
  }
  // partial[0, total_chunks): one sum per chunk, in list order; partial[total_chunks]: the total.
  double* partial = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial), size_t(total_chunks + 1) * sizeof(double), s));
  int64_t offset = 0;
  for_each_batch<const T, 1>(ptrs, ns, [&](const Batch<const T, 1>& b, int blocks) {
    sum_squares_kernel<T><<<unsigned(blocks), kThreads, 0, s>>>(b, partial + offset);
    CUDA_CHECK_LAUNCH();
    offset += blocks;
  });
  STGS_CHECK(offset == total_chunks, "sum_squares_multi: covered ", offset, " of ", total_chunks, " chunks");
  combine_kernel<<<1, kThreads, 0, s>>>(partial + total_chunks, partial, total_chunks);
  CUDA_CHECK_LAUNCH();
  double total = 0;
  CUDA_CHECK(cudaMemcpyAsync(&total, partial + total_chunks, sizeof(double), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaFreeAsync(partial, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  out_host[0] = total;
}

template <class T>
void scale_multi(const std::vector<T*>& xs, const std::vector<int64_t>& ns, double s_value, Stream stream) {
  cudaStream_t s = stream;
  STGS_CHECK(xs.size() == ns.size(), "scale_multi: ", xs.size(), " arrays but ", ns.size(), " sizes");
  std::vector<std::array<T*, 1>> ptrs;
  ptrs.reserve(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    STGS_CHECK(ns[k] <= 0 || xs[k] != nullptr, "scale_multi: array ", k, " is null");
    ptrs.push_back({xs[k]});
  }
  const T factor = T(s_value);
  for_each_batch<T, 1>(ptrs, ns, [&](const Batch<T, 1>& b, int blocks) {
    scale_kernel<T><<<unsigned(blocks), kThreads, 0, s>>>(b, factor);
    CUDA_CHECK_LAUNCH();
  });
}

#define STGS_INSTANTIATE(T)                                                                                   \
  template void sgd_update_multi<T>(const TensorList<T>&, double, double, double, double, bool, bool, Stream); \
  template void adam_update_multi<T>(const TensorList<T>&, double, double, double, double, double, bool,       \
                                     int64_t, Stream);                                                        \
  template void sum_squares_multi<T>(double*, const std::vector<const T*>&, const std::vector<int64_t>&,      \
                                     Stream);                                                                 \
  template void scale_multi<T>(const std::vector<T*>&, const std::vector<int64_t>&, double, Stream);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cuda
