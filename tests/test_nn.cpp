// Tests for the nn modules: gradient checks (F64, central differences) for Linear and LayerNorm, naming,
// state dicts and their error messages, train/eval propagation, Dropout, dtype moves.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/ops.h"
#include "tests/module_gradcheck.h"

using namespace stgs;

namespace {

using testing::check_module_gradients;

// A module with an own parameter, a buffer and a child, for naming tests.
struct Block : Module {
  Tensor scale, count;
  std::shared_ptr<Linear> fc;
  Block() : Module("Block") {
    scale = register_parameter("scale", ones(Shape{2}));
    count = register_buffer("count", zeros(Shape{}, DType::I64));
    fc = register_module("fc", std::make_shared<Linear>(2, 2));
  }
  Tensor forward(const Tensor& x) override { return fc->forward(x * scale); }
};

// Names of a list of named tensors.
template <class List>
std::vector<std::string> names_of(const List& list) {
  std::vector<std::string> out;
  for (const auto& entry : list) out.push_back(entry.first);
  return out;
}

std::shared_ptr<Sequential> small_mlp(Generator* gen) {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Linear>(4, 8, true, gen))
      .add(std::make_shared<LayerNorm>(Shape{8}))
      .add(std::make_shared<Dropout>(0.25))
      .add(std::make_shared<Linear>(8, 3, true, gen));
  return net;
}

}  // namespace

TEST_CASE("Linear gradients match central differences (F64)", "[nn]") {
  Generator gen(1);
  Linear lin(4, 3, true, &gen);
  lin.to(DType::F64);
  SECTION("2-D input") {
    Tensor x = randn(Shape{5, 4}, DType::F64, Device::cpu(), &gen).set_requires_grad(true);
    check_module_gradients(lin, x, {{"x", x}, {"weight", lin.weight}, {"bias", lin.bias}});
  }
  SECTION("3-D input (leading dims folded into the batch)") {
    Tensor x = randn(Shape{2, 3, 4}, DType::F64, Device::cpu(), &gen).set_requires_grad(true);
    check_module_gradients(lin, x, {{"x", x}, {"weight", lin.weight}, {"bias", lin.bias}});
  }
  SECTION("no bias, 1-D input") {
    Linear nb(4, 2, false, &gen);
    nb.to(DType::F64);
    CHECK_FALSE(nb.bias.defined());
    CHECK(names_of(nb.named_parameters()) == std::vector<std::string>{"weight"});
    Tensor x = randn(Shape{4}, DType::F64, Device::cpu(), &gen).set_requires_grad(true);
    CHECK(nb(x).shape() == Shape{2});
    check_module_gradients(nb, x, {{"x", x}, {"weight", nb.weight}});
  }
}

TEST_CASE("LayerNorm module gradients match central differences (F64)", "[nn]") {
  Generator gen(2);
  LayerNorm ln(Shape{3, 4});
  ln.to(DType::F64);
  // Move the affine parameters away from ones/zeros so their gradients are exercised in general.
  ln.weight.copy_(randn(Shape{3, 4}, DType::F64, Device::cpu(), &gen));
  ln.bias.copy_(randn(Shape{3, 4}, DType::F64, Device::cpu(), &gen));
  Tensor x = randn(Shape{2, 3, 4}, DType::F64, Device::cpu(), &gen).set_requires_grad(true);
  check_module_gradients(ln, x, {{"x", x}, {"weight", ln.weight}, {"bias", ln.bias}});
}

