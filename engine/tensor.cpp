// Tensor metadata, views with their backward rules, copies, factories and printing.
#include "engine/tensor.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/op_utils.h"
#include "engine/random.h"
#include "kernels/copy.h"
#include "kernels/random.h"

namespace stgs {

// ---- shape helpers ------------------------------------------------------------------------------

int wrap_dim(const char* op, int dim, int ndim) {
  const int wrapped = dim < 0 ? dim + ndim : dim;
  STGS_CHECK(wrapped >= 0 && wrapped < ndim, op, ": dimension ", dim, " is out of range for a ", ndim, "-d tensor");
  return wrapped;
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const int n = a.size() > b.size() ? a.size() : b.size();
  Shape out;
  for (int i = 0; i < n; ++i) {
    const int ia = i - (n - a.size()), ib = i - (n - b.size());
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    STGS_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a.str(), " and ", b.str(), " do not broadcast");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

Generator& default_generator() {
  static Generator gen;
  return gen;
}

// ---- metadata -----------------------------------------------------------------------------------

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  STGS_CHECK(impl != nullptr, "use of an undefined tensor");
  return *impl;
}
}  // namespace

const Shape& Tensor::shape() const { return checked(impl_).shape; }
const Shape& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::offset() const { return checked(impl_).offset; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device; }

int64_t Tensor::size(int d) const { return shape()[wrap_dim("size", d, dim())]; }

bool Tensor::is_contiguous() const {
  const Shape& sh = shape();
  const Shape& st = strides();
  if (sh.numel() == 0) return true;  // no elements, no layout (as in PyTorch)
  int64_t expect = 1;
  for (int i = sh.size() - 1; i >= 0; --i) {
    if (sh[i] != 1 && st[i] != expect) return false;
    expect *= sh[i];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype())) + shape().str() + " " + device().str();
}

void* Tensor::raw_data() const {
  const TensorImpl& t = checked(impl_);
  return static_cast<char*>(t.storage->data) + t.offset * int64_t(dtype_size(t.dtype));
}

// ---- factories ----------------------------------------------------------------------------------

