// Private to data/augment*.cpp: the augmentation tables, where each catalogue entry sits next to the function
// that implements it (so a name cannot lose its implementation), and the seeded random draws they share.
// defines: AugmentDraws, ClipShape, FrameOp, WaveformOp, SpectrogramOp, frame_ops, waveform_ops,
//          spectrogram_ops, find_op
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "data/augment.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/check.h"

namespace stgs::data::augment_detail {

// The random numbers of one augmentation call: a Philox Generator keyed by the call's seed, drawn in a fixed
// order, so the output depends only on (augmentation, input, seed).
class AugmentDraws {
 public:
  explicit AugmentDraws(uint64_t seed) : gen_(seed) {}
  double uniform(double lo, double hi) { return rand({}, DType::F64, Device::cpu(), &gen_, lo, hi).item(); }
  // An integer uniform in [lo, hi].
  int64_t integer(int64_t lo, int64_t hi) {
    return std::min(hi, lo + int64_t(uniform(0, 1) * double(hi - lo + 1)));
  }
  bool coin() { return uniform(0, 1) < 0.5; }
  Tensor normal(const Shape& shape) { return randn(shape, DType::F32, Device::cpu(), &gen_); }

 private:
  Generator gen_;
};

// Frames (K, 3, H, W), contiguous F32.
struct ClipShape {
  int64_t k, h, w;
  int64_t plane() const { return h * w; }
  int64_t numel() const { return k * 3 * h * w; }
};

// A table row: the catalogue entry, its implementation, and the strength (or direction, +1 / -1) the row
// passes to it, so that e.g. rotate_5 and rotate_10 share one function.
// Frame ops write the augmented clip to `out` (same shape as `in`, not aliased); augment_frames then clamps
// it to [0, 1].
struct FrameOp {
  Augmentation info;
  void (*apply)(const float* in, float* out, const ClipShape& shape, AugmentDraws& draws, double param);
  double param;
};

struct WaveformOp {
  Augmentation info;
  std::vector<float> (*apply)(const std::vector<float>& wav, AugmentDraws& draws, double param);
  double param;
};

// Spectrogram ops mask (T, F) contiguous F32 in place.
struct SpectrogramOp {
  Augmentation info;
  void (*apply)(float* spec, int64_t frames, int64_t bins, AugmentDraws& draws, double param);
  double param;
};

const std::vector<FrameOp>& frame_ops();              // the 24 visual entries, catalogue order
const std::vector<WaveformOp>& waveform_ops();        // the 10 waveform entries
const std::vector<SpectrogramOp>& spectrogram_ops();  // the 2 spectrogram entries

// The row of `ops` for `a`, or a clear error: an unknown name lists the catalogue, a known name of another
// target says which target it has. `caller` names the public function in the message.
template <class Op>
const Op& find_op(const std::vector<Op>& ops, const Augmentation& a, const char* caller) {
  for (const Op& op : ops)
    if (op.info.name == a.name) return op;
  const Augmentation& known = find_augmentation(a.name);  // throws when unknown
  STGS_FAIL(caller, ": '", a.name, "' is a ", augment_target_name(known.target), " augmentation, but the ",
            "Augmentation passed says ", augment_target_name(a.target));
}

}  // namespace stgs::data::augment_detail
