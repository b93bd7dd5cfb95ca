// The columns of the CSV tables in a run directory (README "Run directories"): what `stgs search` and `stgs
// eval` write and what `stgs report` and `stgs detect` read back (CsvTable::load checks a file's header
// against these).
// defines: kSearchMetricsHeader, kEntropyHeader, kEvalMetricsHeader, kScoresHeader, kRocHeader
#pragma once

#include <string>
#include <vector>

namespace stgs::apps {

// search: metrics.csv, one row per epoch.
inline const std::vector<std::string> kSearchMetricsHeader = {
    "epoch",   "train_loss", "val_loss",  "train_acc",     "train_auc",    "val_acc",       "val_auc",
    "val_eer", "lambda",     "weight_lr", "entropy_alpha", "entropy_beta", "entropy_gamma", "seconds"};
// search: entropy.csv, mean row entropies in nats per epoch.
inline const std::vector<std::string> kEntropyHeader = {"epoch", "alpha", "beta", "gamma"};
// eval: metrics.csv of the fused model, one row per epoch.
inline const std::vector<std::string> kEvalMetricsHeader = {"epoch",   "train_loss", "train_acc", "train_auc", "val_acc",
                                                            "val_auc", "val_eer",    "lr",        "seconds"};
// eval: scores.csv, the fused model's P(fake) per test clip (stgs detect --manifest writes these columns first).
inline const std::vector<std::string> kScoresHeader = {"id", "label", "score"};
// eval: roc.csv, the fused model's test ROC curve.
inline const std::vector<std::string> kRocHeader = {"threshold", "fpr", "tpr"};

}  // namespace stgs::apps
