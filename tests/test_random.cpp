// Philox4x32-10 known answers, uniform/normal/Gumbel transforms, generator state, rand/randn statistics
// and dropout masks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/philox.h"
#include "kernels/random.h"

using namespace stgs;
using kernels::Philox4;

namespace {

void check_philox(Philox4 counter, uint32_t k0, uint32_t k1, Philox4 expect) {
  const Philox4 got = kernels::philox4x32_10(counter, k0, k1);
  for (int i = 0; i < 4; ++i) {
    INFO("word " << i);
    CHECK(got.v[i] == expect.v[i]);
  }
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

double var_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / double(v.size() - 1);
}

}  // namespace

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors", "[random]") {
  check_philox(Philox4{{0, 0, 0, 0}}, 0, 0, Philox4{{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  check_philox(Philox4{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
               Philox4{{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  check_philox(Philox4{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
               Philox4{{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST_CASE("philox_bits addresses (seed, element) as block e/4, lane e%4", "[random]") {
  const uint64_t seed = 0x0123456789abcdefull;
  for (uint64_t block : {uint64_t(0), uint64_t(1), uint64_t(7), (uint64_t(1) << 32) + 5}) {
    const Philox4 r = kernels::philox4x32_10(Philox4{{uint32_t(block), uint32_t(block >> 32), 0, 0}},
                                             uint32_t(seed), uint32_t(seed >> 32));
    for (uint64_t lane = 0; lane < 4; ++lane) CHECK(kernels::philox_bits(seed, block * 4 + lane) == r.v[lane]);
  }
  // The high half of the seed matters.
  CHECK(kernels::philox_bits(1, 0) != kernels::philox_bits(1 + (uint64_t(1) << 32), 0));
}

TEST_CASE("uniforms are strictly inside (0, 1), even for extreme bit patterns", "[random]") {
  for (uint32_t bits : {0u, 1u, 511u, 512u, 0x7fffffffu, 0x80000000u, 0xfffffe00u, 0xfffffffeu, 0xffffffffu}) {
    INFO("bits " << bits);
    const float f = kernels::uniform_from_bits_f32(bits);
    const double d = kernels::uniform_from_bits_f64(bits);
    CHECK(f > 0.0f);
    CHECK(f < 1.0f);
    CHECK(d > 0.0);
    CHECK(d < 1.0);
    // Gumbel noise from them is finite.
    CHECK(std::isfinite(-std::log(-std::log(f))));
    CHECK(std::isfinite(-std::log(-std::log(d))));
  }
  CHECK(kernels::uniform_from_bits_f32(0) == Approx(std::ldexp(1.0, -24)).epsilon(0));
  CHECK(double(kernels::uniform_from_bits_f32(0xffffffffu)) == 1.0 - std::ldexp(1.0, -24));
  CHECK(kernels::uniform_from_bits_f64(0) == std::ldexp(1.0, -33));
  CHECK(kernels::uniform_from_bits_f64(0xffffffffu) == 1.0 - std::ldexp(1.0, -33));
  // Monotone in the bits.
  CHECK(kernels::uniform_from_bits_f32(0x12345678u) < kernels::uniform_from_bits_f32(0x92345678u));
  CHECK(kernels::uniform_from_bits_f64(0x12345678u) < kernels::uniform_from_bits_f64(0x12345679u));
}

TEST_CASE("philox_gumbel and philox_normal are finite over many draws", "[random]") {
  double gsum = 0;
  const int n = 200000;
  for (int e = 0; e < n; ++e) {
    const float g = kernels::philox_gumbel<float>(42, uint64_t(e));
    const double gd = kernels::philox_gumbel<double>(42, uint64_t(e));
    REQUIRE(std::isfinite(g));
    REQUIRE(std::isfinite(gd));
    gsum += gd;
    if (e % 4 == 0) {
      REQUIRE(std::isfinite(kernels::philox_normal<float>(42, uint64_t(e))));
      REQUIRE(std::isfinite(kernels::philox_normal<double>(42, uint64_t(e))));
    }
  }
  // Gumbel(0, 1) has mean = Euler-Mascheroni constant.
  CHECK(gsum / n == Approx(0.5772156649).margin(0.02));
}

TEST_CASE("same seed gives identical rand/randn, other seeds or offsets differ", "[random]") {
  for (DType dt : {DType::F32, DType::F64}) {
    Generator a(123), b(123), c(124);
    const Tensor ra = rand(Shape{5, 7}, dt, Device::cpu(), &a);
    const Tensor rb = rand(Shape{5, 7}, dt, Device::cpu(), &b);
    const Tensor rc = rand(Shape{5, 7}, dt, Device::cpu(), &c);
    CHECK(ra.dtype() == dt);
    CHECK(ra.shape() == Shape{5, 7});
    CHECK(ra.to_vector<double>() == rb.to_vector<double>());
    CHECK(ra.to_vector<double>() != rc.to_vector<double>());
    // The next draw from the same generator continues at the advanced offset: different numbers.
    const Tensor ra2 = rand(Shape{5, 7}, dt, Device::cpu(), &a);
    CHECK(ra2.to_vector<double>() != ra.to_vector<double>());

    const Tensor na = randn(Shape{33}, dt, Device::cpu(), &a);
    const Tensor nb = randn(Shape{33}, dt, Device::cpu(), &b);  // b is one rand behind a
    CHECK(na.to_vector<double>() != nb.to_vector<double>());
    const Tensor nb2 = randn(Shape{33}, dt, Device::cpu(), &b);
    (void)nb2;
  }
  // randn with equal state is identical; with a different seed not.
  Generator x(9), y(9), z(10);
  CHECK(randn(Shape{100}, DType::F32, Device::cpu(), &x).to_vector<float>() ==
        randn(Shape{100}, DType::F32, Device::cpu(), &y).to_vector<float>());
  Generator x2(9);
  CHECK(randn(Shape{100}, DType::F32, Device::cpu(), &x2).to_vector<float>() !=
        randn(Shape{100}, DType::F32, Device::cpu(), &z).to_vector<float>());
}

TEST_CASE("uniform fills and dropout masks match philox_uniform at every offset and length", "[random]") {
  // The CPU kernels compute 16 Philox blocks (64 counters) at a time: offsets and lengths around those
  // boundaries, and one large enough for the parallel loop.
  for (uint64_t offset : {uint64_t(0), uint64_t(1), uint64_t(3), uint64_t(5), uint64_t(63), uint64_t(64),
                          uint64_t(65), uint64_t(1000003), (uint64_t(1) << 32) - 7}) {
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(63), int64_t(64), int64_t(65), int64_t(200), int64_t(20001)}) {
      std::vector<float> u(size_t(n), -1.0f), x(size_t(n), 2.0f), y(size_t(n), -1.0f);
      kernels::cpu::uniform_fill<float>(u.data(), n, 99, offset, 0.0f, 1.0f);
      kernels::cpu::dropout_fwd<float>(y.data(), x.data(), n, 0.5f, 99, offset);
      int64_t mismatches = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float want = kernels::philox_uniform<float>(99, offset + uint64_t(i));
        mismatches += u[size_t(i)] != want;
        mismatches += y[size_t(i)] != (want >= 0.5f ? 4.0f : 0.0f);
      }
      INFO("offset " << offset << ", n " << n);
      CHECK(mismatches == 0);
    }
  }
  std::vector<double> d(77);
  kernels::cpu::uniform_fill<double>(d.data(), 77, 5, 61, 0.0, 1.0);
  for (int i = 0; i < 77; ++i) CHECK(d[size_t(i)] == kernels::philox_uniform<double>(5, 61 + uint64_t(i)));
}

TEST_CASE("rand matches philox_uniform at the generator's offset", "[random]") {
  Generator g(77);
  g.set_state(77, 8);
  const std::vector<float> v = rand(Shape{10}, DType::F32, Device::cpu(), &g).to_vector<float>();
  for (int i = 0; i < 10; ++i) CHECK(v[size_t(i)] == kernels::philox_uniform<float>(77, 8 + uint64_t(i)));
  // Range mapping lo + (hi - lo) * u.
  g.set_state(77, 8);
  const std::vector<double> w = rand(Shape{10}, DType::F64, Device::cpu(), &g, -2.0, 3.0).to_vector<double>();
  for (int i = 0; i < 10; ++i) {
    CHECK(w[size_t(i)] == Approx(-2.0 + 5.0 * kernels::philox_uniform<double>(77, 8 + uint64_t(i))));
    CHECK(w[size_t(i)] > -2.0);
    CHECK(w[size_t(i)] < 3.0);
  }
}

TEST_CASE("generator offsets advance by multiples of 4 and set_state reproduces a draw", "[random]") {
  Generator g(5);
  CHECK(g.seed() == 5);
  CHECK(g.offset() == 0);
  (void)rand(Shape{3}, DType::F32, Device::cpu(), &g);
  CHECK(g.offset() == 4);
  (void)rand(Shape{4}, DType::F32, Device::cpu(), &g);
  CHECK(g.offset() == 8);
  (void)rand(Shape{5}, DType::F32, Device::cpu(), &g);
  CHECK(g.offset() == 16);
  (void)randn(Shape{3}, DType::F32, Device::cpu(), &g);
  CHECK(g.offset() == 28);
  (void)rand(Shape{0}, DType::F32, Device::cpu(), &g);
  CHECK(g.offset() == 28);
  CHECK(g.offset() % 4 == 0);

  const uint64_t seed = g.seed(), offset = g.offset();
  const std::vector<float> first = randn(Shape{17}, DType::F32, Device::cpu(), &g).to_vector<float>();
  const std::vector<float> after = rand(Shape{6}, DType::F32, Device::cpu(), &g).to_vector<float>();
  g.set_state(seed, offset);
  CHECK(randn(Shape{17}, DType::F32, Device::cpu(), &g).to_vector<float>() == first);
  CHECK(rand(Shape{6}, DType::F32, Device::cpu(), &g).to_vector<float>() == after);

  g.manual_seed(5);
  CHECK(g.offset() == 0);
  CHECK(g.seed() == 5);
  Generator fresh(5);
  CHECK(rand(Shape{9}, DType::F32, Device::cpu(), &g).to_vector<float>() ==
        rand(Shape{9}, DType::F32, Device::cpu(), &fresh).to_vector<float>());
}

TEST_CASE("the default generator is reseeded by manual_seed", "[random]") {
  manual_seed(2024);
  const std::vector<float> a = rand(Shape{8}).to_vector<float>();
  const std::vector<float> b = randn(Shape{8}).to_vector<float>();
  manual_seed(2024);
  CHECK(rand(Shape{8}).to_vector<float>() == a);
  CHECK(randn(Shape{8}).to_vector<float>() == b);
  CHECK(default_generator().offset() == 4 * 8 + 8);
}

TEST_CASE("rand and randn have the right moments", "[random]") {
  Generator g(31337);
  for (DType dt : {DType::F32, DType::F64}) {
    const std::vector<double> u = rand(Shape{100000}, dt, Device::cpu(), &g).to_vector<double>();
    double lo = 1, hi = 0;
    for (double x : u) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    CHECK(lo > 0.0);
    CHECK(hi < 1.0);
    CHECK(mean_of(u) == Approx(0.5).margin(0.01));
    CHECK(var_of(u) == Approx(1.0 / 12).margin(0.003));

    const std::vector<double> n = randn(Shape{100000}, dt, Device::cpu(), &g, 2.0, 3.0).to_vector<double>();
    for (double x : n) REQUIRE(std::isfinite(x));
    CHECK(mean_of(n) == Approx(2.0).margin(0.05));
    CHECK(std::sqrt(var_of(n)) == Approx(3.0).margin(0.05));
    // About 68% within one standard deviation.
    int64_t inside = 0;
    for (double x : n) inside += std::abs(x - 2.0) < 3.0;
    CHECK(double(inside) / double(n.size()) == Approx(0.6827).margin(0.01));
  }
}

TEST_CASE("rand/randn reject non-floating dtypes without consuming counters", "[random]") {
  Generator g(4);
  (void)rand(Shape{3}, DType::F32, Device::cpu(), &g);
  CHECK_THROWS_WITH(rand(Shape{3}, DType::I64, Device::cpu(), &g), Catch::Contains("rand") && Catch::Contains("I64"));
  CHECK_THROWS_WITH(randn(Shape{3}, DType::U8, Device::cpu(), &g), Catch::Contains("randn") && Catch::Contains("U8"));
  CHECK(g.offset() == 4);
}

TEST_CASE("set_state refuses offsets inside a Philox block", "[random]") {
  Generator g(1);
  CHECK_THROWS_WITH(g.set_state(1, 6), Catch::Contains("multiple of 4"));
  CHECK(g.offset() == 0);
  CHECK_NOTHROW(g.set_state(1, 8));
  CHECK(g.offset() == 8);
}

TEST_CASE("rand stays strictly inside (lo, hi) where lo + (hi - lo) * u rounds onto an end", "[random]") {
  // Seed 1 has bits 0xfffffe7d at element 9769685 (u = 1 - 2^-24) and 0x00000186 at element 7112849
  // (u = 2^-24); on [1, 2) in F32 both round to an end point without care.
  REQUIRE(kernels::philox_bits(1, 9769685) >> 9 == 0x7fffffu);
  REQUIRE(kernels::philox_bits(1, 7112849) >> 9 == 0u);
  Generator g(1);
  g.set_state(1, 9769684);
  const std::vector<float> hi = rand(Shape{2}, DType::F32, Device::cpu(), &g, 1.0, 2.0).to_vector<float>();
  CHECK(hi[1] < 2.0f);
  CHECK(hi[1] == std::nextafter(2.0f, 1.0f));
  g.set_state(1, 7112848);
  const std::vector<float> lo = rand(Shape{2}, DType::F32, Device::cpu(), &g, 1.0, 2.0).to_vector<float>();
  CHECK(lo[1] > 1.0f);
  CHECK(lo[1] == std::nextafter(1.0f, 2.0f));
  // Values that do not round are left alone.
  g.set_state(1, 9769684);
  const std::vector<float> unit = rand(Shape{2}, DType::F32, Device::cpu(), &g).to_vector<float>();
  CHECK(unit[1] == kernels::uniform_from_bits_f32(kernels::philox_bits(1, 9769685)));
  CHECK(unit[0] == kernels::uniform_from_bits_f32(kernels::philox_bits(1, 9769684)));
}

TEST_CASE("dropout masks follow the generator state and the backward uses the same mask", "[random]") {
  const Tensor x = ones(Shape{40, 50}, DType::F64).set_requires_grad(true);
  Generator g1(11), g2(11);
  const Tensor y1 = dropout(x, 0.3, true, &g1);
  const Tensor y2 = dropout(x, 0.3, true, &g2);
  const std::vector<double> v1 = y1.to_vector<double>();
  CHECK(v1 == y2.to_vector<double>());
  CHECK(g1.offset() == 2000);

  // Another draw from the same generator gives another mask.
  const Tensor y3 = dropout(x, 0.3, true, &g1);
  CHECK(y3.to_vector<double>() != v1);

  // Kept elements are scaled by 1/(1-p), dropped ones are zero; about 70% are kept.
  int64_t kept = 0;
  for (double v : v1) {
    if (v != 0) {
      CHECK(v == Approx(1.0 / 0.7));
      ++kept;
    }
  }
  CHECK(double(kept) / double(v1.size()) == Approx(0.7).margin(0.03));

  // The backward pass reuses the mask: dL/dx = mask / (1 - p) * upstream.
  const Tensor w = arange(0, 2000, 1, DType::F64).reshape(Shape{40, 50});
  sum(mul(y1, w)).backward();
  const std::vector<double> gx = x.grad().to_vector<double>();
  const std::vector<double> wv = w.to_vector<double>();
  for (size_t i = 0; i < gx.size(); ++i) {
    const double expect = v1[i] != 0 ? wv[i] / 0.7 : 0.0;
    REQUIRE(gx[i] == Approx(expect));
  }

  // Mask matches the kernel rule: kept where u(seed, offset + i) >= p.
  for (size_t i = 0; i < v1.size(); i += 97)
    CHECK((v1[i] != 0) == (kernels::philox_uniform<double>(11, i) >= 0.3));
}

TEST_CASE("dropout keeps about 1-p of a large tensor and is the identity in eval mode", "[random]") {
  Generator g(99);
  const Tensor x = ones(Shape{100000});
  for (double p : {0.1, 0.5, 0.9}) {
    const std::vector<float> y = dropout(x, p, true, &g).to_vector<float>();
    int64_t kept = 0;
    for (float v : y) kept += v != 0;
    CHECK(double(kept) / double(y.size()) == Approx(1 - p).margin(0.01));
  }
  const uint64_t before = g.offset();
  const Tensor r = randn(Shape{4, 5}, DType::F32, Device::cpu(), &g);
  const uint64_t mid = g.offset();
  const Tensor e = dropout(r, 0.5, false, &g);
  CHECK(e.to_vector<float>() == r.to_vector<float>());
  CHECK(g.offset() == mid);  // eval mode draws nothing
  CHECK(before < mid);
  const Tensor z = dropout(r, 0.0, true, &g);
  CHECK(z.to_vector<float>() == r.to_vector<float>());
  CHECK_THROWS_WITH(dropout(r, 1.0, true, &g), Catch::Contains("dropout"));
  CHECK_THROWS_WITH(dropout(r, -0.1, true, &g), Catch::Contains("dropout"));
}