// shape.numel(), refusing negative sizes and element counts past int64 (Shape::numel would wrap silently).
static int64_t checked_numel(const Shape& shape, const char* op) {
  int64_t n = 1;
  for (int64_t d : shape) {
    STGS_CHECK(d >= 0, op, ": negative dimension in shape ", shape.str());
    STGS_CHECK(!__builtin_mul_overflow(n, d, &n), op, ": shape ", shape.str(), " has more elements than 2^63");
  }
  return n;
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  const TensorImpl& b = checked(base.impl());
  STGS_CHECK(shape.size() == strides.size(), "make_view: shape ", shape.str(), " and strides ", strides.str(),
             " differ in rank");
  if (checked_numel(shape, "make_view") > 0) {  // every element the view can address must lie inside the storage
    int64_t lo = offset, hi = offset;
    for (int i = 0; i < shape.size(); ++i) {
      int64_t reach = 0;
      const bool overflow = __builtin_mul_overflow(shape[i] - 1, strides[i], &reach) ||
                            __builtin_add_overflow(strides[i] < 0 ? lo : hi, reach, strides[i] < 0 ? &lo : &hi);
      STGS_CHECK(!overflow, "make_view: shape ", shape.str(), " with strides ", strides.str(),
                 " reaches past 2^63 elements");
    }
    const int64_t capacity = int64_t(b.storage->nbytes / dtype_size(b.dtype));
    STGS_CHECK(lo >= 0 && hi < capacity, "make_view: shape ", shape.str(), ", strides ", strides.str(), ", offset ",
               offset, " reach elements [", lo, ", ", hi, "] of a storage holding ", capacity);
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = b.storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Tensor empty(const Shape& shape, DType dtype, Device device) {
  const int64_t n = checked_numel(shape, "empty");
  // No machine has 2^62 bytes; the bound keeps every byte count below (and the allocator's rounding) exact.
  STGS_CHECK(n <= (int64_t(1) << 62) / int64_t(dtype_size(dtype)), "empty: shape ", shape.str(), " of ",
             dtype_name(dtype), " needs more than 2^62 bytes");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(n) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor scalar(double value, DType dtype, Device device) { return full(Shape{}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  STGS_CHECK(step != 0, "arange: step must be non-zero");
  const double count = std::ceil((end - start) / step);
  STGS_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step) && count < 9e15, "arange: [", start,
             ", ", end, ") in steps of ", step, " is not a finite range of at most 9e15 values");
  const int64_t n = int64_t(count);
  std::vector<double> values(size_t(n > 0 ? n : 0));
  for (size_t i = 0; i < values.size(); ++i) values[i] = start + double(i) * step;
  Tensor t = from_vector(values, Shape{int64_t(values.size())});
  return t.to(dtype).to(device);
}

Tensor rand(const Shape& shape, DType dtype, Device device, Generator* gen, double lo, double hi) {
  STGS_CHECK(is_floating(dtype), "rand: expected F32 or F64, got ", dtype_name(dtype));  // before drawing
  Generator& g = gen ? *gen : default_generator();
  Tensor t = empty(shape, dtype, device);
  const uint64_t offset = g.reserve(uint64_t(t.numel()));
  STGS_DISPATCH_FLOAT(dtype, "rand",
                      STGS_KERNEL(device, uniform_fill<T>, t.data<T>(), t.numel(), g.seed(), offset, T(lo), T(hi)));
  return t;
}

Tensor randn(const Shape& shape, DType dtype, Device device, Generator* gen, double mean, double std) {
  STGS_CHECK(is_floating(dtype), "randn: expected F32 or F64, got ", dtype_name(dtype));  // before drawing
  Generator& g = gen ? *gen : default_generator();
  Tensor t = empty(shape, dtype, device);
  const uint64_t offset = g.reserve(4 * uint64_t(t.numel()));
  STGS_DISPATCH_FLOAT(dtype, "randn",
                      STGS_KERNEL(device, normal_fill<T>, t.data<T>(), t.numel(), g.seed(), offset, T(mean), T(std)));
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  STGS_CHECK(int64_t(values.size()) == shape.numel(), "from_vector: ", values.size(), " values for shape ",
             shape.str(), " (", shape.numel(), " elements)");
  Tensor t = empty(shape, dtype_of<T>(), Device::cpu());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t.to(device);
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, Device);
template Tensor from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&, Device);

// ---- in-place ----------------------------------------------------------------------------------

Tensor& Tensor::fill_(double value) {
  if (is_contiguous()) {
    const int64_t n = numel();
    const Device d = device();
    switch (dtype()) {
      case DType::F32: STGS_KERNEL(d, fill, data<float>(), n, float(value)); break;
      case DType::F64: STGS_KERNEL(d, fill, data<double>(), n, value); break;
      case DType::I64: STGS_KERNEL(d, fill, data<int64_t>(), n, int64_t(value)); break;
      case DType::I32: STGS_KERNEL(d, fill, data<int32_t>(), n, int32_t(value)); break;
      case DType::U8: STGS_KERNEL(d, fill, data<uint8_t>(), n, uint8_t(value)); break;
      case DType::BF16: case DType::F16: copy_(full(shape(), value, DType::F32, d)); break;
    }
    return *this;
  }
  // A strided view: fill a contiguous block and scatter it in. An expanded dimension (stride 0) is one memory
  // location: filled once, through a view that does not repeat it.
  Shape once = shape();
  for (int i = 0; i < dim(); ++i)
    if (strides()[i] == 0) once[i] = std::min<int64_t>(once[i], 1);
  make_view(*this, once, strides(), offset()).copy_(full(once, value, dtype(), device()));
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  STGS_CHECK(src.shape() == shape(), "copy_: source ", src.str(), " does not match destination ", str());
  // An expanded destination (stride 0, more than one element): which of several writes wins would be a race.
  for (int i = 0; i < dim(); ++i)
    STGS_CHECK(strides()[i] != 0 || shape()[i] <= 1 || numel() == 0, "copy_: the destination ", str(), " is expanded along dimension ",
               i, " (stride 0): its ", shape()[i], " elements there are one memory location");
  Tensor s = src;
  if (s.dtype() != dtype()) s = s.to(dtype());
  // A source that shares memory with the destination (x[1:] = x[:-1]) is read in full before any write.
  if (s.impl()->storage == impl_->storage && numel() > 0) s = s.detach().clone();
  if (is_contiguous()) {
    Tensor sc = s.contiguous();
    copy_bytes(raw_data(), device(), sc.raw_data(), sc.device(), size_t(numel()) * dtype_size(dtype()));
    return *this;
  }
  NoGradGuard no_grad;
  Tensor sc = s.to(device());
  kernels::StridedLayout l;
  l.ndim = dim();
  for (int i = 0; i < dim(); ++i) {
    l.sizes[i] = shape()[i];
    l.strides[0][i] = strides()[i];
    l.strides[1][i] = sc.strides()[i];
  }
  STGS_KERNEL(device(), strided_copy, raw_data(), sc.raw_data(), l, dtype_size(dtype()));
  return *this;
}

// ---- copies and conversions ---------------------------------------------------------------------

namespace {

int type_code(DType t) { return int(t); }  // kernels::cpu::convert uses the DType order

kernels::StridedLayout copy_layout(const Tensor& dst, const Tensor& src) {
  kernels::StridedLayout l;
  l.ndim = dst.dim();
  for (int i = 0; i < dst.dim(); ++i) {
    l.sizes[i] = dst.shape()[i];
    l.strides[0][i] = dst.strides()[i];
    l.strides[1][i] = src.strides()[i];
  }
  return l;
}

}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  if (is_contiguous()) {
    copy_bytes(out.raw_data(), out.device(), raw_data(), device(), size_t(numel()) * dtype_size(dtype()));
  } else {
    STGS_KERNEL(device(), strided_copy, out.raw_data(), raw_data(), copy_layout(out, *this), dtype_size(dtype()));
  }
  if (any_requires_grad({this})) record("clone", out, {this}, [](const Tensor& g, GradInputs& gi) { gi.set(0, g); });
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape(), dtype(), target);
  copy_bytes(out.raw_data(), target, src.raw_data(), src.device(), size_t(numel()) * dtype_size(dtype()));
  if (any_requires_grad({this})) {
    const Device from = device();
    record("to_device", out, {this}, [from](const Tensor& g, GradInputs& gi) { gi.set(0, g.to(from)); });
  }
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape(), target, device());
  STGS_KERNEL(device(), convert, out.raw_data(), type_code(target), src.raw_data(), type_code(dtype()), numel());
  if (is_floating(target) && any_requires_grad({this})) {
    const DType from = dtype();
    record("to_dtype", out, {this}, [from](const Tensor& g, GradInputs& gi) { gi.set(0, g.to(from)); });
  }
  return out;
}

