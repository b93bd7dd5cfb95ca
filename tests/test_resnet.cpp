// Tests for Conv2d/BatchNorm modules and ResNet-34: torchvision names and parameter counts, feature-map
// shapes, gradient checks of a BasicBlock, agreement with the PyTorch fixtures in tests/ref/ (written by
// tests/ref/make_fixtures.py), checkpoint loading, and a small overfitting run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/nn/resnet.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "tests/module_gradcheck.h"

using namespace stgs;

namespace {

std::string fixture(const std::string& name) { return std::string(STGS_TEST_DATA) + "/" + name; }

// Every element within atol + rtol * |ref|, with atol = rtol * max|ref| so that entries near zero are
// judged on the tensor's scale (sums of many terms cancel to values far below their terms).
void check_close(const std::string& what, const Tensor& got, const Tensor& expected, double rtol) {
  INFO(what << ": got " << got.str() << ", expected " << expected.str());
  REQUIRE(got.shape() == expected.shape());
  const std::vector<double> a = got.to(Device::cpu()).to(DType::F64).to_vector<double>();
  const std::vector<double> b = expected.to(DType::F64).to_vector<double>();
  double scale = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  const double atol = rtol * scale;
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]))) {
      ++bad;
      if (first < 0) first = int64_t(i);
    }
  }
  INFO(bad << " mismatches; first at " << first << ": " << (first >= 0 ? a[size_t(first)] : 0.0) << " vs "
           << (first >= 0 ? b[size_t(first)] : 0.0) << " (scale " << scale << ")");
  CHECK(bad == 0);
}

using testing::check_module_gradients;

bool has_key(const StateDict& d, const std::string& k) { return d.contains(k); }

}  // namespace

TEST_CASE("ResNet34 image preset: torchvision names, shapes and parameter count", "[resnet]") {
  ResNet34 net(ResNetConfig::image(64, 1000));
  // torchvision resnet34 (ResNet34_Weights.IMAGENET1K_V1 meta): 21,797,672 parameters, 218 state entries.
  CHECK(net.num_parameters() == 21797672);
  const StateDict sd = net.state_dict();
  CHECK(sd.size() == 218);
  CHECK(sd.at("conv1.weight").shape() == Shape{64, 3, 7, 7});
  CHECK(sd.at("bn1.running_mean").shape() == Shape{64});
  CHECK(sd.at("bn1.num_batches_tracked").dtype() == DType::I64);
  CHECK(sd.at("bn1.num_batches_tracked").shape() == Shape{});
  CHECK(sd.at("layer1.2.conv2.weight").shape() == Shape{64, 64, 3, 3});
  CHECK(sd.at("layer2.0.downsample.0.weight").shape() == Shape{128, 64, 1, 1});
  CHECK(sd.at("layer2.0.downsample.1.running_var").shape() == Shape{128});
  CHECK(sd.at("layer4.2.bn2.bias").shape() == Shape{512});
  CHECK(sd.at("fc.weight").shape() == Shape{1000, 512});
  CHECK(sd.at("fc.bias").shape() == Shape{1000});
  CHECK_FALSE(has_key(sd, "layer1.0.downsample.0.weight"));  // identity shortcut: no projection
  CHECK_FALSE(has_key(sd, "layer3.1.downsample.0.weight"));
  // The first entries, in torchvision's order.
  std::vector<std::string> first;
  for (size_t i = 0; i < 7; ++i) first.push_back(sd.entries()[i].first);
  CHECK(first == std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                          "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight"});
}

TEST_CASE("ResNet34 audio preset: AutoSpeech stem, feature maps of a 300x257 spectrogram", "[resnet]") {
  ResNet34 backbone(ResNetConfig::audio(64));
  CHECK(backbone.num_parameters() == 21278400);  // 1-channel stem, no head
  CHECK(backbone.state_dict().at("conv1.weight").shape() == Shape{64, 1, 7, 7});

  ResNet34 net(ResNetConfig::audio(4, 6));
  CHECK(net.state_dict().at("classifier.weight").shape() == Shape{6, 32});
  net.eval();
  NoGradGuard no_grad;
  const ResNetFeatures f = net.features(randn(Shape{1, 1, 300, 257}));
  CHECK(f.layers[0].shape() == Shape{1, 4, 75, 64});
  CHECK(f.layers[1].shape() == Shape{1, 8, 38, 32});
  CHECK(f.layers[2].shape() == Shape{1, 16, 19, 16});
  CHECK(f.layers[3].shape() == Shape{1, 32, 10, 8});
  CHECK(f.logits.shape() == Shape{1, 6});
}

