// Pooling: forward values against naive loops (written here, independently of the kernels), hand-checked
// small cases, -inf padding, ties, NaN, non-contiguous and empty-batch inputs, F64 gradient checks for
// every op, and the error messages.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "tests/gradcheck.h"

using namespace stgs;
using stgs::testing::gradcheck;
using stgs::testing::GradcheckOptions;
using stgs::testing::normal64;
using V = std::vector<Tensor>;

namespace {

// Every element of a small input is checked (no subsampling).
GradcheckOptions all_elements() {
  GradcheckOptions o;
  o.max_elements = 1 << 20;
  return o;
}

// A shuffled ramp: distinct values 0.01 apart (far more than the gradcheck eps of 1e-6), so every max
// window has a unique winner that a perturbation cannot flip.
Tensor distinct64(const Shape& shape, uint64_t seed) {
  const int64_t n = shape.numel();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t(0));
  std::mt19937_64 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = 0.01 * double(perm[size_t(i)] - n / 2);
  return from_vector<double>(v, shape);
}

struct Planes {
  int64_t planes, H, W;
};

// Naive window pool over (planes, H, W) with PyTorch semantics (ceil_mode false): iterates over the
// kernel offsets and skips the padded positions.
std::vector<double> naive_window_pool(const std::vector<double>& x, Planes d, Pair k, Pair s, Pair p, bool is_max,
                                      bool count_include_pad, int64_t* Ho_out, int64_t* Wo_out) {
  const int64_t Ho = (d.H + 2 * p[0] - k[0]) / s[0] + 1, Wo = (d.W + 2 * p[1] - k[1]) / s[1] + 1;
  *Ho_out = Ho;
  *Wo_out = Wo;
  std::vector<double> y;
  for (int64_t q = 0; q < d.planes; ++q) {
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        double best = -std::numeric_limits<double>::infinity(), total = 0;
        int64_t inside = 0;
        for (int64_t i = 0; i < k[0]; ++i) {
          for (int64_t j = 0; j < k[1]; ++j) {
            const int64_t h = oh * s[0] - p[0] + i, w = ow * s[1] - p[1] + j;
            if (h < 0 || h >= d.H || w < 0 || w >= d.W) continue;
            const double v = x[size_t(q * d.H * d.W + h * d.W + w)];
            if (v > best || (std::isnan(v) && !std::isnan(best))) best = v;
            total += v;
            ++inside;
          }
        }
        y.push_back(is_max ? best : total / double(count_include_pad ? k[0] * k[1] : inside));
      }
    }
  }
  return y;
}

// Naive adaptive pool: bin i of n over length L is [floor(i L / n), ceil((i + 1) L / n)), computed in
// floating point here (the kernels use integer arithmetic).
std::vector<double> naive_adaptive_pool(const std::vector<double>& x, Planes d, int64_t Ho, int64_t Wo, bool is_max) {
  auto lo = [](int64_t i, int64_t n, int64_t L) { return int64_t(std::floor(double(i) * double(L) / double(n))); };
  auto hi = [](int64_t i, int64_t n, int64_t L) { return int64_t(std::ceil(double(i + 1) * double(L) / double(n))); };
  std::vector<double> y;
  for (int64_t q = 0; q < d.planes; ++q) {
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        double best = -std::numeric_limits<double>::infinity(), total = 0;
        int64_t count = 0;
        for (int64_t h = lo(oh, Ho, d.H); h < hi(oh, Ho, d.H); ++h) {
          for (int64_t w = lo(ow, Wo, d.W); w < hi(ow, Wo, d.W); ++w) {
            const double v = x[size_t(q * d.H * d.W + h * d.W + w)];
            if (v > best || (std::isnan(v) && !std::isnan(best))) best = v;
            total += v;
            ++count;
          }
        }
        y.push_back(is_max ? best : total / double(count));
      }
    }
  }
  return y;
}

