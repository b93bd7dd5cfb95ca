// Detection metrics of the evaluation (paper section 4.2): ROC curve, AUC, equal error rate and accuracy of
// P(fake) scores against labels (1 = fake, the positive class).
// defines: RocPoint, roc_curve, roc_auc, equal_error_rate, accuracy_at
//
// Ties: clips with equal scores move the ROC curve together (one diagonal step), so the curve and the AUC
// do not depend on the order of the clips; the AUC counts a tied (fake, real) pair as half a correct
// ordering, which is the area under that diagonal.
#pragma once

#include <cstdint>
#include <vector>

namespace stgs::nas {

struct RocPoint {
  double threshold;  // a clip is called fake when its score >= threshold
  double fpr;        // false positive rate: reals called fake / reals
  double tpr;        // true positive rate: fakes called fake / fakes
};

// From (0, 0) (threshold +inf) to (1, 1) (threshold = the lowest score), one point per distinct score in
// decreasing order. Throws when the sizes differ, a label is not 0 or 1, a score is not finite, or either
// class is missing (the rates would divide by zero).
std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<int64_t>& labels);

// Area under the ROC curve (trapezoids, equal to the Mann-Whitney statistic with ties counted half).
double roc_auc(const std::vector<double>& scores, const std::vector<int64_t>& labels);

// The error rate where the false positive rate equals the false negative rate (1 - tpr), linearly
// interpolated between the two ROC points that bracket the crossing.
double equal_error_rate(const std::vector<double>& scores, const std::vector<int64_t>& labels);

// Fraction of clips whose call (score >= threshold -> fake) matches the label. Needs no second class.
double accuracy_at(const std::vector<double>& scores, const std::vector<int64_t>& labels, double threshold = 0.5);

}  // namespace stgs::nas
