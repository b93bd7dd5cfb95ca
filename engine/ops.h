// The differentiable operations of the engine (CPU kernels now; CUDA twins dispatch from the same calls).
// defines: arithmetic with broadcasting, unary maps, reductions, matmul, softmax family, losses,
//          normalisation, dropout, shape ops (concat, split, chunk, gather, where)
//
// Every op validates its inputs with an error naming the op and the shapes, allocates its output,
// runs the kernel for the input's device, and records an autograd node when an input needs a gradient.
// Floating ops take F32 or F64; all inputs of one op share dtype and device.
#pragma once

#include <array>
#include <vector>

#include "engine/autograd.h"
#include "engine/random.h"
#include "engine/tensor.h"

namespace stgs {

// ---- elementwise, NumPy broadcasting --------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);      // a > 0 where b's gradient is needed
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient to a where a >= b
Tensor minimum(const Tensor& a, const Tensor& b);  // gradient to a where a <= b
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor pow(const Tensor& a, double exponent);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor glu(const Tensor& x, int dim = -1);  // first half * sigmoid(second half) along dim

// Comparisons give U8 masks (0/1) and carry no gradient.
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, double s);
Tensor lt(const Tensor& a, double s);

// cond (U8) ? a : b, all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);

// ---- reductions ---------------------------------------------------------------------------------
Tensor sum(const Tensor& x);  // all elements -> shape []
Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);
Tensor max(const Tensor& x, int dim, bool keepdim = false);  // values; gradient to the first maximum
Tensor max(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);
Tensor argmax(const Tensor& x, int dim, bool keepdim = false);  // I64, no gradient
// Sums a broadcast result back to `shape` (the reduction every broadcasting backward needs).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra -------------------------------------------------------------------------------
// (M, K) @ (K, N), or batched (..., M, K) @ (..., K, N) with broadcast batch dimensions. Transposed views
// of the last two dimensions are passed to BLAS as transposes, not copied.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- softmax family and losses ------------------------------------------------------------------
Tensor softmax(const Tensor& x, int dim = -1);
Tensor log_softmax(const Tensor& x, int dim = -1);
enum class Reduction { Mean, Sum, None };
// logits: (N, C); targets: I64 (N) with values in [0, C).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, Reduction reduction = Reduction::Mean);

// ---- normalisation, regularisation --------------------------------------------------------------
// Normalises over the trailing dims given by normalized_shape; weight/bias of that shape, or undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps = 1e-5);
// Zeroes each element with probability p and scales the rest by 1/(1-p) when training; identity otherwise.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

// ---- joining, splitting, indexing -------------------------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);  // views
std::vector<Tensor> chunk(const Tensor& x, int chunks, int dim);                         // views
// out[..., j, ...] = x[..., index[..., j, ...], ...] along dim; index (I64) matches x on every other dim.
Tensor gather(const Tensor& x, int dim, const Tensor& index);


// ---- convolution, batch norm, pooling (NCHW; CPU kernels, CUDA kernels + cuDNN on GPU) ---------------
using Pair = std::array<int64_t, 2>;  // (height, width)

// x: (N, C_in, H, W), weight: (C_out, C_in / groups, kH, kW), bias: (C_out) or undefined
// -> (N, C_out, H_out, W_out), H_out = (H + 2 pad - dilation (kH - 1) - 1) / stride + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride = {1, 1}, Pair padding = {0, 0},
              Pair dilation = {1, 1}, int64_t groups = 1);
// x: (N, C_in, L), weight: (C_out, C_in / groups, k), bias: (C_out) or undefined -> (N, C_out, L_out).
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride = 1, int64_t padding = 0,
              int64_t dilation = 1, int64_t groups = 1);

// Batch norm over dim 1 of x: (N, C), (N, C, L) or (N, C, H, W); weight/bias: (C) or undefined.
// Training: normalises with the batch statistics (biased variance) and, when running_mean/running_var are
// defined, updates them in place: r = (1 - momentum) r + momentum * stat, with the unbiased variance.
// Eval: normalises with running_mean/running_var.
// groups > 1 (training): x holds `groups` independent batches of N / groups samples back to back (the
// architecture draws of a search step, batched); each is normalised with its own statistics and updates the
// running ones in turn, group 0 first: exactly `groups` calls on the slices, in one op. Eval ignores groups.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                  int64_t groups = 1);

// x: (N, C, H, W). Padding counts as -inf for max and (count_include_pad) as zeros for the average.
Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding = {0, 0});
Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding = {0, 0}, bool count_include_pad = true);
// Adaptive pooling to a fixed output size; bin i of n covers [floor(i n_in / n), ceil((i + 1) n_in / n)).
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size);
Tensor adaptive_max_pool2d(const Tensor& x, Pair output_size);
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size);  // x: (N, C, L)
Tensor adaptive_max_pool1d(const Tensor& x, int64_t output_size);

}  // namespace stgs
