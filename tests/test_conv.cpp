// conv2d / conv1d: forward values against a naive direct convolution, F64 gradient checks over strides,
// paddings, dilations and groups, im2col/col2im adjointness, and the validation messages.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/winograd.h"
#include "tests/compare.h"
#include "tests/gradcheck.h"

using namespace stgs;
using stgs::testing::gradcheck;
using stgs::testing::max_abs_diff;
using stgs::testing::normal64;
using V = std::vector<Tensor>;

namespace {

struct Case {
  int64_t N, C_in, H, W, C_out, kH, kW;
  Pair stride, padding, dilation;
  int64_t groups;
  bool bias;

  std::string str() const {
    std::ostringstream o;
    o << "N" << N << " Cin" << C_in << " " << H << "x" << W << " Cout" << C_out << " k" << kH << "x" << kW << " s"
      << stride[0] << "," << stride[1] << " p" << padding[0] << "," << padding[1] << " d" << dilation[0] << ","
      << dilation[1] << " g" << groups << (bias ? " bias" : " nobias");
    return o.str();
  }
};

const std::vector<Case> kCases = {
    {2, 3, 7, 5, 4, 3, 3, {1, 1}, {0, 0}, {1, 1}, 1, true},   // plain
    {2, 3, 7, 5, 4, 3, 3, {2, 2}, {1, 1}, {1, 1}, 1, true},   // stride 2, padding 1
    {2, 3, 7, 5, 2, 3, 3, {1, 1}, {1, 1}, {2, 2}, 1, false},  // dilation 2
    {2, 4, 7, 5, 6, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2, true},   // groups 2
    {2, 4, 7, 5, 4, 3, 3, {2, 1}, {1, 0}, {1, 1}, 4, true},   // depthwise
    {2, 4, 7, 5, 8, 3, 3, {1, 2}, {2, 1}, {2, 1}, 4, false},  // depthwise, multiplier 2, mixed
    {2, 3, 7, 5, 5, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, true},   // pointwise fast path
    {2, 4, 7, 5, 6, 1, 1, {1, 1}, {0, 0}, {1, 1}, 2, false},  // pointwise, grouped
    {2, 3, 7, 5, 4, 1, 1, {2, 2}, {1, 0}, {1, 1}, 1, true},   // 1x1 with stride and padding
    {2, 3, 7, 5, 4, 3, 2, {2, 1}, {1, 1}, {1, 2}, 1, true},   // 3x2 kernel
    {1, 3, 7, 5, 2, 3, 2, {3, 2}, {2, 0}, {2, 1}, 1, true},   // padding larger than reach, stride 3
};

// y[n, co, oh, ow] = b[co] + sum_{ci, i, j} x[n, g*Cg + ci, oh*s - p + i*d, ow*s - p + j*d] * w[co, ci, i, j]
std::vector<double> naive_conv2d(const std::vector<double>& x, const std::vector<double>& w,
                                 const std::vector<double>& b, const Case& c, int64_t H_out, int64_t W_out) {
  const int64_t cin_g = c.C_in / c.groups, cout_g = c.C_out / c.groups;
  std::vector<double> y(size_t(c.N * c.C_out * H_out * W_out));
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t co = 0; co < c.C_out; ++co)
      for (int64_t oh = 0; oh < H_out; ++oh)
        for (int64_t ow = 0; ow < W_out; ++ow) {
          double acc = b.empty() ? 0.0 : b[size_t(co)];
          const int64_t grp = co / cout_g;
          for (int64_t ci = 0; ci < cin_g; ++ci)
            for (int64_t i = 0; i < c.kH; ++i)
              for (int64_t j = 0; j < c.kW; ++j) {
                const int64_t ih = oh * c.stride[0] - c.padding[0] + i * c.dilation[0];
                const int64_t iw = ow * c.stride[1] - c.padding[1] + j * c.dilation[1];
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                acc += x[size_t(((n * c.C_in + grp * cin_g + ci) * c.H + ih) * c.W + iw)] *
                       w[size_t(((co * cin_g + ci) * c.kH + i) * c.kW + j)];
              }
          y[size_t(((n * c.C_out + co) * H_out + oh) * W_out + ow)] = acc;
        }
  return y;
}

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

}  // namespace

