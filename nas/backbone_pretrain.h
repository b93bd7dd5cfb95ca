// Pretraining a backbone as a unimodal real/fake classifier, so the frozen backbones the search reads
// features from have learned something about the data (`stgs pretrain`).
// defines: BackboneBatch, BatchStream, PretrainData, PretrainOptions, EpochReport, PretrainCallbacks,
//          PretrainResult, pretrain_backbone, clip_logits
//
// A clip is K input rows (image: its K frames; audio: one spectrogram window, K = 1). Each row is classified
// with the clip's label; a clip's logits are the mean of its rows' logits. Training: AdamW, lr annealed by a
// cosine schedule stepped per batch, batch norms in training mode. After every epoch the model is evaluated
// on the validation clips (eval mode, no gradients); the epoch with the best validation AUC (then accuracy,
// then the earliest) is kept and loaded back into the model at the end. Batches come through two BatchStreams,
// which apps/ wires to data/'s loader (shuffling, seeds, prefetching), so this file never decodes a clip.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "engine/nn/resnet.h"

namespace stgs::nas {

// B clips.
struct BackboneBatch {
  Tensor inputs;  // (B * K, C, H, W), clip-major: rows 0..K-1 are clip 0
  Tensor labels;  // (B) I64, 1 = fake
};

// One pass over a set of clips per epoch: start(epoch) begins it, next() returns its batches in order and
// nullopt at its end.
struct BatchStream {
  int64_t clips = 0;
  int64_t batches = 0;  // per pass
  std::function<void(int epoch)> start;
  std::function<std::optional<BackboneBatch>()> next;
};

struct PretrainData {
  BatchStream train;          // shuffled per epoch, with training-time randomness (e.g. the spectrogram window)
  BatchStream val;            // every validation clip once, deterministic
  int64_t rows_per_clip = 1;  // K
};

struct PretrainOptions {
  int epochs = 6;
  double lr = 2e-3;  // AdamW's peak lr, annealed to 0 over all steps
  double weight_decay = 1e-2;
  Device device = Device::cpu();
};

struct EpochReport {
  int epoch = 0;  // from 1
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0;
  double val_auc = 0;  // NaN when the validation clips are all of one class
  double seconds = 0;  // training and evaluation
  bool best = false;   // the best so far
};

struct PretrainCallbacks {
  std::function<void(int epoch, int64_t step, int64_t steps, double loss)> on_batch;  // after each step
  std::function<void(const EpochReport&)> on_epoch;                                   // after each evaluation
  // Polled after each step; true ends the training there (Ctrl-C): the unfinished epoch is dropped.
  std::function<bool()> stop;
};

struct PretrainResult {
  EpochReport best;                 // epoch 0 when stopped before the first epoch ended
  std::vector<EpochReport> epochs;  // the finished ones
  bool stopped = false;             // callbacks.stop ended the training early
};

// Per-row logits (B * K, classes) -> per-clip logits (B, classes): the mean over each clip's K rows, as the
// model was trained (and as `stgs detect` reads a pretrained head).
Tensor clip_logits(const Tensor& row_logits, int64_t K);

// Trains `model` (a 2-class head; moved to options.device) and leaves it holding the best finished epoch's
// weights (after a stop before any epoch ended: the weights of that moment, which nobody should keep).
// Throws when the model has no 2-class head, a stream is empty, or a training loss or a validation score is
// not finite (naming the epoch: the training diverged).
PretrainResult pretrain_backbone(ResNet34& model, const PretrainData& data, const PretrainOptions& options,
                                 const PretrainCallbacks& callbacks = {});

}  // namespace stgs::nas
