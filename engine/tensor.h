// Tensor: a shared handle to (storage, offset, shape, strides, dtype, device) plus its autograd state.
// defines: Tensor, TensorImpl, factories (empty, zeros, ones, full, arange, rand, randn, from_vector, scalar)
//
// Copies of a Tensor are shallow (they share the same TensorImpl); clone() and to() copy explicitly.
// View ops (reshape of a contiguous tensor, slice, narrow, transpose, permute, expand, squeeze/unsqueeze)
// share storage with their source; everything else allocates. Shapes and strides count elements.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/storage.h"

namespace stgs {

struct Node;
struct TensorImpl;
class Generator;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata --------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int dim() const { return shape().size(); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape().numel(); }
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  std::string str() const;  // "F32[2, 3] cpu"

  // ---- data access (CPU tensors) ----------------------------------------------------------------
  void* raw_data() const;  // pointer to element 0 (storage + offset)
  template <class T>
  T* data() const {
    STGS_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">() on a ", dtype_name(dtype()),
               " tensor");
    return static_cast<T*>(raw_data());
  }
  template <class T>
  std::vector<T> to_vector() const;  // copies out in row-major order (any device, any layout)
  double item() const;               // single-element tensors, any numeric dtype

  // ---- copies and conversions -------------------------------------------------------------------
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;       // always a fresh contiguous copy (differentiable)
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor detach() const;  // shares data, no autograd history

  // ---- views --------------------------------------------------------------------------------------
  Tensor reshape(const Shape& shape) const;  // a view when contiguous, else a copy; one -1 allowed
  Tensor view(const Shape& shape) const;     // like reshape but throws instead of copying
  Tensor flatten(int start = 0, int end = -1) const;
  Tensor slice(int dim, int64_t start, int64_t end, int64_t step = 1) const;  // view; clamps like Python
  Tensor narrow(int dim, int64_t start, int64_t length) const;               // view; throws out of range
  Tensor select(int dim, int64_t index) const;                               // view, drops dim
  Tensor transpose(int d0, int d1) const;                                    // view
  Tensor permute(const std::vector<int>& dims) const;                        // view
  Tensor unsqueeze(int dim) const;                                           // view
  Tensor squeeze(int dim) const;                                             // view; dim must be 1
  Tensor expand(const Shape& shape) const;  // view with stride 0 on broadcast dims

  // ---- autograd --------------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;  // undefined until a backward pass reached this leaf
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops the gradient
  const std::shared_ptr<Node>& grad_fn() const;
  // Runs the backward pass from this tensor. grad_out defaults to ones for a single-element tensor.
  void backward(const Tensor& grad_out = Tensor(), bool retain_graph = false) const;
  // hook(grad) -> replacement grad, called when this tensor's gradient has been summed.
  void register_hook(std::function<Tensor(const Tensor&)> hook) const;

  // ---- in-place (no autograd; for optimizers, initialisers and loaders) -----------------------------
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // same shape; any device/dtype pair the casts support

  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape, strides;
  DType dtype = DType::F32;

  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;           // set on op outputs that need gradients
  std::shared_ptr<Node> grad_accumulator;  // set lazily on leaves that need gradients
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// ---- factories ----------------------------------------------------------------------------------
Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::cpu());
Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::cpu());  // shape []
Tensor arange(double start, double end, double step = 1, DType dtype = DType::F32, Device device = Device::cpu());
// Uniform in the open interval (lo, hi) and normal(mean, std), drawn from gen (the default generator when null).
Tensor rand(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu(), Generator* gen = nullptr,
            double lo = 0, double hi = 1);
Tensor randn(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu(), Generator* gen = nullptr,
             double mean = 0, double std = 1);
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
// A view of existing storage; used by views and by formats that carve tensors out of one buffer.
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace stgs
