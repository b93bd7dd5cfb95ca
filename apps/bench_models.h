// Whole-model rows of stgs_bench (apps/bench_models.cpp): ResNet-34 images/s and one STGS-BMNAS search
// iteration, against PyTorch.
// defines: run_model_benchmarks, run_search_benchmark
#pragma once

#include "engine/dtype.h"

// Times ResNet-34 (width 64) inference and a full SGD training step, image preset (3x224x224) and audio
// preset (1x300x257), at `batch` on `device`, and when PyTorch can be imported (STGS_PYTHON, else
// /usr/bin/python3, else python3) the same work in PyTorch eager in the same run, printing the ratio.
// Returns how many rows fell below `target_ratio` of PyTorch (rows without a PyTorch number count as ok).
int run_model_benchmarks(stgs::Device device, int batch, int reps, double target_ratio);

// Times one bilevel search iteration (weight step + architecture step, M draws each, exact path, default
// search space: 8 inputs, C = 128, L = 8, 2 cells of 2 steps) at `batch` on `device`, and the same iteration
// in PyTorch eager (apps/bench_search_torch.py) when it can run. Returns 1 when the iteration takes longer
// than `target_ms`, else 0.
int run_search_benchmark(stgs::Device device, int batch, int samples, int reps, double target_ms);