void check_values(const Tensor& got, const std::vector<double>& want, double tol) {
  const std::vector<double> g = got.to(DType::F64).to_vector<double>();
  REQUIRE(g.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same = g[i] == want[i] || (std::isnan(g[i]) && std::isnan(want[i]));
    if (!same && !(std::abs(g[i] - want[i]) <= tol * (1 + std::abs(want[i])))) {
      if (bad++ < 5) FAIL_CHECK("element " << i << ": got " << g[i] << ", want " << want[i]);
    }
  }
  CHECK(bad == 0);
}

struct WindowCase {
  Pair kernel, stride, padding;
};

// Odd sizes, ResNet's stem pool, stride != kernel (both ways), rectangular windows, kernel 1.
const std::vector<WindowCase> kWindowCases = {
    {{3, 3}, {2, 2}, {1, 1}}, {{2, 2}, {2, 2}, {0, 0}}, {{3, 3}, {1, 1}, {0, 0}}, {{3, 2}, {2, 3}, {1, 1}},
    {{2, 3}, {3, 1}, {1, 0}}, {{3, 3}, {3, 3}, {1, 1}}, {{1, 1}, {2, 2}, {0, 0}}, {{7, 9}, {1, 1}, {0, 0}},
    {{4, 4}, {2, 3}, {2, 2}}};

std::string case_name(const char* op, const WindowCase& c) {
  return detail::concat(op, " k(", c.kernel[0], ",", c.kernel[1], ") s(", c.stride[0], ",", c.stride[1], ") p(",
                        c.padding[0], ",", c.padding[1], ")");
}

}  // namespace

TEST_CASE("pool: window pools match naive loops", "[pool]") {
  const Shape shape{2, 3, 7, 9};
  const Planes d{6, 7, 9};
  for (DType dt : {DType::F64, DType::F32}) {
    const Tensor x = normal64(shape, 5).to(dt);
    const std::vector<double> xv = x.to(DType::F64).to_vector<double>();
    const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
    for (const WindowCase& c : kWindowCases) {
      INFO(case_name("pool", c) << " " << dtype_name(dt));
      int64_t Ho = 0, Wo = 0;
      const Tensor ym = max_pool2d(x, c.kernel, c.stride, c.padding);
      const std::vector<double> want_max =
          naive_window_pool(xv, d, c.kernel, c.stride, c.padding, true, true, &Ho, &Wo);
      CHECK(ym.shape() == Shape{2, 3, Ho, Wo});
      CHECK(ym.dtype() == dt);
      check_values(ym, want_max, tol);
      for (bool include : {true, false}) {
        INFO("count_include_pad " << include);
        const Tensor ya = avg_pool2d(x, c.kernel, c.stride, c.padding, include);
        CHECK(ya.shape() == Shape{2, 3, Ho, Wo});
        check_values(ya, naive_window_pool(xv, d, c.kernel, c.stride, c.padding, false, include, &Ho, &Wo), tol);
      }
    }
  }
}

