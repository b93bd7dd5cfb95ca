// The unimodal pretraining loop: AdamW + cosine schedule over the training stream, per-epoch validation, best kept.
#include "nas/backbone_pretrain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/schedule.h"
#include "nas/metrics.h"

namespace stgs::nas {

Tensor clip_logits(const Tensor& row_logits, int64_t K) {
  return K == 1 ? row_logits : mean(row_logits.reshape({row_logits.size(0) / K, K, row_logits.size(1)}), {1});
}

namespace {

// labels (B) -> (B * K) on `device`: every row gets its clip's label.
Tensor row_labels(const Tensor& labels, int64_t K, Device device) {
  const std::vector<int64_t> per_clip = labels.to_vector<int64_t>();
  std::vector<int64_t> rows;
  for (int64_t l : per_clip) rows.insert(rows.end(), size_t(K), l);
  return from_vector(rows, {int64_t(rows.size())}, device);
}

struct Evaluation {
  double loss = 0, accuracy = 0, auc = 0;
};

Evaluation evaluate(ResNet34& model, const PretrainData& data, int epoch, Device device) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<double> scores;
  std::vector<int64_t> labels;
  double loss_sum = 0;
  data.val.start(epoch);
  while (const std::optional<BackboneBatch> next = data.val.next()) {
    const BackboneBatch& b = *next;
    const Tensor logits = clip_logits(model.forward(b.inputs.to(device)), data.rows_per_clip);  // (B, 2)
    const Tensor y = b.labels.to(device);
    loss_sum += cross_entropy(logits, y, Reduction::Sum).item();
    const std::vector<float> p = softmax(logits, 1).to_vector<float>();  // (B, 2) row-major
    const std::vector<int64_t> l = b.labels.to_vector<int64_t>();
    for (size_t i = 0; i < l.size(); ++i) {
      STGS_CHECK(std::isfinite(p[2 * i + 1]), "pretrain_backbone: validation after epoch ", epoch,
                 " gives a non-finite score (", p[2 * i + 1], "): the training diverged (lower --lr?)");
      scores.push_back(p[2 * i + 1]), labels.push_back(l[i]);
    }
  }
  Evaluation e;
  e.loss = loss_sum / double(scores.size());
  e.accuracy = accuracy_at(scores, labels);
  const bool both_classes = std::count(labels.begin(), labels.end(), 1) % int64_t(labels.size()) != 0;
  e.auc = both_classes ? roc_auc(scores, labels) : std::numeric_limits<double>::quiet_NaN();
  return e;
}

// Whether `a` beats `b`: higher AUC (a defined one beats NaN), then higher accuracy.
bool better(const EpochReport& a, const EpochReport& b) {
  const double auc_a = std::isnan(a.val_auc) ? -1 : a.val_auc, auc_b = std::isnan(b.val_auc) ? -1 : b.val_auc;
  return auc_a != auc_b ? auc_a > auc_b : a.val_accuracy > b.val_accuracy;
}

}  // namespace

PretrainResult pretrain_backbone(ResNet34& model, const PretrainData& data, const PretrainOptions& options,
                                 const PretrainCallbacks& callbacks) {
  STGS_CHECK(model.config().num_classes == 2, "pretrain_backbone: the model needs a 2-class head, it has ",
             model.config().num_classes, " classes");
  STGS_CHECK(data.train.clips > 0 && data.val.clips > 0 && data.train.batches > 0,
             "pretrain_backbone: need training and validation clips, got ", data.train.clips, " and ", data.val.clips);
  STGS_CHECK(options.epochs > 0 && data.rows_per_clip > 0,
             "pretrain_backbone: epochs and rows_per_clip must be positive");
  const Device device = options.device;
  model.to(device);
  AdamOptions adam;
  adam.lr = options.lr;
  adam.weight_decay = options.weight_decay;
  AdamW optimizer(model.parameters(), adam);
  CosineSchedule schedule(optimizer, data.train.batches * options.epochs);

  PretrainResult result;
  StateDict best_state;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    model.train();
    double loss_sum = 0;
    int64_t correct = 0, clips = 0, step = 0;
    data.train.start(epoch);
    while (const std::optional<BackboneBatch> next = data.train.next()) {
      const BackboneBatch& b = *next;
      ++step;
      const Tensor row_logits = model.forward(b.inputs.to(device));  // (B * K, 2)
      const Tensor loss = cross_entropy(row_logits, row_labels(b.labels, data.rows_per_clip, device));
      const double loss_value = loss.item();
      STGS_CHECK(std::isfinite(loss_value), "pretrain_backbone: the loss is ", loss_value, " at epoch ", epoch,
                 ", step ", step, " (lower --lr?)");
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      schedule.step();

      const std::vector<int64_t> predicted =
          argmax(clip_logits(row_logits.detach(), data.rows_per_clip), 1).to_vector<int64_t>();
      const std::vector<int64_t> labels = b.labels.to_vector<int64_t>();
      for (size_t i = 0; i < labels.size(); ++i) correct += predicted[i] == labels[i];
      loss_sum += loss_value * double(labels.size());
      clips += int64_t(labels.size());
      if (callbacks.on_batch) callbacks.on_batch(epoch, step, data.train.batches, loss_value);
      if (callbacks.stop && callbacks.stop()) {
        result.stopped = true;
        break;
      }
    }
    if (result.stopped) break;
    STGS_CHECK(clips > 0, "pretrain_backbone: the training stream gave no batch in epoch ", epoch);

    const Evaluation val = evaluate(model, data, epoch, device);
    EpochReport report;
    report.epoch = epoch;
    report.train_loss = loss_sum / double(clips);
    report.train_accuracy = double(correct) / double(clips);
    report.val_loss = val.loss;
    report.val_accuracy = val.accuracy;
    report.val_auc = val.auc;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.best = result.epochs.empty() || better(report, result.best);
    if (report.best) {
      result.best = report;
      best_state = model.state_dict().clone();
    }
    result.epochs.push_back(report);
    if (callbacks.on_epoch) callbacks.on_epoch(report);
  }
  if (!result.epochs.empty()) model.load_state_dict(best_state);
  model.eval();
  return result;
}

}  // namespace stgs::nas