TEST_CASE("conv2d forward matches a direct convolution (F64 and F32)", "[conv]") {
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    INFO(c.str());
    const Tensor x = normal64({c.N, c.C_in, c.H, c.W}, seed++);
    const Tensor w = normal64({c.C_out, c.C_in / c.groups, c.kH, c.kW}, seed++);
    const Tensor b = c.bias ? normal64({c.C_out}, seed++) : Tensor();
    const int64_t H_out = out_size(c.H, c.kH, c.stride[0], c.padding[0], c.dilation[0]);
    const int64_t W_out = out_size(c.W, c.kW, c.stride[1], c.padding[1], c.dilation[1]);
    const std::vector<double> ref = naive_conv2d(x.to_vector<double>(), w.to_vector<double>(),
                                                 c.bias ? b.to_vector<double>() : std::vector<double>(), c, H_out,
                                                 W_out);

    const Tensor y = conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
    REQUIRE(y.shape() == Shape{c.N, c.C_out, H_out, W_out});
    const std::vector<double> got = y.to_vector<double>();
    for (size_t k = 0; k < ref.size(); ++k) REQUIRE(got[k] == Approx(ref[k]).margin(1e-12));

    const Tensor y32 = conv2d(x.to(DType::F32), w.to(DType::F32), c.bias ? b.to(DType::F32) : Tensor(), c.stride,
                              c.padding, c.dilation, c.groups);
    REQUIRE(y32.dtype() == DType::F32);
    const std::vector<float> got32 = y32.to_vector<float>();
    for (size_t k = 0; k < ref.size(); ++k) REQUIRE(double(got32[k]) == Approx(ref[k]).margin(1e-4));
  }
}

TEST_CASE("conv2d forward on non-contiguous inputs", "[conv]") {
  const Tensor x = normal64({2, 5, 3, 4}, 1).permute({0, 2, 1, 3});  // (2, 3, 5, 4), not contiguous
  const Tensor w = normal64({3, 4, 2, 3}, 2).transpose(0, 1);        // (4, 3, 2, 3)
  const Tensor y = conv2d(x, w, Tensor(), {1, 1}, {1, 0});
  const Tensor y_ref = conv2d(x.contiguous(), w.contiguous(), Tensor(), {1, 1}, {1, 0});
  REQUIRE(y.to_vector<double>() == y_ref.to_vector<double>());
}

TEST_CASE("gradcheck: conv2d over stride, padding, dilation, groups", "[conv]") {
  uint64_t seed = 200;
  for (const Case& c : kCases) {
    const Tensor x = normal64({c.N, c.C_in, c.H, c.W}, seed++);
    const Tensor w = normal64({c.C_out, c.C_in / c.groups, c.kH, c.kW}, seed++);
    const V inputs = c.bias ? V{x, w, normal64({c.C_out}, seed++)} : V{x, w};
    const Case cc = c;
    gradcheck("conv2d " + c.str(),
              [cc](const V& v) {
                return conv2d(v[0], v[1], cc.bias ? v[2] : Tensor(), cc.stride, cc.padding, cc.dilation, cc.groups);
              },
              inputs);
  }
}

TEST_CASE("gradcheck: conv2d with only some inputs requiring grad", "[conv]") {
  const Tensor x = normal64({2, 3, 5, 4}, 300), w = normal64({4, 3, 3, 3}, 301), b = normal64({4}, 302);
  // x fixed: only the weight and bias get gradients.
  gradcheck("conv2d w,b", [x](const V& v) { return conv2d(x, v[0], v[1], {2, 1}, {1, 1}); }, {w, b});
  // weight fixed: only x.
  gradcheck("conv2d x", [w](const V& v) { return conv2d(v[0], w, Tensor(), {1, 2}, {0, 1}, {2, 1}); }, {x});
}

TEST_CASE("conv1d: forward against conv2d on height 1, gradients", "[conv]") {
  struct C1 {
    int64_t C_in, C_out, k, stride, padding, dilation, groups;
    bool bias;
  };
  const std::vector<C1> cases = {
      {3, 4, 1, 1, 0, 1, 1, true},  {3, 4, 3, 1, 1, 1, 1, true},  {4, 6, 3, 2, 1, 1, 2, false},
      {4, 4, 3, 1, 2, 2, 4, true},  {3, 2, 1, 2, 1, 1, 1, false}, {4, 8, 3, 3, 0, 2, 1, true},
  };
  uint64_t seed = 400;
  for (const C1& c : cases) {
    std::ostringstream os;
    os << "conv1d Cin" << c.C_in << " Cout" << c.C_out << " k" << c.k << " s" << c.stride << " p" << c.padding << " d"
       << c.dilation << " g" << c.groups;
    const std::string name = os.str();
    INFO(name);
    const int64_t L = 11;
    const Tensor x = normal64({2, c.C_in, L}, seed++);
    const Tensor w = normal64({c.C_out, c.C_in / c.groups, c.k}, seed++);
    const Tensor b = c.bias ? normal64({c.C_out}, seed++) : Tensor();
    const Tensor y = conv1d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
    const int64_t L_out = out_size(L, c.k, c.stride, c.padding, c.dilation);
    REQUIRE(y.shape() == Shape{2, c.C_out, L_out});
    const Tensor y2 = conv2d(x.unsqueeze(2), w.unsqueeze(2), b, {1, c.stride}, {0, c.padding}, {1, c.dilation},
                             c.groups);
    const std::vector<double> a = y.to_vector<double>(), r = y2.to_vector<double>();
    REQUIRE(a.size() == r.size());
    for (size_t k = 0; k < a.size(); ++k) REQUIRE(a[k] == Approx(r[k]).margin(1e-12));

    const V inputs = c.bias ? V{x, w, b} : V{x, w};
    const C1 cc = c;
    gradcheck(name,
              [cc](const V& v) {
                return conv1d(v[0], v[1], cc.bias ? v[2] : Tensor(), cc.stride, cc.padding, cc.dilation, cc.groups);
              },
              inputs);
  }
}

