// The engine's narrow window onto the CUDA runtime. Implemented in runtime.cu when the build has CUDA,
// and in runtime_none.cpp (device_count() == 0, everything else throws) when it does not, so the rest of
// the engine compiles the same either way.
// defines: cuda_rt::built, device_count, allocator, copy, synchronize
#pragma once

#include <cstddef>

#include "engine/storage.h"

namespace stgs::cuda_rt {

bool built();
int device_count();
Allocator& allocator(int device);
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
void synchronize(int device);

}  // namespace stgs::cuda_rt