TEST_CASE("pool: max pool gradients go to the first maximum in row-major order (ties, NaN, -inf)", "[pool]") {
  // Values from {0, 1, 2} (ties in most windows), a few NaN and -inf, every window case: the gradient of
  // sum(y * r) must land where a row-major scan of each window finds its first maximum or first NaN.
  const Shape shape{2, 3, 7, 9};
  const Planes d{6, 7, 9};
  std::mt19937_64 rng(17);
  std::vector<double> xv(size_t(shape.numel()));
  for (double& v : xv) v = double(rng() % 3);
  // Plane 5 (from 315) has NaNs at (2, 4) and (1, 5): a window over both must pick (1, 5), the earlier row
  // in a later column. Plane 4 (from 252) has a 3x3 block of -inf: its windows point at their first element.
  for (size_t k : {4, 40, 41, 100, 250, 251, 300, 337, 329}) xv[k] = std::numeric_limits<double>::quiet_NaN();
  for (size_t k : {7, 60, 61, 62, 200, 252, 253, 254, 261, 262, 263, 270, 271, 272})
    xv[k] = -std::numeric_limits<double>::infinity();
  for (DType dt : {DType::F64, DType::F32}) {
    for (const WindowCase& c : kWindowCases) {
      INFO(case_name("max_pool2d", c) << " " << dtype_name(dt));
      const int64_t Ho = (d.H + 2 * c.padding[0] - c.kernel[0]) / c.stride[0] + 1;
      const int64_t Wo = (d.W + 2 * c.padding[1] - c.kernel[1]) / c.stride[1] + 1;
      const std::vector<double> r = normal64(Shape{2, 3, Ho, Wo}, 18).to_vector<double>();
      std::vector<double> want(xv.size(), 0.0);
      for (int64_t q = 0; q < d.planes; ++q)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            double best = -std::numeric_limits<double>::infinity();
            int64_t arg = -1;
            for (int64_t i = 0; i < c.kernel[0]; ++i)
              for (int64_t j = 0; j < c.kernel[1]; ++j) {
                const int64_t h = oh * c.stride[0] - c.padding[0] + i, w = ow * c.stride[1] - c.padding[1] + j;
                if (h < 0 || h >= d.H || w < 0 || w >= d.W) continue;
                const int64_t at = q * d.H * d.W + h * d.W + w;
                const double v = xv[size_t(at)];
                if (arg < 0) arg = at;  // an all -inf window: its first element
                if (!std::isnan(best) && (v > best || std::isnan(v))) {
                  best = v;
                  arg = at;
                }
              }
            want[size_t(arg)] += r[size_t((q * Ho + oh) * Wo + ow)];
          }
      Tensor x = from_vector(xv, shape).to(dt).set_requires_grad(true);
      sum(max_pool2d(x, c.kernel, c.stride, c.padding) * from_vector(r, Shape{2, 3, Ho, Wo}).to(dt)).backward();
      check_values(x.grad(), want, dt == DType::F64 ? 0 : 1e-6);
    }
  }
}

TEST_CASE("pool: ResNet stem pool shape and a large parallel input", "[pool]") {
  CHECK(max_pool2d(zeros({2, 3, 7, 9}), {3, 3}, {2, 2}, {1, 1}).shape() == Shape{2, 3, 4, 5});
  CHECK(max_pool2d(zeros({1, 64, 112, 112}), {3, 3}, {2, 2}, {1, 1}).shape() == Shape{1, 64, 56, 56});
  // Enough planes and elements to take the OpenMP path.
  const Tensor x = normal64({4, 16, 33, 31}, 6);
  const std::vector<double> xv = x.to_vector<double>();
  int64_t Ho = 0, Wo = 0;
  check_values(max_pool2d(x, {3, 3}, {2, 2}, {1, 1}),
               naive_window_pool(xv, {64, 33, 31}, {3, 3}, {2, 2}, {1, 1}, true, true, &Ho, &Wo), 1e-12);
  check_values(avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, false),
               naive_window_pool(xv, {64, 33, 31}, {3, 3}, {2, 2}, {1, 1}, false, false, &Ho, &Wo), 1e-12);
  check_values(adaptive_avg_pool2d(x, {5, 7}), naive_adaptive_pool(xv, {64, 33, 31}, 5, 7, false), 1e-12);
  check_values(adaptive_max_pool2d(x, {5, 7}), naive_adaptive_pool(xv, {64, 33, 31}, 5, 7, true), 1e-12);
}

