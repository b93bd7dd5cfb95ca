// Batch norm (engine/ops/batch_norm.cpp): forward values and running statistics against plain loops,
// F64 gradient checks in training and eval mode, and input validation.
#include "tests/gradcheck.h"

#include <omp.h>

#include <cmath>

using namespace stgs;
using stgs::testing::gradcheck;
using stgs::testing::normal64;
using stgs::testing::positive;
using V = std::vector<Tensor>;

namespace {

// Reference batch norm by plain loops on x viewed as (N, C, S); w, b empty for no affine. In training,
// updates rm/rv (when non-empty) with momentum and the unbiased variance.
std::vector<double> reference_bn(const std::vector<double>& x, int64_t N, int64_t C, int64_t S,
                                 const std::vector<double>& w, const std::vector<double>& b, std::vector<double>& rm,
                                 std::vector<double>& rv, bool training, double momentum, double eps) {
  std::vector<double> y(x.size());
  const int64_t M = N * S;
  for (int64_t c = 0; c < C; ++c) {
    double mean, var;
    if (training) {
      double s1 = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < S; ++s) s1 += x[size_t((n * C + c) * S + s)];
      mean = s1 / double(M);
      double s2 = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < S; ++s) {
          const double d = x[size_t((n * C + c) * S + s)] - mean;
          s2 += d * d;
        }
      var = s2 / double(M);
      if (!rm.empty()) {
        rm[size_t(c)] = (1 - momentum) * rm[size_t(c)] + momentum * mean;
        rv[size_t(c)] = (1 - momentum) * rv[size_t(c)] + momentum * s2 / double(M - 1);
      }
    } else {
      mean = rm[size_t(c)];
      var = rv[size_t(c)];
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const size_t i = size_t((n * C + c) * S + s);
        const double xhat = (x[i] - mean) / std::sqrt(var + eps);
        y[i] = xhat * (w.empty() ? 1.0 : w[size_t(c)]) + (b.empty() ? 0.0 : b[size_t(c)]);
      }
  }
  return y;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  INFO(what << ": max abs difference " << worst);
  CHECK(worst <= tol);
}

int64_t spatial(const Shape& s) {
  int64_t S = 1;
  for (int i = 2; i < s.size(); ++i) S *= s[i];
  return S;
}

const std::vector<Shape> kShapes = {{4, 3, 5, 7}, {5, 4, 9}, {8, 5}, {3, 2, 1, 1}, {2, 6, 3}};

}  // namespace

TEST_CASE("batch_norm training forward and running statistics match plain loops", "[batchnorm]") {
  uint64_t seed = 100;
  for (const Shape& shape : kShapes) {
    for (bool affine : {true, false}) {
      const int64_t N = shape[0], C = shape[1], S = spatial(shape);
      const Tensor w = affine ? normal64({C}, seed++) : Tensor();
      const Tensor b = affine ? normal64({C}, seed++) : Tensor();
      const std::vector<double> wv = affine ? w.to_vector<double>() : std::vector<double>();
      const std::vector<double> bv = affine ? b.to_vector<double>() : std::vector<double>();
      Tensor rm = zeros({C}, DType::F64), rv = ones({C}, DType::F64);
      std::vector<double> rm_ref(size_t(C), 0.0), rv_ref(size_t(C), 1.0);
      for (int step = 0; step < 3; ++step) {
        // Shifted and scaled so the statistics are far from the initial running values.
        Tensor x = normal64(shape, seed++) * (1.5 + step) + (0.5 - step);
        const std::vector<double> xv = x.to_vector<double>();
        const Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5);
        const std::vector<double> want = reference_bn(xv, N, C, S, wv, bv, rm_ref, rv_ref, true, 0.1, 1e-5);
        const std::string what = shape.str() + (affine ? " affine" : " no affine") + " step " + std::to_string(step);
        REQUIRE(y.shape() == shape);
        check_close(y.to_vector<double>(), want, 1e-12, what + " y");
        check_close(rm.to_vector<double>(), rm_ref, 1e-13, what + " running_mean");
        check_close(rv.to_vector<double>(), rv_ref, 1e-13, what + " running_var");
      }
      // Eval with the accumulated statistics.
      const Tensor x = normal64(shape, seed++);
      const std::vector<double> rm_before = rm.to_vector<double>(), rv_before = rv.to_vector<double>();
      const Tensor y = batch_norm(x, w, b, rm, rv, false, 0.1, 1e-3);
      REQUIRE_THROWS_WITH(batch_norm(x, w, b, rm, rv, true, 5.0, 1e-5), Catch::Contains("momentum must be in [0, 1]"));
      REQUIRE_THROWS_WITH(batch_norm(x, w, b, rm, rv, true, 0.1, NAN), Catch::Contains("eps must be finite"));
      const std::vector<double> want = reference_bn(x.to_vector<double>(), N, C, S, wv, bv, rm_ref, rv_ref, false, 0.1,
                                                    1e-3);
      check_close(y.to_vector<double>(), want, 1e-12, shape.str() + " eval");
      // Eval leaves the running statistics alone.
      CHECK(rm.to_vector<double>() == rm_before);
      CHECK(rv.to_vector<double>() == rv_before);
    }
  }
}

