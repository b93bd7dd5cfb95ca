// Basic layers built on Module.
// defines: Linear, LayerNorm, Dropout, Sequential
//
// Parameters are created F32 on the CPU; Module::to(DType/Device) moves a whole model afterwards.
#pragma once

#include <initializer_list>
#include <memory>

#include "engine/nn/module.h"
#include "engine/random.h"

namespace stgs {

// y = x @ weight^T + bias;  x: (..., in) -> y: (..., out);  weight: (out, in), bias: (out).
// Init as PyTorch: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform with a = sqrt(5)),
// drawn from gen (the default generator when null).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  int64_t in_, out_;
};

// Normalises over the trailing dims `normalized_shape` (biased variance, eps inside the square root);
// affine adds weight (ones) and bias (zeros) of that shape.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(const Shape& normalized_shape, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;

  const Shape& normalized_shape() const { return shape_; }
  Tensor weight;  // undefined without affine
  Tensor bias;

 private:
  Shape shape_;
  double eps_;
};

// Zeroes elements with probability p and scales the rest by 1/(1-p) in training mode; identity in eval.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

// Chains single-input modules; children are named "0", "1", ... in the order added.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  // Appends m (registered as the next index); returns *this so calls chain.
  Sequential& add(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;

  size_t size() const { return layers_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace stgs
