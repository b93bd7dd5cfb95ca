// Tests for optimizers, gradient clipping and the cosine schedule: trajectories against scalar reference
// recurrences written here, hand-worked numbers, state-dict resume, and a small end-to-end training run.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip.h"
#include "engine/optim/schedule.h"
#include "engine/optim/sgd.h"

using namespace stgs;

namespace {

using Vec = std::vector<double>;

// The gradient fed at step k (1-based) to element i: varied in sign and size, no autograd involved.
double grad_at(int k, size_t i) { return std::sin(0.7 * k + 1.3 * double(i)) + 0.1 * double(i); }

// ---- reference recurrences, one scalar at a time, straight from the PyTorch docs ----------------------

struct RefSGD {
  double lr, momentum, dampening, wd;
  bool nesterov;
  Vec buf;
  void step(Vec& p, const Vec& grad) {
    if (buf.empty()) buf.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i] + wd * p[i];
      if (momentum != 0) {
        buf[i] = first ? g : momentum * buf[i] + (1 - dampening) * g;
        g = nesterov ? g + momentum * buf[i] : buf[i];
      }
      p[i] -= lr * g;
    }
    first = false;
  }
  bool first = true;
};

struct RefAdam {
  double lr, b1, b2, eps, wd;
  bool decoupled;
  Vec m, v;
  int t = 0;
  void step(Vec& p, const Vec& grad) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) {
        p[i] *= 1 - lr * wd;
      } else {
        g += wd * p[i];
      }
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double m_hat = m[i] / (1 - std::pow(b1, t));
      const double v_hat = v[i] / (1 - std::pow(b2, t));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

// Sets grad_at(k, offset + i) as the gradient of each parameter (elements numbered across params).
void feed_grads(const std::vector<Tensor>& params, int k) {
  size_t offset = 0;
  for (const Tensor& p : params) {
    Vec g(size_t(p.numel()));
    for (size_t i = 0; i < g.size(); ++i) g[i] = grad_at(k, offset + i);
    p.set_grad(from_vector(g, p.shape()).to(p.dtype()));
    offset += g.size();
  }
}

std::vector<Tensor> make_params(DType dtype = DType::F64) {
  Tensor a = from_vector<double>({0.5, -1.0, 2.0}, Shape{3}).to(dtype).set_requires_grad(true);
  Tensor b = from_vector<double>({1.5, 0.25, -0.75, 3.0}, Shape{2, 2}).to(dtype).set_requires_grad(true);
  return {a, b};
}

Vec flat(const std::vector<Tensor>& params) {
  Vec out;
  for (const Tensor& p : params)
    for (double v : p.to_vector<double>()) out.push_back(v);
  return out;
}

// Runs `steps` steps of opt and of the reference on the same gradients; compares after every step.
template <class Ref>
void compare_trajectories(Optimizer& opt, const std::vector<Tensor>& params, Ref ref, int steps, double tol) {
  Vec expect = flat(params);
  for (int k = 1; k <= steps; ++k) {
    feed_grads(params, k);
    Vec g;
    for (const Tensor& p : params)
      for (double v : p.grad().to_vector<double>()) g.push_back(v);
    opt.step();
    ref.step(expect, g);
    const Vec got = flat(params);
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("step " << k << ", element " << i);
      CHECK(got[i] == Approx(expect[i]).epsilon(tol).margin(tol));
    }
  }
}

}  // namespace