TEST_CASE("batch_norm F32 and the parallel path match plain loops", "[batchnorm]") {
  // 8 * 16 * 17 * 19 elements is above the kernels' parallel threshold.
  const Shape shape{8, 16, 17, 19};
  const int64_t N = 8, C = 16, S = 17 * 19;
  const Tensor x64 = normal64(shape, 7) * 3.0 + 2.0;
  const Tensor w64 = normal64({C}, 8), b64 = normal64({C}, 9);
  std::vector<double> rm_ref(size_t(C), 0.0), rv_ref(size_t(C), 1.0);
  const std::vector<double> want = reference_bn(x64.to_vector<double>(), N, C, S, w64.to_vector<double>(),
                                                b64.to_vector<double>(), rm_ref, rv_ref, true, 0.1, 1e-5);

  Tensor rm = zeros({C}, DType::F64), rv = ones({C}, DType::F64);
  check_close(batch_norm(x64, w64, b64, rm, rv, true).to_vector<double>(), want, 1e-12, "F64 parallel y");
  check_close(rm.to_vector<double>(), rm_ref, 1e-13, "F64 parallel running_mean");
  check_close(rv.to_vector<double>(), rv_ref, 1e-13, "F64 parallel running_var");

  Tensor rm32 = zeros({C}), rv32 = ones({C});
  const Tensor y32 = batch_norm(x64.to(DType::F32), w64.to(DType::F32), b64.to(DType::F32), rm32, rv32, true);
  REQUIRE(y32.dtype() == DType::F32);
  check_close(y32.to(DType::F64).to_vector<double>(), want, 2e-5, "F32 y");
  check_close(rm32.to(DType::F64).to_vector<double>(), rm_ref, 1e-5, "F32 running_mean");
  check_close(rv32.to(DType::F64).to_vector<double>(), rv_ref, 1e-5, "F32 running_var");

  // Same inputs, same bits.
  Tensor rm2 = zeros({C}), rv2 = ones({C});
  const Tensor again = batch_norm(x64.to(DType::F32), w64.to(DType::F32), b64.to(DType::F32), rm2, rv2, true);
  CHECK(again.to_vector<float>() == y32.to_vector<float>());
}

TEST_CASE("batch_norm forward and backward are bitwise the same for any thread count", "[batchnorm]") {
  const Shape shape{8, 16, 17, 19};  // above the parallel threshold
  const Tensor x = normal64(shape, 11).to(DType::F32), w = normal64({16}, 12).to(DType::F32);
  const Tensor b = normal64({16}, 13).to(DType::F32), dy = normal64(shape, 14).to(DType::F32);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor xr = x.detach().clone(), wr = w.detach().clone(), br = b.detach().clone();
    xr.set_requires_grad(true);
    wr.set_requires_grad(true);
    br.set_requires_grad(true);
    Tensor rm = zeros({16}), rv = ones({16});
    const Tensor y = batch_norm(xr, wr, br, rm, rv, true);
    sum(y * dy).backward();
    omp_set_num_threads(saved);
    return std::vector<std::vector<float>>{y.to_vector<float>(), xr.grad().to_vector<float>(),
                                           wr.grad().to_vector<float>(), br.grad().to_vector<float>(),
                                           rm.to_vector<float>(), rv.to_vector<float>()};
  };
  CHECK(run(1) == run(4));
  CHECK(run(1) == run(3));
}

TEST_CASE("batch_norm training without running statistics, and non-contiguous running buffers", "[batchnorm]") {
  const Tensor x = normal64({6, 3, 4}, 20);
  std::vector<double> none;
  const std::vector<double> want = reference_bn(x.to_vector<double>(), 6, 3, 4, {}, {}, none, none, true, 0.1, 1e-5);
  check_close(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true).to_vector<double>(), want, 1e-12,
              "no running stats");

  // Running buffers that are strided views into a larger tensor are updated through the view.
  Tensor stats = zeros({3, 2}, DType::F64);
  {
    NoGradGuard no_grad;
    stats.select(1, 1).fill_(1.0);
  }
  Tensor rm = stats.select(1, 0), rv = stats.select(1, 1);
  REQUIRE_FALSE(rm.is_contiguous());
  std::vector<double> rm_ref(3, 0.0), rv_ref(3, 1.0);
  reference_bn(x.to_vector<double>(), 6, 3, 4, {}, {}, rm_ref, rv_ref, true, 0.3, 1e-5);
  batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.3);
  check_close(stats.select(1, 0).to_vector<double>(), rm_ref, 1e-13, "strided running_mean");
  check_close(stats.select(1, 1).to_vector<double>(), rv_ref, 1e-13, "strided running_var");
}

