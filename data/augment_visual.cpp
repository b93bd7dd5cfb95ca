// The 24 visual augmentations (see augment.h) on (K, 3, H, W) F32 frames in [0, 1]: geometric warps, colour,
// blur, pixel noise, JPEG and grayscale, and augment_frames, which validates, dispatches and clamps.
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "data/augment_ops.h"
#include "kernels/check.h"

namespace stgs::data {

namespace augment_detail {
namespace {

// ITU-R BT.601 luma weights (what PIL and torchvision use for grayscale).
constexpr float kLumaR = 0.299f, kLumaG = 0.587f, kLumaB = 0.114f;

// ---- geometry -------------------------------------------------------------------------------------------

// Mirrors index i into [0, n) without repeating the edge pixel: -1 -> 1, n -> n - 2 (OpenCV's REFLECT_101).
int64_t mirror(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// Inverse warp: output pixel p = (x, y) reads the input at q = c + inv (p - c - shift), c the frame centre,
// i.e. the forward map is p = c + inv^-1 (q - c) + shift. Bilinear interpolation, mirrored outside the frame.
// With inv = identity and no shift the output equals the input exactly (all weight on one pixel).
void warp(const float* in, float* out, const ClipShape& s, const double inv[2][2], double shift_x, double shift_y) {
  // The four source pixels and bilinear weights of every output pixel, computed once for all 3K planes.
  struct Taps {
    int64_t i00, i01, i10, i11;
    float w00, w01, w10, w11;
  };
  std::vector<Taps> taps(size_t(s.plane()));
  const double cx = 0.5 * double(s.w - 1), cy = 0.5 * double(s.h - 1);
  for (int64_t y = 0; y < s.h; ++y)
    for (int64_t x = 0; x < s.w; ++x) {
      const double px = double(x) - cx - shift_x, py = double(y) - cy - shift_y;
      const double qx = cx + inv[0][0] * px + inv[0][1] * py, qy = cy + inv[1][0] * px + inv[1][1] * py;
      const double fx = std::floor(qx), fy = std::floor(qy);
      const float ax = float(qx - fx), ay = float(qy - fy);
      const int64_t x0 = mirror(int64_t(fx), s.w), x1 = mirror(int64_t(fx) + 1, s.w);
      const int64_t y0 = mirror(int64_t(fy), s.h), y1 = mirror(int64_t(fy) + 1, s.h);
      taps[size_t(y * s.w + x)] = {y0 * s.w + x0,         y0 * s.w + x1,  y1 * s.w + x0, y1 * s.w + x1,
                                   (1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
    }
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < s.k * 3; ++p) {
    const float* src = in + p * s.plane();
    float* dst = out + p * s.plane();
    for (int64_t i = 0; i < s.plane(); ++i) {
      const Taps& t = taps[size_t(i)];
      dst[i] = t.w00 * src[t.i00] + t.w01 * src[t.i01] + t.w10 * src[t.i10] + t.w11 * src[t.i11];
    }
  }
}

void hflip(const float* in, float* out, const ClipShape& s, AugmentDraws&, double) {
  for (int64_t row = 0; row < s.k * 3 * s.h; ++row)
    std::reverse_copy(in + row * s.w, in + (row + 1) * s.w, out + row * s.w);
}

// Rotation by an angle uniform in [-max_degrees, max_degrees] about the centre.
void rotate(const float* in, float* out, const ClipShape& s, AugmentDraws& draws, double max_degrees) {
  const double theta = draws.uniform(-max_degrees, max_degrees) * std::numbers::pi / 180.0;
  const double c = std::cos(theta), sn = std::sin(theta);
  const double inv[2][2] = {{c, sn}, {-sn, c}};  // rotation by -theta
  warp(in, out, s, inv, 0, 0);
}

// Zoom by `factor` about the centre (> 1 enlarges the face and crops the border away).
void scale(const float* in, float* out, const ClipShape& s, AugmentDraws&, double factor) {
  const double inv[2][2] = {{1 / factor, 0}, {0, 1 / factor}};
  warp(in, out, s, inv, 0, 0);
}

// Shift by dx, dy uniform in [-percent, percent] % of the width and height.
void translate(const float* in, float* out, const ClipShape& s, AugmentDraws& draws, double percent) {
  const double dx = draws.uniform(-percent, percent) / 100 * double(s.w);
  const double dy = draws.uniform(-percent, percent) / 100 * double(s.h);
  const double identity[2][2] = {{1, 0}, {0, 1}};
  warp(in, out, s, identity, dx, dy);
}

// ---- colour ---------------------------------------------------------------------------------------------

// Calls pixel(r, g, b) for every pixel of the clip with references to its three channel values in `out`,
// after copying `in` there.
template <class PixelFn>
void for_each_pixel(const float* in, float* out, const ClipShape& s, PixelFn pixel) {
  std::copy_n(in, s.numel(), out);
  const int64_t plane = s.plane();
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < s.k; ++k) {
    float* r = out + k * 3 * plane;
    for (int64_t i = 0; i < plane; ++i) pixel(r[i], r[plane + i], r[2 * plane + i]);
  }
}

float luma(float r, float g, float b) { return kLumaR * r + kLumaG * g + kLumaB * b; }

// direction +1 / -1: add / subtract a delta uniform in [0.1, 0.2].
void brightness(const float* in, float* out, const ClipShape& s, AugmentDraws& draws, double direction) {
  const float delta = float(direction * draws.uniform(0.1, 0.2));
  std::transform(in, in + s.numel(), out, [delta](float v) { return v + delta; });
}

// direction +1 / -1: factor uniform in [1.2, 1.5] / [0.6, 0.8] about the clip's mean luminance (one pivot for
// the clip, so every frame gets the same affine map).
void contrast(const float* in, float* out, const ClipShape& s, AugmentDraws& draws, double direction) {
  const float factor = float(direction > 0 ? draws.uniform(1.2, 1.5) : draws.uniform(0.6, 0.8));
  double sum = 0;
  const int64_t plane = s.plane();
  for (int64_t k = 0; k < s.k; ++k) {
    const float* f = in + k * 3 * plane;
    for (int64_t i = 0; i < plane; ++i) sum += luma(f[i], f[plane + i], f[2 * plane + i]);
  }
  const float mean = float(sum / double(s.k * plane));
  std::transform(in, in + s.numel(), out, [=](float v) { return mean + factor * (v - mean); });
}

// direction +1 / -1: factor uniform in [1.3, 1.6] / [0.4, 0.7] on each pixel's distance from its own grey.
void saturation(const float* in, float* out, const ClipShape& s, AugmentDraws& draws, double direction) {
  const float factor = float(direction > 0 ? draws.uniform(1.3, 1.6) : draws.uniform(0.4, 0.7));
  for_each_pixel(in, out, s, [factor](float& r, float& g, float& b) {
    const float y = luma(r, g, b);
    r = y + factor * (r - y), g = y + factor * (g - y), b = y + factor * (b - y);
  });
}

// RGB in [0, 1] -> hue in [0, 1) (a fraction of a turn: 0 red, 1/3 green, 2/3 blue), saturation, value.
void rgb_to_hsv(float r, float g, float b, float& h, float& s, float& v) {
  const float hi = std::max({r, g, b}), lo = std::min({r, g, b}), range = hi - lo;
  v = hi;
  s = hi > 0 ? range / hi : 0;
  if (range <= 0) {
    h = 0;
    return;
  }
  const float sector = hi == r ? (g - b) / range : hi == g ? 2 + (b - r) / range : 4 + (r - g) / range;
  h = sector / 6;
  if (h < 0) h += 1;
}

void hsv_to_rgb(float h, float s, float v, float& r, float& g, float& b) {
  const float h6 = h * 6, sector = std::floor(h6), f = h6 - sector;
  const float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (int(sector) % 6) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
}

// direction +1 / -1: rotate the hue by +/- an angle uniform in [10, 20] degrees; saturation and value stay.
void hue(const float* in, float* out, const ClipShape& s, AugmentDraws& draws, double direction) {
  const float turn = float(direction * draws.uniform(10, 20) / 360);
  for_each_pixel(in, out, s, [turn](float& r, float& g, float& b) {
    float h, sat, v;
    rgb_to_hsv(r, g, b, h, sat, v);
    h += turn;
    h -= std::floor(h);  // back into [0, 1)
    hsv_to_rgb(h, sat, v, r, g, b);
  });
}

void grayscale(const float* in, float* out, const ClipShape& s, AugmentDraws&, double) {
  for_each_pixel(in, out, s, [](float& r, float& g, float& b) { r = g = b = luma(r, g, b); });
}

// ---- blur, noise, JPEG ----------------------------------------------------------------------------------

// Separable Gaussian of standard deviation sigma pixels, truncated at radius ceil(3 sigma) and normalised to
// sum 1, mirrored at the border; rows then columns, one plane per thread.
void gaussian_blur(const float* in, float* out, const ClipShape& s, AugmentDraws&, double sigma) {
  const int64_t radius = int64_t(std::ceil(3 * sigma));
  std::vector<float> taps(size_t(2 * radius + 1));
  double total = 0;
  for (int64_t i = -radius; i <= radius; ++i) total += std::exp(-double(i * i) / (2 * sigma * sigma));
  for (int64_t i = -radius; i <= radius; ++i)
    taps[size_t(i + radius)] = float(std::exp(-double(i * i) / (2 * sigma * sigma)) / total);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < s.k * 3; ++p) {
    const float* src = in + p * s.plane();
    float* dst = out + p * s.plane();
    std::vector<float> rows(size_t(s.plane()));  // the plane blurred along x
    for (int64_t y = 0; y < s.h; ++y)
      for (int64_t x = 0; x < s.w; ++x) {
        float acc = 0;
        for (int64_t i = -radius; i <= radius; ++i)
          acc += taps[size_t(i + radius)] * src[y * s.w + mirror(x + i, s.w)];
        rows[size_t(y * s.w + x)] = acc;
      }
    for (int64_t y = 0; y < s.h; ++y)
      for (int64_t x = 0; x < s.w; ++x) {
        float acc = 0;
        for (int64_t i = -radius; i <= radius; ++i)
          acc += taps[size_t(i + radius)] * rows[size_t(mirror(y + i, s.h) * s.w + x)];
        dst[y * s.w + x] = acc;
      }
  }
}

// Adds N(0, (levels / 255)^2) independently to every pixel, channel and frame (sensor noise is not shared
// between frames).
void gaussian_noise(const float* in, float* out, const ClipShape& s, AugmentDraws& draws, double levels) {
  const Tensor noise = draws.normal({s.k, 3, s.h, s.w});
  const float* n = noise.data<float>();
  const float sigma = float(levels / 255);
  for (int64_t i = 0; i < s.numel(); ++i) out[i] = in[i] + sigma * n[i];
}

// stb's writer hands out the encoded file in pieces.
void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

// Each frame is rounded to 8-bit RGB, encoded as a baseline JPEG at `quality` by stb_image_write (4:2:0
// chroma subsampling at quality <= 90, the IJG quantisation tables scaled by quality) and decoded again with
// stb_image: the blocking, ringing and chroma bleeding a video codec leaves, deterministically.
void jpeg(const float* in, float* out, const ClipShape& s, AugmentDraws&, double quality) {
  STGS_CHECK(s.w <= 65535 && s.h <= 65535, "jpeg augmentation: frames of ", s.w, "x", s.h,
             " exceed JPEG's 65535 pixels per side");
  const int64_t plane = s.plane();
  std::vector<uint8_t> rgb(size_t(plane) * 3);
  for (int64_t k = 0; k < s.k; ++k) {
    const float* f = in + k * 3 * plane;
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t c = 0; c < 3; ++c) rgb[size_t(i * 3 + c)] = uint8_t(std::lround(f[c * plane + i] * 255.0f));
    std::string encoded;
    const int ok = stbi_write_jpg_to_func(append_bytes, &encoded, int(s.w), int(s.h), 3, rgb.data(), int(quality));
    STGS_CHECK(ok != 0 && encoded.size() <= size_t(INT32_MAX), "jpeg augmentation: encoding a ", s.w, "x", s.h,
               " frame failed");
    int w = 0, h = 0, channels = 0;
    stbi_uc* decoded = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(encoded.data()), int(encoded.size()),
                                             &w, &h, &channels, 3);
    STGS_CHECK(decoded != nullptr && w == s.w && h == s.h, "jpeg augmentation: decoding the re-encoded ", s.w, "x",
               s.h, " frame failed: ", decoded ? "size changed" : stbi_failure_reason());
    float* o = out + k * 3 * plane;
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t c = 0; c < 3; ++c) o[c * plane + i] = float(decoded[i * 3 + c]) * (1.0f / 255.0f);
    stbi_image_free(decoded);
  }
}

