// The base of every network building block: named parameters, buffers and child modules.
// defines: StateDict, LoadResult, Module
//
// A module registers its tensors and children by name; the recursive views join names with dots in
// registration order ("layer1.0.conv1.weight"), so a state_dict maps 1:1 to safetensors files and to
// torchvision/AutoSpeech checkpoint names. Derived classes keep Tensor members for their own use and
// register the same handles: both see one TensorImpl, and loading copies values into it in place.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace stgs {

// An ordered name -> tensor map (insertion order, like PyTorch's OrderedDict): the unit a checkpoint
// file holds. Used by modules, optimizers and schedulers. entries() is the list save_safetensors takes;
// StateDict(SafetensorsFile::tensors) goes the other way.
class StateDict {
 public:
  using Entry = std::pair<std::string, Tensor>;

  StateDict() = default;
  explicit StateDict(const std::vector<Entry>& entries);  // throws on a duplicate name
  void insert(const std::string& name, const Tensor& t);  // throws on a duplicate name
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const Tensor* find(const std::string& name) const;  // null when absent
  const Tensor& at(const std::string& name) const;    // throws naming the key when absent
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  const std::vector<Entry>& entries() const { return entries_; }
  // Every tensor copied (contiguous, no autograd): a snapshot that later updates do not change.
  StateDict clone() const;

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// Checkpoints of several parts in one dict: each part's entries under its own prefix ("net.", "arch.").
StateDict sub_dict(const StateDict& dict, const std::string& prefix);  // entries under prefix, prefix removed
void insert_prefixed(StateDict& into, const std::string& prefix, const StateDict& part);

// What a non-strict load skipped.
struct LoadResult {
  std::vector<std::string> missing;     // the module's keys the dict did not have
  std::vector<std::string> unexpected;  // the dict's keys the module does not have
};

class Module {
 public:
  using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
  using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The class name ("Linear"), used in error messages.
  const std::string& type_name() const { return type_name_; }

  // The single-input forward pass. The default throws: modules with several inputs define their own.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // ---- registration (names: non-empty, no '.', unique among this module's parameters, buffers, children)
  // Stores the handle and sets requires_grad on it (a leaf F32/F64 tensor); returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor t);
  // Non-trainable state saved with the module (running statistics, counters); returns the same handle.
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // ---- recursive views, dotted names, registration order (own tensors first, then each child) ------
  // A tensor or module reachable under several names is listed once, under its first name, so an
  // optimizer never updates a shared parameter twice.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  NamedModules named_children() const { return children_; }
  // This module as "" first, then every descendant in pre-order (each module once); non-owning pointers.
  std::vector<std::pair<std::string, Module*>> named_modules();
  int64_t num_parameters() const;  // total element count of parameters()

  // ---- modes --------------------------------------------------------------------------------------
  // Sets the training flag here and in every descendant. Virtual so a module can pin a child's mode
  // (e.g. a frozen backbone whose batch norms stay in eval).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // ---- state ---------------------------------------------------------------------------------------
  // Parameters then buffers of each module, depth first, under every name they are reachable by. The
  // tensors are detached handles sharing storage with the live ones: save or clone() before the next step.
  StateDict state_dict() const;
  // Copies every matched entry into the existing tensors (Tensor::copy_, any dtype/device). Validates
  // everything first and throws ONE error listing all missing keys, unexpected keys (strict only) and
  // shape mismatches; nothing is copied when it throws.
  LoadResult load_state_dict(const StateDict& dict, bool strict = true);

  // Drops the gradient of every parameter.
  void zero_grad();

  // Converts every parameter and floating buffer in place (the handles keep their identity, so members,
  // registries and optimizers built afterwards all see the new data). Build optimizers after this.
  void to(DType dtype);
  void to(Device device);

 protected:
  // Called on this module and every descendant after load_state_dict copied new values in, for modules
  // that keep host-side mirrors of their state (BatchNorm's batch counter).
  virtual void state_loaded() {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_new_name(const std::string& name, const char* what) const;
  // Appends (dotted name, tensor) for parameters (params = true) or buffers, depth first, skipping tensors
  // already in `seen`.
  void collect(const std::string& prefix, bool params, NamedTensors& out,
               std::unordered_set<const TensorImpl*>& seen) const;

  std::string type_name_;
  bool training_ = true;
  NamedTensors params_;
  NamedTensors buffers_;
  NamedModules children_;
};

}  // namespace stgs
