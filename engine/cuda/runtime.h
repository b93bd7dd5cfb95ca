// The engine's narrow window onto the CUDA runtime. Implemented in runtime.cu when the build has CUDA,
// and in runtime_none.cpp (device_count() == 0, everything else throws) when it does not, so the rest of
// the engine compiles the same either way.
// defines: cuda_rt::built, device_count, allocator, copy, synchronize, stream, blas, allow_tf32
#pragma once

#include <cstddef>

#include "engine/storage.h"
#include "kernels/stream.h"

namespace stgs::cuda_rt {

bool built();
int device_count();
Allocator& allocator(int device);
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
void synchronize(int device);

// Each device has one context, created on first use: a non-blocking stream on which every kernel,
// allocation and copy for that device is ordered, and a cuBLAS handle bound to it.
kernels::Stream stream(int device);
kernels::BlasHandle blas(int device);

// TF32 tensor-core math for F32 matmuls: off by default (CPU parity exact to F32 rounding); on with
// set_allow_tf32(true) or STGS_ALLOW_TF32=1 in the environment.
bool allow_tf32();
void set_allow_tf32(bool on);

}  // namespace stgs::cuda_rt
