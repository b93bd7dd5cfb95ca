// The augmentation catalogue: 36 fixed-strength transforms applied offline when the feature cache is built
// (the paper's "36 augmentations"; which 36 is our choice, see below): 24 on the face frames, 10 on the
// waveform, 2 on the spectrogram.
// defines: AugmentTarget, Augmentation, augmentation_catalogue, find_augmentation, augment_target_name,
//          augment_frames, augment_waveform, augment_spectrogram
//
// Each augmentation is named after its strength ("rotate_10": up to 10 degrees; "noise_snr_20": 20 dB SNR).
// Its random parameters (an angle, a shift, a noise field, a mask position) come from a Philox Generator
// keyed by the `seed` argument, so the same (augmentation, input, seed) gives bitwise the same output on
// every run and thread count; augmentations without random parameters ignore the seed.
//
// Frames (K, 3, H, W) F32 in [0, 1], before ImageNet normalisation; one set of parameters for the whole clip
// (the same transform on every frame, except that a pixel-noise field is drawn per frame); outputs are
// clamped to [0, 1]. Geometric ones sample bilinearly about the image centre and fill what comes from outside
// the frame by mirroring at the border (without repeating the edge pixel), so no black corners appear.
//   hflip               mirror left-right (exact: applying it twice is the identity)
//   rotate_5/10/15      rotate about the centre by an angle uniform in [-N, N] degrees
//   scale_0.9, 1.1      zoom out / in about the centre by the factor
//   translate_5/10      shift by dx, dy each uniform in [-N, N] % of the width / height
//   brightness_up/down  add / subtract a delta uniform in [0.1, 0.2]
//   contrast_up/down    scale about the clip's mean luminance by a factor in [1.2, 1.5] / [0.6, 0.8]
//   saturation_up/down  scale the distance from each pixel's grey by a factor in [1.3, 1.6] / [0.4, 0.7]
//   hue_up/down         rotate the HSV hue by +/- an angle uniform in [10, 20] degrees
//   gaussian_blur_1/2   separable Gaussian blur, sigma 1 / 2 pixels (radius 3 sigma)
//   gaussian_noise_5/10 add N(0, sigma^2) per pixel and channel, sigma 5 / 10 levels of 255
//   jpeg_30/50/75       a real JPEG round trip per frame (stb's encoder, 4:2:0 chroma, then stb_image)
//   grayscale           every channel set to the luminance 0.299 R + 0.587 G + 0.114 B
//
// Waveform: 16 kHz mono floats; the output has the input's length except for time stretch. No clipping: the
// samples stay floats, so gain is exact.
//   noise_snr_10/20     add white Gaussian noise scaled so the SNR is exactly N dB (silence stays silent)
//   time_shift          delay or advance by 1 sample up to 10 % of the length, uniform; silence fills the gap
//   gain_up/down_6db    multiply by 10^(+/-6/20)
//   pitch_up/down_2st   pitch x 2^(+/-2/12) at the same duration: WSOLA time stretch by the ratio, then
//                       resampling (libsamplerate) back to the original length
//   time_stretch_0.9/1.1  duration x 0.9 / 1.1 (length round(n * factor)) at the same pitch, by WSOLA
//   time_reverse        the samples in reverse order
//
// Spectrogram: (T, F) F32 magnitude (F = 257 in the AutoSpeech recipe) before per-bin normalisation.
// Masked cells are set to 0: silence in those frames or that band, which the dataset's per-bin normalisation
// then maps to the value silence has (SpecAugment fills with the mean of already normalised features instead;
// here the masks come before normalisation, and 0 is what a real drop-out of sound looks like).
//   specaug_time_mask   zero frames [t0, t0 + w): w uniform in 1..30 (at most T), t0 uniform over the rest
//   specaug_freq_mask   zero bins [f0, f0 + w): w uniform in 1..25 (at most F), f0 uniform over the rest
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace stgs::data {

enum class AugmentTarget { Frames, Waveform, Spectrogram };  // what an augmentation transforms

struct Augmentation {
  std::string name;         // e.g. "hflip", "rotate_10", "noise_snr_10", "specaug_time_mask"
  AugmentTarget target;
  std::string description;  // one line for `stgs augment --list`
};

// The 36 augmentations: 24 visual (target Frames) then 12 audio (Waveform, then Spectrogram), in the fixed
// order of the list above. Names are unique.
const std::vector<Augmentation>& augmentation_catalogue();

// The catalogue entry called `name`. Throws stgs::Error naming `name` and listing the valid names when unknown.
const Augmentation& find_augmentation(const std::string& name);

// "frames", "waveform" or "spectrogram".
const char* augment_target_name(AugmentTarget target);

// frames: (K, 3, H, W) F32 in [0, 1] (before ImageNet normalisation) -> (K, 3, H, W) F32 in [0, 1].
// Returns a copy of the input for augmentations of another target. Throws for another shape or dtype, for
// values outside [0, 1] (e.g. frames already normalised) and for a Frames augmentation not in the catalogue.
Tensor augment_frames(const Augmentation& a, const Tensor& frames, uint64_t seed);

// wav: n >= 1 finite 16 kHz mono samples -> n samples (round(n * factor) for time stretch).
// Returns a copy of the input for augmentations of another target.
std::vector<float> augment_waveform(const Augmentation& a, const std::vector<float>& wav, uint64_t seed);

// spec: (T, F) F32 magnitude spectrogram, T, F >= 1 -> (T, F) F32 with one band of frames or bins set to 0.
// Returns a copy of the input for augmentations of another target.
Tensor augment_spectrogram(const Augmentation& a, const Tensor& spec, uint64_t seed);

}  // namespace stgs::data
