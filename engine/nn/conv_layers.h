// Convolution and batch-norm modules over the conv2d/conv1d/batch_norm ops.
// defines: Conv2d, Conv1d, BatchNorm
//
// Parameter and buffer names follow PyTorch (weight, bias, running_mean, running_var,
// num_batches_tracked), so torchvision and AutoSpeech state dicts load without renaming. Parameters are
// created F32 on the CPU; Module::to moves a whole model afterwards.
#pragma once

#include "engine/nn/module.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace stgs {

// Hyper-parameters of a 2-D convolution (height, width pairs).
struct Conv2dOptions {
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
};

// x: (N, C_in, H, W) -> (N, C_out, H_out, W_out);  weight: (C_out, C_in / groups, kH, kW), bias: (C_out).
// Init as PyTorch's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// fan_in = C_in / groups * kH * kW, drawn from gen (the default generator when null).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel, const Conv2dOptions& options = {},
         Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  const Conv2dOptions& options() const { return options_; }
  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  Conv2dOptions options_;
};

// x: (N, C_in, L) -> (N, C_out, L_out);  weight: (C_out, C_in / groups, k), bias: (C_out). Same init.
class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
         bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  int64_t stride_, padding_;
};

// Batch norm over dim 1 of (N, C), (N, C, L) or (N, C, H, W): PyTorch's BatchNorm1d/2d (eps 1e-5,
// momentum 0.1, unbiased running variance). Training mode normalises with batch statistics and updates
// the running ones; eval mode uses the running statistics. num_batches_tracked (I64, shape []) counts the
// training forwards; it is kept so checkpoints match PyTorch's, and a host mirror avoids reading it back
// from a GPU every step.
class BatchNorm : public Module {
 public:
  explicit BatchNorm(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true);
  Tensor forward(const Tensor& x) override;
  // x holds `groups` independent batches back to back; training takes statistics per group and updates the
  // running ones group by group (batch_norm's groups), counting `groups` batches.
  Tensor forward(const Tensor& x, int64_t groups);

  int64_t num_features() const { return num_features_; }
  Tensor weight;  // (C) ones; undefined without affine
  Tensor bias;    // (C) zeros
  Tensor running_mean;
  Tensor running_var;
  Tensor num_batches_tracked;

 protected:
  void state_loaded() override;

 private:
  int64_t num_features_;
  double eps_, momentum_;
  int64_t batches_tracked_ = 0;  // host mirror of num_batches_tracked
};

}  // namespace stgs