TEST_CASE("gradcheck: batch_norm training", "[batchnorm][grad]") {
  uint64_t seed = 300;
  for (const Shape& shape : {Shape{3, 4, 5, 3}, Shape{5, 3, 7}, Shape{7, 4}, Shape{2, 3, 1, 1}}) {
    const int64_t C = shape[1];
    const Tensor x = normal64(shape, seed++) * 2.0 + 1.0;
    const Tensor w = normal64({C}, seed++), b = normal64({C}, seed++);
    // The running buffers change on every call but do not enter the training output.
    Tensor rm = zeros({C}, DType::F64), rv = ones({C}, DType::F64);
    gradcheck("batch_norm train affine " + shape.str(),
              [rm, rv](const V& v) { return batch_norm(v[0], v[1], v[2], rm, rv, true); }, {x, w, b});
    gradcheck("batch_norm train no affine " + shape.str(),
              [](const V& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }, {x});
    gradcheck("batch_norm train weight only " + shape.str(),
              [](const V& v) { return batch_norm(v[0], v[1], Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3); },
              {x, w});
    // Gradients for some inputs only (x constant, then the parameters constant).
    gradcheck("batch_norm train params only " + shape.str(),
              [x](const V& v) { return batch_norm(x, v[0], v[1], Tensor(), Tensor(), true); }, {w, b});
    gradcheck("batch_norm train x only " + shape.str(),
              [w, b](const V& v) { return batch_norm(v[0], w, b, Tensor(), Tensor(), true); }, {x});
    // Composed with a nonlinearity so the output gradient is not just the random projection.
    gradcheck("batch_norm train then tanh " + shape.str(),
              [](const V& v) { return tanh(batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true)); }, {x, w, b});
  }
}

TEST_CASE("batch_norm groups: one call on G batches back to back equals G calls in order", "[batchnorm]") {
  // Values, running statistics (updated group after group) and the gradients of x, weight and bias.
  const int64_t G = 3, Ng = 4, C = 5, S = 6;
  const Tensor x = normal64({G * Ng, C, S}, 500) * 2.0 + 1.0;
  const Tensor w = normal64({C}, 501), b = normal64({C}, 502), gy = normal64({G * Ng, C, S}, 503);
  Tensor rm1 = normal64({C}, 504), rv1 = positive({C}, 505);
  Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
  Tensor x1 = x.clone().set_requires_grad(true), w1 = w.clone().set_requires_grad(true),
         b1 = b.clone().set_requires_grad(true);
  const Tensor y1 = batch_norm(x1, w1, b1, rm1, rv1, true, 0.1, 1e-5, G);
  sum(mul(y1, gy)).backward();
  Tensor x2 = x.clone().set_requires_grad(true), w2 = w.clone().set_requires_grad(true),
         b2 = b.clone().set_requires_grad(true);
  std::vector<Tensor> parts;
  for (int64_t g = 0; g < G; ++g) parts.push_back(batch_norm(x2.narrow(0, g * Ng, Ng), w2, b2, rm2, rv2, true));
  const Tensor y2 = concat(parts, 0);
  sum(mul(y2, gy)).backward();
  check_close(y1.to_vector<double>(), y2.to_vector<double>(), 1e-12, "y");
  check_close(rm1.to_vector<double>(), rm2.to_vector<double>(), 1e-12, "running_mean");
  check_close(rv1.to_vector<double>(), rv2.to_vector<double>(), 1e-12, "running_var");
  check_close(x1.grad().to_vector<double>(), x2.grad().to_vector<double>(), 1e-12, "dx");
  check_close(w1.grad().to_vector<double>(), w2.grad().to_vector<double>(), 1e-12, "dweight");
  check_close(b1.grad().to_vector<double>(), b2.grad().to_vector<double>(), 1e-12, "dbias");
  // Groups are about batch statistics: eval mode ignores them.
  check_close(batch_norm(x, w, b, rm1, rv1, false, 0.1, 1e-5, G).to_vector<double>(),
              batch_norm(x, w, b, rm1, rv1, false).to_vector<double>(), 0, "eval");
  gradcheck("batch_norm train, 3 groups",
            [G](const V& v) { return tanh(batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1, 1e-5, G)); },
            {x, w, b});
  CHECK_THROWS_WITH(batch_norm(x, w, b, Tensor(), Tensor(), true, 0.1, 1e-5, 5),
                    Catch::Contains("5 groups do not divide the batch of input F64[12, 5, 6]"));
}

