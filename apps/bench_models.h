// Whole-model rows of stgs_bench (apps/bench_models.cpp): ResNet-34 images/s against PyTorch.
// defines: run_model_benchmarks
#pragma once

#include "engine/dtype.h"

// Times ResNet-34 (width 64) inference and a full SGD training step, image preset (3x224x224) and audio
// preset (1x300x257), at `batch` on `device`, and when PyTorch can be imported (STGS_PYTHON, else
// /usr/bin/python3, else python3) the same work in PyTorch eager in the same run, printing the ratio.
// Returns how many rows fell below `target_ratio` of PyTorch (rows without a PyTorch number count as ok).
int run_model_benchmarks(stgs::Device device, int batch, int reps, double target_ratio);
