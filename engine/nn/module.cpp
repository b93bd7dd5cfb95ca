// Module base: registration, recursive named views, modes, state dicts, in-place dtype/device moves.
#include "engine/nn/module.h"

#include <functional>

#include "engine/autograd.h"

namespace stgs {

// ---- StateDict ----------------------------------------------------------------------------------

StateDict::StateDict(const std::vector<Entry>& entries) {
  for (const auto& [name, t] : entries) insert(name, t);
}

void StateDict::insert(const std::string& name, const Tensor& t) {
  STGS_CHECK(t.defined(), "StateDict: undefined tensor for key '", name, "'");
  STGS_CHECK(index_.emplace(name, entries_.size()).second, "StateDict: duplicate key '", name, "'");
  entries_.emplace_back(name, t);
}

const Tensor* StateDict::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const Tensor& StateDict::at(const std::string& name) const {
  const Tensor* t = find(name);
  STGS_CHECK(t != nullptr, "StateDict: no key '", name, "'");
  return *t;
}

StateDict StateDict::clone() const {
  NoGradGuard no_grad;
  StateDict out;
  for (const auto& [name, t] : entries_) out.insert(name, t.detach().clone());
  return out;
}

StateDict sub_dict(const StateDict& dict, const std::string& prefix) {
  StateDict out;
  for (const auto& [name, t] : dict)
    if (name.rfind(prefix, 0) == 0) out.insert(name.substr(prefix.size()), t);
  return out;
}

void insert_prefixed(StateDict& into, const std::string& prefix, const StateDict& part) {
  for (const auto& [name, t] : part) into.insert(prefix + name, t);
}

// ---- registration -------------------------------------------------------------------------------

Tensor Module::forward(const Tensor&) { STGS_FAIL(type_name_, " has no single-input forward"); }

void Module::check_new_name(const std::string& name, const char* what) const {
  STGS_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name_, ": ", what, " name '", name,
             "' must be non-empty and contain no '.'");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry.first == name) return true;
    return false;
  };
  STGS_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), type_name_, ": cannot register ", what,
             " '", name, "': the name is already taken");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name, "parameter");
  STGS_CHECK(t.defined() && is_floating(t.dtype()) && t.is_leaf(), type_name_, ": parameter '", name,
             "' must be a defined leaf F32/F64 tensor, got ", t.defined() ? t.str() : "undefined");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "buffer");
  STGS_CHECK(t.defined(), type_name_, ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name, "module");
  STGS_CHECK(m != nullptr, type_name_, ": child module '", name, "' is null");
  STGS_CHECK(m.get() != this, type_name_, ": cannot register a module as its own child ('", name, "')");
  children_.emplace_back(name, std::move(m));
}

// ---- recursive views ------------------------------------------------------------------------------

void Module::collect(const std::string& prefix, bool params, NamedTensors& out,
                     std::unordered_set<const TensorImpl*>& seen) const {
  for (const auto& [name, t] : params ? params_ : buffers_)
    if (seen.insert(t.impl().get()).second) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out, seen);
}

Module::NamedTensors Module::named_parameters() const {
  NamedTensors out;
  std::unordered_set<const TensorImpl*> seen;
  collect("", true, out, seen);
  return out;
}

Module::NamedTensors Module::named_buffers() const {
  NamedTensors out;
  std::unordered_set<const TensorImpl*> seen;
  collect("", false, out, seen);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& entry : named_parameters()) out.push_back(entry.second);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  std::unordered_set<const Module*> seen;
  std::function<void(Module&, const std::string&)> visit = [&](Module& m, const std::string& name) {
    if (!seen.insert(&m).second) return;
    out.emplace_back(name, &m);
    for (const auto& [child_name, child] : m.children_)
      visit(*child, name.empty() ? child_name : name + "." + child_name);
  };
  visit(*this, "");
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

// ---- modes ----------------------------------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& entry : children_) entry.second->train(on);
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.zero_grad();
}

// ---- state --------------------------------------------------------------------------------------

StateDict Module::state_dict() const {
  // Parameters then buffers per module, so the order is that of PyTorch's state_dict().
  StateDict out;
  std::function<void(const Module&, const std::string&)> visit = [&](const Module& m, const std::string& prefix) {
    for (const auto& [name, t] : m.params_) out.insert(prefix + name, t.detach());
    for (const auto& [name, t] : m.buffers_) out.insert(prefix + name, t.detach());
    for (const auto& [name, child] : m.children_) visit(*child, prefix + name + ".");
  };
  visit(*this, "");
  return out;
}

LoadResult Module::load_state_dict(const StateDict& dict, bool strict) {
  const StateDict mine = state_dict();
  LoadResult result;
  std::vector<std::string> mismatches;
  for (const auto& [name, t] : mine) {
    const Tensor* src = dict.find(name);
    if (src == nullptr) {
      result.missing.push_back(name);
    } else if (src->shape() != t.shape()) {
      mismatches.push_back(name + ": expected " + t.shape().str() + ", got " + src->shape().str());
    }
  }
  for (const auto& entry : dict)
    if (!mine.contains(entry.first)) result.unexpected.push_back(entry.first);

  const bool key_errors = strict && (!result.missing.empty() || !result.unexpected.empty());
  if (key_errors || !mismatches.empty()) {
    auto join = [](const std::vector<std::string>& names, const char* sep) {
      std::string s;
      for (size_t i = 0; i < names.size(); ++i) s += (i ? sep : "") + names[i];
      return s;
    };
    auto section = [&](const char* what, const std::vector<std::string>& names, const char* sep) {
      return "\n  " + std::string(what) + " (" + std::to_string(names.size()) + "): " + join(names, sep);
    };
    std::string msg = type_name_ + ".load_state_dict: the state dict does not match the module";
    if (strict && !result.missing.empty()) msg += section("missing keys", result.missing, ", ");
    if (strict && !result.unexpected.empty()) msg += section("unexpected keys", result.unexpected, ", ");
    if (!mismatches.empty()) msg += section("shape mismatches", mismatches, "; ");
    STGS_FAIL(msg);
  }

  NoGradGuard no_grad;
  for (const auto& [name, t] : mine) {
    const Tensor* src = dict.find(name);
    if (src != nullptr) Tensor(t).copy_(*src);
  }
  for (auto& [name, m] : named_modules()) m->state_loaded();
  return result;
}

// ---- dtype / device moves ----------------------------------------------------------------------------

namespace {

// Points the TensorImpl behind `t` at the data of `converted`, so every handle to it sees the new data.
void rebind(const Tensor& t, const Tensor& converted) {
  TensorImpl& impl = *t.impl();
  const TensorImpl& src = *converted.impl();
  impl.storage = src.storage;
  impl.offset = src.offset;
  impl.shape = src.shape;
  impl.strides = src.strides;
  impl.dtype = src.dtype;
  impl.grad = Tensor();  // a gradient of the old dtype/device no longer fits
}

}  // namespace

void Module::to(DType dtype) {
  STGS_CHECK(is_floating(dtype), type_name_, ".to: parameters must be F32 or F64, got ", dtype_name(dtype));
  NoGradGuard no_grad;
  for (auto& [name, t] : named_parameters())
    if (t.dtype() != dtype) rebind(t, t.detach().to(dtype));
  for (auto& [name, t] : named_buffers())
    if (is_floating(t.dtype()) && t.dtype() != dtype) rebind(t, t.detach().to(dtype));
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [name, t] : named_parameters())
    if (t.device() != device) rebind(t, t.detach().to(device));
  for (auto& [name, t] : named_buffers())
    if (t.device() != device) rebind(t, t.detach().to(device));
}

}  // namespace stgs
