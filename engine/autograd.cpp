// The backward pass: iterative topological order by dependency counts, gradient sums per node,
// accumulation into leaves, and release of the graph unless it is retained.
#include "engine/autograd.h"

#include <unordered_map>

#include "engine/ops.h"

namespace stgs {
namespace {

thread_local bool t_grad_enabled = true;

// The edge an op records for one input: its node, or its leaf accumulator, or nothing.
std::shared_ptr<Node> edge_for(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  TensorImpl& impl = *t.impl();
  if (impl.grad_fn) return impl.grad_fn;
  if (!impl.grad_accumulator) {
    impl.grad_accumulator = std::make_shared<Node>();
    impl.grad_accumulator->name = "accumulate_grad";
    impl.grad_accumulator->leaf = t.impl();
  }
  return impl.grad_accumulator;
}

void attach(const char* name, const Tensor& out, std::vector<std::shared_ptr<Node>> next, BackwardFn fn) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->next = std::move(next);
  node->backward = std::move(fn);
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
}

// True when `g` is the only reference to its elements: its own impl and a storage of exactly its size that
// nothing else holds (no other tensor, view, saved input or caller), and no graph of its own. A leaf may then
// take it as its gradient without the copy (ResNet-34: 87 MB per training step).
bool sole_owner(const Tensor& g) {
  const TensorImpl& impl = *g.impl();
  return g.impl().use_count() == 1 && impl.storage.use_count() == 1 && impl.offset == 0 && g.is_contiguous() &&
         impl.storage->nbytes == size_t(g.numel()) * dtype_size(g.dtype()) && !impl.grad_fn && !impl.requires_grad;
}

void accumulate_into_leaf(TensorImpl& leaf, const Tensor& g) {
  STGS_CHECK(g.shape() == leaf.shape && g.dtype() == leaf.dtype, "gradient ", g.str(), " for a leaf of shape ",
             leaf.shape.str(), " and dtype ", dtype_name(leaf.dtype));
  if (!leaf.grad.defined()) {
    // The leaf owns its gradient: never alias a tensor that the graph or the caller still holds.
    leaf.grad = sole_owner(g) ? g : g.clone();
  } else {
    Tensor sum = add(leaf.grad, g);
    leaf.grad = sum;
  }
}

}  // namespace

Node::~Node() {
  // Free a long chain of nodes with a loop instead of one nested destructor call per node (a graph of
  // 10^5 sequential ops would overflow the stack). Edges that other owners still hold just drop a count.
  std::vector<std::shared_ptr<Node>> doomed;
  auto take = [&doomed](std::vector<std::shared_ptr<Node>>& edges) {
    for (auto& e : edges)
      if (e && e.use_count() == 1) doomed.push_back(std::move(e));
    edges.clear();
  };
  take(next);
  while (!doomed.empty()) {
    std::shared_ptr<Node> n = std::move(doomed.back());
    doomed.pop_back();
    take(n->next);
  }  // n is destroyed here, its edges already moved out
}

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, const Tensor& out, std::initializer_list<const Tensor*> inputs, BackwardFn fn) {
  std::vector<std::shared_ptr<Node>> next;
  next.reserve(inputs.size());
  for (const Tensor* t : inputs) next.push_back(edge_for(*t));
  attach(name, out, std::move(next), std::move(fn));
}

