#include "nas/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/check.h"

namespace stgs::nas {
namespace {

// Checks the inputs every metric shares; returns the number of fakes.
int64_t check_scores(const std::vector<double>& scores, const std::vector<int64_t>& labels, const char* what) {
  STGS_CHECK(scores.size() == labels.size(), what, ": ", scores.size(), " scores but ", labels.size(), " labels");
  STGS_CHECK(!scores.empty(), what, ": no scores");
  int64_t fakes = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    STGS_CHECK(labels[i] == 0 || labels[i] == 1, what, ": label ", labels[i], " at ", i, " (expected 0 real, 1 fake)");
    STGS_CHECK(std::isfinite(scores[i]), what, ": score ", scores[i], " at ", i, " is not finite");
    fakes += labels[i];
  }
  return fakes;
}

}  // namespace

std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<int64_t>& labels) {
  const int64_t fakes = check_scores(scores, labels, "roc_curve");
  const int64_t reals = int64_t(scores.size()) - fakes;
  STGS_CHECK(fakes > 0 && reals > 0, "roc_curve: needs both classes, got ", reals, " real and ", fakes, " fake");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<RocPoint> curve{{INFINITY, 0.0, 0.0}};
  int64_t tp = 0, fp = 0;
  for (size_t k = 0; k < order.size();) {
    const double threshold = scores[order[k]];
    for (; k < order.size() && scores[order[k]] == threshold; ++k) (labels[order[k]] == 1 ? tp : fp) += 1;
    curve.push_back({threshold, double(fp) / double(reals), double(tp) / double(fakes)});
  }
  return curve;
}

double roc_auc(const std::vector<double>& scores, const std::vector<int64_t>& labels) {
  const std::vector<RocPoint> curve = roc_curve(scores, labels);
  double area = 0;
  for (size_t k = 1; k < curve.size(); ++k)
    area += (curve[k].fpr - curve[k - 1].fpr) * 0.5 * (curve[k].tpr + curve[k - 1].tpr);
  return area;
}

double equal_error_rate(const std::vector<double>& scores, const std::vector<int64_t>& labels) {
  const std::vector<RocPoint> curve = roc_curve(scores, labels);
  // d = fpr - fnr rises from -1 at (0, 0) to +1 at (1, 1); find the segment where it changes sign.
  auto gap = [](const RocPoint& p) { return p.fpr - (1.0 - p.tpr); };
  for (size_t k = 1; k < curve.size(); ++k) {
    const double d0 = gap(curve[k - 1]), d1 = gap(curve[k]);
    if (d1 < 0) continue;
    const double t = d1 == d0 ? 0.0 : -d0 / (d1 - d0);  // where the segment crosses d = 0
    return curve[k - 1].fpr + t * (curve[k].fpr - curve[k - 1].fpr);
  }
  return 1.0;  // unreachable: the last point has d = +1
}

double accuracy_at(const std::vector<double>& scores, const std::vector<int64_t>& labels, double threshold) {
  check_scores(scores, labels, "accuracy_at");
  int64_t right = 0;
  for (size_t i = 0; i < scores.size(); ++i) right += (scores[i] >= threshold) == (labels[i] == 1);
  return double(right) / double(scores.size());
}

}  // namespace stgs::nas
