// The engine's narrow window onto the CUDA runtime. Implemented in runtime.cu when the build has CUDA,
// and in runtime_none.cpp (device_count() == 0, everything else throws) when it does not, so the rest of
// the engine compiles the same either way.
// defines: cuda_rt::built, device_count, allocator, copy, synchronize, stream, blas, cudnn, allow_tf32,
//          deterministic, conv_benchmark, conv_math
#pragma once

#include <cstddef>

#include "engine/storage.h"
#include "kernels/conv.h"
#include "kernels/stream.h"

namespace stgs::cuda_rt {

bool built();
int device_count();
Allocator& allocator(int device);
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
void synchronize(int device);

// Each device has one context, created on first use: a non-blocking stream on which every kernel,
// allocation and copy for that device is ordered, a cuBLAS handle bound to it, and a cuDNN handle bound to
// it (created on the first convolution, so programs without one never load cuDNN's kernels).
kernels::Stream stream(int device);
kernels::BlasHandle blas(int device);
kernels::DnnHandle cudnn(int device);

// TF32 tensor-core math for F32 matmuls: off by default (CPU parity exact to F32 rounding); on with
// set_allow_tf32(true) or STGS_ALLOW_TF32=1 in the environment.
bool allow_tf32();
void set_allow_tf32(bool on);

// Deterministic GPU results: restricts cuDNN to algorithms that are bitwise reproducible run to run (the
// engine's own kernels never use atomics in reductions, so they are deterministic either way). Off by
// default (cuDNN may then pick faster atomics-based backward algorithms); on with set_deterministic(true)
// or STGS_DETERMINISTIC=1 in the environment. Applies to algorithms chosen after the switch.
bool deterministic();
void set_deterministic(bool on);

// Timed algorithm choice for convolutions (PyTorch's cudnn.benchmark): each new geometry's cuDNN
// algorithm is picked by running the candidates once (cudnnFind*AlgorithmEx) rather than from cuDNN's
// heuristics. Off by default (the heuristics pick the same algorithm in every run, which keeps a resumed
// run bit-identical); on with set_conv_benchmark(true) or STGS_CUDNN_BENCHMARK=1. Applies to geometries
// first seen after the switch.
bool conv_benchmark();
void set_conv_benchmark(bool on);

// The switches above as the cuDNN kernels take them.
inline kernels::ConvMath conv_math() { return {allow_tf32(), deterministic(), conv_benchmark()}; }

}  // namespace stgs::cuda_rt