TEST_CASE("pool: adaptive pools match naive loops", "[pool]") {
  struct Case {
    int64_t H, W, Ho, Wo;
  };
  // 7 -> 3 and 5 -> 4 (bins overlap), to 1x1 (global pooling), larger than the input, identity.
  const std::vector<Case> cases = {{7, 9, 3, 4}, {5, 5, 4, 4}, {7, 9, 1, 1}, {3, 4, 5, 7}, {5, 7, 5, 7},
                                   {1, 6, 3, 4}, {9, 7, 2, 9}};
  for (DType dt : {DType::F64, DType::F32}) {
    const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
    for (const Case& c : cases) {
      INFO("(" << c.H << ", " << c.W << ") -> (" << c.Ho << ", " << c.Wo << ") " << dtype_name(dt));
      const Tensor x = normal64({2, 3, c.H, c.W}, 7).to(dt);
      const std::vector<double> xv = x.to(DType::F64).to_vector<double>();
      const Planes d{6, c.H, c.W};
      const Tensor ya = adaptive_avg_pool2d(x, {c.Ho, c.Wo});
      const Tensor ym = adaptive_max_pool2d(x, {c.Ho, c.Wo});
      CHECK(ya.shape() == Shape{2, 3, c.Ho, c.Wo});
      CHECK(ym.shape() == Shape{2, 3, c.Ho, c.Wo});
      check_values(ya, naive_adaptive_pool(xv, d, c.Ho, c.Wo, false), tol);
      check_values(ym, naive_adaptive_pool(xv, d, c.Ho, c.Wo, true), tol);

      // 1-D: each row of W values is one (N, C, L) sequence.
      const Tensor x1 = x.reshape({2, 3 * c.H, c.W});
      const Planes d1{6 * c.H, 1, c.W};
      const Tensor y1a = adaptive_avg_pool1d(x1, c.Wo);
      const Tensor y1m = adaptive_max_pool1d(x1, c.Wo);
      CHECK(y1a.shape() == Shape{2, 3 * c.H, c.Wo});
      CHECK(y1m.shape() == Shape{2, 3 * c.H, c.Wo});
      check_values(y1a, naive_adaptive_pool(xv, d1, 1, c.Wo, false), tol);
      check_values(y1m, naive_adaptive_pool(xv, d1, 1, c.Wo, true), tol);
    }
  }
}

TEST_CASE("pool: hand-checked values", "[pool]") {
  const Tensor x = arange(0, 16, 1, DType::F64).reshape({1, 1, 4, 4});
  check_values(max_pool2d(x, {2, 2}, {2, 2}), {5, 7, 13, 15}, 0);
  check_values(avg_pool2d(x, {2, 2}, {2, 2}), {2.5, 4.5, 10.5, 12.5}, 0);
  check_values(adaptive_avg_pool2d(x, {1, 1}), {7.5}, 0);
  check_values(adaptive_max_pool2d(x, {1, 1}), {15}, 0);
  // Padding 1, kernel 3, stride 2: corner window holds x[0..1, 0..1] = 0 + 1 + 4 + 5.
  check_values(avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, true), {10.0 / 9, 24.0 / 9, 51.0 / 9, 90.0 / 9}, 1e-15);
  check_values(avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, false), {10.0 / 4, 24.0 / 6, 51.0 / 6, 90.0 / 9}, 1e-15);

  // 1-D bins: 5 -> 4 is [0, 2), [1, 3), [2, 4), [3, 5); 7 -> 3 is [0, 3), [2, 5), [4, 7).
  check_values(adaptive_avg_pool1d(arange(0, 5, 1, DType::F64).reshape({1, 1, 5}), 4), {0.5, 1.5, 2.5, 3.5}, 0);
  check_values(adaptive_avg_pool1d(arange(0, 7, 1, DType::F64).reshape({1, 1, 7}), 3), {1, 3, 5}, 0);
  check_values(adaptive_max_pool1d(from_vector<double>({3, 1, 4, 1, 5, 9, 2}, {1, 1, 7}), 3), {4, 5, 9}, 0);
  // Larger than the input: 2 -> 3 is [0, 1), [0, 2), [1, 2).
  check_values(adaptive_avg_pool1d(from_vector<double>({2, 4}, {1, 1, 2}), 3), {2, 3, 4}, 0);
}