TEST_CASE("conv2d: composes with autograd (two layers, shared input)", "[conv]") {
  const Tensor x = normal64({1, 2, 6, 6}, 500), w1 = normal64({3, 2, 3, 3}, 501), w2 = normal64({2, 3, 1, 1}, 502);
  gradcheck("conv2d chain",
            [](const V& v) {
              const Tensor h = tanh(conv2d(v[0], v[1], Tensor(), {1, 1}, {1, 1}));
              return add(conv2d(h, v[2], Tensor()), v[0]);  // residual with a 1x1 projection
            },
            {x, w1, w2});
}

TEST_CASE("im2col / col2im are adjoint", "[conv]") {
  // <im2col(a), c> == <a, col2im(c)> for random a, c.
  const int64_t C = 2, H = 6, W = 5, kH = 3, kW = 2, sh = 2, sw = 1, ph = 1, pw = 2, dh = 1, dw = 2;
  const int64_t Ho = kernels::conv_out_size(H, kH, sh, ph, dh), Wo = kernels::conv_out_size(W, kW, sw, pw, dw);
  const std::vector<double> a = normal64({C, H, W}, 600).to_vector<double>();
  const std::vector<double> c = normal64({C * kH * kW, Ho * Wo}, 601).to_vector<double>();
  std::vector<double> cols(c.size()), im(a.size(), 1.0);
  kernels::cpu::im2col(cols.data(), a.data(), C, H, W, kH, kW, sh, sw, ph, pw, dh, dw);
  kernels::cpu::col2im(im.data(), c.data(), C, H, W, kH, kW, sh, sw, ph, pw, dh, dw);  // accumulates onto 1
  double lhs = 0, rhs = 0;
  for (size_t k = 0; k < c.size(); ++k) lhs += cols[k] * c[k];
  for (size_t k = 0; k < a.size(); ++k) rhs += a[k] * (im[k] - 1.0);
  REQUIRE(lhs == Approx(rhs).epsilon(1e-12));
}

TEST_CASE("conv2d: backward is deterministic", "[conv]") {
  Generator gen(7);
  const Tensor x = randn({4, 8, 12, 12}, DType::F32, Device::cpu(), &gen);
  const Tensor w = randn({16, 8, 3, 3}, DType::F32, Device::cpu(), &gen);
  auto grads = [&]() {
    Tensor xs = x.clone().detach(), ws = w.clone().detach();
    xs.set_requires_grad(true);
    ws.set_requires_grad(true);
    sum(conv2d(xs, ws, Tensor(), {1, 1}, {1, 1})).backward();
    return std::make_pair(xs.grad().to_vector<float>(), ws.grad().to_vector<float>());
  };
  const auto a = grads(), b = grads();
  REQUIRE(a.first == b.first);
  REQUIRE(a.second == b.second);
}

