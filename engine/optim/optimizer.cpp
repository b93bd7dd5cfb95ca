// Optimizer base: group bookkeeping, the shared step loop (checks, contiguous grads), state dicts.
#include "engine/optim/optimizer.h"

#include <cmath>
#include <unordered_set>

#include "engine/autograd.h"

namespace stgs {

Optimizer::Optimizer(std::string name, double default_lr, double default_weight_decay,
                     std::vector<std::string> buffer_names)
    : name_(std::move(name)),
      default_lr_(default_lr),
      default_weight_decay_(default_weight_decay),
      buffer_names_(std::move(buffer_names)) {
  STGS_CHECK(std::isfinite(default_lr) && default_lr >= 0, name_, ": lr must be finite and >= 0, got ", default_lr);
  STGS_CHECK(std::isfinite(default_weight_decay) && default_weight_decay >= 0, name_,
             ": weight_decay must be finite and >= 0, got ", default_weight_decay);
}

void Optimizer::add_param_group(ParamGroup group) {
  const size_t g = groups_.size();
  if (!group.lr) group.lr = default_lr_;
  if (!group.weight_decay) group.weight_decay = default_weight_decay_;
  STGS_CHECK(std::isfinite(*group.lr) && *group.lr >= 0, name_, ": group ", g, " lr must be finite and >= 0, got ",
             *group.lr);
  STGS_CHECK(std::isfinite(*group.weight_decay) && *group.weight_decay >= 0, name_, ": group ", g,
             " weight_decay must be finite and >= 0, got ", *group.weight_decay);
  std::unordered_set<const TensorImpl*> seen;
  for (const ParamGroup& other : groups_)
    for (const Tensor& p : other.params) seen.insert(p.impl().get());
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    STGS_CHECK(p.defined() && is_floating(p.dtype()) && p.is_leaf(), name_, ": parameter ", g, ".", i,
               " must be a defined leaf F32/F64 tensor, got ", p.defined() ? p.str() : "undefined");
    STGS_CHECK(seen.insert(p.impl().get()).second, name_, ": parameter ", g, ".", i, " (", p.str(),
               ") appears more than once in the parameter groups");
  }
  state_.emplace_back(group.params.size());
  groups_.push_back(std::move(group));
}

void Optimizer::zero_grad() {
  for (const ParamGroup& group : groups_)
    for (const Tensor& p : group.params) p.zero_grad();
}

void Optimizer::step() {
  NoGradGuard no_grad;
  // Check every parameter first, so that a bad one leaves all of them untouched.
  std::vector<std::vector<Tensor>> grads(groups_.size());
  const Tensor* first = nullptr;  // the first parameter with a gradient: its device is the optimizer's
  for (size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    grads[g].resize(group.params.size());
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& p = group.params[i];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      STGS_CHECK(p.is_contiguous(), name_, ": parameter ", g, ".", i, " (", p.str(), ") must be contiguous");
      STGS_CHECK(grad.dtype() == p.dtype() && grad.shape() == p.shape() && grad.device() == p.device(), name_,
                 ": parameter ", g, ".", i, " is ", p.str(), " but its gradient is ", grad.str());
      if (first == nullptr) first = &p;
      STGS_CHECK(p.device() == first->device(), name_, ": parameters on more than one device (", first->str(),
                 " and parameter ", g, ".", i, " ", p.str(), "): use one optimizer per device");
      for (const Tensor& b : state_[g][i].buffers)
        STGS_CHECK(!b.defined() || b.device() == p.device(), name_, ": parameter ", g, ".", i, " (", p.str(),
                   ") has optimizer state on ", b.device().str(),
                   " (the parameter moved after its first update)");
      grads[g][i] = grad.contiguous();
    }
  }
  if (first == nullptr) return;
  const bool cuda = first->device().is_cuda();
  for (size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    std::vector<CudaUpdate> items;
    for (size_t i = 0; i < group.params.size(); ++i) {
      if (!grads[g][i].defined()) continue;
      ParamState& st = state_[g][i];
      st.buffers.resize(buffer_names_.size());
      ++st.step;
      if (cuda) {
        items.push_back({group.params[i], grads[g][i], &st});
      } else {
        update(group, group.params[i], grads[g][i], st);
      }
    }
    if (!items.empty()) update_cuda(group, items);
  }
}