TEST_CASE("ResNet34: image feature maps, headless forward, presets, input errors", "[resnet]") {
  ResNet34 net(ResNetConfig::image(2));
  net.eval();
  NoGradGuard no_grad;
  const ResNetFeatures f = net.features(rand(Shape{2, 3, 224, 224}));
  CHECK(f.layers[0].shape() == Shape{2, 2, 56, 56});
  CHECK(f.layers[1].shape() == Shape{2, 4, 28, 28});
  CHECK(f.layers[2].shape() == Shape{2, 8, 14, 14});
  CHECK(f.layers[3].shape() == Shape{2, 16, 7, 7});
  CHECK_FALSE(f.logits.defined());
  CHECK_THROWS_WITH(net.forward(rand(Shape{1, 3, 32, 32})), Catch::Contains("no head"));
  CHECK_THROWS_WITH(net.features(rand(Shape{1, 1, 32, 32})), Catch::Contains("(N, 3, H, W)"));
  CHECK(ResNetConfig::preset("resnet34-audio").stem_padding == 2);
  CHECK_THROWS_WITH(ResNetConfig::preset("resnet50"), Catch::Contains("resnet34-image or resnet34-audio"));
  CHECK_THROWS_WITH(ResNet34(ResNetConfig::image(0)), Catch::Contains("width must be positive"));
}

TEST_CASE("BasicBlock gradients match central differences (F64, training-mode BN)", "[resnet]") {
  Generator gen(3);
  SECTION("identity shortcut") {
    BasicBlock block(3, 3, 1, &gen);
    block.to(DType::F64);
    Tensor x = randn(Shape{2, 3, 5, 4}, DType::F64, Device::cpu(), &gen).set_requires_grad(true);
    const auto params = block.named_parameters();
    std::vector<std::pair<std::string, Tensor>> wrt{{"x", x}};
    wrt.insert(wrt.end(), params.begin(), params.end());
    check_module_gradients(block, x, wrt, 24);
  }
  SECTION("strided projection shortcut, eval-mode BN") {
    BasicBlock block(2, 4, 2, &gen);
    block.to(DType::F64);
    block.eval();
    Tensor x = randn(Shape{2, 2, 7, 6}, DType::F64, Device::cpu(), &gen).set_requires_grad(true);
    const auto params = block.named_parameters();
    CHECK(params.size() == 9);  // conv1, bn1 (2), conv2, bn2 (2), downsample conv, downsample bn (2)
    std::vector<std::pair<std::string, Tensor>> wrt{{"x", x}};
    wrt.insert(wrt.end(), params.begin(), params.end());
    check_module_gradients(block, x, wrt, 24);
  }
}

TEST_CASE("BatchNorm module: running statistics, batch counter, eval mode", "[resnet]") {
  BatchNorm bn(3);
  Tensor x = randn(Shape{4, 3, 2, 2}) * 2.0 + 1.0;
  bn(x);
  bn(x);
  CHECK(bn.num_batches_tracked.item() == 2);
  const std::vector<float> rm = bn.running_mean.to_vector<float>();
  for (float v : rm) CHECK(std::abs(v) > 0);  // moved away from 0 towards the batch mean
  bn.eval();
  bn(x);
  CHECK(bn.num_batches_tracked.item() == 2);  // eval forwards are not counted
  // load_state_dict refreshes the counter's host mirror.
  StateDict sd = bn.state_dict().clone();
  Tensor(sd.at("num_batches_tracked")).fill_(41);
  bn.load_state_dict(sd);
  bn.train();
  bn(x);
  CHECK(bn.num_batches_tracked.item() == 42);
  CHECK_THROWS_WITH(bn(randn(Shape{2, 4, 3})), Catch::Contains("BatchNorm(3)"));
}

