// The straight-through Gumbel-softmax op (nas/gumbel.h) and the temperature schedule (nas/temperature.h):
// one-hot samples whose argmax frequencies follow softmax(logits) (chi-square), entropy against lambda,
// the Philox counters each call uses, the three modes, the straight-through backward against the analytic
// softmax Jacobian and F64 central differences, error messages, and CPU-vs-CUDA parity ([cuda]).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/ops.h"
#include "nas/gumbel.h"
#include "nas/temperature.h"
#include "tests/gradcheck.h"

#if defined(STGS_CUDA)
#include "engine/cuda/runtime.h"
#include "kernels/gumbel.h"
#endif

using namespace stgs;
using nas::gumbel_softmax_st;
using nas::GumbelMode;
using nas::GumbelSample;
using testing::gradcheck;
using testing::normal64;

namespace {

using V = std::vector<Tensor>;

// `rows` copies of one row of logits, as a (rows, K) tensor.
Tensor repeated_rows(const std::vector<double>& row, int64_t rows, DType dtype) {
  std::vector<double> v;
  for (int64_t r = 0; r < rows; ++r) v.insert(v.end(), row.begin(), row.end());
  return from_vector<double>(v, {rows, int64_t(row.size())}).to(dtype);
}

std::vector<double> softmax_of(const std::vector<double>& l) {
  double m = l[0], s = 0;
  for (double v : l) m = std::max(m, v);
  std::vector<double> p;
  for (double v : l) p.push_back(std::exp(v - m));
  for (double v : p) s += v;
  for (double& v : p) v /= s;
  return p;
}

// Pearson's chi-square statistic of the per-category counts of `index` against probabilities p.
double chi_square(const Tensor& index, const std::vector<double>& p) {
  std::vector<double> counts(p.size(), 0.0);
  const std::vector<int64_t> idx = index.to_vector<int64_t>();
  for (int64_t i : idx) counts[size_t(i)] += 1;
  double chi2 = 0;
  for (size_t k = 0; k < p.size(); ++k) {
    const double expected = double(idx.size()) * p[k];
    chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
  }
  return chi2;
}

// Mean Shannon entropy (nats) of the rows of a (rows, K) probability tensor.
double mean_entropy(const Tensor& probs) {
  const int64_t K = probs.size(-1), rows = probs.numel() / K;
  const std::vector<double> p = probs.to_vector<double>();
  double h = 0;
  for (double v : p)
    if (v > 0) h -= v * std::log(v);
  return h / double(rows);
}

// One sample with a fresh generator, so that repeated calls draw the same noise (gradient checks).
GumbelSample sample_with_seed(const Tensor& x, double lambda, GumbelMode mode, uint64_t seed) {
  Generator g(seed);
  return gumbel_softmax_st(x, lambda, mode, &g);
}

}  // namespace

TEST_CASE("gumbel_softmax_st: hard is the one-hot argmax of soft; soft rows are distributions", "[gumbel]") {
  const std::vector<Shape> shapes = {{7, 5}, {3, 2}, {4, 1}, {2, 3, 9}, {300, 40}, {5}};
  for (DType dtype : {DType::F32, DType::F64}) {
    for (const Shape& shape : shapes) {
      INFO(dtype_name(dtype) << " " << shape.str());
      Generator data(3), g(4);
      const Tensor x = randn(shape, dtype, Device::cpu(), &data, 0, 2);
      const GumbelSample s = gumbel_softmax_st(x, 0.7, GumbelMode::Hard, &g);
      REQUIRE(s.hard.shape() == shape);
      REQUIRE(s.soft.shape() == shape);
      REQUIRE(s.index.dtype() == DType::I64);
      const int64_t K = shape.back(), rows = x.numel() / K;
      REQUIRE(s.index.numel() == rows);
      REQUIRE(s.index.dim() == shape.size() - 1);
      CHECK(&s.weights() == &s.hard);
      const std::vector<double> hard = s.hard.to_vector<double>(), soft = s.soft.to_vector<double>();
      const std::vector<int64_t> index = s.index.to_vector<int64_t>();
      for (int64_t r = 0; r < rows; ++r) {
        double sum = 0;
        int64_t argmax = 0;
        for (int64_t k = 0; k < K; ++k) {
          const size_t i = size_t(r * K + k);
          CHECK(hard[i] == (k == index[size_t(r)] ? 1.0 : 0.0));
          CHECK(soft[i] >= 0);
          sum += soft[i];
          if (soft[i] > soft[size_t(r * K + argmax)]) argmax = k;
        }
        CHECK(sum == Approx(1.0).epsilon(1e-6));
        CHECK(index[size_t(r)] == argmax);
      }
    }
  }
}