TEST_CASE("pool: padding acts as -inf for max, ties take the first, NaN propagates", "[pool]") {
  // All negative: a zero-padded max would give 0 on the border.
  const Tensor neg = from_vector<double>({-5, -4, -3, -2, -1, -6, -7, -8, -9}, {1, 1, 3, 3});
  check_values(max_pool2d(neg, {3, 3}, {2, 2}, {1, 1}), {-1, -1, -1, -1}, 0);
  check_values(max_pool2d(neg, {2, 2}, {1, 1}, {1, 1}),
               {-5, -4, -3, -3, -2, -1, -1, -3, -2, -1, -1, -6, -7, -7, -8, -9}, 0);
  check_values(max_pool2d(full({1, 1, 2, 2}, -std::numeric_limits<double>::infinity(), DType::F64), {2, 2}, {2, 2},
                          {1, 1}),
               {-std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                -std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()},
               0);

  // Ties: the whole gradient goes to the first maximum of each window.
  for (int adaptive = 0; adaptive < 2; ++adaptive) {
    Tensor x = ones({1, 1, 2, 4}, DType::F64);
    x.set_requires_grad(true);
    Tensor y = adaptive ? adaptive_max_pool2d(x, {1, 2}) : max_pool2d(x, {2, 2}, {2, 2});
    sum(y).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 1, 0, 0, 0, 0, 0});
  }

  // NaN in one window poisons that window only, and receives its gradient.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor x = from_vector<double>({1, 2, 3, 4, 5, nan, 7, 8}, {1, 1, 2, 4}).to(dt);
    x.set_requires_grad(true);
    const Tensor y = max_pool2d(x, {2, 2}, {2, 2});
    const std::vector<double> yv = y.to(DType::F64).to_vector<double>();
    REQUIRE(yv.size() == 2);
    CHECK(std::isnan(yv[0]));
    CHECK(yv[1] == 8);
    sum(y).backward();
    CHECK(x.grad().to(DType::F64).to_vector<double>() == std::vector<double>{0, 0, 0, 0, 0, 1, 0, 1});
    CHECK(std::isnan(adaptive_max_pool2d(x, {1, 1}).item()));
    const std::vector<double> y1 = adaptive_max_pool1d(x.reshape({1, 2, 4}), 1).to(DType::F64).to_vector<double>();
    CHECK(y1[0] == 4);
    CHECK(std::isnan(y1[1]));
  }
}

TEST_CASE("pool: max pools without a backward (no argmax written) give the same values", "[pool]") {
  // Inference skips the argmax buffer and takes a separate kernel (column maxima, then row maxima); the
  // values must not depend on whether a backward is recorded: NaN (two of them in one window), -inf,
  // padding, overlapping and non-square windows, odd sizes.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> values = normal64(Shape{2 * 3 * 9 * 8}, 5).to(DType::F32).to_vector<float>();
  values[10] = nan;
  values[11] = nan;
  values[100] = -inf;
  values[250] = inf;
  for (size_t k = 300; k < 372; ++k) values[k] = -inf;  // one whole plane of -inf
  struct Window {
    Pair kernel, stride, padding;
  };
  for (const Window& w : {Window{{3, 3}, {2, 2}, {1, 1}}, Window{{2, 2}, {1, 1}, {1, 1}}, Window{{3, 2}, {1, 2}, {0, 1}},
                          Window{{1, 1}, {1, 1}, {0, 0}}, Window{{5, 4}, {3, 3}, {2, 2}}}) {
    INFO("kernel " << w.kernel[0] << "x" << w.kernel[1] << " stride " << w.stride[0] << "," << w.stride[1]
                   << " padding " << w.padding[0] << "," << w.padding[1]);
    Tensor x = from_vector(values, Shape{2, 3, 9, 8}).set_requires_grad(true);
    const std::vector<float> with_grad = max_pool2d(x, w.kernel, w.stride, w.padding).to_vector<float>();
    NoGradGuard no_grad;
    const std::vector<float> without = max_pool2d(x, w.kernel, w.stride, w.padding).to_vector<float>();
    REQUIRE(without.size() == with_grad.size());
    for (size_t k = 0; k < without.size(); ++k) {
      INFO("output " << k << ": " << without[k] << " vs " << with_grad[k]);
      CHECK((without[k] == with_grad[k] || (std::isnan(without[k]) && std::isnan(with_grad[k]))));
    }
  }
  Tensor x = normal64(Shape{2, 3, 9, 8}, 6).to(DType::F32).set_requires_grad(true);
  const Tensor adaptive_with_grad = adaptive_max_pool2d(x, {4, 3});
  NoGradGuard no_grad;
  CHECK(adaptive_max_pool2d(x, {4, 3}).to_vector<float>() == adaptive_with_grad.to_vector<float>());
  CHECK(adaptive_max_pool1d(x.flatten(2), 5).shape() == Shape{2, 3, 5});
}

