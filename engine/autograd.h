// Define-by-run reverse-mode autodiff: graph nodes, recording, the backward pass, grad mode, custom ops.
// defines: Node, GradInputs, BackwardFn, grad_enabled, NoGradGuard, any_requires_grad, record, run_backward,
//          custom_op
//
// An op that has an input needing a gradient records one Node on its output. The node keeps one edge per
// input (the input's own node, or the accumulator of a leaf) and a closure that maps the output's
// gradient to the inputs' gradients. Closures capture detached tensors only, so a node never keeps its
// own output alive. Backward closures run with grad mode off: gradients are plain tensors.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace stgs {

// What a backward closure sees of its inputs: which need a gradient, and where to put each one.
class GradInputs {
 public:
  explicit GradInputs(std::vector<bool> needs) : needs_(std::move(needs)), grads_(needs_.size()) {}
  bool needs(size_t i) const { return needs_[i]; }
  void set(size_t i, Tensor g) { grads_[i] = std::move(g); }
  size_t size() const { return needs_.size(); }
  std::vector<Tensor>& grads() { return grads_; }

 private:
  std::vector<bool> needs_;
  std::vector<Tensor> grads_;
};

using BackwardFn = std::function<void(const Tensor& grad_out, GradInputs& grads)>;
using GradHook = std::function<Tensor(const Tensor& grad)>;

struct Node {
  const char* name = "";
  std::vector<std::shared_ptr<Node>> next;  // per input; null where that input needs no gradient
  BackwardFn backward;                      // empty on accumulator nodes and once released
  std::weak_ptr<TensorImpl> leaf;           // accumulator nodes: the leaf whose .grad receives the sum
  std::vector<GradHook> hooks;              // run on the summed incoming gradient, in order
  bool released = false;

  Node() = default;
  ~Node();  // iterative: deep graphs are freed without deep recursion
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
};

bool grad_enabled();
void set_grad_enabled(bool on);

// Disables recording in its scope (inference, frozen backbones, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and at least one of the tensors needs a gradient: the test an op makes
// before it builds a closure, so ops on non-differentiable data pay nothing for autograd.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches a node named `name` with closure `fn` to `out`, with one edge per input.
void record(const char* name, const Tensor& out, std::initializer_list<const Tensor*> inputs, BackwardFn fn);
void record(const char* name, const Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn);

// The backward pass from `root` with seed gradient `grad` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

// A user-defined differentiable op: forward(inputs) runs without recording; backward(grad_out, inputs,
// output) returns one gradient per input (undefined for inputs that get none).
using CustomForward = std::function<Tensor(const std::vector<Tensor>& inputs)>;
using CustomBackward =
    std::function<std::vector<Tensor>(const Tensor& grad_out, const std::vector<Tensor>& inputs, const Tensor& output)>;
Tensor custom_op(const char* name, const std::vector<Tensor>& inputs, const CustomForward& forward,
                 const CustomBackward& backward);

}  // namespace stgs
