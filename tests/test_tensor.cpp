// Tensor factories, metadata, views and their storage semantics, copies and dtype conversions, printing,
// broadcasting elementwise ops against hand loops, error messages, and the CPU caching allocator.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "engine/storage.h"
#include "engine/tensor.h"

using namespace stgs;

namespace {

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

std::vector<double> iota(int64_t n, double start = 0) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = start + double(i);
  return v;
}

// 0, 1, 2, ... as a tensor of the given shape and dtype.
Tensor seq(const Shape& shape, DType dt = DType::F32) { return arange(0, double(shape.numel()), 1, dt).reshape(shape); }

bool same_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }

}  // namespace

// ---- factories ----------------------------------------------------------------------------------

TEST_CASE("zeros, ones, full and scalar", "[tensor]") {
  const Tensor z = zeros(Shape{2, 3});
  CHECK(z.dtype() == DType::F32);
  CHECK(z.device() == Device::cpu());
  CHECK(z.shape() == Shape{2, 3});
  CHECK(vals(z) == std::vector<double>(6, 0.0));
  CHECK(vals(ones(Shape{4}, DType::F64)) == std::vector<double>(4, 1.0));
  CHECK(vals(full(Shape{2, 2}, -3.5, DType::F64)) == std::vector<double>(4, -3.5));
  CHECK(full(Shape{3}, 7, DType::I64).to_vector<int64_t>() == std::vector<int64_t>{7, 7, 7});
  CHECK(full(Shape{3}, 200, DType::U8).to_vector<uint8_t>() == std::vector<uint8_t>{200, 200, 200});
  CHECK(full(Shape{2}, -9, DType::I32).to_vector<int32_t>() == std::vector<int32_t>{-9, -9});
  CHECK(vals(full(Shape{2}, 1.5, DType::BF16)) == std::vector<double>{1.5, 1.5});
  CHECK(vals(full(Shape{2}, -0.25, DType::F16)) == std::vector<double>{-0.25, -0.25});

  const Tensor s = scalar(2.5);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.shape() == Shape{});
  CHECK(s.item() == 2.5);
  CHECK(scalar(3, DType::I64).item() == 3.0);

  const Tensor e = zeros(Shape{0, 4});
  CHECK(e.numel() == 0);
  CHECK(vals(e).empty());
  CHECK(zeros(Shape{}).numel() == 1);
}

TEST_CASE("arange", "[tensor]") {
  CHECK(vals(arange(0, 5)) == iota(5));
  CHECK(vals(arange(1, 2, 0.25, DType::F64)) == std::vector<double>{1, 1.25, 1.5, 1.75});
  CHECK(vals(arange(5, 0, -2)) == std::vector<double>{5, 3, 1});
  CHECK(arange(0, 0).numel() == 0);
  CHECK(arange(3, 1).numel() == 0);
  CHECK(arange(-2, 2, 1, DType::I64).to_vector<int64_t>() == std::vector<int64_t>{-2, -1, 0, 1});
  CHECK(arange(0, 5).shape() == Shape{5});
  CHECK_THROWS_WITH(arange(0, 1, 0), Catch::Contains("step"));
}

TEST_CASE("from_vector", "[tensor]") {
  const Tensor t = from_vector<float>({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  CHECK(t.dtype() == DType::F32);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(from_vector<int64_t>({-1, 5}, Shape{2}).dtype() == DType::I64);
  CHECK(from_vector<int32_t>({-1, 5}, Shape{2}).dtype() == DType::I32);
  CHECK(from_vector<uint8_t>({1, 0}, Shape{2}).dtype() == DType::U8);
  CHECK(from_vector<double>({}, Shape{0, 3}).numel() == 0);
  CHECK_THROWS_WITH(from_vector<float>({1, 2, 3}, Shape{2, 2}), Catch::Contains("3 values") && Catch::Contains("[2, 2]"));
}

TEST_CASE("rand and randn shapes and ranges", "[tensor]") {
  Generator g(1);
  const Tensor r = rand(Shape{3, 4, 5}, DType::F32, Device::cpu(), &g);
  CHECK(r.shape() == Shape{3, 4, 5});
  CHECK(r.is_contiguous());
  for (double v : vals(r)) {
    CHECK(v > 0);
    CHECK(v < 1);
  }
  const Tensor r2 = rand(Shape{1000}, DType::F64, Device::cpu(), &g, 5, 6);
  for (double v : vals(r2)) {
    REQUIRE(v > 5);
    REQUIRE(v < 6);
  }
  const Tensor n = randn(Shape{2, 0, 3}, DType::F64, Device::cpu(), &g);
  CHECK(n.shape() == Shape{2, 0, 3});
  CHECK(n.numel() == 0);
  const Tensor m = randn(Shape{7}, DType::F64, Device::cpu(), &g, 100, 0);
  CHECK(vals(m) == std::vector<double>(7, 100.0));
}

// ---- metadata -----------------------------------------------------------------------------------

TEST_CASE("metadata", "[tensor]") {
  const Tensor t = zeros(Shape{2, 3, 4}, DType::F64);
  CHECK(t.defined());
  CHECK_FALSE(Tensor().defined());
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.size(0) == 2);
  CHECK(t.size(-1) == 4);
  CHECK(t.size(-3) == 2);
  CHECK_THROWS_WITH(t.size(3), Catch::Contains("size") && Catch::Contains("out of range"));
  CHECK_THROWS(t.size(-4));
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.offset() == 0);
  CHECK(t.str() == "F64[2, 3, 4] cpu");
  CHECK(scalar(1).str() == "F32[] cpu");
  CHECK(Tensor().str() == "undefined tensor");
  CHECK_FALSE(t.requires_grad());
  CHECK(t.is_leaf());
  CHECK_FALSE(t.grad().defined());
}

TEST_CASE("is_contiguous", "[tensor]") {
  const Tensor t = zeros(Shape{3, 4});
  CHECK(t.is_contiguous());
  CHECK_FALSE(t.transpose(0, 1).is_contiguous());
  CHECK(t.slice(0, 1, 3).is_contiguous());
  CHECK_FALSE(t.slice(1, 1, 3).is_contiguous());
  CHECK_FALSE(t.slice(0, 0, 3, 2).is_contiguous());
  CHECK(t.unsqueeze(1).is_contiguous());
  CHECK(t.select(0, 1).is_contiguous());
  CHECK_FALSE(t.select(1, 1).is_contiguous());
  CHECK_FALSE(zeros(Shape{3, 1}).expand(Shape{3, 4}).is_contiguous());
  CHECK(zeros(Shape{1, 4}).expand(Shape{1, 4}).is_contiguous());
  CHECK(scalar(1).is_contiguous());
  // Size-1 dimensions may carry any stride.
  CHECK(make_view(t, Shape{3, 1, 4}, Shape{4, 999, 1}, 0).is_contiguous());
  CHECK(zeros(Shape{4, 1}).transpose(0, 1).is_contiguous());
  // Tensors without elements are contiguous whatever their strides.
  const Tensor empty_cols = t.slice(1, 4, 4);
  CHECK(empty_cols.shape() == Shape{3, 0});
  CHECK(empty_cols.is_contiguous());
  CHECK(empty_cols.view(Shape{0, 7}).shape() == Shape{0, 7});
  CHECK(t.transpose(0, 1).slice(0, 1, 1).is_contiguous());
}