TEST_CASE("gumbel_softmax_st: argmax frequencies follow softmax(logits) at any lambda (chi-square)", "[gumbel]") {
  // 20000 draws per case; critical values at p = 0.001: 18.47 (4 degrees of freedom), 10.83 (1).
  const int64_t draws = 20000;
  struct Case {
    std::vector<double> logits;
    DType dtype;
    double critical;
  };
  for (const Case& c : {Case{{0.5, -1.0, 2.0, 0.0, 1.0}, DType::F32, 18.47}, Case{{0.3, -0.4}, DType::F64, 10.83}}) {
    const Tensor x = repeated_rows(c.logits, draws, c.dtype);
    const std::vector<double> p = softmax_of(c.logits);
    for (double lambda : {0.1, 1.0, 10.0}) {
      INFO(dtype_name(c.dtype) << " K " << c.logits.size() << " lambda " << lambda);
      Generator g(2024);
      const GumbelSample s = gumbel_softmax_st(x, lambda, GumbelMode::Hard, &g);
      CHECK(chi_square(s.index, p) < c.critical);
    }
  }
}

TEST_CASE("gumbel_softmax_st: the argmax does not depend on lambda for the same noise", "[gumbel]") {
  Generator data(8);
  const Tensor x = randn({500, 5}, DType::F64, Device::cpu(), &data);
  const std::vector<int64_t> a = sample_with_seed(x, 0.1, GumbelMode::Hard, 9).index.to_vector<int64_t>();
  const std::vector<int64_t> b = sample_with_seed(x, 10.0, GumbelMode::Hard, 9).index.to_vector<int64_t>();
  CHECK(a == b);
}

TEST_CASE("gumbel_softmax_st: the soft sample's entropy falls as lambda falls", "[gumbel]") {
  Generator data(12);
  const Tensor x = randn({4000, 5}, DType::F64, Device::cpu(), &data);
  std::vector<double> entropy;
  for (double lambda : {100.0, 10.0, 1.0, 0.1, 0.01})
    entropy.push_back(mean_entropy(sample_with_seed(x, lambda, GumbelMode::Soft, 13).soft));
  for (size_t i = 1; i < entropy.size(); ++i) {
    INFO("entropy " << entropy[i - 1] << " then " << entropy[i]);
    CHECK(entropy[i] < entropy[i - 1]);
  }
  CHECK(entropy.front() > 0.99 * std::log(5.0));  // nearly uniform at lambda = 100
  CHECK(entropy.back() < 0.05);                   // nearly one-hot at lambda = 0.01
}