Tensor Tensor::detach() const {
  const TensorImpl& t = checked(impl_);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage;
  impl->offset = t.offset;
  impl->shape = t.shape;
  impl->strides = t.strides;
  impl->dtype = t.dtype;
  return Tensor(std::move(impl));
}

// ---- views ---------------------------------------------------------------------------------------

namespace {

// A view of x plus, when x needs a gradient, a node whose rule is `backward`.
template <class Rule>
Tensor view_of(const Tensor& x, const char* name, const Shape& shape, const Shape& strides, int64_t offset,
               Rule backward) {
  Tensor out = make_view(x, shape, strides, offset);
  if (any_requires_grad({&x})) record(name, out, {&x}, [backward](const Tensor& g, GradInputs& gi) { gi.set(0, backward(g)); });
  return out;
}

}  // namespace

Tensor Tensor::reshape(const Shape& requested) const {
  Shape target = requested;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      STGS_CHECK(infer < 0, "reshape: more than one -1 in ", requested.str());
      infer = i;
    } else {
      STGS_CHECK(target[i] >= 0, "reshape: negative size in ", requested.str());
      STGS_CHECK(!__builtin_mul_overflow(known, target[i], &known), "reshape: ", requested.str(),
                 " has more elements than 2^63");
    }
  }
  if (infer >= 0) {
    STGS_CHECK(known != 0 && numel() % known == 0, "reshape: cannot infer -1 in ", requested.str(), " for ", str());
    target[infer] = numel() / known;
  }
  STGS_CHECK(checked_numel(target, "reshape") == numel(), "reshape: ", str(), " has ", numel(), " elements, ",
             requested.str(), " needs ", target.numel());
  if (!is_contiguous()) return contiguous().reshape(target);
  const Shape source = shape();
  return view_of(*this, "reshape", target, contiguous_strides(target), offset(),
                 [source](const Tensor& g) { return g.reshape(source); });
}

Tensor Tensor::view(const Shape& requested) const {
  STGS_CHECK(is_contiguous(), "view: ", str(), " is not contiguous; use reshape() (which copies) or contiguous()");
  return reshape(requested);
}