// ---- views -----------------------------------------------------------------------------------------

TEST_CASE("reshape is a view when contiguous and a copy otherwise", "[tensor]") {
  const Tensor t = seq(Shape{2, 3, 4});
  const Tensor r = t.reshape(Shape{6, 4});
  CHECK(r.shape() == Shape{6, 4});
  CHECK(same_storage(r, t));
  CHECK(vals(r) == iota(24));
  CHECK(t.reshape(Shape{-1}).shape() == Shape{24});
  CHECK(t.reshape(Shape{4, -1}).shape() == Shape{4, 6});
  CHECK(t.reshape(Shape{-1, 2, 3}).shape() == Shape{4, 2, 3});
  CHECK(t.reshape(Shape{1, 24, 1}).shape() == Shape{1, 24, 1});
  CHECK(scalar(3).reshape(Shape{1, 1}).shape() == Shape{1, 1});
  CHECK(seq(Shape{1}).reshape(Shape{}).dim() == 0);

  const Tensor tt = t.transpose(1, 2);  // [2, 4, 3], not contiguous
  const Tensor rc = tt.reshape(Shape{8, 3});
  CHECK_FALSE(same_storage(rc, t));
  std::vector<double> expect;
  for (int a = 0; a < 2; ++a)
    for (int c = 0; c < 4; ++c)
      for (int b = 0; b < 3; ++b) expect.push_back(a * 12 + b * 4 + c);
  CHECK(vals(rc) == expect);

  CHECK_THROWS_WITH(t.reshape(Shape{5, 5}), Catch::Contains("reshape") && Catch::Contains("[5, 5]"));
  CHECK_THROWS_WITH(t.reshape(Shape{-1, -1}), Catch::Contains("more than one -1"));
  CHECK_THROWS_WITH(t.reshape(Shape{5, -1}), Catch::Contains("reshape"));
  CHECK_THROWS_WITH(t.reshape(Shape{-2, -12}), Catch::Contains("negative"));
}

TEST_CASE("view refuses non-contiguous tensors", "[tensor]") {
  const Tensor t = seq(Shape{3, 4});
  CHECK(same_storage(t.view(Shape{12}), t));
  CHECK(t.view(Shape{2, -1}).shape() == Shape{2, 6});
  CHECK_THROWS_WITH(t.transpose(0, 1).view(Shape{12}), Catch::Contains("view") && Catch::Contains("contiguous"));
  CHECK_THROWS(t.slice(1, 0, 4, 2).view(Shape{6}));
}

TEST_CASE("flatten", "[tensor]") {
  const Tensor t = seq(Shape{2, 3, 4, 5});
  CHECK(t.flatten().shape() == Shape{120});
  CHECK(t.flatten(1).shape() == Shape{2, 60});
  CHECK(t.flatten(1, 2).shape() == Shape{2, 12, 5});
  CHECK(t.flatten(-2, -1).shape() == Shape{2, 3, 20});
  CHECK(t.flatten(2, 2).shape() == Shape{2, 3, 4, 5});
  CHECK(scalar(1).flatten().shape() == Shape{1});
  CHECK(vals(t.transpose(0, 3).flatten()).size() == 120);
  CHECK_THROWS_WITH(t.flatten(2, 1), Catch::Contains("flatten"));
  CHECK_THROWS_WITH(t.flatten(0, 4), Catch::Contains("flatten"));
}

TEST_CASE("slice with negative, clamped bounds and steps", "[tensor]") {
  const Tensor t = seq(Shape{10});
  CHECK(vals(t.slice(0, 2, 5)) == std::vector<double>{2, 3, 4});
  CHECK(vals(t.slice(0, -3, 10)) == std::vector<double>{7, 8, 9});
  CHECK(vals(t.slice(0, -3, -1)) == std::vector<double>{7, 8});
  CHECK(vals(t.slice(0, -100, 2)) == std::vector<double>{0, 1});
  CHECK(vals(t.slice(0, 8, 100)) == std::vector<double>{8, 9});
  CHECK(t.slice(0, 5, 2).numel() == 0);
  CHECK(t.slice(0, 100, 200).numel() == 0);
  CHECK(t.slice(0, 10, 10).shape() == Shape{0});
  CHECK(vals(t.slice(0, 0, 10, 3)) == std::vector<double>{0, 3, 6, 9});
  CHECK(vals(t.slice(0, 1, 10, 3)) == std::vector<double>{1, 4, 7});
  CHECK(vals(t.slice(0, 1, 9, 4)) == std::vector<double>{1, 5});
  CHECK(vals(t.slice(0, -4, 100, 2)) == std::vector<double>{6, 8});
  CHECK_THROWS_WITH(t.slice(0, 0, 5, 0), Catch::Contains("step"));
  CHECK_THROWS_WITH(t.slice(0, 0, 5, -1), Catch::Contains("step"));
  CHECK_THROWS_WITH(t.slice(1, 0, 5), Catch::Contains("slice") && Catch::Contains("out of range"));

  const Tensor m = seq(Shape{4, 6});
  const Tensor s = m.slice(1, 1, 6, 2).slice(0, -2, 4);  // rows 2,3; cols 1,3,5
  CHECK(s.shape() == Shape{2, 3});
  CHECK(s.strides() == Shape{6, 2});
  CHECK(s.offset() == 13);
  CHECK(vals(s) == std::vector<double>{13, 15, 17, 19, 21, 23});
  CHECK(same_storage(s, m));
  CHECK(vals(m.slice(-1, 4, 6)) == std::vector<double>{4, 5, 10, 11, 16, 17, 22, 23});
}

TEST_CASE("narrow and select", "[tensor]") {
  const Tensor m = seq(Shape{3, 4});
  CHECK(vals(m.narrow(1, 1, 2)) == std::vector<double>{1, 2, 5, 6, 9, 10});
  CHECK(vals(m.narrow(0, 2, 1)) == std::vector<double>{8, 9, 10, 11});
  CHECK(m.narrow(0, 3, 0).numel() == 0);
  CHECK_THROWS_WITH(m.narrow(1, 3, 2), Catch::Contains("narrow") && Catch::Contains("out of range"));
  CHECK_THROWS_WITH(m.narrow(1, -1, 1), Catch::Contains("narrow"));
  CHECK_THROWS_WITH(m.narrow(0, 0, 4), Catch::Contains("narrow"));

  CHECK(m.select(0, 1).shape() == Shape{4});
  CHECK(vals(m.select(0, 1)) == std::vector<double>{4, 5, 6, 7});
  CHECK(vals(m.select(1, -1)) == std::vector<double>{3, 7, 11});
  CHECK(vals(m.select(1, 0)) == std::vector<double>{0, 4, 8});
  CHECK(m.select(0, 2).select(0, 3).item() == 11);
  CHECK(same_storage(m.select(1, 2), m));
  CHECK_THROWS_WITH(m.select(0, 3), Catch::Contains("select") && Catch::Contains("out of range"));
  CHECK_THROWS(m.select(1, -5));
}