constexpr AugmentTarget kFrames = AugmentTarget::Frames;

}  // namespace

const std::vector<FrameOp>& frame_ops() {
  static const std::vector<FrameOp> ops = {
      {{"hflip", kFrames, "mirror left-right"}, hflip, 0},
      {{"rotate_5", kFrames, "rotate about the centre by an angle uniform in [-5, 5] degrees"}, rotate, 5},
      {{"rotate_10", kFrames, "rotate about the centre by an angle uniform in [-10, 10] degrees"}, rotate, 10},
      {{"rotate_15", kFrames, "rotate about the centre by an angle uniform in [-15, 15] degrees"}, rotate, 15},
      {{"scale_0.9", kFrames, "zoom out about the centre by 0.9 (border mirrored)"}, scale, 0.9},
      {{"scale_1.1", kFrames, "zoom in about the centre by 1.1"}, scale, 1.1},
      {{"translate_5", kFrames, "shift by dx, dy uniform in [-5, 5] % of the frame (border mirrored)"}, translate, 5},
      {{"translate_10", kFrames, "shift by dx, dy uniform in [-10, 10] % of the frame (border mirrored)"}, translate,
       10},
      {{"brightness_up", kFrames, "add a delta uniform in [0.1, 0.2] to every channel"}, brightness, +1},
      {{"brightness_down", kFrames, "subtract a delta uniform in [0.1, 0.2] from every channel"}, brightness, -1},
      {{"contrast_up", kFrames, "scale about the clip's mean luminance by a factor in [1.2, 1.5]"}, contrast, +1},
      {{"contrast_down", kFrames, "scale about the clip's mean luminance by a factor in [0.6, 0.8]"}, contrast, -1},
      {{"saturation_up", kFrames, "scale each pixel's distance from its grey by a factor in [1.3, 1.6]"}, saturation,
       +1},
      {{"saturation_down", kFrames, "scale each pixel's distance from its grey by a factor in [0.4, 0.7]"},
       saturation, -1},
      {{"hue_up", kFrames, "rotate the HSV hue by an angle uniform in [10, 20] degrees"}, hue, +1},
      {{"hue_down", kFrames, "rotate the HSV hue by an angle uniform in [-20, -10] degrees"}, hue, -1},
      {{"gaussian_blur_1", kFrames, "Gaussian blur, sigma 1 pixel"}, gaussian_blur, 1},
      {{"gaussian_blur_2", kFrames, "Gaussian blur, sigma 2 pixels"}, gaussian_blur, 2},
      {{"gaussian_noise_5", kFrames, "add Gaussian noise per pixel and channel, sigma 5/255"}, gaussian_noise, 5},
      {{"gaussian_noise_10", kFrames, "add Gaussian noise per pixel and channel, sigma 10/255"}, gaussian_noise, 10},
      {{"jpeg_30", kFrames, "JPEG round trip at quality 30 (4:2:0 chroma)"}, jpeg, 30},
      {{"jpeg_50", kFrames, "JPEG round trip at quality 50 (4:2:0 chroma)"}, jpeg, 50},
      {{"jpeg_75", kFrames, "JPEG round trip at quality 75 (4:2:0 chroma)"}, jpeg, 75},
      {{"grayscale", kFrames, "set R, G and B to the luminance 0.299 R + 0.587 G + 0.114 B"}, grayscale, 0},
  };
  return ops;
}

}  // namespace augment_detail