Tensor Tensor::flatten(int start, int end) const {
  if (dim() == 0) return reshape(Shape{1});
  start = wrap_dim("flatten", start, dim());
  end = wrap_dim("flatten", end, dim());
  STGS_CHECK(start <= end, "flatten: start dimension ", start, " comes after end dimension ", end, " of ", str());
  Shape target;
  for (int i = 0; i < start; ++i) target.push_back(shape()[i]);
  int64_t merged = 1;
  for (int i = start; i <= end; ++i) merged *= shape()[i];
  target.push_back(merged);
  for (int i = end + 1; i < dim(); ++i) target.push_back(shape()[i]);
  return reshape(target);
}

Tensor Tensor::slice(int d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim("slice", d, dim());
  STGS_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape()[d];
  auto clamp = [n](int64_t i) {
    if (i < 0) i += n;
    return i < 0 ? int64_t(0) : (i > n ? n : i);
  };
  start = clamp(start);
  end = clamp(end);
  if (end < start) end = start;
  Shape sh = shape(), st = strides();
  sh[d] = end > start ? (end - start - 1) / step + 1 : 0;  // (end - start + step - 1) could overflow
  if (sh[d] > 1) st[d] *= step;  // a stride of a size-1 (or empty) dimension is never used; the product could overflow
  const Shape source = shape();
  const DType dt = dtype();
  const Device dev = device();
  return view_of(*this, "slice", sh, st, offset() + start * strides()[d],
                 [source, dt, dev, d, start, end, step](const Tensor& g) {
                   Tensor full_grad = zeros(source, dt, dev);
                   full_grad.slice(d, start, end, step).copy_(g);
                   return full_grad;
                 });
}

Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  d = wrap_dim("narrow", d, dim());
  STGS_CHECK(start >= 0 && length >= 0 && start <= shape()[d] && length <= shape()[d] - start, "narrow: start ",
             start, ", length ", length, " is out of range for dimension ", d, " of ", str());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int d, int64_t index) const {
  d = wrap_dim("select", d, dim());
  STGS_CHECK(index >= -shape()[d] && index < shape()[d], "select: index ", index, " is out of range for dimension ",
             d, " of ", str());
  if (index < 0) index += shape()[d];
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::transpose(int d0, int d1) const {
  d0 = wrap_dim("transpose", d0, dim());
  d1 = wrap_dim("transpose", d1, dim());
  Shape sh = shape(), st = strides();
  std::swap(sh[d0], sh[d1]);
  std::swap(st[d0], st[d1]);
  return view_of(*this, "transpose", sh, st, offset(), [d0, d1](const Tensor& g) { return g.transpose(d0, d1); });
}

Tensor Tensor::permute(const std::vector<int>& dims) const {
  STGS_CHECK(int(dims.size()) == dim(), "permute: ", dims.size(), " dims given for ", str());
  Shape sh, st;
  std::vector<int> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int d = wrap_dim("permute", dims[i], dim());
    STGS_CHECK(inverse[d] < 0, "permute: dimension ", d, " repeated");
    inverse[d] = int(i);
    sh.push_back(shape()[d]);
    st.push_back(strides()[d]);
  }
  return view_of(*this, "permute", sh, st, offset(), [inverse](const Tensor& g) { return g.permute(inverse); });
}

Tensor Tensor::unsqueeze(int d) const {
  d = wrap_dim("unsqueeze", d, dim() + 1);
  Shape sh = shape(), st = strides();
  const int64_t stride = d < dim() ? strides()[d] * shape()[d] : 1;
  sh.insert(d, 1);
  st.insert(d, stride);
  const Shape source = shape();
  return view_of(*this, "unsqueeze", sh, st, offset(), [source](const Tensor& g) { return g.reshape(source); });
}

Tensor Tensor::squeeze(int d) const {
  d = wrap_dim("squeeze", d, dim());
  STGS_CHECK(shape()[d] == 1, "squeeze: dimension ", d, " of ", str(), " has size ", shape()[d], ", not 1");
  Shape sh = shape(), st = strides();
  sh.erase(d);
  st.erase(d);
  const Shape source = shape();
  return view_of(*this, "squeeze", sh, st, offset(), [source](const Tensor& g) { return g.reshape(source); });
}