TEST_CASE("transpose and permute", "[tensor]") {
  const Tensor t = seq(Shape{2, 3, 4});
  const Tensor tr = t.transpose(0, 2);
  CHECK(tr.shape() == Shape{4, 3, 2});
  CHECK(tr.strides() == Shape{1, 4, 12});
  CHECK(same_storage(tr, t));
  const std::vector<double> v = vals(tr);
  for (int c = 0; c < 4; ++c)
    for (int b = 0; b < 3; ++b)
      for (int a = 0; a < 2; ++a) CHECK(v[size_t(c * 6 + b * 2 + a)] == a * 12 + b * 4 + c);
  CHECK(vals(t.transpose(-1, -2).transpose(1, 2)) == iota(24));

  const Tensor p = t.permute({1, 2, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(p.strides() == Shape{4, 1, 12});
  const std::vector<double> pv = vals(p);
  for (int b = 0; b < 3; ++b)
    for (int c = 0; c < 4; ++c)
      for (int a = 0; a < 2; ++a) CHECK(pv[size_t(b * 8 + c * 2 + a)] == a * 12 + b * 4 + c);
  CHECK(t.permute({-1, 0, 1}).shape() == Shape{4, 2, 3});
  CHECK(vals(p.permute({2, 0, 1})) == iota(24));
  CHECK_THROWS_WITH(t.permute({0, 1}), Catch::Contains("permute"));
  CHECK_THROWS_WITH(t.permute({0, 1, 1}), Catch::Contains("repeated"));
  CHECK_THROWS_WITH(t.permute({0, 1, 3}), Catch::Contains("permute"));
  CHECK_THROWS_WITH(t.transpose(0, 3), Catch::Contains("transpose"));
}

TEST_CASE("unsqueeze and squeeze", "[tensor]") {
  const Tensor t = seq(Shape{2, 3});
  CHECK(t.unsqueeze(0).shape() == Shape{1, 2, 3});
  CHECK(t.unsqueeze(1).shape() == Shape{2, 1, 3});
  CHECK(t.unsqueeze(2).shape() == Shape{2, 3, 1});
  CHECK(t.unsqueeze(-1).shape() == Shape{2, 3, 1});
  CHECK(t.unsqueeze(-3).shape() == Shape{1, 2, 3});
  CHECK(scalar(4).unsqueeze(0).shape() == Shape{1});
  CHECK(vals(t.unsqueeze(1)) == iota(6));
  CHECK(same_storage(t.unsqueeze(1), t));
  CHECK_THROWS(t.unsqueeze(3));
  CHECK_THROWS(t.unsqueeze(-4));

  const Tensor u = t.unsqueeze(1);
  CHECK(u.squeeze(1).shape() == Shape{2, 3});
  CHECK(u.squeeze(-2).shape() == Shape{2, 3});
  CHECK(seq(Shape{1}).squeeze(0).dim() == 0);
  CHECK_THROWS_WITH(t.squeeze(0), Catch::Contains("squeeze") && Catch::Contains("not 1"));
  // Unsqueezing a transposed tensor keeps the element order.
  CHECK(vals(t.transpose(0, 1).unsqueeze(1)) == std::vector<double>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("expand uses stride 0 and shares storage", "[tensor]") {
  const Tensor col = seq(Shape{3, 1});
  const Tensor e = col.expand(Shape{3, 4});
  CHECK(e.shape() == Shape{3, 4});
  CHECK(e.strides() == Shape{1, 0});
  CHECK(same_storage(e, col));
  CHECK(vals(e) == std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  const Tensor e2 = seq(Shape{4}).expand(Shape{2, 3, 4});
  CHECK(e2.strides() == Shape{0, 0, 1});
  CHECK(vals(e2.select(0, 1).select(0, 2)) == iota(4));
  CHECK(col.expand(Shape{-1, 5}).shape() == Shape{3, 5});
  CHECK(col.expand(Shape{2, 3, 1}).strides() == Shape{0, 1, 1});
  CHECK(seq(Shape{1}).expand(Shape{0}).numel() == 0);
  CHECK(vals(scalar(7).expand(Shape{2, 2})) == std::vector<double>(4, 7.0));
  CHECK_THROWS_WITH(col.expand(Shape{4, 4}), Catch::Contains("expand"));
  CHECK_THROWS_WITH(col.expand(Shape{4}), Catch::Contains("expand"));
  CHECK_THROWS_WITH(col.expand(Shape{-1, 3, 4}), Catch::Contains("expand"));
  CHECK_THROWS_WITH(col.expand(Shape{3, -2}), Catch::Contains("expand"));
  // A clone of an expanded tensor is a real, contiguous copy.
  const Tensor c = e.clone();
  CHECK(c.is_contiguous());
  CHECK(vals(c) == vals(e));
}

TEST_CASE("views share storage: writes through one are seen by the other", "[tensor]") {
  Tensor m = zeros(Shape{3, 4});
  Tensor row = m.select(0, 1);
  row.fill_(5);
  CHECK(vals(m) == std::vector<double>{0, 0, 0, 0, 5, 5, 5, 5, 0, 0, 0, 0});

  Tensor col = m.select(1, 2);  // non-contiguous view
  col.copy_(from_vector<float>({1, 2, 3}, Shape{3}));
  CHECK(vals(m) == std::vector<double>{0, 0, 1, 0, 5, 5, 2, 5, 0, 0, 3, 0});

  Tensor stepped = m.slice(1, 0, 4, 2);  // columns 0 and 2
  stepped.fill_(-1);
  CHECK(vals(m) == std::vector<double>{-1, 0, -1, 0, -1, 5, -1, 5, -1, 0, -1, 0});

  Tensor tr = m.transpose(0, 1);
  tr.copy_(seq(Shape{4, 3}));
  CHECK(vals(m) == std::vector<double>{0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});

  Tensor flat = m.reshape(Shape{12});
  flat.fill_(2);
  CHECK(vals(m) == std::vector<double>(12, 2.0));

  // Writes into the base show through a view too.
  Tensor v = m.narrow(0, 1, 2);
  m.copy_(seq(Shape{3, 4}));
  CHECK(vals(v) == iota(8, 4));

  // copy_ converts dtypes and accepts a non-contiguous source.
  Tensor d = zeros(Shape{4, 3}, DType::F64);
  d.copy_(seq(Shape{3, 4}).transpose(0, 1));
  CHECK(vals(d) == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK_THROWS_WITH(d.copy_(zeros(Shape{3, 4})), Catch::Contains("copy_"));

  // Filling a BF16 view.
  Tensor h = zeros(Shape{2, 3}, DType::BF16);
  h.slice(1, 1, 3).fill_(1.5);
  CHECK(vals(h) == std::vector<double>{0, 1.5, 1.5, 0, 1.5, 1.5});
}

TEST_CASE("copy_ between overlapping views of one tensor reads the source first", "[tensor]") {
  Tensor x = seq(Shape{6}, DType::F64);
  x.slice(0, 1, 6).copy_(x.slice(0, 0, 5));
  CHECK(vals(x) == std::vector<double>{0, 0, 1, 2, 3, 4});
  Tensor y = seq(Shape{6}, DType::F64);
  y.slice(0, 0, 5).copy_(y.slice(0, 1, 6));
  CHECK(vals(y) == std::vector<double>{1, 2, 3, 4, 5, 5});
  Tensor m = seq(Shape{3, 3});
  m.copy_(m.transpose(0, 1));
  CHECK(vals(m) == std::vector<double>{0, 3, 6, 1, 4, 7, 2, 5, 8});
  Tensor big = seq(Shape{100000}, DType::F64);
  big.slice(0, 0, 100000, 2).copy_(big.slice(0, 1, 100000, 2));
  const std::vector<double> bv = vals(big);
  for (size_t i = 0; i < bv.size(); i += 2) REQUIRE(bv[i] == double(i + 1));
  Tensor z = seq(Shape{4});
  z.copy_(z);
  CHECK(vals(z) == iota(4));
}

TEST_CASE("make_view checks that the view fits its storage", "[tensor]") {
  const Tensor t = seq(Shape{2, 3});
  CHECK(vals(make_view(t, Shape{2, 2}, Shape{3, 1}, 1)) == std::vector<double>{1, 2, 4, 5});
  CHECK(vals(make_view(t, Shape{3}, Shape{2}, 1)) == std::vector<double>{1, 3, 5});
  CHECK(vals(make_view(t, Shape{4}, Shape{0}, 5)) == std::vector<double>{5, 5, 5, 5});
  CHECK(make_view(t, Shape{0, 9}, Shape{9, 1}, 6).numel() == 0);
  CHECK_THROWS_WITH(make_view(t, Shape{2, 4}, Shape{4, 1}, 0), Catch::Contains("make_view"));
  CHECK_THROWS_WITH(make_view(t, Shape{2, 2}, Shape{3, 1}, 2), Catch::Contains("make_view"));
  CHECK_THROWS_WITH(make_view(t, Shape{1}, Shape{1}, -1), Catch::Contains("make_view"));
  CHECK_THROWS_WITH(make_view(t, Shape{7}, Shape{1}, 0), Catch::Contains("make_view") && Catch::Contains("6"));
  CHECK_THROWS_WITH(make_view(t, Shape{2, 3}, Shape{1}, 0), Catch::Contains("rank"));
  // A view of a view is checked against the shared storage, not the view's own extent.
  const Tensor row = t.select(0, 0);
  CHECK(vals(make_view(row, Shape{6}, Shape{1}, 0)) == iota(6));
}

TEST_CASE("contiguous and clone produce independent copies", "[tensor]") {
  Tensor m = seq(Shape{3, 4});
  CHECK(m.contiguous().impl() == m.impl());  // already contiguous: itself

  const Tensor t = m.transpose(0, 1);
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK_FALSE(same_storage(c, m));
  CHECK(vals(c) == vals(t));

  Tensor k = m.clone();
  CHECK_FALSE(same_storage(k, m));
  k.fill_(0);
  CHECK(vals(m) == iota(12));
  m.fill_(3);
  CHECK(vals(k) == std::vector<double>(12, 0.0));
  CHECK(vals(c) == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});

  // clone of a strided, offset view.
  const Tensor base = seq(Shape{4, 6});
  const Tensor s = base.slice(1, 1, 6, 2).slice(0, 1, 4, 2);
  const Tensor sc = s.clone();
  CHECK(sc.offset() == 0);
  CHECK(sc.strides() == Shape{3, 1});
  CHECK(vals(sc) == std::vector<double>{7, 9, 11, 19, 21, 23});

  // detach shares data, drops history.
  const Tensor dt = base.detach();
  CHECK(same_storage(dt, base));
  CHECK(dt.impl() != base.impl());
}

// ---- conversions ---------------------------------------------------------------------------------

TEST_CASE("to(DType) among all dtypes", "[tensor]") {
  const std::vector<double> small = {0, 1, 2, 7, 100, 127};
  const std::vector<DType> all = {DType::F32, DType::F64, DType::BF16, DType::F16,
                                  DType::I64, DType::I32, DType::U8};
  for (DType from : all) {
    for (DType to : all) {
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      const Tensor src = from_vector<double>(small, Shape{2, 3}).to(from);
      const Tensor dst = src.to(to);
      CHECK(dst.dtype() == to);
      CHECK(dst.shape() == Shape{2, 3});
      CHECK(vals(dst) == small);
      // Through a non-contiguous source too.
      CHECK(vals(src.transpose(0, 1).to(to)) == std::vector<double>{0, 7, 1, 100, 2, 127});
    }
  }
  const Tensor f = from_vector<float>({1.5f}, Shape{1});
  CHECK(f.to(DType::F32).impl() == f.impl());
}

TEST_CASE("float to integer conversions truncate toward zero", "[tensor]") {
  const Tensor f = from_vector<double>({2.7, -2.7, 0.5, -0.5, 1e6}, Shape{5});
  CHECK(f.to(DType::I64).to_vector<int64_t>() == std::vector<int64_t>{2, -2, 0, 0, 1000000});
  CHECK(f.to(DType::I32).to_vector<int32_t>() == std::vector<int32_t>{2, -2, 0, 0, 1000000});
  CHECK(from_vector<double>({0, 3.9, 255}, Shape{3}).to(DType::U8).to_vector<uint8_t>() ==
        std::vector<uint8_t>{0, 3, 255});
  // Out of range saturates and NaN is 0 (as CUDA converts; C++ leaves both undefined).
  const Tensor wild = from_vector<double>({300, -5, NAN, 1e30, -1e30}, Shape{5});
  CHECK(wild.to(DType::U8).to_vector<uint8_t>() == std::vector<uint8_t>{255, 0, 0, 255, 0});
  CHECK(wild.to(DType::I32).to_vector<int32_t>() == std::vector<int32_t>{300, -5, 0, INT32_MAX, INT32_MIN});
  CHECK(wild.to(DType::I64).to_vector<int64_t>() == std::vector<int64_t>{300, -5, 0, INT64_MAX, INT64_MIN});
  CHECK(vals(from_vector<int32_t>({-7, 2147483647, -2147483647 - 1}, Shape{3}).to(DType::F64)) ==
        std::vector<double>{-7, 2147483647.0, -2147483648.0});
  CHECK(vals(from_vector<uint8_t>({0, 128, 255}, Shape{3}).to(DType::F32)) == std::vector<double>{0, 128, 255});
}

TEST_CASE("bf16 and f16 conversions round to nearest even", "[tensor]") {
  const double e8 = std::ldexp(1.0, -8), e7 = std::ldexp(1.0, -7), e6 = std::ldexp(1.0, -6);
  // BF16 keeps 8 significant bits: spacing 2^-7 just above 1.
  const Tensor b = from_vector<float>({float(1 + e8), float(1 + 3 * e8), float(1 + e8 + e8 / 4), -3.0f,
                                       1e-3f, 3.0e38f, std::numeric_limits<float>::infinity()},
                                      Shape{7})
                       .to(DType::BF16);
  const std::vector<double> bv = vals(b);
  CHECK(bv[0] == 1.0);           // tie rounds to even
  CHECK(bv[1] == 1 + e6);        // tie rounds to even (up)
  CHECK(bv[2] == 1 + e7);        // above the tie rounds up
  CHECK(bv[3] == -3.0);
  CHECK(bv[4] == Approx(1e-3).epsilon(1.0 / 256));
  CHECK(std::isinf(bv[5]) == false);
  CHECK(bv[5] == Approx(3.0e38).epsilon(1.0 / 128));
  CHECK(std::isinf(bv[6]));
  CHECK(std::isnan(vals(from_vector<float>({std::nanf("")}, Shape{1}).to(DType::BF16))[0]));

  // F16 keeps 11 significant bits: spacing 2^-10 just above 1; max 65504; subnormals down to 2^-24.
  const double h11 = std::ldexp(1.0, -11), h10 = std::ldexp(1.0, -10), h9 = std::ldexp(1.0, -9);
  const Tensor h = from_vector<double>({1 + h11, 1 + 3 * h11, 65504, 65519, 65520, 70000, -70000, 1e-8,
                                        std::ldexp(1.0, -24), std::ldexp(3.0, -25), std::ldexp(1.0, -14),
                                        0.1, -2.5},
                                       Shape{13})
                       .to(DType::F16);
  const std::vector<double> hv = vals(h);
  CHECK(hv[0] == 1.0);
  CHECK(hv[1] == 1 + h9);
  CHECK(hv[2] == 65504);
  CHECK(hv[3] == 65504);
  CHECK(std::isinf(hv[4]));
  CHECK(hv[4] > 0);
  CHECK(std::isinf(hv[5]));
  CHECK(std::isinf(hv[6]));
  CHECK(hv[6] < 0);
  CHECK(hv[7] == 0);
  CHECK(hv[8] == std::ldexp(1.0, -24));
  CHECK(hv[9] == std::ldexp(1.0, -23));  // 1.5 * 2^-24 ties to even: 2 * 2^-24
  CHECK(hv[10] == std::ldexp(1.0, -14));
  CHECK(hv[11] == Approx(0.1).epsilon(h10));
  CHECK(hv[11] == 0.0999755859375);
  CHECK(hv[12] == -2.5);
  CHECK(std::isnan(vals(from_vector<float>({std::nanf("")}, Shape{1}).to(DType::F16))[0]));
  // Round trip of every finite f16 pattern through F32 is exact.
  std::vector<double> grid;
  for (int i = -2048; i <= 2048; ++i) grid.push_back(std::ldexp(double(i), -3));
  CHECK(vals(from_vector<double>(grid, Shape{int64_t(grid.size())}).to(DType::F16).to(DType::F32)) == grid);
}

TEST_CASE("large I64 values", "[tensor]") {
  const int64_t big = (int64_t(1) << 53) + 1, huge = std::numeric_limits<int64_t>::max();
  const int64_t neg = std::numeric_limits<int64_t>::min() + 5;
  const Tensor t = from_vector<int64_t>({big, huge, neg, -1}, Shape{4});
  CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{big, huge, neg, -1});
  CHECK(t.transpose(0, 0).contiguous().to_vector<int64_t>() == std::vector<int64_t>{big, huge, neg, -1});
  CHECK(t.slice(0, 0, 4, 2).clone().to_vector<int64_t>() == std::vector<int64_t>{big, neg});
  CHECK(t.to(DType::I64).to_vector<int64_t>() == std::vector<int64_t>{big, huge, neg, -1});
  CHECK(t.select(0, 0).item() == double(int64_t(1) << 53));
  CHECK(vals(t.to(DType::F64))[0] == std::ldexp(1.0, 53));
  CHECK(vals(t.to(DType::F32))[1] == std::ldexp(1.0, 63));
  // Integer narrowing keeps the low bits, as C++ and NumPy do; it never goes through a float.
  const Tensor w = from_vector<int64_t>({(int64_t(1) << 40) + 7, -1, 300, (int64_t(1) << 53) + 1}, Shape{4});
  CHECK(w.to(DType::I32).to_vector<int32_t>() == std::vector<int32_t>{7, -1, 300, 1});
  CHECK(w.to(DType::U8).to_vector<uint8_t>() == std::vector<uint8_t>{7, 255, 44, 1});
  CHECK(from_vector<int32_t>({-5, 2147483647}, Shape{2}).to(DType::I64).to_vector<int64_t>() ==
        std::vector<int64_t>{-5, 2147483647});
  // Widening to I64 reads back every bit.
  CHECK(w.to(DType::I32).to(DType::I64).to_vector<int64_t>() == std::vector<int64_t>{7, -1, 300, 1});
  CHECK(from_vector<uint8_t>({255}, Shape{1}).to(DType::I64).to_vector<int64_t>() == std::vector<int64_t>{255});
  // to_vector into another integer type converts exactly too.
  CHECK(from_vector<int32_t>({123456789}, Shape{1}).to_vector<int64_t>() == std::vector<int64_t>{123456789});
}

TEST_CASE("to_vector and item", "[tensor]") {
  const Tensor t = seq(Shape{2, 3}, DType::F64);
  CHECK(t.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
  CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3, 4, 5});
  CHECK(t.transpose(0, 1).to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(t.select(1, 2).select(0, 1).item() == 5);
  CHECK(scalar(-1.25, DType::F64).item() == -1.25);
  CHECK(full(Shape{1, 1, 1}, 3.0).item() == 3.0);
  CHECK_THROWS_WITH(t.item(), Catch::Contains("item") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(t.data<float>(), Catch::Contains("data<F32>") && Catch::Contains("F64"));
  CHECK(t.data<double>()[4] == 4);
  CHECK(t.select(0, 1).data<double>()[0] == 3);
}

TEST_CASE("printing shows shape, values and elides long dims", "[tensor]") {
  {
    std::ostringstream s;
    s << from_vector<float>({1, 2.5f, -3, 4, 5, 6}, Shape{2, 3});
    const std::string out = s.str();
    CHECK_THAT(out, Catch::Contains("F32[2, 3] cpu"));
    CHECK_THAT(out, Catch::Contains("[[1, 2.5, -3],\n[4, 5, 6]]"));
  }
  {
    std::ostringstream s;
    s << arange(0, 20);
    const std::string out = s.str();
    CHECK_THAT(out, Catch::Contains("F32[20]"));
    CHECK_THAT(out, Catch::Contains("[0, 1, 2, ..., 17, 18, 19]"));
    CHECK_THAT(out, !Catch::Contains("10"));
  }
  {
    std::ostringstream s;
    s << seq(Shape{12, 2}, DType::F64);
    const std::string out = s.str();
    CHECK_THAT(out, Catch::Contains("F64[12, 2]"));
    CHECK_THAT(out, Catch::Contains("..."));
    CHECK_THAT(out, Catch::Contains("[22, 23]"));
    CHECK_THAT(out, !Catch::Contains("[10, 11]"));
  }
  {
    std::ostringstream s;
    s << seq(Shape{8}).transpose(0, 0);  // exactly 8: nothing elided
    CHECK_THAT(s.str(), Catch::Contains("[0, 1, 2, 3, 4, 5, 6, 7]"));
  }
  {
    std::ostringstream s;
    s << scalar(1.5) << " | " << zeros(Shape{0, 2}) << " | " << Tensor();
    CHECK_THAT(s.str(), Catch::Contains("F32[] cpu") && Catch::Contains("1.5") && Catch::Contains("[0, 2]") &&
                            Catch::Contains("[]") && Catch::Contains("undefined"));
  }
  {
    std::ostringstream s;
    s << seq(Shape{2, 2}).transpose(0, 1) << from_vector<int64_t>({-4, 9}, Shape{2});
    CHECK_THAT(s.str(), Catch::Contains("[[0, 2],\n[1, 3]]") && Catch::Contains("I64[2]") &&
                            Catch::Contains("[-4, 9]"));
  }
  {
    std::ostringstream s;
    s << ones(Shape{2}).set_requires_grad(true);
    CHECK_THAT(s.str(), Catch::Contains("requires_grad"));
  }
}

// ---- broadcasting elementwise ops --------------------------------------------------------------

TEST_CASE("add and mul broadcast [3,1] x [1,4]", "[tensor]") {
  const Tensor a = from_vector<double>({1, 2, 3}, Shape{3, 1});
  const Tensor b = from_vector<double>({10, 20, 30, 40}, Shape{1, 4});
  const Tensor s = add(a, b), p = mul(a, b), q = sub(b, a), d = div(b, a);
  CHECK(s.shape() == Shape{3, 4});
  std::vector<double> es, ep, eq, ed;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) {
      const double x = i + 1, y = 10 * (j + 1);
      es.push_back(x + y);
      ep.push_back(x * y);
      eq.push_back(y - x);
      ed.push_back(y / x);
    }
  CHECK(vals(s) == es);
  CHECK(vals(p) == ep);
  CHECK(vals(q) == eq);
  CHECK(vals(d) == ed);
  CHECK(vals(add(b, a)) == es);
}

TEST_CASE("add and mul broadcast [2,3,4] x [4] and x [3,1]", "[tensor]") {
  const Tensor a = seq(Shape{2, 3, 4}, DType::F64);
  const Tensor b = from_vector<double>({1, -1, 2, 0.5}, Shape{4});
  const Tensor c = from_vector<double>({3, 5, 7}, Shape{3, 1});
  const std::vector<double> av = vals(a);
  std::vector<double> e1, e2, e3;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) {
        const double x = av[size_t(i * 12 + j * 4 + k)];
        const double bb[4] = {1, -1, 2, 0.5};
        const double cc[3] = {3, 5, 7};
        e1.push_back(x + bb[k]);
        e2.push_back(x * bb[k]);
        e3.push_back(x * cc[j]);
      }
  CHECK(vals(add(a, b)) == e1);
  CHECK(vals(mul(b, a)) == e2);
  CHECK(vals(mul(a, c)) == e3);
  CHECK(mul(a, c).shape() == Shape{2, 3, 4});
  // [2,1,4] x [3,1] -> [2,3,4]
  const Tensor d = seq(Shape{2, 1, 4}, DType::F64);
  std::vector<double> e4;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) e4.push_back((i * 4 + k) + (3 + 2 * j));
  CHECK(add(d, c).shape() == Shape{2, 3, 4});
  CHECK(vals(add(d, c)) == e4);
}

TEST_CASE("binary ops on every broadcast layout match an index-by-index reference", "[tensor]") {
  // The CPU kernels take different loops for: all contiguous, a broadcast scalar on either side, rows with
  // unit or repeated inner strides, and general strides (a transposed operand); small and parallel sizes.
  for (int64_t A : {int64_t(2), int64_t(41)}) {
    const int64_t Bn = 3, C = A == 2 ? 5 : 1000;  // 30 and 123,000 outputs
    const Tensor x = randn(Shape{A, Bn, C}, DType::F64);
    const std::vector<std::pair<const char*, Tensor>> others = {
        {"same shape", randn(Shape{A, Bn, C}, DType::F64)},
        {"0-dim scalar", randn(Shape{}, DType::F64)},
        {"[1, 1, 1]", randn(Shape{1, 1, 1}, DType::F64)},
        {"row [C]", randn(Shape{C}, DType::F64)},
        {"column [B, 1]", randn(Shape{Bn, 1}, DType::F64)},
        {"transposed [A, C, B]^T", randn(Shape{A, C, Bn}, DType::F64).transpose(1, 2)},
    };
    const std::vector<double> xv = x.to_vector<double>();
    for (const auto& [name, y] : others) {
      const Tensor yb = y.expand(Shape{A, Bn, C}).contiguous();  // the reference broadcast
      const std::vector<double> yv = yb.to_vector<double>();
      for (bool swap : {false, true}) {
        INFO(name << (swap ? ", other operand first" : "") << ", " << A * Bn * C << " elements");
        const Tensor s = swap ? sub(y, x) : sub(x, y), m = swap ? mul(y, x) : mul(x, y);
        REQUIRE(s.shape() == Shape{A, Bn, C});
        const std::vector<double> sv = s.to_vector<double>(), mv = m.to_vector<double>();
        int64_t bad = 0;
        for (size_t i = 0; i < xv.size(); ++i) {
          bad += sv[i] != (swap ? yv[i] - xv[i] : xv[i] - yv[i]);
          bad += mv[i] != xv[i] * yv[i];
        }
        CHECK(bad == 0);
      }
    }
  }
}

TEST_CASE("scalar tensors and double scalars broadcast", "[tensor]") {
  const Tensor a = seq(Shape{2, 3}, DType::F64);
  const Tensor s = scalar(2, DType::F64);
  CHECK(vals(mul(a, s)) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(vals(add(s, a)) == std::vector<double>{2, 3, 4, 5, 6, 7});
  CHECK(mul(s, s).dim() == 0);
  CHECK(mul(s, s).item() == 4);
  CHECK(vals(a * 3.0) == std::vector<double>{0, 3, 6, 9, 12, 15});
  CHECK(vals(1.0 - a) == std::vector<double>{1, 0, -1, -2, -3, -4});
  CHECK(vals(a - 1.0) == std::vector<double>{-1, 0, 1, 2, 3, 4});
  CHECK(vals(a / 2.0) == std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5});
  CHECK(vals(2.0 * a + 1.0) == std::vector<double>{1, 3, 5, 7, 9, 11});
  CHECK(vals(-a) == std::vector<double>{0, -1, -2, -3, -4, -5});
}

TEST_CASE("broadcasting with size-0 dimensions", "[tensor]") {
  const Tensor e = zeros(Shape{0, 3});
  CHECK(add(e, ones(Shape{3})).shape() == Shape{0, 3});
  CHECK(mul(ones(Shape{1, 3}), e).shape() == Shape{0, 3});
  CHECK(add(zeros(Shape{2, 0}), ones(Shape{2, 1})).shape() == Shape{2, 0});
  CHECK(add(zeros(Shape{0}), scalar(1)).shape() == Shape{0});
  CHECK(where(gt(zeros(Shape{0, 1}), 0.0), zeros(Shape{1, 3}), ones(Shape{1})).shape() == Shape{0, 3});
  CHECK(sum(add(e, ones(Shape{3}))).item() == 0);
  CHECK_THROWS_WITH(add(zeros(Shape{0}), zeros(Shape{2})), Catch::Contains("[0]") && Catch::Contains("[2]"));
}

TEST_CASE("where broadcasts condition and values", "[tensor]") {
  const Tensor x = from_vector<double>({-1, 2, -3, 4, 5, -6}, Shape{2, 3});
  const Tensor cond = gt(x, 0.0);
  CHECK(cond.dtype() == DType::U8);
  CHECK(cond.to_vector<uint8_t>() == std::vector<uint8_t>{0, 1, 0, 1, 1, 0});
  CHECK(vals(where(cond, x, scalar(0, DType::F64))) == std::vector<double>{0, 2, 0, 4, 5, 0});

  // cond [3,1], a [1,4], b [4]
  const Tensor c2 = from_vector<uint8_t>({1, 0, 1}, Shape{3, 1});
  const Tensor a = from_vector<double>({1, 2, 3, 4}, Shape{1, 4});
  const Tensor b = from_vector<double>({-1, -2, -3, -4}, Shape{4});
  std::vector<double> expect;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) expect.push_back(i != 1 ? j + 1 : -(j + 1));
  const Tensor w = where(c2, a, b);
  CHECK(w.shape() == Shape{3, 4});
  CHECK(vals(w) == expect);

  // cond [2,1,1], a [3,1], b scalar
  const Tensor c3 = from_vector<uint8_t>({0, 1}, Shape{2, 1, 1});
  const Tensor a3 = from_vector<double>({7, 8, 9}, Shape{3, 1});
  const Tensor w3 = where(c3, a3, scalar(-5, DType::F64));
  CHECK(w3.shape() == Shape{2, 3, 1});
  CHECK(vals(w3) == std::vector<double>{-5, -5, -5, 7, 8, 9});

  CHECK_THROWS_WITH(where(from_vector<double>({1}, Shape{1}), a, b), Catch::Contains("U8"));
  CHECK_THROWS_WITH(where(from_vector<uint8_t>({1, 0}, Shape{2}), a, b), Catch::Contains("where") &&
                                                                              Catch::Contains("broadcast"));
  CHECK(vals(masked_fill(x, cond, 9)) == std::vector<double>{-1, 9, -3, 9, 9, -6});
}

TEST_CASE("non-contiguous inputs to elementwise ops match contiguous copies", "[tensor]") {
  Generator g(3);
  const Tensor base = randn(Shape{6, 8}, DType::F64, Device::cpu(), &g);
  const Tensor other = randn(Shape{8, 6}, DType::F64, Device::cpu(), &g);
  const Tensor t = base.transpose(0, 1);              // [8, 6]
  const Tensor s = base.slice(1, 1, 8, 2);            // [6, 4], step 2
  const Tensor s2 = other.slice(0, 0, 8, 2).transpose(0, 1);  // [6, 4]
  const Tensor off = base.slice(0, 2, 6).slice(1, 3, 7);      // [4, 4], offset
  const Tensor tc = t.contiguous(), sc = s.contiguous(), s2c = s2.contiguous(), offc = off.contiguous();
  REQUIRE_FALSE(t.is_contiguous());
  REQUIRE_FALSE(s.is_contiguous());
  REQUIRE_FALSE(s2.is_contiguous());

  CHECK(vals(add(t, other)) == vals(add(tc, other)));
  CHECK(vals(mul(other, t)) == vals(mul(other, tc)));
  CHECK(vals(sub(s, s2)) == vals(sub(sc, s2c)));
  CHECK(vals(div(s, s2)) == vals(div(sc, s2c)));
  CHECK(vals(maximum(s, s2)) == vals(maximum(sc, s2c)));
  CHECK(vals(mul(off, off.transpose(0, 1))) == vals(mul(offc, offc.transpose(0, 1).contiguous())));
  // Broadcasting on top of strides.
  const Tensor row = base.select(0, 3).slice(0, 0, 8, 2);  // [4], stride 2
  CHECK(vals(add(s, row)) == vals(add(sc, row.contiguous())));
  const Tensor colv = base.select(1, 5).unsqueeze(1);  // [6, 1], stride 8
  CHECK(vals(mul(s, colv)) == vals(mul(sc, colv.contiguous())));
  // Unary maps and comparisons.
  CHECK(vals(exp(t)) == vals(exp(tc)));
  CHECK(vals(tanh(s)) == vals(tanh(sc)));
  CHECK(vals(relu(off)) == vals(relu(offc)));
  CHECK(vals(s * 2.0) == vals(sc * 2.0));
  CHECK(gt(s, s2).to_vector<uint8_t>() == gt(sc, s2c).to_vector<uint8_t>());
  CHECK(vals(where(gt(s, 0.0), s, s2)) == vals(where(gt(sc, 0.0), sc, s2c)));
  // Expanded (stride 0) operands.
  const Tensor ex = base.select(0, 0).unsqueeze(0).expand(Shape{6, 8});
  CHECK(vals(add(ex, base)) == vals(add(ex.contiguous(), base)));
}

// ---- errors --------------------------------------------------------------------------------------

TEST_CASE("error messages name the op and the shapes", "[tensor]") {
  const Tensor a = zeros(Shape{2, 3}), b = zeros(Shape{4});
  CHECK_THROWS_AS(add(a, b), Error);
  CHECK_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  CHECK_THROWS_WITH(mul(a, b), Catch::Contains("mul") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  CHECK_THROWS_WITH(sub(b, a), Catch::Contains("sub") && Catch::Contains("[4]") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(where(gt(a, 0.0), a, b), Catch::Contains("where") && Catch::Contains("[4]"));
  // Messages carry file:line.
  CHECK_THROWS_WITH(add(a, b), Catch::StartsWith("engine/") || Catch::StartsWith("kernels/"));

  CHECK_THROWS_WITH(add(zeros(Shape{2}), zeros(Shape{2}, DType::F64)),
                    Catch::Contains("add") && Catch::Contains("dtype mismatch") && Catch::Contains("F64"));
  CHECK_THROWS_WITH(add(zeros(Shape{2}, DType::I64), zeros(Shape{2}, DType::I64)),
                    Catch::Contains("add") && Catch::Contains("I64"));
  CHECK_THROWS_WITH(exp(zeros(Shape{2}, DType::U8)), Catch::Contains("exp") && Catch::Contains("U8"));

  CHECK_THROWS_WITH(add(Tensor(), a), Catch::Contains("add") && Catch::Contains("undefined"));
  CHECK_THROWS_WITH(relu(Tensor()), Catch::Contains("relu") && Catch::Contains("undefined"));
  CHECK_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(Tensor().numel(), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(Tensor().clone(), Catch::Contains("undefined"));

  CHECK_THROWS_WITH(zeros(Shape{1, 1, 1, 1, 1, 1, 1, 1, 1}), Catch::Contains("at most 8"));
  CHECK_NOTHROW(zeros(Shape{1, 1, 1, 1, 1, 1, 1, 1}));
  CHECK_THROWS_WITH(zeros(Shape{1, 1, 1, 1, 1, 1, 1, 1}).unsqueeze(0), Catch::Contains("at most 8"));
  CHECK_THROWS_WITH(zeros(Shape{2, -1}), Catch::Contains("negative") && Catch::Contains("[2, -1]"));
  CHECK_THROWS_WITH(empty(Shape{-3}), Catch::Contains("negative"));
  CHECK_THROWS_WITH(ones(Shape{-1}, DType::F64), Catch::Contains("negative"));
}

// ---- allocator -----------------------------------------------------------------------------------

TEST_CASE("the CPU caching allocator reaches a steady state", "[tensor]") {
  Allocator& alloc = allocator_for(Device::cpu());
  const int64_t n = 1 << 20;  // 4 MB of F32
  {
    Tensor warm = empty(Shape{n});
  }
  const AllocatorStats before = alloc.stats();
  CHECK(before.bytes_cached >= size_t(4) << 20);
  for (int i = 0; i < 20; ++i) {
    Tensor t = zeros(Shape{n});
    t.fill_(double(i));
    CHECK(alloc.stats().bytes_in_use >= before.bytes_in_use + (size_t(4) << 20));
  }
  const AllocatorStats after = alloc.stats();
  CHECK(after.system_allocations == before.system_allocations);
  CHECK(after.cache_hits >= before.cache_hits + 20);
  CHECK(after.bytes_in_use == before.bytes_in_use);

  // Two live at once need a second block; after that, the pair is served from the cache as well.
  {
    Tensor a = empty(Shape{n}), b = empty(Shape{n});
  }
  const AllocatorStats two = alloc.stats();
  for (int i = 0; i < 5; ++i) {
    Tensor a = empty(Shape{n}), b = empty(Shape{n});
    a.fill_(1);
    b.fill_(2);
  }
  CHECK(alloc.stats().system_allocations == two.system_allocations);

  // A much smaller request does not take a big cached block.
  {
    CHECK(alloc.stats().bytes_cached >= size_t(8) << 20);
    Tensor small = empty(Shape{100000});  // 400 KB
    CHECK(alloc.stats().bytes_cached >= size_t(8) << 20);
  }
  alloc.empty_cache();
  CHECK(alloc.stats().bytes_cached == 0);
  const uint64_t sys = alloc.stats().system_allocations;
  {
    Tensor t = empty(Shape{n});
  }
  CHECK(alloc.stats().system_allocations == sys + 1);
}

TEST_CASE("relu propagates NaN like PyTorch, so a NaN loss is never hidden", "[tensor]") {
  const Tensor x = from_vector(std::vector<float>{-1.0f, 0.0f, 2.0f, std::nanf("")}, Shape{4});
  const std::vector<float> y = relu(x).to_vector<float>();
  CHECK(y[0] == 0.0f);
  CHECK(y[1] == 0.0f);
  CHECK(y[2] == 2.0f);
  CHECK(std::isnan(y[3]));
}

TEST_CASE("tensor edge cases: overflowing shapes and ranges, expanded copy_ destinations, NaN in maximum", "[tensor]") {
  const int64_t huge = int64_t(1) << 62;
  // Element and byte counts past int64 are refused, not wrapped to a tiny buffer.
  CHECK_THROWS_WITH(zeros(Shape{4, huge}), Catch::Contains("has more elements than 2^63"));
  CHECK_THROWS_WITH(empty(Shape{int64_t(1) << 61}, DType::F64), Catch::Contains("needs more than 2^62 bytes"));
  CHECK_THROWS_WITH(zeros(Shape{0}).reshape(Shape{4, huge}), Catch::Contains("has more elements than 2^63"));
  CHECK_THROWS_WITH(make_view(zeros(Shape{4}), Shape{3}, Shape{huge + 1}, 2), Catch::Contains("reaches past 2^63"));
  CHECK_THROWS_WITH(zeros(Shape{1, 4}).expand(Shape{huge, 4}), Catch::Contains("has more elements than 2^63"));
  // narrow and slice bounds that would overflow.
  const Tensor r = arange(0, 5);
  CHECK_THROWS_WITH(r.narrow(0, 2, INT64_MAX), Catch::Contains("narrow: start 2, length"));
  CHECK_THROWS_WITH(r.narrow(0, INT64_MAX, 1), Catch::Contains("is out of range"));
  CHECK(r.slice(0, 1, 5, INT64_MAX).to_vector<float>() == std::vector<float>{1});
  CHECK(r.slice(0, 1, 5, 3).to_vector<float>() == std::vector<float>{1, 4});
  CHECK_THROWS_WITH(arange(0, INFINITY), Catch::Contains("is not a finite range"));
  CHECK_THROWS_WITH(arange(0, NAN), Catch::Contains("is not a finite range"));
  CHECK_THROWS_WITH(arange(0, 1e30), Catch::Contains("is not a finite range"));
  // Several elements of an expanded destination are one memory location: which write wins would be a race.
  Tensor base = zeros(Shape{1, 3});
  CHECK_THROWS_WITH(base.expand(Shape{2, 3}).copy_(ones(Shape{2, 3})),
                    Catch::Contains("is expanded along dimension 0 (stride 0)"));
  base.expand(Shape{2, 3}).fill_(4);  // one value for every element: well defined
  CHECK(base.to_vector<float>() == std::vector<float>{4, 4, 4});
  Tensor none = zeros(Shape{3, 0});  // contiguous strides (0, 1): empty, not expanded
  CHECK_NOTHROW(none.copy_(zeros(Shape{3, 0})));
  Tensor empty_leaf = zeros(Shape{3, 0});
  empty_leaf.set_requires_grad(true);
  sum(empty_leaf.slice(0, 0, 2)).backward();  // the slice backward copies into a zero-size gradient
  CHECK(empty_leaf.grad().shape() == Shape{3, 0});
  // A NaN on either side of maximum / minimum propagates.
  const Tensor a = from_vector(std::vector<float>{NAN, 1, 2}, Shape{3}), b = from_vector(std::vector<float>{1, NAN, 3}, Shape{3});
  for (const Tensor& m : {maximum(a, b), minimum(a, b)}) {
    const std::vector<float> v = m.to_vector<float>();
    CHECK((std::isnan(v[0]) && std::isnan(v[1])));
  }
  CHECK(maximum(a, b).to_vector<float>()[2] == 3);
  CHECK(minimum(a, b).to_vector<float>()[2] == 2);
}