TEST_CASE("gumbel_softmax_st: noise is Philox Gumbel at counter offset + r*K + k; offsets advance by rows*K",
          "[gumbel]") {
  Generator data(21);
  const Tensor x = randn({3, 5}, DType::F64, Device::cpu(), &data);
  const double lambda = 0.6;
  Generator g(77);
  g.reserve(8);  // a non-zero starting offset
  Generator same;
  same.set_state(g.seed(), g.offset());
  const std::vector<double> u = rand({3, 5}, DType::F64, Device::cpu(), &same).to_vector<double>();  // same counters

  const GumbelSample s = gumbel_softmax_st(x, lambda, GumbelMode::Hard, &g);
  CHECK(g.offset() == 8 + 16);  // 15 counters, rounded up to whole Philox blocks
  CHECK(g.offset() == same.offset());
  const std::vector<double> xs = x.to_vector<double>(), soft = s.soft.to_vector<double>();
  for (int r = 0; r < 3; ++r) {
    std::vector<double> z;
    for (int k = 0; k < 5; ++k) z.push_back((xs[size_t(5 * r + k)] - std::log(-std::log(u[size_t(5 * r + k)]))) / lambda);
    const std::vector<double> expect = softmax_of(z);
    for (int k = 0; k < 5; ++k) CHECK(soft[size_t(5 * r + k)] == Approx(expect[size_t(k)]).epsilon(1e-12));
  }

  // PlainSoftmax draws nothing; an empty batch reserves nothing either.
  const uint64_t before = g.offset();
  (void)gumbel_softmax_st(x, lambda, GumbelMode::PlainSoftmax, &g);
  (void)gumbel_softmax_st(zeros({0, 5}, DType::F64), lambda, GumbelMode::Hard, &g);
  CHECK(g.offset() == before);
}

TEST_CASE("gumbel_softmax_st: restoring (seed, offset) resumes the same stream of samples", "[gumbel]") {
  Generator data(22);
  const Tensor x = randn({6, 5}, DType::F32, Device::cpu(), &data);
  Generator g(5);
  const GumbelSample first = gumbel_softmax_st(x, 1.0, GumbelMode::Hard, &g);
  const uint64_t seed = g.seed(), offset = g.offset();  // what a checkpoint stores
  const GumbelSample second = gumbel_softmax_st(x, 1.0, GumbelMode::Hard, &g);
  Generator resumed;
  resumed.set_state(seed, offset);
  const GumbelSample again = gumbel_softmax_st(x, 1.0, GumbelMode::Hard, &resumed);
  CHECK(again.soft.to_vector<float>() == second.soft.to_vector<float>());
  CHECK(again.index.to_vector<int64_t>() == second.index.to_vector<int64_t>());
  CHECK(first.soft.to_vector<float>() != second.soft.to_vector<float>());  // fresh noise per call
}

TEST_CASE("gumbel_softmax_st: Soft mode has no hard output; PlainSoftmax is softmax(logits) with lowest-index ties",
          "[gumbel]") {
  Generator data(23);
  const Tensor x = randn({4, 5}, DType::F64, Device::cpu(), &data);
  const GumbelSample hard = sample_with_seed(x, 2.0, GumbelMode::Hard, 1);
  const GumbelSample soft = sample_with_seed(x, 2.0, GumbelMode::Soft, 1);
  CHECK_FALSE(soft.hard.defined());
  CHECK(&soft.weights() == &soft.soft);
  CHECK(soft.soft.to_vector<double>() == hard.soft.to_vector<double>());
  CHECK(soft.index.to_vector<int64_t>() == hard.index.to_vector<int64_t>());

  const GumbelSample plain = gumbel_softmax_st(x, 5.0, GumbelMode::PlainSoftmax);  // lambda ignored
  CHECK_FALSE(plain.hard.defined());
  const std::vector<double> expect = softmax(x, -1).to_vector<double>(), got = plain.soft.to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expect[i]).epsilon(1e-14));

  const Tensor tied = from_vector<float>({1, 3, 3, 0, 2, 2, 2, 2}, {2, 4});
  CHECK(gumbel_softmax_st(tied, 1.0, GumbelMode::PlainSoftmax).index.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
}

