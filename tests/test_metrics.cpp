// Detection metrics (nas/metrics.h) against values worked out by hand and the Mann-Whitney definition.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/check.h"
#include "nas/metrics.h"

using namespace stgs;
using namespace stgs::nas;

namespace {

// P(score of a fake > score of a real) + half the ties, over all pairs: the AUC's definition.
double pairwise_auc(const std::vector<double>& s, const std::vector<int64_t>& y) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j)
      if (y[i] == 1 && y[j] == 0) {
        pairs += 1;
        wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
      }
  return wins / pairs;
}

}  // namespace

TEST_CASE("metrics: ROC curve, AUC and EER by hand", "[metrics]") {
  // Fakes 0.9, 0.6, 0.4; reals 0.7, 0.3, 0.2.
  const std::vector<double> s = {0.9, 0.7, 0.6, 0.4, 0.3, 0.2};
  const std::vector<int64_t> y = {1, 0, 1, 1, 0, 0};
  const std::vector<RocPoint> roc = roc_curve(s, y);
  REQUIRE(roc.size() == 7);
  CHECK(std::isinf(roc[0].threshold));
  CHECK(roc[0].fpr == 0.0);
  CHECK(roc[0].tpr == 0.0);
  CHECK(roc[1].threshold == 0.9);
  CHECK(roc[1].tpr == Approx(1.0 / 3));
  CHECK(roc[2].fpr == Approx(1.0 / 3));
  CHECK(roc[6].fpr == 1.0);
  CHECK(roc[6].tpr == 1.0);
  // Pairs (fake > real): 0.9 beats 3, 0.6 beats 2, 0.4 beats 2 -> 7 of 9.
  CHECK(roc_auc(s, y) == Approx(7.0 / 9));
  // At threshold 0.6: fpr 1/3, fnr 1/3: the curve passes exactly through the equal error point.
  CHECK(equal_error_rate(s, y) == Approx(1.0 / 3));
  CHECK(accuracy_at(s, y, 0.5) == Approx(4.0 / 6));
}

TEST_CASE("metrics: perfect, inverted and tied scores", "[metrics]") {
  const std::vector<int64_t> y = {0, 0, 1, 1};
  CHECK(roc_auc({0.1, 0.2, 0.8, 0.9}, y) == 1.0);
  CHECK(equal_error_rate({0.1, 0.2, 0.8, 0.9}, y) == 0.0);
  CHECK(roc_auc({0.9, 0.8, 0.2, 0.1}, y) == 0.0);
  CHECK(equal_error_rate({0.9, 0.8, 0.2, 0.1}, y) == 1.0);
  // All tied: one diagonal step, AUC 1/2, EER 1/2, whatever the order of the clips.
  CHECK(roc_auc({0.5, 0.5, 0.5, 0.5}, y) == 0.5);
  CHECK(roc_auc({0.5, 0.5, 0.5, 0.5}, {1, 0, 1, 0}) == 0.5);
  CHECK(equal_error_rate({0.5, 0.5, 0.5, 0.5}, y) == Approx(0.5));
  CHECK(roc_curve({0.5, 0.5, 0.5, 0.5}, y).size() == 2);
}

TEST_CASE("metrics: AUC equals the pairwise definition on random scores with ties", "[metrics]") {
  Generator g(11);
  for (int trial = 0; trial < 20; ++trial) {
    const Tensor u = rand({101}, DType::F64, Device::cpu(), &g);
    std::vector<double> s(101);
    std::vector<int64_t> y(101);
    for (int i = 0; i < 101; ++i) {
      const double v = u.data<double>()[i];
      s[size_t(i)] = std::floor(v * 20) / 20;  // coarse scores: many ties
      y[size_t(i)] = (i * 7 + trial) % 3 == 0 ? 1 : 0;
    }
    CHECK(roc_auc(s, y) == Approx(pairwise_auc(s, y)).epsilon(1e-12));
    const double eer = equal_error_rate(s, y);
    CHECK(eer >= 0.0);
    CHECK(eer <= 1.0);
  }
}

TEST_CASE("metrics: bad input is named", "[metrics]") {
  REQUIRE_THROWS_WITH(roc_auc({0.1, 0.2}, {1}), Catch::Contains("2 scores but 1 labels"));
  REQUIRE_THROWS_WITH(roc_auc({0.1, 0.2}, {1, 1}), Catch::Contains("needs both classes, got 0 real and 2 fake"));
  REQUIRE_THROWS_WITH(roc_auc({0.1, NAN}, {1, 0}), Catch::Contains("not finite"));
  REQUIRE_THROWS_WITH(accuracy_at({0.1}, {2}), Catch::Contains("label 2"));
  REQUIRE_THROWS_WITH(accuracy_at({}, {}), Catch::Contains("no scores"));
  CHECK(accuracy_at({0.7}, {1}) == 1.0);  // accuracy needs no second class
}