TEST_CASE("pool: non-contiguous input and empty batch", "[pool]") {
  const Tensor base = normal64({2, 3, 9, 7}, 8);
  const Tensor xt = base.transpose(2, 3);  // (2, 3, 7, 9), not contiguous
  REQUIRE_FALSE(xt.is_contiguous());
  const Tensor xc = xt.contiguous();
  CHECK(max_pool2d(xt, {3, 3}, {2, 2}, {1, 1}).to_vector<double>() ==
        max_pool2d(xc, {3, 3}, {2, 2}, {1, 1}).to_vector<double>());
  CHECK(avg_pool2d(xt, {3, 2}, {1, 2}).to_vector<double>() == avg_pool2d(xc, {3, 2}, {1, 2}).to_vector<double>());
  CHECK(adaptive_avg_pool2d(xt, {3, 4}).to_vector<double>() == adaptive_avg_pool2d(xc, {3, 4}).to_vector<double>());
  CHECK(adaptive_max_pool1d(xt.select(0, 1), 4).to_vector<double>() ==
        adaptive_max_pool1d(xc.select(0, 1), 4).to_vector<double>());

  Tensor e = zeros({0, 3, 7, 9}, DType::F64);
  e.set_requires_grad(true);
  const Tensor y = max_pool2d(e, {3, 3}, {2, 2}, {1, 1});
  CHECK(y.shape() == Shape{0, 3, 4, 5});
  sum(y + avg_pool2d(e, {3, 3}, {2, 2}, {1, 1}) + adaptive_max_pool2d(e, {4, 5})).backward();
  CHECK(e.grad().shape() == Shape{0, 3, 7, 9});
  CHECK(adaptive_avg_pool1d(zeros({0, 2, 5}), 3).shape() == Shape{0, 2, 3});
}

TEST_CASE("pool: gradient checks, window pools", "[pool][grad]") {
  const Tensor xd = distinct64({2, 3, 7, 9}, 11);
  const Tensor xn = normal64({2, 3, 7, 9}, 12);
  for (const WindowCase& c : kWindowCases) {
    gradcheck(case_name("max_pool2d", c), [c](const V& v) { return max_pool2d(v[0], c.kernel, c.stride, c.padding); },
              {xd}, all_elements());
    gradcheck(case_name("avg_pool2d include_pad", c),
              [c](const V& v) { return avg_pool2d(v[0], c.kernel, c.stride, c.padding, true); }, {xn}, all_elements());
    gradcheck(case_name("avg_pool2d exclude_pad", c),
              [c](const V& v) { return avg_pool2d(v[0], c.kernel, c.stride, c.padding, false); }, {xn}, all_elements());
  }
}

TEST_CASE("pool: gradient checks, adaptive pools", "[pool][grad]") {
  struct Case {
    int64_t H, W, Ho, Wo;
  };
  const std::vector<Case> cases = {{7, 9, 3, 4}, {5, 5, 4, 4}, {7, 9, 1, 1}, {3, 4, 5, 7}, {1, 5, 1, 3}};
  for (const Case& c : cases) {
    const std::string sizes = detail::concat("(", c.H, ", ", c.W, ") -> (", c.Ho, ", ", c.Wo, ")");
    const Tensor xd = distinct64({2, 3, c.H, c.W}, 13);
    const Tensor xn = normal64({2, 3, c.H, c.W}, 14);
    const Pair out{c.Ho, c.Wo};
    gradcheck("adaptive_max_pool2d " + sizes, [out](const V& v) { return adaptive_max_pool2d(v[0], out); }, {xd},
              all_elements());
    gradcheck("adaptive_avg_pool2d " + sizes, [out](const V& v) { return adaptive_avg_pool2d(v[0], out); }, {xn},
              all_elements());
    const int64_t L = c.W, n = c.Wo;
    gradcheck("adaptive_max_pool1d " + sizes, [n](const V& v) { return adaptive_max_pool1d(v[0], n); },
              {distinct64({2, 3, L}, 15)}, all_elements());
    gradcheck("adaptive_avg_pool1d " + sizes, [n](const V& v) { return adaptive_avg_pool1d(v[0], n); },
              {normal64({2, 3, L}, 16)}, all_elements());
  }
  // 7 -> 3 and 5 -> 4 in 1-D explicitly.
  gradcheck("adaptive_max_pool1d 7 -> 3", [](const V& v) { return adaptive_max_pool1d(v[0], 3); },
            {distinct64({2, 3, 7}, 17)}, all_elements());
  gradcheck("adaptive_avg_pool1d 5 -> 4", [](const V& v) { return adaptive_avg_pool1d(v[0], 4); },
            {normal64({2, 3, 5}, 18)}, all_elements());
  // Composed with another op, so the pool's gradient flows on through the graph.
  gradcheck("max_pool2d of tanh", [](const V& v) { return max_pool2d(tanh(v[0]), {3, 3}, {2, 2}, {1, 1}); },
            {distinct64({1, 2, 5, 6}, 19)}, all_elements());
}