TEST_CASE("gumbel_softmax_st backward equals the softmax Jacobian-vector product; hard and soft share it",
          "[gumbel]") {
  for (const Shape& shape : {Shape{6, 5}, Shape{3, 12}}) {
    INFO(shape.str());
    const double lambda = 0.7;
    const int64_t K = shape.back(), rows = shape.numel() / K;
    const Tensor x = normal64(shape, 31), R1 = normal64(shape, 32), R2 = normal64(shape, 33);

    // The gradient reaching the logits from sum(hard * R1) and/or sum(soft * R2), for the same noise.
    auto grad_of = [&](bool use_hard, bool use_soft) {
      Tensor xs = x.clone();
      xs.set_requires_grad(true);
      const GumbelSample s = sample_with_seed(xs, lambda, GumbelMode::Hard, 34);
      Tensor loss = scalar(0.0, DType::F64);
      if (use_hard) loss = add(loss, sum(mul(s.hard, R1)));
      if (use_soft) loss = add(loss, sum(mul(s.soft, R2)));
      loss.backward();
      return xs.grad().to_vector<double>();
    };
    // J = (1/lambda) (diag(y) - y y^T) per row; J^T g = (1/lambda) y * (g - <g, y>).
    auto jvp = [&](const std::vector<double>& y, const std::vector<double>& g) {
      std::vector<double> out(y.size(), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < K; ++j)
          for (int64_t k = 0; k < K; ++k) {
            const double yk = y[size_t(r * K + k)], yj = y[size_t(r * K + j)];
            const double J_kj = ((k == j ? yk : 0.0) - yk * yj) / lambda;
            out[size_t(r * K + j)] += J_kj * g[size_t(r * K + k)];
          }
      return out;
    };
    const std::vector<double> r1 = R1.to_vector<double>(), r2 = R2.to_vector<double>();
    std::vector<double> r12(r1.size());
    for (size_t i = 0; i < r1.size(); ++i) r12[i] = r1[i] + r2[i];

    const std::vector<double> y = sample_with_seed(x, lambda, GumbelMode::Hard, 34).soft.to_vector<double>();
    const std::vector<double> g_soft = grad_of(false, true), g_hard = grad_of(true, false), g_both = grad_of(true, true);
    const std::vector<double> e_soft = jvp(y, r2), e_hard = jvp(y, r1), e_both = jvp(y, r12);
    for (size_t i = 0; i < y.size(); ++i) {
      CHECK(g_soft[i] == Approx(e_soft[i]).margin(1e-14).epsilon(1e-12));
      CHECK(g_hard[i] == Approx(e_hard[i]).margin(1e-14).epsilon(1e-12));
      CHECK(g_both[i] == Approx(e_both[i]).margin(1e-14).epsilon(1e-12));
    }
  }
}

TEST_CASE("gumbel_softmax_st soft and plain-softmax modes pass F64 gradient checks", "[gumbel][grad]") {
  struct Case {
    Shape shape;
    double lambda;
  };
  for (const Case& c : {Case{{4, 5}, 1.5}, Case{{3, 2}, 0.5}, Case{{2, 12}, 3.0}, Case{{2, 3, 4}, 1.0}}) {
    INFO(c.shape.str() << " lambda " << c.lambda);
    const Tensor x = normal64(c.shape, 41);
    gradcheck("gumbel soft", [&](const V& in) { return sample_with_seed(in[0], c.lambda, GumbelMode::Soft, 42).soft; },
              {x});
    gradcheck("gumbel plain softmax",
              [&](const V& in) { return sample_with_seed(in[0], c.lambda, GumbelMode::PlainSoftmax, 42).soft; }, {x});
  }
}

TEST_CASE("gumbel_softmax_st hard mode: the straight-through gradient is the soft sample's (central differences)",
          "[gumbel][grad]") {
  // out = hard - detach(hard) + detach(soft): its value is the soft sample, so central differences give the
  // soft sample's derivative, while its gradient reaches the logits only through the hard output's backward.
  for (const Shape& shape : {Shape{4, 5}, Shape{3, 2}, Shape{2, 10}}) {
    INFO(shape.str());
    gradcheck(
        "gumbel hard straight-through",
        [](const V& in) {
          const GumbelSample s = sample_with_seed(in[0], 0.8, GumbelMode::Hard, 51);
          return add(sub(s.hard, s.hard.detach()), s.soft.detach());
        },
        {normal64(shape, 52)});
  }
}

