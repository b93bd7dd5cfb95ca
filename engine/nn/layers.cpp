// Linear, LayerNorm, Dropout and Sequential.
#include "engine/nn/layers.h"

#include <cmath>
#include <string>

#include "engine/ops.h"

namespace stgs {

// ---- Linear -------------------------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Generator* gen)
    : Module("Linear"), in_(in_features), out_(out_features) {
  STGS_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got in=", in_features,
             " out=", out_features);
  // PyTorch's kaiming_uniform_(a=sqrt(5)) bound: sqrt(6 / ((1 + a^2) * fan_in)) = 1/sqrt(fan_in).
  const double bound = 1.0 / std::sqrt(double(in_features));
  const Device cpu = Device::cpu();
  weight = register_parameter("weight", rand(Shape{out_features, in_features}, DType::F32, cpu, gen, -bound, bound));
  if (with_bias) bias = register_parameter("bias", rand(Shape{out_features}, DType::F32, cpu, gen, -bound, bound));
}

Tensor Linear::forward(const Tensor& x) {
  STGS_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_, "Linear(in=", in_, ", out=", out_,
             "): input must be (..., ", in_, "), got ", x.defined() ? x.str() : "undefined");
  // Leading dims fold into one batch dim for a single GEMM: (rows, in) @ (in, out).
  const int64_t rows = x.numel() / in_;
  Tensor x2 = x.dim() == 2 ? x : x.reshape(Shape{rows, in_});
  Tensor y = matmul(x2, weight.transpose(0, 1));
  if (bias.defined()) y = y + bias;
  if (x.dim() == 2) return y;
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 1] = out_;
  return y.reshape(out_shape);
}

// ---- LayerNorm ----------------------------------------------------------------------------------------

LayerNorm::LayerNorm(const Shape& normalized_shape, double eps, bool affine)
    : Module("LayerNorm"), shape_(normalized_shape), eps_(eps) {
  STGS_CHECK(!normalized_shape.empty(), "LayerNorm: normalized_shape must have at least one dimension");
  for (int64_t d : normalized_shape)
    STGS_CHECK(d > 0, "LayerNorm: normalized_shape ", normalized_shape.str(), " must be positive");
  STGS_CHECK(eps > 0, "LayerNorm: eps must be positive, got ", eps);
  if (affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    bias = register_parameter("bias", zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, shape_, weight, bias, eps_); }

// ---- Dropout ------------------------------------------------------------------------------------------

Dropout::Dropout(double p, Generator* gen) : Module("Dropout"), p_(p), gen_(gen) {
  STGS_CHECK(p >= 0 && p < 1, "Dropout: probability must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), gen_); }

// ---- Sequential ---------------------------------------------------------------------------------------

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (const auto& m : modules) add(m);
}

Sequential& Sequential::add(std::shared_ptr<Module> m) {
  register_module(std::to_string(layers_.size()), m);
  layers_.push_back(std::move(m));
  return *this;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t i) const {
  STGS_CHECK(i < layers_.size(), "Sequential: index ", i, " out of range for ", layers_.size(), " modules");
  return layers_[i];
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& m : layers_) h = m->forward(h);
  return h;
}

}  // namespace stgs
