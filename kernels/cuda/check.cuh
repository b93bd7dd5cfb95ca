// Checks for CUDA runtime calls and kernel launches.
// defines: CUDA_CHECK(expr), CUDA_CHECK_LAUNCH()
//
// CUDA_CHECK throws stgs::Error with file:line, the expression and the runtime's message.
// CUDA_CHECK_LAUNCH follows every launch; with STGS_SYNC_DEBUG=1 in the environment it also
// synchronises, so an asynchronous fault is reported at the kernel that caused it.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>

#include "kernels/check.h"

namespace stgs::kernels::cuda {

inline bool sync_debug() {
  static const bool on = [] {
    const char* v = std::getenv("STGS_SYNC_DEBUG");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}

}  // namespace stgs::kernels::cuda

#define CUDA_CHECK(expr)                                                                          \
  do {                                                                                            \
    cudaError_t stgs_err_ = (expr);                                                               \
    if (stgs_err_ != cudaSuccess)                                                                 \
      STGS_FAIL("CUDA error in ", #expr, ": ", cudaGetErrorName(stgs_err_), ": ", cudaGetErrorString(stgs_err_)); \
  } while (0)

#define CUDA_CHECK_LAUNCH()                                                                   \
  do {                                                                                        \
    CUDA_CHECK(cudaGetLastError());                                                           \
    if (::stgs::kernels::cuda::sync_debug()) CUDA_CHECK(cudaDeviceSynchronize());             \
  } while (0)
