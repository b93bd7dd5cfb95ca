// CUDA runtime glue for builds without CUDA: no devices; asking for one is a clear error.
#include "engine/cuda/runtime.h"

namespace stgs::cuda_rt {

bool built() { return false; }
int device_count() { return 0; }
Allocator& allocator(int device) {
  STGS_FAIL("cuda:", device, " requested but this binary was built without CUDA (rebuild with nvcc on PATH)");
}
void copy(void*, Device dst_device, const void*, Device src_device, size_t) {
  STGS_FAIL("copy ", src_device.str(), " -> ", dst_device.str(), " needs CUDA, but this binary was built without it");
}
void synchronize(int) {}
kernels::Stream stream(int device) { STGS_FAIL("cuda:", device, " stream requested but this binary was built without CUDA"); }
kernels::BlasHandle blas(int device) { STGS_FAIL("cuda:", device, " cuBLAS requested but this binary was built without CUDA"); }
kernels::DnnHandle cudnn(int device) {
  STGS_FAIL("cuda:", device, " cuDNN requested but this binary was built without CUDA");
}
bool allow_tf32() { return false; }
void set_allow_tf32(bool) {}
bool deterministic() { return false; }
void set_deterministic(bool) {}
bool conv_benchmark() { return false; }
void set_conv_benchmark(bool) {}

}  // namespace stgs::cuda_rt
