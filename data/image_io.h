// Face frames: decoding (stb_image), even sampling of K frames per clip, face or centre crop, resize to the
// backbone's input size (stb_image_resize) and ImageNet normalisation; PNG/JPEG writers for tools and tests.
// defines: Image, PixelBox, read_image, write_png, write_jpeg, is_frame_file_name, list_frame_files,
//          sample_frame_indices, centre_square, crop_and_resize, ClipOptions, frames_to_clip, decode_clip
//
// A clip's frames are image files in one directory (sorted by name, so zero-padded numbering keeps the time
// order) or an explicit list. Every failure throws stgs::Error naming the file and what was wrong with it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace stgs::data {

// An 8-bit RGB image, row-major, channels interleaved: rgb[(y * width + x) * 3 + c].
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// A rectangle in pixels: columns [x, x + w), rows [y, y + h).
struct PixelBox {
  int x = 0, y = 0, w = 0, h = 0;
  bool operator==(const PixelBox&) const = default;
};

// Decodes a JPEG or PNG file (anything stb_image reads) to RGB; grey and alpha images are converted.
// Throws naming the file and stb's reason for unreadable, corrupt or truncated files.
Image read_image(const std::string& path);

// Atomic writers (temporary file + rename), used by the synthetic generator, importers and tests.
void write_png(const std::string& path, const Image& image);
void write_jpeg(const std::string& path, const Image& image, int quality = 95);

// Whether a file name ends in .png, .jpg or .jpeg (any case): the files taken as frames.
bool is_frame_file_name(const std::string& name);

// The frame images of a directory (see is_frame_file_name), sorted by name.
// Throws when the directory is missing or holds no such file.
std::vector<std::string> list_frame_files(const std::string& dir);

// K indices spread evenly over n frames: index i is floor((2i + 1) n / 2K), the middle of the i-th of K equal
// segments, so the clip is covered symmetrically; with n < K some frames repeat. n, k >= 1.
std::vector<int64_t> sample_frame_indices(int64_t n, int64_t k);

// The largest square centred in a width x height image (the crop used when a clip has no face box).
PixelBox centre_square(int width, int height);

// Crops `box` (clipped to the image; throws when nothing of it is inside) and resizes it to size x size with
// stb's triangle (tent) filter, which widens on downsampling so it antialiases like PIL's bilinear resize.
// Result: (3, size, size) F32 in [0, 1], channel-major. `where` names the source in errors.
Tensor crop_and_resize(const Image& image, const PixelBox& box, int size, const std::string& where);

struct ClipOptions {
  int frames = 8;           // K frames per clip (BM-NAS keeps 8)
  int size = 224;           // S: the image backbone's input size
  bool normalize = true;    // ImageNet mean/std per channel after scaling to [0, 1]
};

// Frames already sampled (K images, e.g. a video's from ffmpeg) -> (K, 3, S, S) F32, each cropped to `face_box`
// or its centre square and resized as decode_clip does (ImageNet-normalised when options.normalize;
// options.frames is not used). names[i] names frame i in errors.
Tensor frames_to_clip(const std::vector<Image>& frames, const std::vector<std::string>& names,
                      const std::optional<PixelBox>& face_box, const ClipOptions& options);

// The K sampled frames of a clip: (K, 3, S, S) F32, each frame cropped to `face_box` (pixels of the frames,
// as given in the manifest) or, without one, to its centre square. `frame_files` in time order.
Tensor decode_clip(const std::vector<std::string>& frame_files, const std::optional<PixelBox>& face_box,
                   const ClipOptions& options = {});

}  // namespace stgs::data