TEST_CASE("LayerNorm normalises and initialises affine to ones/zeros", "[nn]") {
  LayerNorm ln(Shape{4}, 1e-5);
  CHECK(ln.weight.to_vector<float>() == std::vector<float>(4, 1.0f));
  CHECK(ln.bias.to_vector<float>() == std::vector<float>(4, 0.0f));
  CHECK(ln.weight.requires_grad());
  Tensor y = ln(from_vector<float>({1, 2, 3, 4, -2, 0, 2, 4}, Shape{2, 4}));
  const std::vector<float> v = y.to_vector<float>();
  for (int r = 0; r < 2; ++r) {
    double m = 0, sq = 0;
    for (int j = 0; j < 4; ++j) m += v[size_t(r * 4 + j)] / 4.0;
    for (int j = 0; j < 4; ++j) sq += (v[size_t(r * 4 + j)] - m) * (v[size_t(r * 4 + j)] - m) / 4.0;
    CHECK(m == Approx(0).margin(1e-6));
    CHECK(sq == Approx(1).epsilon(1e-4));
  }
  LayerNorm plain(Shape{4}, 1e-5, false);
  CHECK(plain.named_parameters().empty());
  CHECK(plain(from_vector<float>({1, 2, 3, 4}, Shape{4})).to_vector<float>() ==
        ln(from_vector<float>({1, 2, 3, 4}, Shape{4})).to_vector<float>());
}

TEST_CASE("Linear: init bounds, shapes, forward values, errors", "[nn]") {
  Generator g1(7), g2(7), g3(8);
  Linear a(9, 5, true, &g1), b(9, 5, true, &g2), c(9, 5, true, &g3);
  CHECK(a.weight.shape() == Shape{5, 9});
  CHECK(a.bias.shape() == Shape{5});
  CHECK(a.weight.requires_grad());
  CHECK(a.bias.requires_grad());
  CHECK(a.weight.to_vector<float>() == b.weight.to_vector<float>());  // same seed, same init
  CHECK(a.weight.to_vector<float>() != c.weight.to_vector<float>());
  const double bound = 1.0 / 3.0;  // 1/sqrt(9)
  double lo = 1, hi = -1;
  for (float w : a.weight.to_vector<float>()) lo = std::min(lo, double(w)), hi = std::max(hi, double(w));
  for (float w : a.bias.to_vector<float>()) lo = std::min(lo, double(w)), hi = std::max(hi, double(w));
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi - lo > bound);  // actually spread over the interval

  // y[r, o] = sum_i x[r, i] * W[o, i] + b[o], computed by hand.
  Linear lin(3, 2);
  lin.weight.copy_(from_vector<float>({1, 2, 3, -1, 0, 1}, Shape{2, 3}));
  lin.bias.copy_(from_vector<float>({0.5f, -0.5f}, Shape{2}));
  Tensor y = lin(from_vector<float>({1, 1, 1, 2, 0, -1}, Shape{2, 3}));
  CHECK(y.shape() == Shape{2, 2});
  CHECK(y.to_vector<float>() == std::vector<float>{6.5f, -0.5f, -0.5f, -3.5f});
  Tensor y3 = lin(from_vector<float>({1, 1, 1, 2, 0, -1}, Shape{2, 1, 3}));
  CHECK(y3.shape() == Shape{2, 1, 2});
  CHECK(y3.to_vector<float>() == y.to_vector<float>());

  REQUIRE_THROWS_WITH(lin(zeros(Shape{2, 4})), Catch::Contains("Linear(in=3, out=2)") && Catch::Contains("[2, 4]"));
  REQUIRE_THROWS_WITH(Linear(0, 3), Catch::Contains("Linear: sizes must be positive"));
}