void record(const char* name, const Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  std::vector<std::shared_ptr<Node>> next;
  next.reserve(inputs.size());
  for (const Tensor& t : inputs) next.push_back(edge_for(t));
  attach(name, out, std::move(next), std::move(fn));
}

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  STGS_CHECK(root.requires_grad(), "backward() on a tensor that does not require grad (", root.str(),
             "): no input of the computation had requires_grad set, or it ran under NoGradGuard");
  Tensor seed = grad;
  if (!seed.defined()) {
    STGS_CHECK(root.numel() == 1, "backward() without a gradient needs a single-element output, got ",
               root.str(), "; pass grad_out");
    seed = ones(root.shape(), root.dtype(), root.device());
  }
  STGS_CHECK(seed.shape() == root.shape() && seed.dtype() == root.dtype() && seed.device() == root.device(),
             "backward(): grad_out ", seed.str(), " does not match output ", root.str());

  NoGradGuard no_grad;
  std::shared_ptr<Node> start = edge_for(root);

  // Count, for every reachable node, how many edges lead into it (iterative DFS: deep nets are fine).
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{start.get()};
  pending[start.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& e : n->next) {
      if (!e) continue;
      auto [it, inserted] = pending.try_emplace(e.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.get());
    }
  }

  // Process nodes whose every consumer has been processed. A node that received no gradient (its
  // consumers gave none) is still processed, without running anything, so the counts of its inputs drop
  // and a node that is also reached through another path does not wait forever.
  std::unordered_map<Node*, Tensor> grads;
  grads[start.get()] = seed;
  std::vector<Node*> ready{start.get()};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Tensor g;
    if (auto it = grads.find(n); it != grads.end()) {
      g = std::move(it->second);
      grads.erase(it);
    }

    std::vector<Tensor> input_grads;
    if (g.defined()) {
      STGS_CHECK(!n->released, "backward through '", n->name,
                 "' a second time: its graph was freed by the first backward(); pass retain_graph=true to the first");
      for (auto& hook : n->hooks) {
        Tensor replaced = hook(g);
        if (!replaced.defined()) continue;
        STGS_CHECK(replaced.shape() == g.shape() && replaced.dtype() == g.dtype() && replaced.device() == g.device(),
                   "a hook on '", n->name, "' returned ", replaced.str(), " for the gradient ", g.str());
        g = replaced;
      }
      if (auto leaf = n->leaf.lock()) {
        accumulate_into_leaf(*leaf, g);
        continue;  // accumulators have no inputs
      }
      if (n->backward) {  // empty only on an accumulator whose leaf no longer exists
        std::vector<bool> needs(n->next.size());
        for (size_t i = 0; i < needs.size(); ++i) needs[i] = n->next[i] != nullptr;
        GradInputs inputs(std::move(needs));
        n->backward(g, inputs);
        input_grads = std::move(inputs.grads());
      }
    }

    for (size_t i = 0; i < n->next.size(); ++i) {
      Node* target = n->next[i].get();
      if (!target) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        Tensor& gi = input_grads[i];
        auto it = grads.find(target);
        if (it == grads.end()) {
          grads.emplace(target, std::move(gi));
        } else {
          it->second = add(it->second, gi);
        }
      }
      if (--pending[target] == 0) ready.push_back(target);
    }
    if (!retain_graph && g.defined()) {
      n->backward = nullptr;  // frees everything the closure captured
      n->released = true;
    }
  }
}

Tensor custom_op(const char* name, const std::vector<Tensor>& inputs, const CustomForward& forward,
                 const CustomBackward& backward) {
  std::vector<Tensor> detached;
  detached.reserve(inputs.size());
  for (const Tensor& t : inputs) detached.push_back(t.detach());
  Tensor out;
  {
    NoGradGuard no_grad;
    out = forward(detached);
  }
  STGS_CHECK(out.defined(), "custom op '", name, "': forward returned an undefined tensor");
  bool needs = false;
  if (grad_enabled())
    for (const Tensor& t : inputs) needs = needs || (t.defined() && t.requires_grad());
  if (!needs) return out;
  STGS_CHECK(is_floating(out.dtype()), "custom op '", name, "': forward returned ", out.str(),
             ", which cannot carry a gradient (inputs require one)");
  // The node goes on a fresh handle (sharing the data): forward may have returned an input, or a tensor
  // that the caller still holds, whose autograd state must not change.
  out = out.detach();
  Tensor saved_out = out.detach();
  record(name, out, inputs, [name, backward, detached, saved_out](const Tensor& g, GradInputs& gi) {
    std::vector<Tensor> grads = backward(g, detached, saved_out);
    STGS_CHECK(grads.size() == gi.size(), "custom op '", name, "': backward returned ", grads.size(),
               " gradients for ", gi.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!gi.needs(i) || !grads[i].defined()) continue;
      STGS_CHECK(grads[i].shape() == detached[i].shape() && grads[i].dtype() == detached[i].dtype() &&
                     grads[i].device() == detached[i].device(),
                 "custom op '", name, "': gradient ", i, " is ", grads[i].str(), ", input ", i, " is ",
                 detached[i].str());
      gi.set(i, grads[i]);
    }
  });
  return out;
}

}  // namespace stgs