TEST_CASE("SGD matches the reference recurrence", "[optim]") {
  struct Case {
    const char* name;
    SGDOptions o;
  };
  const Case cases[] = {
      {"plain", {.lr = 0.1}},
      {"momentum", {.lr = 0.1, .momentum = 0.9}},
      {"nesterov", {.lr = 0.05, .momentum = 0.8, .nesterov = true}},
      {"weight decay", {.lr = 0.1, .weight_decay = 0.3}},
      {"dampening", {.lr = 0.1, .momentum = 0.9, .dampening = 0.4}},
      {"all", {.lr = 0.07, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::vector<Tensor> params = make_params();
    SGD opt(params, c.o);
    compare_trajectories(opt, params, RefSGD{c.o.lr, c.o.momentum, c.o.dampening, c.o.weight_decay, c.o.nesterov, {}},
                         6, 1e-13);
  }
}

TEST_CASE("SGD hand-worked examples", "[optim]") {
  // p = 1, gradient 1 on every step; the comments give the arithmetic.
  auto run = [](const SGDOptions& o, int steps) {
    Tensor p = scalar(1.0, DType::F64).set_requires_grad(true);
    SGD opt({p}, o);
    for (int k = 0; k < steps; ++k) {
      p.set_grad(scalar(1.0, DType::F64));
      opt.step();
    }
    return p.item();
  };
  CHECK(run({.lr = 0.1}, 2) == Approx(0.8).epsilon(1e-15));                    // 1 - 0.1 - 0.1
  CHECK(run({.lr = 0.1, .momentum = 0.9}, 2) == Approx(0.71).epsilon(1e-15));  // buf 1 then 1.9: 1 - .1 - .19
  // Nesterov: buf 1, step g + 0.9 buf = 1.9 -> 0.81; buf 1.9, step 1 + 0.9 * 1.9 = 2.71 -> 0.539.
  CHECK(run({.lr = 0.1, .momentum = 0.9, .nesterov = true}, 2) == Approx(0.539).epsilon(1e-15));
  // Weight decay: g = 1 + 0.1 * 1 = 1.1 -> 0.89; g = 1 + 0.089 = 1.089 -> 0.7811.
  CHECK(run({.lr = 0.1, .weight_decay = 0.1}, 2) == Approx(0.7811).epsilon(1e-15));
  // Dampening 0.5 (not applied on the first step): buf 1 -> 0.9; buf 0.9 + 0.5 = 1.4 -> 0.76.
  CHECK(run({.lr = 0.1, .momentum = 0.9, .dampening = 0.5}, 2) == Approx(0.76).epsilon(1e-15));
  REQUIRE_THROWS_WITH(run({.lr = 0.1, .nesterov = true}, 1), Catch::Contains("Nesterov momentum needs momentum > 0"));
}

TEST_CASE("Adam and AdamW match the reference recurrence", "[optim]") {
  SECTION("Adam") {
    std::vector<Tensor> params = make_params();
    const AdamOptions o{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6};
    Adam opt(params, o);
    compare_trajectories(opt, params, RefAdam{o.lr, o.beta1, o.beta2, o.eps, 0, false, {}, {}}, 8, 1e-13);
  }
  SECTION("Adam with L2 weight decay") {
    std::vector<Tensor> params = make_params();
    const AdamOptions o{.lr = 0.02, .weight_decay = 0.1};
    Adam opt(params, o);
    CHECK(opt.name() == "Adam");
    compare_trajectories(opt, params, RefAdam{o.lr, o.beta1, o.beta2, o.eps, 0.1, false, {}, {}}, 8, 1e-13);
  }
  SECTION("AdamW") {
    std::vector<Tensor> params = make_params();
    const AdamOptions o{.lr = 0.02, .weight_decay = 0.1};
    AdamW opt(params, o);
    CHECK(opt.name() == "AdamW");
    compare_trajectories(opt, params, RefAdam{o.lr, o.beta1, o.beta2, o.eps, 0.1, true, {}, {}}, 8, 1e-13);
  }
  SECTION("F32 follows the F64 reference closely") {
    std::vector<Tensor> params = make_params(DType::F32);
    const AdamOptions o{.lr = 0.01, .weight_decay = 0.05, .decoupled_weight_decay = true};
    Adam opt(params, o);
    compare_trajectories(opt, params, RefAdam{o.lr, o.beta1, o.beta2, o.eps, 0.05, true, {}, {}}, 5, 1e-5);
  }
}

TEST_CASE("Adam hand-worked examples", "[optim]") {
  // p = 1, gradient 2 every step, betas (0.9, 0.999), eps 1e-8, lr 0.1. With a constant gradient the
  // bias-corrected moments are exactly g and g^2, so each step moves p by lr * 2 / (2 + 1e-8).
  auto run = [](AdamOptions o, bool adamw, int steps) {
    Tensor p = scalar(1.0, DType::F64).set_requires_grad(true);
    std::unique_ptr<Optimizer> opt;
    if (adamw) {
      opt = std::make_unique<AdamW>(std::vector<Tensor>{p}, o);
    } else {
      opt = std::make_unique<Adam>(std::vector<Tensor>{p}, o);
    }
    for (int k = 0; k < steps; ++k) {
      p.set_grad(scalar(2.0, DType::F64));
      opt->step();
    }
    return p.item();
  };
  CHECK(run({.lr = 0.1}, false, 1) == Approx(0.9000000005).epsilon(1e-14));
  CHECK(run({.lr = 0.1}, false, 2) == Approx(0.800000001).epsilon(1e-14));
  // AdamW, wd 0.1: p = 1 * (1 - 0.01) = 0.99, then 0.99 - 0.1 * 2 / (2 + 1e-8).
  CHECK(run({.lr = 0.1, .weight_decay = 0.1}, true, 1) == Approx(0.8900000005).epsilon(1e-14));
  // Adam with L2, wd 0.1: g = 2 + 0.1 = 2.1, p = 1 - 0.1 * 2.1 / (2.1 + 1e-8).
  CHECK(run({.lr = 0.1, .weight_decay = 0.1}, false, 1) == Approx(0.90000000047619046).epsilon(1e-14));
}

TEST_CASE("Optimizer: groups, skipped params, zero_grad, checks", "[optim]") {
  std::vector<Tensor> params = make_params();
  Tensor frozen = from_vector<double>({7.0}, Shape{1}).set_requires_grad(true);
  SGD opt({{{params[0]}}, {{params[1], frozen}, 0.5, 0.2}}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  REQUIRE(opt.param_groups().size() == 2);
  CHECK(*opt.param_groups()[0].lr == 0.1);
  CHECK(*opt.param_groups()[0].weight_decay == 0.01);
  CHECK(*opt.param_groups()[1].lr == 0.5);
  CHECK(*opt.param_groups()[1].weight_decay == 0.2);

  RefSGD ref0{0.1, 0.9, 0, 0.01, false, {}}, ref1{0.5, 0.9, 0, 0.2, false, {}};
  Vec p0 = params[0].to_vector<double>(), p1 = params[1].to_vector<double>();
  for (int k = 1; k <= 3; ++k) {
    feed_grads(params, k);  // `frozen` never gets a gradient: skipped, no state
    ref0.step(p0, params[0].grad().to_vector<double>());
    ref1.step(p1, params[1].grad().to_vector<double>());
    opt.step();
  }
  for (size_t i = 0; i < p0.size(); ++i) CHECK(params[0].to_vector<double>()[i] == Approx(p0[i]).epsilon(1e-13));
  for (size_t i = 0; i < p1.size(); ++i) CHECK(params[1].to_vector<double>()[i] == Approx(p1[i]).epsilon(1e-13));
  CHECK(frozen.item() == 7.0);
  const StateDict sd = opt.state_dict();
  CHECK(sd.contains("state.1.0.momentum_buffer"));
  CHECK_FALSE(sd.contains("state.1.1.step"));
  CHECK(sd.at("state.0.0.step").item() == 3);

  opt.zero_grad();
  for (const Tensor& p : params) CHECK_FALSE(p.grad().defined());

  // A non-contiguous gradient is read correctly.
  Tensor m = zeros(Shape{2, 2}, DType::F64).set_requires_grad(true);
  SGD plain({m}, {.lr = 1.0});
  m.set_grad(from_vector<double>({1, 2, 3, 4}, Shape{2, 2}).transpose(0, 1));
  plain.step();
  CHECK(m.to_vector<double>() == Vec{-1, -3, -2, -4});

  REQUIRE_THROWS_WITH(SGD(std::vector<ParamGroup>{{{params[0]}}, {{params[0]}}}, {}),
                      Catch::Contains("appears more than once"));
  REQUIRE_THROWS_WITH(SGD({zeros(Shape{1}, DType::I64)}, {}), Catch::Contains("SGD: parameter 0.0"));
  REQUIRE_THROWS_WITH(Adam(params, {.beta1 = 1.0}), Catch::Contains("betas must be in [0, 1)"));
  // Non-finite hyperparameters would turn every parameter into NaN at the first step.
  REQUIRE_THROWS_WITH(SGD(params, {.lr = INFINITY}), Catch::Contains("lr must be finite and >= 0"));
  REQUIRE_THROWS_WITH(SGD(params, {.lr = 0.1, .momentum = 0.9, .dampening = NAN}),
                      Catch::Contains("dampening must be finite"));
  REQUIRE_THROWS_WITH(Adam(params, {.eps = INFINITY}), Catch::Contains("eps must be finite and >= 0"));
  REQUIRE_THROWS_WITH(Adam(params, {.weight_decay = NAN}), Catch::Contains("weight_decay must be finite"));
}

TEST_CASE("clip_grad_norm returns the norm before clipping and scales by max/(norm + 1e-6)", "[optim]") {
  Tensor a = zeros(Shape{2}, DType::F64).set_requires_grad(true);
  Tensor b = zeros(Shape{1}, DType::F64).set_requires_grad(true);
  Tensor none = zeros(Shape{5}, DType::F64).set_requires_grad(true);  // no gradient: skipped
  auto set = [&] {
    a.set_grad(from_vector<double>({3, 4}, Shape{2}));
    b.set_grad(from_vector<double>({12}, Shape{1}));
  };
  set();
  CHECK(clip_grad_norm({a, b, none}, 6.5) == Approx(13.0).epsilon(1e-15));  // sqrt(9 + 16 + 144)
  const double coef = 6.5 / (13.0 + 1e-6);
  CHECK(a.grad().to_vector<double>()[0] == Approx(3 * coef).epsilon(1e-15));
  CHECK(a.grad().to_vector<double>()[1] == Approx(4 * coef).epsilon(1e-15));
  CHECK(b.grad().to_vector<double>()[0] == Approx(12 * coef).epsilon(1e-15));
  CHECK(b.grad().item() == Approx(5.99999953846).epsilon(1e-11));  // 12 * 6.5 / 13.000001
  CHECK_FALSE(none.grad().defined());

  set();
  CHECK(clip_grad_norm({a, b}, 20.0) == Approx(13.0));  // under the limit: untouched
  CHECK(a.grad().to_vector<double>() == Vec{3, 4});

  // A non-contiguous F32 gradient is replaced by a scaled contiguous copy; its source is not modified.
  Tensor w = zeros(Shape{2, 2}).set_requires_grad(true);
  Tensor src = from_vector<float>({3, 0, 4, 0}, Shape{2, 2});
  w.set_grad(src.transpose(0, 1));
  CHECK(clip_grad_norm({w}, 1.0) == Approx(5.0));
  CHECK(w.grad().is_contiguous());
  CHECK(w.grad().to_vector<float>()[0] == Approx(0.6f));
  CHECK(w.grad().to_vector<float>()[1] == Approx(0.8f));
  CHECK(src.to_vector<float>() == std::vector<float>{3, 0, 4, 0});
}

TEST_CASE("CosineSchedule values, warm restarts, per-group base lrs", "[optim]") {
  std::vector<Tensor> params = make_params();
  SECTION("plain annealing") {
    SGD opt({{{params[0]}, 0.1}, {{params[1]}, 0.2}}, {});
    CosineSchedule sched(opt, 4, 0.001);
    CHECK(*opt.param_groups()[0].lr == 0.1);
    std::vector<double> lr0, lr1;
    for (int t = 1; t <= 6; ++t) {
      sched.step();
      lr0.push_back(*opt.param_groups()[0].lr);
      lr1.push_back(*opt.param_groups()[1].lr);
    }
    // 0.001 + 0.099 * (1 + cos(pi t / 4)) / 2
    CHECK(lr0[0] == Approx(0.0855017856687341).epsilon(1e-14));
    CHECK(lr0[1] == Approx(0.0505).epsilon(1e-14));
    CHECK(lr0[2] == Approx(0.0154982143312659).epsilon(1e-13));
    CHECK(lr0[3] == Approx(0.001).epsilon(1e-14));
    CHECK(lr0[5] == Approx(0.001).epsilon(1e-14));  // held at eta_min after T_max
    CHECK(lr1[1] == Approx(0.001 + 0.199 / 2).epsilon(1e-14));
    CHECK(sched.last_step() == 6);
  }
  SECTION("warm restarts, T_0 = 4, T_mult = 2: cycles [0,4) [4,12) [12,28)") {
    SGD opt(params, {.lr = 1.0});
    auto sched = CosineSchedule::warm_restarts(opt, 4, 2);
    auto lr = [&](int64_t t) { return sched.lr_at(t, 1.0); };
    CHECK(lr(0) == 1.0);
    CHECK(lr(2) == Approx(0.5));
    CHECK(lr(3) == Approx(0.146446609406726).epsilon(1e-13));  // (1 + cos(3 pi / 4)) / 2
    CHECK(lr(4) == 1.0);
    CHECK(lr(8) == Approx(0.5));
    CHECK(lr(11) == Approx((1 + std::cos(M_PI * 7 / 8)) / 2).epsilon(1e-14));
    CHECK(lr(12) == 1.0);
    CHECK(lr(20) == Approx(0.5));
    CHECK(lr(28) == 1.0);
    for (int t = 1; t <= 9; ++t) sched.step();
    CHECK(*opt.param_groups()[0].lr == Approx(lr(9)).epsilon(1e-15));
  }
  SECTION("warm restarts, T_mult = 1") {
    SGD opt(params, {.lr = 0.5});
    auto sched = CosineSchedule::warm_restarts(opt, 5, 1, 0.1);
    CHECK(sched.lr_at(5, 0.5) == Approx(0.5));
    CHECK(sched.lr_at(7, 0.5) == Approx(sched.lr_at(2, 0.5)));
    CHECK(sched.lr_at(12, 0.5) == Approx(0.1 + 0.4 * (1 + std::cos(M_PI * 2 / 5)) / 2));
  }
  SECTION("state round trip") {
    SGD opt(params, {.lr = 0.3});
    CosineSchedule sched(opt, 100, 0.01);
    for (int t = 0; t < 37; ++t) sched.step();
    const StateDict sd = sched.state_dict();

    SGD opt2(params, {.lr = 0.3});
    CosineSchedule sched2(opt2, 100, 0.01);
    sched2.load_state_dict(sd);
    CHECK(*opt2.param_groups()[0].lr == *opt.param_groups()[0].lr);
    sched.step();
    sched2.step();
    CHECK(*opt2.param_groups()[0].lr == *opt.param_groups()[0].lr);
    StateDict bad;
    bad.insert("step", full(Shape{}, 3, DType::I64));
    REQUIRE_THROWS_WITH(sched2.load_state_dict(bad), Catch::Contains("expected 'step' and 'base_lrs.<g>'"));
  }
  REQUIRE_THROWS_WITH(CosineSchedule::warm_restarts(*std::make_unique<SGD>(params, SGDOptions{}), 0),
                      Catch::Contains("T_0 must be >= 1"));
}

TEST_CASE("Optimizer state_dict round trip continues the same trajectory", "[optim]") {
  auto check_resume = [](auto make_opt) {
    std::vector<Tensor> params = make_params();
    auto opt = make_opt(params);
    CosineSchedule sched(*opt, 20, 0.001);
    for (int k = 1; k <= 4; ++k) {
      feed_grads(params, k);
      opt->step();
      sched.step();
    }
    // The checkpoint: parameters, optimizer and schedule, snapshotted.
    const Vec saved_params = flat(params);
    const StateDict opt_state = opt->state_dict().clone();
    const StateDict sched_state = sched.state_dict();

    for (int k = 5; k <= 9; ++k) {
      feed_grads(params, k);
      opt->step();
      sched.step();
    }
    const Vec expect = flat(params);

    // Resume in a fresh optimizer (different default lr: the state restores it) on restored parameters.
    std::vector<Tensor> params2 = make_params();
    size_t at = 0;
    for (Tensor& p : params2) {
      Vec v(saved_params.begin() + int64_t(at), saved_params.begin() + int64_t(at) + p.numel());
      p.copy_(from_vector(v, p.shape()));
      at += size_t(p.numel());
    }
    auto opt2 = make_opt(params2);
    CosineSchedule sched2(*opt2, 20, 0.001);
    opt2->load_state_dict(opt_state);
    sched2.load_state_dict(sched_state);
    for (int k = 5; k <= 9; ++k) {
      feed_grads(params2, k);
      opt2->step();
      sched2.step();
    }
    CHECK(flat(params2) == expect);  // bitwise identical
  };
  SECTION("SGD with Nesterov momentum") {
    check_resume([](std::vector<Tensor>& p) {
      return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true});
    });
  }
  SECTION("AdamW") {
    check_resume([](std::vector<Tensor>& p) {
      return std::make_unique<AdamW>(p, AdamOptions{.lr = 0.05, .weight_decay = 0.01});
    });
  }
  SECTION("errors name the problem and leave the optimizer untouched") {
    std::vector<Tensor> params = make_params();
    Adam opt(params, {.lr = 0.01});
    feed_grads(params, 1);
    opt.step();
    StateDict sd;
    for (const auto& [name, t] : opt.state_dict())
      sd.insert(name, name == "state.0.1.exp_avg" ? zeros(Shape{4}, DType::F64) : t);
    sd.insert("state.0.7.bogus", zeros(Shape{1}));
    try {
      opt.load_state_dict(sd);
      FAIL("accepted a bad optimizer state");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK_THAT(msg, Catch::Contains("Adam.load_state_dict"));
      CHECK_THAT(msg, Catch::Contains("state.0.1.exp_avg: expected [2, 2], got [4]"));
      CHECK_THAT(msg, Catch::Contains("unexpected key state.0.7.bogus"));
    }
    CHECK(opt.state_dict().at("state.0.1.exp_avg").shape() == Shape{2, 2});
    StateDict empty_sd;
    REQUIRE_THROWS_WITH(opt.load_state_dict(empty_sd), Catch::Contains("missing key param_groups.0.lr"));
  }
}

TEST_CASE("End to end: Linear + LayerNorm classifier learns a separable problem with Adam", "[optim][nn]") {
  const auto start = std::chrono::steady_clock::now();
  // Takes well under a second in an optimised build (the duration is printed on failure, not asserted:
  // sanitizer builds and loaded machines are slower).
  // Data: three Gaussian clusters in 8-D with well separated means.
  Generator gen(2024);
  const int64_t N = 240, D = 8, C = 3;
  Tensor centers = randn(Shape{C, D}, DType::F32, Device::cpu(), &gen, 0, 2);
  std::vector<int64_t> labels(N);
  for (int64_t i = 0; i < N; ++i) labels[size_t(i)] = i % C;
  Tensor targets = from_vector(labels, Shape{N});
  Tensor onehot = zeros(Shape{N, C});
  {
    float* o = onehot.data<float>();
    for (int64_t i = 0; i < N; ++i) o[i * C + labels[size_t(i)]] = 1;
  }
  Tensor x = matmul(onehot, centers) + randn(Shape{N, D}, DType::F32, Device::cpu(), &gen, 0, 0.5);

  struct ReLU : Module {
    ReLU() : Module("ReLU") {}
    Tensor forward(const Tensor& h) override { return relu(h); }
  };
  Sequential net{std::make_shared<Linear>(D, 16, true, &gen), std::make_shared<LayerNorm>(Shape{16}),
                 std::make_shared<ReLU>(), std::make_shared<Linear>(16, C, true, &gen)};
  Adam opt(net.parameters(), {.lr = 0.01});
  double first_loss = 0, loss_value = 0;
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(net(x), targets);
    loss.backward();
    clip_grad_norm(net.parameters(), 5.0);
    opt.step();
    loss_value = loss.item();
    if (step == 0) first_loss = loss_value;
  }
  net.eval();
  const std::vector<int64_t> pred = argmax(net(x), 1).to_vector<int64_t>();
  int correct = 0;
  for (int64_t i = 0; i < N; ++i) correct += pred[size_t(i)] == labels[size_t(i)];
  const double accuracy = double(correct) / double(N);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("accuracy " << accuracy << ", loss " << first_loss << " -> " << loss_value << ", " << seconds << " s");
  CHECK(accuracy > 0.95);
  CHECK(loss_value < 0.2 * first_loss);
}