TEST_CASE("gumbel_softmax_st rejects bad logits and temperatures with clear messages", "[gumbel]") {
  using Catch::Contains;
  const Tensor ok = zeros({2, 3});
  REQUIRE_THROWS_WITH(gumbel_softmax_st(from_vector<float>({0, 1, NAN, 2}, {2, 2}), 1.0),
                      Contains("row 1, category 0") && Contains("not finite"));
  REQUIRE_THROWS_WITH(gumbel_softmax_st(from_vector<double>({0, INFINITY, 1}, {3}), 1.0, GumbelMode::PlainSoftmax),
                      Contains("row 0, category 1"));
  for (double bad : {0.0, -1.0, double(NAN), double(INFINITY)})
    REQUIRE_THROWS_WITH(gumbel_softmax_st(ok, bad), Contains("temperature lambda must be finite and > 0"));
  REQUIRE_THROWS_WITH(gumbel_softmax_st(ok, 1e-50), Contains("below what F32 logits can be divided by"));
  CHECK_NOTHROW(gumbel_softmax_st(zeros({2, 3}, DType::F64), 1e-50));  // F64 divides by it
  REQUIRE_THROWS_WITH(gumbel_softmax_st(zeros({2, 3}, DType::I64), 1.0), Contains("expected an F32 or F64"));
  REQUIRE_THROWS_WITH(gumbel_softmax_st(scalar(1.0), 1.0), Contains("last dimension of categories"));
  REQUIRE_THROWS_WITH(gumbel_softmax_st(zeros({3, 0}), 1.0), Contains("no categories"));
  REQUIRE_THROWS_WITH(gumbel_softmax_st(Tensor(), 1.0), Contains("undefined tensor"));
}

TEST_CASE("TemperatureSchedule: fixed, and linear 10 -> 0.1 as in GDAS", "[gumbel]") {
  const nas::TemperatureSchedule fixed = nas::TemperatureSchedule::fixed(10);
  CHECK(fixed.at(0) == 10);
  CHECK(fixed.at(1000) == 10);
  CHECK(fixed.str() == "fixed 10");

  const nas::TemperatureSchedule lin = nas::TemperatureSchedule::linear(10, 0.1, 5);
  CHECK(lin.at(0) == 10);
  CHECK(lin.at(1) == Approx(7.525));
  CHECK(lin.at(2) == Approx(5.05));
  CHECK(lin.at(4) == 0.1);  // exact at the last epoch
  CHECK(lin.at(9) == 0.1);  // and after it
  CHECK(lin.str() == "linear 10 -> 0.1 over 5 epochs");

  using Catch::Contains;
  REQUIRE_THROWS_WITH(nas::TemperatureSchedule::fixed(0), Contains("lambda must be finite and > 0, got 0"));
  REQUIRE_THROWS_WITH(nas::TemperatureSchedule::linear(10, -1, 5), Contains("end must be finite and > 0"));
  REQUIRE_THROWS_WITH(nas::TemperatureSchedule::linear(10, 0.1, 1), Contains("at least 2 epochs"));
  REQUIRE_THROWS_WITH(lin.at(-1), Contains("epoch must be >= 0, got -1"));
}