TEST_CASE("Module: registration, dotted names, order, sharing", "[nn]") {
  auto root = std::make_shared<Sequential>();
  auto block = std::make_shared<Block>();
  root->add(block).add(std::make_shared<Linear>(2, 2));

  CHECK(names_of(root->named_parameters()) ==
        std::vector<std::string>{"0.scale", "0.fc.weight", "0.fc.bias", "1.weight", "1.bias"});
  CHECK(names_of(root->named_buffers()) == std::vector<std::string>{"0.count"});
  CHECK(names_of(root->state_dict()) ==
        std::vector<std::string>{"0.scale", "0.count", "0.fc.weight", "0.fc.bias", "1.weight", "1.bias"});
  CHECK(root->parameters().size() == 5);
  CHECK(root->num_parameters() == 2 + 4 + 2 + 4 + 2);
  CHECK(names_of(root->named_modules()) == std::vector<std::string>{"", "0", "0.fc", "1"});
  CHECK(names_of(root->named_children()) == std::vector<std::string>{"0", "1"});
  CHECK((*root)[1]->type_name() == "Linear");

  // Parameters are the members' own handles.
  CHECK(root->named_parameters()[1].second.impl() == block->fc->weight.impl());

  // A deeper path in torchvision style.
  struct Net : Module {
    Net() : Module("Net") { register_module("layer1", std::make_shared<Sequential>(
                                                           std::initializer_list<std::shared_ptr<Module>>{
                                                               std::make_shared<Block>()})); }
  } net;
  CHECK(net.named_parameters()[1].first == "layer1.0.fc.weight");

  // A module reachable under two names: listed once by named_parameters, under both by state_dict.
  struct Tied : Module {
    std::shared_ptr<Linear> shared = std::make_shared<Linear>(2, 2);
    Tied() : Module("Tied") {
      register_module("enc", shared);
      register_module("dec", shared);
    }
  } tied;
  CHECK(names_of(tied.named_parameters()) == std::vector<std::string>{"enc.weight", "enc.bias"});
  CHECK(names_of(tied.state_dict()) == std::vector<std::string>{"enc.weight", "enc.bias", "dec.weight", "dec.bias"});
  CHECK(tied.named_modules().size() == 2);

  Block b;
  REQUIRE_THROWS_WITH(b.register_buffer("scale", zeros(Shape{1})),
                      Catch::Contains("'scale': the name is already taken"));
  REQUIRE_THROWS_WITH(b.register_parameter("a.b", zeros(Shape{1})), Catch::Contains("contain no '.'"));
  REQUIRE_THROWS_WITH(b.register_parameter("idx", zeros(Shape{1}, DType::I64)),
                      Catch::Contains("Block: parameter 'idx'"));
}

TEST_CASE("Module: forward default throws, operator() dispatches", "[nn]") {
  Module m("FusionCell");
  REQUIRE_THROWS_WITH(m.forward(zeros(Shape{1})), Catch::Contains("FusionCell has no single-input forward"));
  Block b;
  CHECK(b(ones(Shape{3, 2})).shape() == Shape{3, 2});
}

TEST_CASE("state_dict round trip copies values into the existing tensors", "[nn]") {
  Generator g1(1), g2(2);
  auto a = small_mlp(&g1);
  auto b = small_mlp(&g2);
  a->eval();
  b->eval();
  Tensor x = randn(Shape{5, 4}, DType::F32, Device::cpu(), &g1);
  REQUIRE(a->forward(x).to_vector<float>() != b->forward(x).to_vector<float>());

  auto b_first = std::static_pointer_cast<Linear>((*b)[0]);
  const Tensor handle = b_first->weight;
  const LoadResult r = b->load_state_dict(a->state_dict());
  CHECK(r.missing.empty());
  CHECK(r.unexpected.empty());
  CHECK(a->forward(x).to_vector<float>() == b->forward(x).to_vector<float>());
  CHECK(handle.impl() == b_first->weight.impl());  // same tensor, new values
  CHECK(b_first->weight.requires_grad());

  // state_dict entries share storage with the parameters; clone() is a snapshot.
  const StateDict live = a->state_dict();
  const StateDict snap = live.clone();
  std::static_pointer_cast<Linear>((*a)[0])->weight.fill_(3);
  CHECK(live.at("0.weight").to_vector<float>()[0] == 3.0f);
  CHECK(snap.at("0.weight").to_vector<float>()[0] != 3.0f);
  // Round trip through the entry list (the form safetensors reads and writes).
  b->load_state_dict(StateDict(snap.entries()));
  CHECK(std::static_pointer_cast<Linear>((*b)[0])->weight.to_vector<float>() == snap.at("0.weight").to_vector<float>());

  // Values load across dtypes (an F32 checkpoint into an F64 model).
  auto c = small_mlp(&g2);
  c->to(DType::F64);
  c->load_state_dict(snap);
  CHECK(std::static_pointer_cast<Linear>((*c)[0])->weight.to_vector<double>() ==
        snap.at("0.weight").to(DType::F64).to_vector<double>());
}