TEST_CASE("conv2d / conv1d: validation errors", "[conv]") {
  const Tensor x = zeros(Shape{2, 4, 7, 5}, DType::F64), w = zeros(Shape{6, 2, 3, 3}, DType::F64);
  REQUIRE_NOTHROW(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 1}, 2));
  REQUIRE_THROWS_WITH(conv2d(zeros(Shape{4, 7, 5}, DType::F64), w, Tensor()),
                      Catch::Contains("conv2d: input must be (N, C_in, H, W)") && Catch::Contains("[4, 7, 5]"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros(Shape{6, 2, 3}, DType::F64), Tensor()),
                      Catch::Contains("conv2d: weight must be (C_out, C_in / groups, kH, kW)"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 1}, 3),
                      Catch::Contains("conv2d: input channels 4") && Catch::Contains("not divisible by groups 3"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros(Shape{5, 2, 3, 3}, DType::F64), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                      Catch::Contains("conv2d: output channels 5"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor()), Catch::Contains("must have C_in / groups = 4 / 1 = 4 input channels"));
  REQUIRE_THROWS_WITH(conv2d(x, w, zeros(Shape{5}, DType::F64), {1, 1}, {0, 0}, {1, 1}, 2),
                      Catch::Contains("conv2d: bias must be (6)") && Catch::Contains("[5]"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros(Shape{6, 2, 9, 3}, DType::F64), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                      Catch::Contains("conv2d: output size would be non-positive"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {4, 1}, 2),
                      Catch::Contains("conv2d: output size would be non-positive"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {0, 1}, {0, 0}, {1, 1}, 2), Catch::Contains("conv2d: stride must be >= 1"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {1, 1}, {0, -1}, {1, 1}, 2),
                      Catch::Contains("conv2d: padding must be >= 0"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 0}, 2),
                      Catch::Contains("conv2d: dilation must be >= 1"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 1}, 0), Catch::Contains("conv2d: groups must be >= 1"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros(Shape{6, 2, 3, 3}, DType::F32), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                      Catch::Contains("conv2d: dtype mismatch"));
  REQUIRE_THROWS_WITH(conv2d(zeros(Shape{2, 4, 7, 5}, DType::I64), w, Tensor()),
                      Catch::Contains("conv2d: expected an F32 or F64 tensor"));

  const Tensor x1 = zeros(Shape{2, 4, 9}, DType::F64), w1 = zeros(Shape{6, 2, 3}, DType::F64);
  REQUIRE(conv1d(x1, w1, Tensor(), 1, 0, 1, 2).shape() == Shape{2, 6, 7});
  REQUIRE_THROWS_WITH(conv1d(x, w1, Tensor()), Catch::Contains("conv1d: input must be (N, C_in, L)"));
  REQUIRE_THROWS_WITH(conv1d(x1, w, Tensor()), Catch::Contains("conv1d: weight must be (C_out, C_in / groups, k)"));
  REQUIRE_THROWS_WITH(conv1d(x1, w1, Tensor(), 1, 0, 5, 2), Catch::Contains("conv1d: output size would be non-positive"));
  REQUIRE_THROWS_WITH(conv1d(x1, w1, Tensor(), 0, 0, 1, 2), Catch::Contains("conv1d: stride must be >= 1"));
  REQUIRE_THROWS_WITH(conv1d(x1, w1, zeros(Shape{6, 1}, DType::F64), 1, 0, 1, 2),
                      Catch::Contains("conv1d: bias must be (6)"));
}

TEST_CASE("conv2d: empty batch", "[conv]") {
  const Tensor x = normal64({0, 2, 5, 5}, 700), w = normal64({3, 2, 3, 3}, 701);
  const Tensor y = conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  REQUIRE(y.shape() == Shape{0, 3, 5, 5});
}

