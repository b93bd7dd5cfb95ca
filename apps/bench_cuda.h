// The CUDA section of stgs_bench (apps/bench_cuda.cpp).
// defines: run_cuda_benchmarks
#pragma once

// Runs the GPU rows on device 0 and returns how many of them fell below their target. Prints one skip line
// and returns 0 when the binary was built without CUDA or no CUDA device is visible.
int run_cuda_benchmarks(bool quick);