TEST_CASE("conv2d matches PyTorch (fixtures, F32 and F64)", "[resnet][fixtures]") {
  const SafetensorsFile f = load_safetensors(fixture("conv.safetensors"));
  for (const char* name : {"basic", "groups_dilation", "pointwise_stride", "stem7x7", "depthwise"}) {
    for (DType dtype : {DType::F32, DType::F64}) {
      const double rtol = dtype == DType::F32 ? 1e-4 : 1e-6;
      const std::string p = std::string(name) + ".";
      INFO(name << " " << dtype_name(dtype));
      const std::vector<int64_t> geo = f.get(p + "geometry").to_vector<int64_t>();
      Tensor x = f.get(p + "x").to(dtype).detach().set_requires_grad(true);
      Tensor w = f.get(p + "weight").to(dtype).detach().set_requires_grad(true);
      Tensor b = f.contains(p + "bias") ? f.get(p + "bias").to(dtype).detach().set_requires_grad(true) : Tensor();
      Tensor y = conv2d(x, w, b, {geo[0], geo[1]}, {geo[2], geo[3]}, {geo[4], geo[5]}, geo[6]);
      check_close(p + "y", y, f.get(p + "y"), rtol);
      sum(y * f.get(p + "dy").to(dtype)).backward();
      check_close(p + "dx", x.grad(), f.get(p + "dx"), rtol);
      check_close(p + "dweight", w.grad(), f.get(p + "dweight"), rtol);
      if (b.defined()) check_close(p + "dbias", b.grad(), f.get(p + "dbias"), rtol);
    }
  }
}

TEST_CASE("batch_norm matches PyTorch (fixtures, train and eval, F32 and F64)", "[resnet][fixtures]") {
  const SafetensorsFile f = load_safetensors(fixture("batch_norm.safetensors"));
  for (const char* name : {"train2d", "eval2d", "train1d", "train1d_seq", "eval1d_seq"}) {
    const bool training = std::string(name).rfind("train", 0) == 0;
    for (DType dtype : {DType::F32, DType::F64}) {
      const double rtol = dtype == DType::F32 ? 1e-4 : 1e-6;
      const std::string p = std::string(name) + ".";
      INFO(name << " " << dtype_name(dtype));
      Tensor x = f.get(p + "x").to(dtype).detach().set_requires_grad(true);
      Tensor w = f.get(p + "weight").to(dtype).detach().set_requires_grad(true);
      Tensor b = f.get(p + "bias").to(dtype).detach().set_requires_grad(true);
      Tensor rm = f.get(p + "running_mean").to(dtype).clone(), rv = f.get(p + "running_var").to(dtype).clone();
      Tensor y = batch_norm(x, w, b, rm, rv, training, 0.1, 1e-5);
      check_close(p + "y", y, f.get(p + "y"), rtol);
      check_close(p + "running_mean", rm, f.get(p + "new_running_mean"), rtol);
      check_close(p + "running_var", rv, f.get(p + "new_running_var"), rtol);
      sum(y * f.get(p + "dy").to(dtype)).backward();
      check_close(p + "dx", x.grad(), f.get(p + "dx"), rtol);
      check_close(p + "dweight", w.grad(), f.get(p + "dweight"), rtol);
      check_close(p + "dbias", b.grad(), f.get(p + "dbias"), rtol);
    }
  }
}