void Optimizer::update_cuda(const ParamGroup& group, std::vector<CudaUpdate>& items) {
  STGS_FAIL(name_, ": parameter ", items.front().param.str(), " is on ", items.front().param.device().str(),
            ": this optimizer has no CUDA kernel");
}

Tensor Optimizer::zeros_like(const Tensor& param) { return zeros(param.shape(), param.dtype(), param.device()); }

// ---- state dicts ------------------------------------------------------------------------------------

StateDict Optimizer::state_dict() const {
  StateDict out;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    out.insert(prefix + "lr", scalar(*groups_[g].lr, DType::F64));
    out.insert(prefix + "weight_decay", scalar(*groups_[g].weight_decay, DType::F64));
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < state_[g].size(); ++i) {
      const ParamState& st = state_[g][i];
      if (st.step == 0) continue;
      const std::string prefix = "state." + std::to_string(g) + "." + std::to_string(i) + ".";
      out.insert(prefix + "step", full(Shape{}, double(st.step), DType::I64));
      for (size_t b = 0; b < st.buffers.size(); ++b)
        if (st.buffers[b].defined()) out.insert(prefix + buffer_names_[b], st.buffers[b].detach());
    }
  }
  return out;
}

void Optimizer::load_state_dict(const StateDict& dict) {
  // Validate everything first, so a bad dict leaves the optimizer untouched.
  std::vector<std::string> problems;
  std::unordered_set<std::string> used;
  auto scalar_at = [&](const std::string& key) -> const Tensor* {
    const Tensor* t = dict.find(key);
    if (t == nullptr) {
      problems.push_back("missing key " + key);
    } else if (t->numel() != 1) {
      problems.push_back(key + ": expected a single value, got " + t->str());
      t = nullptr;
    }
    used.insert(key);
    return t;
  };
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    scalar_at(prefix + "lr");
    scalar_at(prefix + "weight_decay");
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const std::string sp = "state." + std::to_string(g) + "." + std::to_string(i) + ".";
      if (!dict.contains(sp + "step")) continue;  // never updated: no state
      scalar_at(sp + "step");
      for (const std::string& b : buffer_names_) {
        const Tensor* t = dict.find(sp + b);
        if (t == nullptr) continue;
        used.insert(sp + b);
        const Tensor& p = groups_[g].params[i];
        if (t->shape() != p.shape())
          problems.push_back(sp + b + ": expected " + p.shape().str() + ", got " + t->shape().str());
      }
    }
  }
  for (const auto& entry : dict)
    if (!used.count(entry.first)) problems.push_back("unexpected key " + entry.first);
  if (!problems.empty()) {
    std::string msg = name_ + ".load_state_dict: the state dict does not match this optimizer (" +
                      std::to_string(groups_.size()) + " groups):";
    for (const std::string& p : problems) msg += "\n  " + p;
    STGS_FAIL(msg);
  }

  NoGradGuard no_grad;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    groups_[g].lr = dict.at(prefix + "lr").item();
    groups_[g].weight_decay = dict.at(prefix + "weight_decay").item();
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const std::string sp = "state." + std::to_string(g) + "." + std::to_string(i) + ".";
      const Tensor& p = groups_[g].params[i];
      ParamState st;
      st.buffers.resize(buffer_names_.size());
      if (const Tensor* step = dict.find(sp + "step")) {
        st.step = int64_t(step->item());
        for (size_t b = 0; b < buffer_names_.size(); ++b) {
          if (const Tensor* t = dict.find(sp + buffer_names_[b])) {
            st.buffers[b] = empty(p.shape(), p.dtype(), p.device());
            st.buffers[b].copy_(*t);
          }
        }
      }
      state_[g][i] = std::move(st);
    }
  }
}

}  // namespace stgs