TEST_CASE("gumbel_softmax_st: CPU and CUDA draw identical samples for the same seed and offset",
          "[gumbel][cuda]") {
  // Same uniforms, so the same argmax; soft values and gradients agree to the last bits of logf/expf.
  const std::vector<Shape> shapes = {{1, 5},  {1000, 2}, {777, 5},   {513, 8}, {300, 9},
                                     {37, 33}, {5, 1000}, {3, 3000}, {2, 3, 7}, {0, 5}};
  for (DType dtype : {DType::F32, DType::F64}) {
    const double tol = dtype == DType::F32 ? 1e-5 : 1e-12;
    for (const Shape& shape : shapes) {
      for (GumbelMode mode : {GumbelMode::Hard, GumbelMode::Soft, GumbelMode::PlainSoftmax}) {
        INFO(dtype_name(dtype) << " " << shape.str() << " mode " << int(mode));
        Generator data(61);
        const Tensor x = randn(shape, dtype, Device::cpu(), &data, 0, 2);
        Tensor xc = x.clone(), xg = x.to(Device::cuda(0));
        xc.set_requires_grad(true);
        xg.set_requires_grad(true);
        Generator gc(62), gg(62);
        gc.reserve(4);
        gg.reserve(4);
        const GumbelSample a = gumbel_softmax_st(xc, 0.8, mode, &gc), b = gumbel_softmax_st(xg, 0.8, mode, &gg);
        CHECK(gc.offset() == gg.offset());
        CHECK(a.index.to_vector<int64_t>() == b.index.to_vector<int64_t>());
        REQUIRE(a.hard.defined() == b.hard.defined());
        if (a.hard.defined()) CHECK(a.hard.to_vector<double>() == b.hard.to_vector<double>());
        const std::vector<double> sa = a.soft.to_vector<double>(), sb = b.soft.to_vector<double>();
        for (size_t i = 0; i < sa.size(); ++i) CHECK(std::abs(sa[i] - sb[i]) <= tol * (1 + std::abs(sa[i])));
        if (x.numel() == 0) continue;
        const Tensor R = randn(shape, dtype, Device::cpu(), &data);
        sum(mul(a.weights(), R)).backward();
        sum(mul(b.weights(), R.to(Device::cuda(0)))).backward();
        const std::vector<double> ga = xc.grad().to_vector<double>(), gb = xg.grad().to_vector<double>();
        for (size_t i = 0; i < ga.size(); ++i) CHECK(std::abs(ga[i] - gb[i]) <= tol * (1 + std::abs(ga[i])));
      }
    }
  }
}

#if defined(STGS_CUDA)
TEST_CASE("gumbel kernels: CPU and CUDA agree at counter offsets inside a Philox block", "[gumbel][cuda]") {
  // The op's offsets are whole Philox blocks; the kernels accept any offset, as uniform_fill does.
  const int64_t rows = 600, K = 5;
  Generator data(71);
  const Tensor x = randn({rows, K}, DType::F32, Device::cpu(), &data), xg = x.to(Device::cuda(0));
  for (uint64_t offset : {uint64_t(1), uint64_t(6), uint64_t(1003)}) {
    INFO("offset " << offset);
    Tensor soft = empty({rows, K}), hard = empty({rows, K}), index = empty({rows}, DType::I64);
    Tensor soft_g = empty({rows, K}, DType::F32, Device::cuda(0)), hard_g = empty({rows, K}, DType::F32, Device::cuda(0));
    Tensor index_g = empty({rows}, DType::I64, Device::cuda(0));
    kernels::cpu::gumbel_softmax_fwd<float>(soft.data<float>(), hard.data<float>(), index.data<int64_t>(),
                                            x.data<float>(), rows, K, 0.5f, true, 99, offset);
    kernels::cuda::gumbel_softmax_fwd<float>(soft_g.data<float>(), hard_g.data<float>(), index_g.data<int64_t>(),
                                             xg.data<float>(), rows, K, 0.5f, true, 99, offset, cuda_rt::stream(0));
    CHECK(index.to_vector<int64_t>() == index_g.to_vector<int64_t>());
    CHECK(hard.to_vector<float>() == hard_g.to_vector<float>());
    const std::vector<float> a = soft.to_vector<float>(), b = soft_g.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 1e-5f * (1 + std::abs(a[i])));
  }
}
#endif