namespace {

// Runs the cpu kernels on a whole batch (which conv.cpp folds into chunks of several images side by side
// in the GEMM) and image by image (N = 1, no folding), and compares y, dx and dw (dw summed over images).
template <class T>
void check_folded_against_single_images(kernels::ConvGeometry g, uint64_t seed, double tol) {
  g.H_out = kernels::conv_out_size(g.H, g.kH, g.stride_h, g.pad_h, g.dil_h);
  g.W_out = kernels::conv_out_size(g.W, g.kW, g.stride_w, g.pad_w, g.dil_w);
  auto random = [&](int64_t n) {
    const std::vector<double> v = normal64({n}, seed++).to_vector<double>();
    return std::vector<T>(v.begin(), v.end());
  };
  const int64_t x_img = g.C_in * g.hw_in(), y_img = g.C_out * g.hw_out(), w_size = g.C_out * g.cin_g() * g.kk();
  const std::vector<T> x = random(g.N * x_img), w = random(w_size), b = random(g.C_out), dy = random(g.N * y_img);

  std::vector<T> y(size_t(g.N * y_img)), dx(size_t(g.N * x_img), T(7)), dw(size_t(w_size), T(7));
  kernels::cpu::conv2d_fwd(y.data(), x.data(), w.data(), b.data(), g);
  kernels::cpu::conv2d_bwd_data(dx.data(), dy.data(), w.data(), g);
  kernels::cpu::conv2d_bwd_weight(dw.data(), dy.data(), x.data(), g);

  kernels::ConvGeometry one = g;
  one.N = 1;
  std::vector<T> y1(static_cast<size_t>(y_img)), dx1(static_cast<size_t>(x_img)), dw1(static_cast<size_t>(w_size));
  std::vector<double> dw_sum(static_cast<size_t>(w_size), 0.0);
  double y_err = 0, dx_err = 0, dw_err = 0;  // largest absolute differences
  for (int64_t n = 0; n < g.N; ++n) {
    kernels::cpu::conv2d_fwd(y1.data(), x.data() + n * x_img, w.data(), b.data(), one);
    kernels::cpu::conv2d_bwd_data(dx1.data(), dy.data() + n * y_img, w.data(), one);
    kernels::cpu::conv2d_bwd_weight(dw1.data(), dy.data() + n * y_img, x.data() + n * x_img, one);
    for (int64_t k = 0; k < y_img; ++k)
      y_err = std::max(y_err, std::abs(double(y[size_t(n * y_img + k)]) - double(y1[size_t(k)])));
    for (int64_t k = 0; k < x_img; ++k)
      dx_err = std::max(dx_err, std::abs(double(dx[size_t(n * x_img + k)]) - double(dx1[size_t(k)])));
    for (int64_t k = 0; k < w_size; ++k) dw_sum[size_t(k)] += double(dw1[size_t(k)]);
  }
  for (int64_t k = 0; k < w_size; ++k) dw_err = std::max(dw_err, std::abs(double(dw[size_t(k)]) - dw_sum[size_t(k)]));
  INFO("N" << g.N << " Cin" << g.C_in << " " << g.H << "x" << g.W << " Cout" << g.C_out << " k" << g.kH << "x" << g.kW
            << " g" << g.groups << " " << sizeof(T) * 8 << "-bit");
  REQUIRE(y_err <= tol);
  REQUIRE(dx_err <= tol);
  REQUIRE(dw_err <= tol * double(g.N));
}

kernels::ConvGeometry geometry(int64_t N, int64_t C_in, int64_t H, int64_t W, int64_t C_out, int64_t kH, int64_t kW,
                               Pair stride, Pair pad, Pair dil, int64_t groups) {
  kernels::ConvGeometry g;
  g.N = N;
  g.C_in = C_in;
  g.H = H;
  g.W = W;
  g.C_out = C_out;
  g.kH = kH;
  g.kW = kW;
  g.stride_h = stride[0];
  g.stride_w = stride[1];
  g.pad_h = pad[0];
  g.pad_w = pad[1];
  g.dil_h = dil[0];
  g.dil_w = dil[1];
  g.groups = groups;
  return g;
}

}  // namespace

TEST_CASE("conv2d kernels: batch-folded chunks agree with image-by-image calls (F64, F32)", "[conv]") {
  // Small problems fold the whole batch into one chunk: odd sizes, groups, dilation, strides, pointwise
  // (whose folded backward unfolds dcols straight into dx) and a strided 1x1 (a ResNet downsample).
  const std::vector<kernels::ConvGeometry> small = {
      geometry(7, 6, 9, 11, 10, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2),
      geometry(3, 4, 13, 9, 6, 3, 2, {2, 1}, {1, 2}, {2, 1}, 2),
      geometry(4, 8, 10, 7, 8, 3, 3, {2, 2}, {1, 1}, {1, 1}, 8),  // depthwise
      geometry(6, 8, 10, 10, 12, 1, 1, {1, 1}, {0, 0}, {1, 1}, 2),
      geometry(5, 6, 11, 8, 4, 1, 1, {2, 2}, {0, 0}, {1, 1}, 1),
      geometry(2, 3, 17, 15, 5, 7, 7, {2, 2}, {3, 3}, {1, 1}, 1),  // a ResNet stem
  };
  uint64_t seed = 800;
  for (const kernels::ConvGeometry& g : small) {
    check_folded_against_single_images<double>(g, seed, 1e-12);
    check_folded_against_single_images<float>(g, seed, 2e-4);
    seed += 10;
  }
  // Larger ones: 3 x 3 x 16 x 52 x 52 F64 cols take 3.1 MB per image, so the batch of 5 runs in chunks of
  // 2, 2, 1 (folded and single-image chunks in one call, dw accumulated across them); F32 with 32 channels
  // likewise. A pointwise 64 -> 32 at 80 x 80 (3.3 MB per F64 image) also splits.
  check_folded_against_single_images<double>(geometry(5, 16, 52, 52, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1), 900, 1e-12);
  check_folded_against_single_images<float>(geometry(5, 32, 52, 52, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1), 910, 2e-4);
  check_folded_against_single_images<double>(geometry(5, 64, 80, 80, 32, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1), 920, 1e-12);
}