Tensor Tensor::expand(const Shape& target) const {
  STGS_CHECK(target.size() >= dim(), "expand: ", str(), " cannot expand to fewer dimensions ", target.str());
  const int shift = target.size() - dim();
  Shape sh, st;
  for (int i = 0; i < target.size(); ++i) {
    const int j = i - shift;
    const int64_t have = j >= 0 ? shape()[j] : 1;
    const int64_t want = target[i] == -1 ? have : target[i];
    STGS_CHECK(j >= 0 || target[i] != -1, "expand: -1 is not allowed for a new leading dimension");
    STGS_CHECK(want >= 0, "expand: negative size in ", target.str());
    STGS_CHECK(have == want || have == 1, "expand: ", str(), " cannot expand to ", target.str());
    sh.push_back(want);
    st.push_back(j >= 0 && have == want ? strides()[j] : 0);
  }
  checked_numel(sh, "expand");
  const Shape source = shape();
  return view_of(*this, "expand", sh, st, offset(), [source](const Tensor& g) { return sum_to(g, source); });
}

// ---- autograd surface ----------------------------------------------------------------------------

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }
bool Tensor::is_leaf() const { return checked(impl_).grad_fn == nullptr; }
Tensor Tensor::grad() const { return checked(impl_).grad; }
void Tensor::set_grad(const Tensor& g) const {
  STGS_CHECK(!g.defined() || (g.shape() == shape() && g.dtype() == dtype() && g.device() == device()),
             "set_grad: gradient ", g.str(), " for tensor ", str());
  impl_->grad = g;
}
void Tensor::zero_grad() const { checked(impl_).grad.defined() ? void(impl_->grad = Tensor()) : void(); }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }

Tensor& Tensor::set_requires_grad(bool on) {
  STGS_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor (", str(), "); use detach() first");
  STGS_CHECK(!on || is_floating(dtype()), "only F32/F64 tensors can require gradients, got ", str());
  impl_->requires_grad = on;
  return *this;
}

void Tensor::backward(const Tensor& grad_out, bool retain_graph) const { run_backward(*this, grad_out, retain_graph); }

void Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  STGS_CHECK(requires_grad(), "register_hook on a tensor that does not require grad (", str(), ")");
  if (!impl_->grad_fn && !impl_->grad_accumulator) {
    impl_->grad_accumulator = std::make_shared<Node>();
    impl_->grad_accumulator->name = "accumulate_grad";
    impl_->grad_accumulator->leaf = impl_;
  }
  Node& node = impl_->grad_fn ? *impl_->grad_fn : *impl_->grad_accumulator;
  node.hooks.push_back(std::move(hook));
}

// ---- reading values ------------------------------------------------------------------------------

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor t = detach().to(Device::cpu()).contiguous();
  std::vector<T> out(size_t(t.numel()));
  if (out.empty()) return out;
  if (t.dtype() == dtype_of<T>()) {
    std::memcpy(out.data(), t.raw_data(), out.size() * sizeof(T));
  } else {
    kernels::cpu::convert(out.data(), int(dtype_of<T>()), t.raw_data(), int(t.dtype()), t.numel());
  }
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

template <>
std::vector<double> Tensor::to_vector<double>() const {
  Tensor t = detach().to(Device::cpu()).contiguous();
  std::vector<double> out(size_t(t.numel()));
  if (!out.empty()) kernels::cpu::convert(out.data(), int(DType::F64), t.raw_data(), int(t.dtype()), t.numel());
  return out;
}

double Tensor::item() const {
  STGS_CHECK(numel() == 1, "item() needs a single-element tensor, got ", str());
  return to_vector<double>()[0];
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
  if (!t.defined()) return out << "Tensor(undefined)";
  out << "Tensor(" << t.str();
  if (t.requires_grad()) out << ", requires_grad";
  out << ")\n";
  const std::vector<double> v = t.to_vector<double>();
  const Shape& sh = t.shape();
  if (sh.size() == 0) return out << std::setprecision(6) << v[0];
  // Prints nested brackets, eliding the middle of any dimension longer than 8.
  std::function<void(int, int64_t)> rec = [&](int d, int64_t base) {
    const int64_t n = sh[d];
    int64_t stride = 1;
    for (int i = d + 1; i < sh.size(); ++i) stride *= sh[i];
    out << "[";
    for (int64_t i = 0; i < n; ++i) {
      if (n > 8 && i == 3) {
        out << (d + 1 == sh.size() ? "..., " : "...,\n");
        i = n - 4;
        continue;
      }
      if (d + 1 == sh.size()) {
        out << std::setprecision(6) << v[size_t(base + i)];
      } else {
        rec(d + 1, base + i * stride);
      }
      if (i + 1 < n) out << (d + 1 == sh.size() ? ", " : ",\n");
    }
    out << "]";
  };
  if (t.numel() > 0) rec(0, 0);
  else out << "[]";
  return out;
}

}  // namespace stgs
