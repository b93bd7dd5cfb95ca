// The stream type CUDA kernels take last, declared without the CUDA headers so that the family headers
// stay includable from plain C++ (it is the same type as cudaStream_t).
// defines: kernels::Stream, kernels::BlasHandle
#pragma once

struct CUstream_st;
struct cublasContext;

namespace stgs::kernels {
using Stream = CUstream_st*;
using BlasHandle = cublasContext*;  // cublasHandle_t
}  // namespace stgs::kernels