TEST_CASE("gradcheck: batch_norm eval", "[batchnorm][grad]") {
  uint64_t seed = 400;
  for (const Shape& shape : {Shape{3, 4, 5, 3}, Shape{5, 3, 7}, Shape{7, 4}, Shape{1, 3}}) {
    const int64_t C = shape[1];
    const Tensor x = normal64(shape, seed++);
    const Tensor w = normal64({C}, seed++), b = normal64({C}, seed++);
    const Tensor rm = normal64({C}, seed++), rv = positive({C}, seed++);
    gradcheck("batch_norm eval affine " + shape.str(),
              [rm, rv](const V& v) { return batch_norm(v[0], v[1], v[2], rm, rv, false); }, {x, w, b});
    gradcheck("batch_norm eval no affine " + shape.str(),
              [rm, rv](const V& v) { return batch_norm(v[0], Tensor(), Tensor(), rm, rv, false); }, {x});
  }
}

TEST_CASE("batch_norm rejects bad inputs with clear errors", "[batchnorm]") {
  const Tensor x = normal64({4, 3, 5}, 1);
  const Tensor c3 = ones({3}, DType::F64), c4 = ones({4}, DType::F64);
  using Catch::Contains;
  CHECK_THROWS_WITH(batch_norm(normal64({6}, 2), Tensor(), Tensor(), Tensor(), Tensor(), true),
                    Contains("batch_norm") && Contains("(N, C)") && Contains("[6]"));
  CHECK_THROWS_WITH(batch_norm(normal64({2, 3, 2, 2, 2}, 3), Tensor(), Tensor(), Tensor(), Tensor(), true),
                    Contains("batch_norm") && Contains("[2, 3, 2, 2, 2]"));
  CHECK_THROWS_WITH(batch_norm(x, c4, Tensor(), Tensor(), Tensor(), true),
                    Contains("batch_norm: weight") && Contains("[4]") && Contains("[3]"));
  CHECK_THROWS_WITH(batch_norm(x, c3, c4, Tensor(), Tensor(), true), Contains("batch_norm: bias"));
  CHECK_THROWS_WITH(batch_norm(x, c3, c3, ones({3, 1}, DType::F64), c3, true), Contains("batch_norm: running_mean"));
  CHECK_THROWS_WITH(batch_norm(x, c3, c3, c3, c4, false), Contains("batch_norm: running_var"));
  CHECK_THROWS_WITH(batch_norm(x, ones({3}), Tensor(), Tensor(), Tensor(), true), Contains("dtype mismatch"));
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), c3, Tensor(), true), Contains("both defined"));
  CHECK_THROWS_WITH(batch_norm(x, c3, c3, Tensor(), Tensor(), false),
                    Contains("eval mode") && Contains("running_mean"));
  CHECK_THROWS_WITH(batch_norm(from_vector<int64_t>({1, 2, 3, 4}, {2, 2}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                    Contains("batch_norm") && Contains("F32 or F64"));

  // One value per channel cannot give a batch variance in training; eval is fine.
  Tensor rm = zeros({3}, DType::F64), rv = ones({3}, DType::F64);
  for (const Shape& shape : {Shape{1, 3}, Shape{1, 3, 1}, Shape{1, 3, 1, 1}}) {
    CHECK_THROWS_WITH(batch_norm(normal64(shape, 5), c3, c3, rm, rv, true),
                      Contains("more than 1 value per channel when training") && Contains(shape.str()));
    CHECK_NOTHROW(batch_norm(normal64(shape, 5), c3, c3, rm, rv, false));
  }
  // A failed call leaves the running statistics untouched.
  CHECK(rm.to_vector<double>() == std::vector<double>(3, 0.0));
  CHECK(rv.to_vector<double>() == std::vector<double>(3, 1.0));
  // One sample with several spatial positions is enough.
  CHECK_NOTHROW(batch_norm(normal64({1, 3, 2}, 6), c3, c3, rm, rv, true));
}

TEST_CASE("batch_norm on an empty batch", "[batchnorm]") {
  const Tensor x = zeros({0, 3, 4}, DType::F64);
  Tensor rm = zeros({3}, DType::F64), rv = ones({3}, DType::F64);
  const Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  CHECK(y.shape() == x.shape());
  CHECK(rm.to_vector<double>() == std::vector<double>(3, 0.0));
  CHECK(rv.to_vector<double>() == std::vector<double>(3, 1.0));
}