TEST_CASE("ResNet34 matches PyTorch end to end (width-4 fixtures, F32 and F64)", "[resnet][fixtures]") {
  const SafetensorsFile f = load_safetensors(fixture("resnet34_w4.safetensors"));
  struct Case {
    const char* prefix;
    ResNetConfig config;
  };
  for (const Case& c : {Case{"image.", ResNetConfig::image(4, 10)}, Case{"audio.", ResNetConfig::audio(4, 6)}}) {
    for (DType dtype : {DType::F32, DType::F64}) {
      const double rtol = dtype == DType::F32 ? 1e-4 : 1e-6;
      const std::string p = c.prefix;
      INFO(p << " " << dtype_name(dtype));
      ResNet34 net(c.config);
      net.to(dtype);
      // The model's entries, torchvision names (num_batches_tracked included), load strictly.
      std::vector<std::pair<std::string, Tensor>> entries;
      for (const auto& [name, t] : f.tensors)
        if (name.rfind(p + "model.", 0) == 0) entries.emplace_back(name.substr(p.size() + 6), t);
      REQUIRE(net.load_state_dict(StateDict(entries)).missing.empty());

      Tensor x = f.get(p + "input").to(dtype).detach().set_requires_grad(true);
      net.train();
      const ResNetFeatures out = net.features(x);
      for (int l = 0; l < 4; ++l)
        check_close(p + "train.layer" + std::to_string(l + 1), out.layers[l], f.get(p + "train.layer" + std::to_string(l + 1)), rtol);
      check_close(p + "train.logits", out.logits, f.get(p + "train.logits"), rtol);
      sum(out.logits * f.get(p + "dy").to(dtype)).backward();
      check_close(p + "grad.input", x.grad(), f.get(p + "grad.input"), rtol);
      for (const auto& [name, t] : net.named_parameters()) check_close(p + "grad." + name, t.grad(), f.get(p + "grad." + name), rtol);
      for (const auto& [name, t] : net.named_buffers())
        if (name.find("running") != std::string::npos) check_close(p + "updated." + name, t, f.get(p + "updated." + name), rtol);

      net.eval();
      NoGradGuard no_grad;
      check_close(p + "eval.logits", net.forward(x), f.get(p + "eval.logits"), rtol);
    }
  }
}

TEST_CASE("ResNet34: a torchvision-named checkpoint round-trips through safetensors", "[resnet]") {
  const std::string path = "/tmp/stgs_test_resnet_roundtrip.safetensors";
  Generator g1(1), g2(2);
  ResNet34 a(ResNetConfig::image(2, 3), &g1), b(ResNetConfig::image(2, 3), &g2);
  a(rand(Shape{2, 3, 32, 32}));  // a training forward moves the running statistics and the counters
  save_safetensors(path, a.state_dict().entries());
  b.load_state_dict(StateDict(load_safetensors(path).tensors));
  a.eval();
  b.eval();
  NoGradGuard no_grad;
  const Tensor x = rand(Shape{1, 3, 32, 32});
  CHECK(a(x).to_vector<float>() == b(x).to_vector<float>());
  CHECK(b.state_dict().at("layer3.0.bn1.num_batches_tracked").item() == 1);
  std::remove(path.c_str());
}

TEST_CASE("ResNet34 width 8 overfits 16 random images", "[resnet][train]") {
  Generator gen(11);
  ResNet34 net(ResNetConfig::image(8, 4), &gen);
  const Tensor x = rand(Shape{16, 3, 32, 32}, DType::F32, Device::cpu(), &gen);
  std::vector<int64_t> labels;
  for (int i = 0; i < 16; ++i) labels.push_back(i % 4);
  const Tensor y = from_vector(labels, Shape{16});
  Adam opt(net.parameters(), AdamOptions{.lr = 3e-3});
  // Accuracy and loss of the training forward itself (batch statistics), measured before each step.
  double accuracy = 0, loss_value = 1e9;
  int step = 0;
  for (; step < 80 && (accuracy < 1.0 || loss_value > 0.05); ++step) {
    opt.zero_grad();
    const Tensor logits = net(x);
    Tensor loss = cross_entropy(logits, y);
    loss.backward();
    opt.step();
    loss_value = loss.item();
    const std::vector<float> values = logits.to_vector<float>();
    int correct = 0;
    for (int i = 0; i < 16; ++i) {
      const auto row = values.begin() + i * 4;
      correct += std::max_element(row, row + 4) - row == labels[size_t(i)];
    }
    accuracy = correct / 16.0;
  }
  INFO("steps " << step << ", last training loss " << loss_value);
  CHECK(accuracy == 1.0);
  CHECK(loss_value <= 0.05);  // memorised, not merely above chance (log 4 = 1.39)
}

TEST_CASE("imagenet_normalize uses torchvision's statistics", "[resnet]") {
  const Tensor x = full(Shape{1, 3, 1, 2}, 0.5);
  const std::vector<float> y = imagenet_normalize(x).to_vector<float>();
  for (int c = 0; c < 3; ++c)
    CHECK(y[size_t(2 * c)] == Approx((0.5 - kImageNetMean[size_t(c)]) / kImageNetStd[size_t(c)]).epsilon(1e-6));
  CHECK_THROWS_WITH(imagenet_normalize(full(Shape{1, 1, 2, 2}, 0.5)), Catch::Contains("(N, 3, H, W)"));
}