TEST_CASE("pool: error messages", "[pool]") {
  const Tensor x = zeros({2, 3, 7, 9});
  const Tensor x3 = zeros({2, 3, 7});
  using Catch::Contains;
  CHECK_THROWS_WITH(max_pool2d(x3, {2, 2}, {2, 2}), Contains("max_pool2d") && Contains("(N, C, H, W)") &&
                                                        Contains("[2, 3, 7]"));
  CHECK_THROWS_WITH(avg_pool2d(zeros({2, 3, 7, 9, 1}), {2, 2}, {2, 2}), Contains("avg_pool2d") &&
                                                                            Contains("[2, 3, 7, 9, 1]"));
  CHECK_THROWS_WITH(max_pool2d(x, {0, 2}, {1, 1}), Contains("max_pool2d") && Contains("kernel") && Contains("(0, 2)"));
  CHECK_THROWS_WITH(max_pool2d(x, {2, 2}, {1, 0}), Contains("max_pool2d") && Contains("stride") && Contains("(1, 0)"));
  CHECK_THROWS_WITH(avg_pool2d(x, {3, 3}, {1, 1}, {2, 1}),
                    Contains("avg_pool2d") && Contains("padding") && Contains("(2, 1)") && Contains("(3, 3)"));
  CHECK_THROWS_WITH(max_pool2d(x, {2, 2}, {1, 1}, {-1, 0}), Contains("padding") && Contains("(-1, 0)"));
  CHECK_THROWS_WITH(max_pool2d(x, {8, 3}, {1, 1}), Contains("max_pool2d") && Contains("larger than the padded input") &&
                                                       Contains("[2, 3, 7, 9]"));
  CHECK_NOTHROW(max_pool2d(x, {8, 3}, {1, 1}, {1, 0}));  // 7 + 2 >= 8
  CHECK_THROWS_WITH(max_pool2d(zeros({2, 0, 7, 9}), {2, 2}, {2, 2}), Contains("non-empty") && Contains("[2, 0, 7, 9]"));
  CHECK_THROWS_WITH(max_pool2d(zeros({2, 3}, DType::I64).reshape({1, 2, 3, 1}), {1, 1}, {1, 1}),
                    Contains("max_pool2d") && Contains("I64"));
  CHECK_THROWS_WITH(max_pool2d(Tensor(), {1, 1}, {1, 1}), Contains("max_pool2d") && Contains("undefined"));

  CHECK_THROWS_WITH(adaptive_avg_pool2d(x, {0, 3}), Contains("adaptive_avg_pool2d") && Contains("(0, 3)"));
  CHECK_THROWS_WITH(adaptive_max_pool2d(x3, {1, 1}), Contains("adaptive_max_pool2d") && Contains("[2, 3, 7]"));
  CHECK_THROWS_WITH(adaptive_avg_pool1d(x, 3), Contains("adaptive_avg_pool1d") && Contains("(N, C, L)") &&
                                                   Contains("[2, 3, 7, 9]"));
  CHECK_THROWS_WITH(adaptive_max_pool1d(x3, 0), Contains("adaptive_max_pool1d") && Contains("at least 1"));
  CHECK_THROWS_WITH(adaptive_max_pool1d(zeros({2, 3, 0}), 2), Contains("adaptive_max_pool1d") && Contains("[2, 3, 0]"));
}