TEST_CASE("load_state_dict reports all missing, unexpected and mismatched keys in one error", "[nn]") {
  Block block;
  const std::vector<float> before = block.fc->weight.to_vector<float>();
  StateDict bad;
  bad.insert("scale", ones(Shape{3}));            // shape mismatch
  bad.insert("fc.weight", zeros(Shape{2, 2}));    // fine
  bad.insert("fc.extra", zeros(Shape{1}));        // unexpected
  bad.insert("head.weight", zeros(Shape{1}));     // unexpected
  // missing: count, fc.bias
  try {
    block.load_state_dict(bad);
    FAIL("load_state_dict accepted a bad dict");
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK_THAT(msg, Catch::Contains("Block.load_state_dict"));
    CHECK_THAT(msg, Catch::Contains("missing keys (2): count, fc.bias"));
    CHECK_THAT(msg, Catch::Contains("unexpected keys (2): fc.extra, head.weight"));
    CHECK_THAT(msg, Catch::Contains("shape mismatches (1): scale: expected [2], got [3]"));
  }
  CHECK(block.fc->weight.to_vector<float>() == before);  // nothing copied

  // Non-strict: missing and unexpected keys are reported, not thrown; shape mismatches still throw.
  StateDict partial;
  partial.insert("fc.weight", zeros(Shape{2, 2}));
  partial.insert("other", zeros(Shape{1}));
  const LoadResult r = block.load_state_dict(partial, false);
  CHECK(r.missing == std::vector<std::string>{"scale", "count", "fc.bias"});
  CHECK(r.unexpected == std::vector<std::string>{"other"});
  CHECK(block.fc->weight.to_vector<float>() == std::vector<float>(4, 0.0f));
  REQUIRE_THROWS_WITH(block.load_state_dict(bad, false), Catch::Contains("scale: expected [2], got [3]"));
}

TEST_CASE("train/eval propagate to every descendant; Dropout follows the flag", "[nn]") {
  Generator gen(5);
  auto net = small_mlp(&gen);
  auto all_training = [&](bool want) {
    for (const auto& [name, m] : net->named_modules())
      if (m->is_training() != want) return false;
    return true;
  };
  CHECK(all_training(true));
  net->eval();
  CHECK(all_training(false));
  net->train();
  CHECK(all_training(true));
  net->train(false);
  CHECK(all_training(false));

  Generator dgen(11);
  Dropout drop(0.5, &dgen);
  Tensor x = full(Shape{1000}, 2.0);
  drop.eval();
  CHECK(drop(x).to_vector<float>() == x.to_vector<float>());
  drop.train();
  const std::vector<float> y = drop(x).to_vector<float>();
  int zeros_seen = 0;
  for (float v : y) {
    CHECK((v == 0.0f || v == 4.0f));  // kept values scaled by 1/(1-p)
    zeros_seen += v == 0.0f;
  }
  CHECK(zeros_seen > 400);
  CHECK(zeros_seen < 600);
  REQUIRE_THROWS_WITH(Dropout(1.0), Catch::Contains("Dropout: probability must be in [0, 1)"));
}

TEST_CASE("Module::to converts in place and zero_grad drops gradients", "[nn]") {
  Block b;
  const Tensor w = b.fc->weight;
  sum(b(ones(Shape{1, 2}))).backward();
  CHECK(w.grad().defined());
  b.zero_grad();
  CHECK_FALSE(w.grad().defined());

  b.to(DType::F64);
  CHECK(w.dtype() == DType::F64);  // the member handle sees the new data
  CHECK(b.fc->weight.requires_grad());
  CHECK(b.count.dtype() == DType::I64);  // integer buffers keep their type
  CHECK(b(ones(Shape{1, 2}, DType::F64)).dtype() == DType::F64);
}