namespace {

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST_CASE("conv2d kernels: Winograd F(2x2) and F(4x4) equal im2col in all three passes (F64 exactly, F32 to rounding)",
          "[conv]") {
  // Odd and even sizes (tiles hanging over the bottom and right edges), padding 0, 1, 2 and mixed (the
  // backward pads by 2 - p), a 1x1 and a 2x3 image, a batch of one, and a case big enough to run in several
  // chunks. References: the im2col kernels in F64; outputs poisoned with NaN first.
  const std::vector<kernels::ConvGeometry> cases = {
      geometry(2, 16, 9, 7, 17, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1),
      geometry(3, 17, 8, 8, 16, 3, 3, {1, 1}, {0, 0}, {1, 1}, 1),
      geometry(1, 16, 5, 6, 20, 3, 3, {1, 1}, {2, 2}, {1, 1}, 1),
      geometry(2, 18, 7, 10, 16, 3, 3, {1, 1}, {0, 2}, {1, 1}, 1),
      geometry(2, 16, 1, 1, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1),
      geometry(1, 20, 2, 3, 24, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1),
      geometry(2, 16, 9, 8, 16, 3, 3, {1, 1}, {2, 0}, {1, 1}, 1),
      geometry(2, 16, 8, 9, 17, 3, 3, {1, 1}, {1, 2}, {1, 1}, 1),
      geometry(3, 32, 60, 60, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1),     // F(2x2), F32: 2 images per chunk, then 1
      geometry(3, 16, 128, 128, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1),  // F(4x4), F32: a chunk per image
  };
  uint64_t seed = 900;
  for (kernels::ConvGeometry g : cases) {
    g.H_out = kernels::conv_out_size(g.H, 3, 1, g.pad_h, 1);
    g.W_out = kernels::conv_out_size(g.W, 3, 1, g.pad_w, 1);
    INFO("N" << g.N << " Cin" << g.C_in << " " << g.H << "x" << g.W << " Cout" << g.C_out << " pad " << g.pad_h << ","
              << g.pad_w);
    const int64_t x_size = g.N * g.C_in * g.hw_in(), y_size = g.N * g.C_out * g.hw_out();
    const std::vector<double> x = normal64({x_size}, seed).to_vector<double>(),
                              w = normal64({g.C_out * g.C_in * 9}, seed + 1).to_vector<double>(),
                              b = normal64({g.C_out}, seed + 2).to_vector<double>(),
                              dy = normal64({y_size}, seed + 3).to_vector<double>();
    seed += 10;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const size_t w_size = w.size();
    std::vector<double> y_ref(static_cast<size_t>(y_size)), dx_ref(static_cast<size_t>(x_size)), dw_ref(w_size);
    kernels::cpu::conv2d_fwd(y_ref.data(), x.data(), w.data(), b.data(), g);  // F64: always im2col
    kernels::cpu::conv2d_bwd_data(dx_ref.data(), dy.data(), w.data(), g);
    kernels::cpu::conv2d_bwd_weight(dw_ref.data(), dy.data(), x.data(), g);

    for (int m : {2, 4}) {
      INFO("tiles of " << m);
      std::vector<double> y(size_t(y_size), nan), dx(size_t(x_size), nan), dw(w_size, nan);
      kernels::cpu::conv2d_fwd_winograd(y.data(), x.data(), w.data(), b.data(), g, m);
      kernels::cpu::conv2d_bwd_data_winograd(dx.data(), dy.data(), w.data(), g, m);
      kernels::cpu::conv2d_bwd_weight_winograd(dw.data(), dy.data(), x.data(), g, m);
      CHECK(max_abs_diff(y, y_ref) <= 1e-12 * (1 + max_abs(y_ref)));
      CHECK(max_abs_diff(dx, dx_ref) <= 1e-12 * (1 + max_abs(dx_ref)));
      CHECK(max_abs_diff(dw, dw_ref) <= 1e-12 * (1 + max_abs(dw_ref)));

      // F32, which the kernels conv2d_fwd, conv2d_bwd_data and conv2d_bwd_weight route here.
      auto to_f32 = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
      const std::vector<float> xf = to_f32(x), wf = to_f32(w), bf = to_f32(b), dyf = to_f32(dy);
      std::vector<float> yf(static_cast<size_t>(y_size), float(nan)), dxf(static_cast<size_t>(x_size), float(nan)),
          dwf(w_size, float(nan));
      kernels::cpu::conv2d_fwd_winograd(yf.data(), xf.data(), wf.data(), bf.data(), g, m);
      kernels::cpu::conv2d_bwd_data_winograd(dxf.data(), dyf.data(), wf.data(), g, m);
      kernels::cpu::conv2d_bwd_weight_winograd(dwf.data(), dyf.data(), xf.data(), g, m);
      // Sums of C_in * 9 unit-variance products: F32 rounding of the partial sums, a few ulps of the largest
      // (F(4x4)'s constants up to 8 cost about one more digit). dw sums over every output of every image.
      const double ulps = m == 2 ? 2e-7 : 2e-6;  // measured: ~4e-8 and ~4e-7
      const double ey = max_abs_diff(yf, y_ref) / ((1 + max_abs(y_ref)) * std::sqrt(double(g.C_in * 9)));
      const double ex = max_abs_diff(dxf, dx_ref) / ((1 + max_abs(dx_ref)) * std::sqrt(double(g.C_out * 9)));
      const double ew = max_abs_diff(dwf, dw_ref) / ((1 + max_abs(dw_ref)) * std::sqrt(double(g.N * g.hw_out())));
      CHECK(ey <= ulps);
      CHECK(ex <= ulps);
      CHECK(ew <= ulps);
    }
  }
}

TEST_CASE("conv2d kernels: the F32 entry points route to Winograd; empty batch; non-finite inputs", "[conv]") {
  // conv2d_fwd / conv2d_bwd_data / conv2d_bwd_weight on a geometry winograd_tile() takes, against the same
  // calls with Winograd switched off (im2col).
  kernels::ConvGeometry g = geometry(8, 16, 16, 16, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1);
  g.H_out = g.W_out = 16;
  REQUIRE(kernels::cpu::winograd_tile(g) == 4);
  auto f32 = [](int64_t n, uint64_t seed) {
    const std::vector<double> v = normal64({n}, seed).to_vector<double>();
    return std::vector<float>(v.begin(), v.end());
  };
  const int64_t xs = g.N * g.C_in * g.hw_in(), ys = g.N * g.C_out * g.hw_out(), ws = g.C_out * g.C_in * 9;
  const std::vector<float> x = f32(xs, 950), w = f32(ws, 951), b = f32(g.C_out, 952), dy = f32(ys, 953);
  std::vector<float> out[2][3];
  const bool was = kernels::cpu::winograd_enabled();
  for (int wino = 0; wino < 2; ++wino) {
    kernels::cpu::set_winograd_enabled(wino == 1);
    out[wino][0].assign(size_t(ys), 0.f);
    out[wino][1].assign(size_t(xs), 0.f);
    out[wino][2].assign(size_t(ws), 0.f);
    kernels::cpu::conv2d_fwd(out[wino][0].data(), x.data(), w.data(), b.data(), g);
    kernels::cpu::conv2d_bwd_data(out[wino][1].data(), dy.data(), w.data(), g);
    kernels::cpu::conv2d_bwd_weight(out[wino][2].data(), dy.data(), x.data(), g);
  }
  kernels::cpu::set_winograd_enabled(was);
  for (int pass = 0; pass < 3; ++pass) {
    INFO("pass " << pass);
    double scale = 0;
    for (float v : out[0][pass]) scale = std::max(scale, double(std::abs(v)));
    CHECK(out[0][pass] != out[1][pass]);  // different arithmetic: Winograd did run
    CHECK(max_abs_diff(out[1][pass], out[0][pass]) <= 1e-5 * scale);
  }

  // An empty batch: nothing to write for y and dx, and dw is zero (not left as it was).
  kernels::ConvGeometry empty = g;
  empty.N = 0;
  std::vector<float> dw(size_t(ws), std::numeric_limits<float>::quiet_NaN());
  kernels::cpu::conv2d_fwd_winograd(out[0][0].data(), x.data(), w.data(), b.data(), empty, 4);
  kernels::cpu::conv2d_bwd_weight_winograd(dw.data(), dy.data(), x.data(), empty, 4);
  CHECK(std::all_of(dw.begin(), dw.end(), [](float v) { return v == 0.f; }));

  // A NaN in x: every output whose window covers it is NaN, as with im2col; Winograd may also turn the rest
  // of its m x m output tile NaN (kernels/winograd.h), never anything beyond that tile's rows and columns.
  std::vector<float> xn = x;
  const int64_t ph = 5, pw = 10;  // image 0, channel 3
  xn[size_t(3 * g.hw_in() + ph * g.W + pw)] = std::numeric_limits<float>::quiet_NaN();
  for (int m : {2, 4}) {
    INFO("tiles of " << m);
    std::vector<float> y(static_cast<size_t>(ys));
    kernels::cpu::conv2d_fwd_winograd(y.data(), xn.data(), w.data(), b.data(), g, m);
    for (int64_t k = 0; k < g.C_out; ++k)
      for (int64_t oh = 0; oh < g.H_out; ++oh)
        for (int64_t ow = 0; ow < g.W_out; ++ow) {
          const bool covers = std::abs(oh - ph) <= 1 && std::abs(ow - pw) <= 1;
          const bool near = std::abs(oh - ph) <= m + 1 && std::abs(ow - pw) <= m + 1;
          const bool nan = std::isnan(y[size_t((k * g.H_out + oh) * g.W_out + ow)]);
          if (covers) CHECK(nan);
          if (!near) CHECK_FALSE(nan);
        }
  }
}

TEST_CASE("conv2d kernels: which geometries take Winograd, and which tiles", "[conv]") {
  auto tile = [](kernels::ConvGeometry g) {
    g.H_out = kernels::conv_out_size(g.H, g.kH, g.stride_h, g.pad_h, g.dil_h);
    g.W_out = kernels::conv_out_size(g.W, g.kW, g.stride_w, g.pad_w, g.dil_w);
    return kernels::cpu::winograd_tile(g);
  };
  const Pair one{1, 1};
  // ResNet-34 at batch 8: 4x4 tiles where at most a quarter of the outputs fall past the edge and the batch
  // has enough tiles, 2x2 where only that holds.
  CHECK(tile(geometry(8, 64, 56, 56, 64, 3, 3, one, one, one, 1)) == 4);
  CHECK(tile(geometry(8, 128, 28, 28, 128, 3, 3, one, one, one, 1)) == 4);
  CHECK(tile(geometry(8, 256, 14, 14, 256, 3, 3, one, one, one, 1)) == 2);  // 4x4: 256 outputs for 196
  CHECK(tile(geometry(8, 512, 7, 7, 512, 3, 3, one, one, one, 1)) == 0);    // 2x2: 64 for 49
  CHECK(tile(geometry(8, 64, 75, 64, 64, 3, 3, one, one, one, 1)) == 4);    // audio layer1
  CHECK(tile(geometry(8, 512, 10, 8, 512, 3, 3, one, one, one, 1)) == 2);   // 4x4: 48 tiles over the batch
  CHECK(tile(geometry(1, 64, 56, 56, 64, 3, 3, one, one, one, 1)) == 4);    // one image: 196 tiles
  CHECK(tile(geometry(1, 128, 28, 28, 128, 3, 3, one, one, one, 1)) == 2);  // one image: 49 tiles
  CHECK(tile(geometry(8, 64, 56, 56, 128, 3, 3, {2, 2}, one, one, 1)) == 0);  // stride 2
  CHECK(tile(geometry(8, 64, 56, 56, 64, 3, 3, one, {2, 2}, {2, 2}, 1)) == 0);  // dilation 2
  CHECK(tile(geometry(8, 64, 56, 56, 64, 3, 3, one, one, one, 2)) == 0);        // groups
  CHECK(tile(geometry(8, 8, 56, 56, 64, 3, 3, one, one, one, 1)) == 0);         // few input channels
  CHECK(tile(geometry(8, 64, 56, 56, 64, 1, 1, one, {0, 0}, one, 1)) == 0);     // 1x1
  CHECK(tile(geometry(8, 64, 56, 56, 64, 3, 3, one, {3, 3}, one, 1)) == 0);     // padding 3
  // Padding 0: the backward's output (10x10) is larger than the forward's (8x8), and 4x4 tiles waste 44%
  // of it, so 2x2 (both exact).
  CHECK(tile(geometry(8, 64, 10, 10, 64, 3, 3, one, {0, 0}, one, 1)) == 2);
  // The switch (STGS_CONV_WINOGRAD=0 in the environment) sends everything to im2col.
  const bool was = kernels::cpu::winograd_enabled();
  kernels::cpu::set_winograd_enabled(false);
  CHECK(tile(geometry(8, 64, 56, 56, 64, 3, 3, one, one, one, 1)) == 0);
  kernels::cpu::set_winograd_enabled(true);
  CHECK(tile(geometry(8, 64, 56, 56, 64, 3, 3, one, one, one, 1)) == 4);
  kernels::cpu::set_winograd_enabled(was);
}

TEST_CASE("conv2d and pooling refuse geometry whose arithmetic would overflow", "[conv]") {
  const Tensor x = arange(0, 8).reshape(Shape{1, 1, 8, 1}), w = ones(Shape{1, 1, 5, 1});
  // A dilation of 2^62 + 1 behaved like 4 when dil * (k - 1) wrapped.
  CHECK_THROWS_WITH(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {(int64_t(1) << 62) + 1, 1}),
                    Catch::Contains("is above 2^31"));
  CHECK_THROWS_WITH(max_pool2d(zeros(Shape{1, 1, 4, 4}), {3, 3}, {1, 1}, {INT64_MAX / 2 + 1, 0}),
                    Catch::Contains("padding must be in [0, kernel / 2]"));
}