Tensor augment_frames(const Augmentation& a, const Tensor& frames, uint64_t seed) {
  using namespace augment_detail;
  STGS_CHECK(frames.defined(), "augment_frames(", a.name, "): the frames tensor is undefined");
  if (a.target != AugmentTarget::Frames) return frames.clone();
  STGS_CHECK(frames.dim() == 4 && frames.size(1) == 3 && frames.dtype() == DType::F32 && frames.numel() > 0,
             "augment_frames(", a.name, "): expected (K, 3, H, W) F32 frames with K, H, W >= 1, got ", frames.str());
  const FrameOp& op = find_op(frame_ops(), a, "augment_frames");
  const Tensor x = frames.to(Device::cpu()).contiguous();
  const ClipShape shape{x.size(0), x.size(2), x.size(3)};
  const float* in = x.data<float>();
  for (int64_t i = 0; i < shape.numel(); ++i)
    STGS_CHECK(in[i] >= 0.0f && in[i] <= 1.0f, "augment_frames(", a.name, "): expected values in [0, 1] (frames ",
               "before ImageNet normalisation), got ", in[i], " at element ", i, " of ", frames.str());
  Tensor out = empty(x.shape());
  float* o = out.data<float>();
  AugmentDraws draws(seed);
  op.apply(in, o, shape, draws, op.param);
  for (int64_t i = 0; i < shape.numel(); ++i) o[i] = std::clamp(o[i], 0.0f, 1.0f);
  return out.to(frames.device());
}

}  // namespace stgs::data
