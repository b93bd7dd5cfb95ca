// Frame decoding, cropping, resizing and normalisation (see image_io.h).
#include "data/image_io.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/io/atomic_file.h"
#include "engine/nn/resnet.h"
#include "kernels/check.h"

namespace stgs::data {

namespace fs = std::filesystem;

namespace {

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STGS_CHECK(in, "cannot open image '", path, "': ", fs::exists(path) ? "not readable" : "no such file");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  STGS_CHECK(!in.bad(), "reading image '", path, "' failed");
  return bytes;
}

// stb's writers hand out the encoded file in pieces through this callback.
void append_to_string(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

void check_writable(const Image& image, const std::string& path) {
  STGS_CHECK(image.width > 0 && image.height > 0 && image.rgb.size() == size_t(image.width) * image.height * 3,
             "writing image '", path, "': expected width, height > 0 and ", "3 * width * height bytes, got ",
             image.width, "x", image.height, " with ", image.rgb.size(), " bytes");
}

}  // namespace

Image read_image(const std::string& path) {
  const std::string bytes = read_file_bytes(path);
  STGS_CHECK(bytes.size() <= size_t(INT32_MAX), "image '", path, "' is ", bytes.size(), " bytes (over 2 GiB)");
  int w = 0, h = 0, channels_in_file = 0;
  // Forcing 3 channels makes stb convert grey, grey+alpha and RGBA to RGB (alpha is dropped).
  stbi_uc* pixels = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size()), &w, &h,
                                          &channels_in_file, 3);
  // stb_image's failure reasons are short ("expected marker", "outofdata") or empty, so say what kind of file
  // it was.
  const char* reason = pixels == nullptr ? stbi_failure_reason() : nullptr;
  STGS_CHECK(pixels != nullptr, "cannot decode image '", path, "' (", bytes.size(),
             " bytes; corrupt, truncated or not a JPEG/PNG): ", reason != nullptr && *reason ? reason : "no reason given");
  Image image;
  image.width = w;
  image.height = h;
  image.rgb.assign(pixels, pixels + size_t(w) * h * 3);
  stbi_image_free(pixels);
  return image;
}

void write_png(const std::string& path, const Image& image) {
  check_writable(image, path);
  std::string encoded;
  const int ok = stbi_write_png_to_func(append_to_string, &encoded, image.width, image.height, 3, image.rgb.data(),
                                        image.width * 3);
  STGS_CHECK(ok != 0, "encoding PNG '", path, "' failed");
  write_file_atomically(path, encoded, "write_png: ");
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  check_writable(image, path);
  STGS_CHECK(quality >= 1 && quality <= 100, "writing JPEG '", path, "': quality ", quality, " is not in 1..100");
  std::string encoded;
  const int ok =
      stbi_write_jpg_to_func(append_to_string, &encoded, image.width, image.height, 3, image.rgb.data(), quality);
  STGS_CHECK(ok != 0, "encoding JPEG '", path, "' failed");
  write_file_atomically(path, encoded, "write_jpeg: ");
}

bool is_frame_file_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<std::string> list_frame_files(const std::string& dir) {
  std::error_code ec;
  STGS_CHECK(fs::is_directory(dir, ec), "frames directory '", dir, "' ",
             fs::exists(dir, ec) ? "is not a directory" : "does not exist");
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_frame_file_name(it->path().filename().string()) && it->is_regular_file(ec)) files.push_back(it->path().string());
  STGS_CHECK(!ec, "listing frames directory '", dir, "' failed: ", ec.message());
  STGS_CHECK(!files.empty(), "frames directory '", dir, "' holds no .png, .jpg or .jpeg file");
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<int64_t> sample_frame_indices(int64_t n, int64_t k) {
  STGS_CHECK(n >= 1 && k >= 1, "sample_frame_indices: need at least one frame and k >= 1, got n = ", n, ", k = ", k);
  std::vector<int64_t> indices(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) indices[size_t(i)] = (2 * i + 1) * n / (2 * k);
  return indices;
}

PixelBox centre_square(int width, int height) {
  const int side = std::min(width, height);
  return PixelBox{(width - side) / 2, (height - side) / 2, side, side};
}

Tensor crop_and_resize(const Image& image, const PixelBox& box, int size, const std::string& where) {
  STGS_CHECK(size >= 1, where, ": output size ", size, " must be >= 1");
  // Clip the box to the image: detectors and hand-made boxes often overhang the frame edge a little.
  const int x0 = std::max(box.x, 0), y0 = std::max(box.y, 0);
  // In 64 bits: a box as wide as INT_MAX would wrap around in int.
  const int x1 = int(std::min<int64_t>(int64_t(box.x) + box.w, image.width)),
            y1 = int(std::min<int64_t>(int64_t(box.y) + box.h, image.height));
  STGS_CHECK(box.w > 0 && box.h > 0 && x1 > x0 && y1 > y0, where, ": box (x ", box.x, ", y ", box.y, ", w ", box.w,
             ", h ", box.h, ") does not overlap the ", image.width, "x", image.height, " image");
  const int cw = x1 - x0, ch = y1 - y0;
  // Scale the crop to floats in [0, 1] first, so the resize filter works on the values the network sees.
  std::vector<float> crop(size_t(cw) * ch * 3);
  for (int y = 0; y < ch; ++y) {
    const uint8_t* src = image.rgb.data() + (size_t(y0 + y) * image.width + x0) * 3;
    float* dst = crop.data() + size_t(y) * cw * 3;
    for (int i = 0; i < cw * 3; ++i) dst[i] = float(src[i]) * (1.0f / 255.0f);
  }
  std::vector<float> resized(size_t(size) * size * 3);
  const int ok = stbir_resize_float_generic(crop.data(), cw, ch, 0, resized.data(), size, size, 0, 3,
                                            STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE,
                                            STBIR_COLORSPACE_LINEAR, nullptr);
  STGS_CHECK(ok != 0, where, ": resizing ", cw, "x", ch, " to ", size, "x", size, " failed");
  // Interleaved (S, S, 3) -> channel-major (3, S, S); the tent filter cannot overshoot, but rounding can
  // leave values a hair outside [0, 1].
  Tensor out = empty({3, size, size});
  float* o = out.data<float>();
  const size_t plane = size_t(size) * size;
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) o[size_t(c) * plane + p] = std::clamp(resized[p * 3 + size_t(c)], 0.0f, 1.0f);
  return out;
}

Tensor frames_to_clip(const std::vector<Image>& frames, const std::vector<std::string>& names,
                      const std::optional<PixelBox>& face_box, const ClipOptions& options) {
  STGS_CHECK(!frames.empty() && frames.size() == names.size(), "frames_to_clip: ", frames.size(), " frames and ",
             names.size(), " names");
  STGS_CHECK(options.size >= 1, "frames_to_clip: size (", options.size, ") must be >= 1");
  const int64_t k = int64_t(frames.size()), s = options.size;
  Tensor clip = empty({k, 3, s, s});
  float* out = clip.data<float>();
  const int64_t frame_numel = 3 * s * s;
  for (int64_t i = 0; i < k; ++i) {
    const Image& image = frames[size_t(i)];
    const PixelBox box = face_box ? *face_box : centre_square(image.width, image.height);
    const Tensor frame = crop_and_resize(image, box, int(s), names[size_t(i)]);
    std::copy_n(frame.data<float>(), frame_numel, out + i * frame_numel);
  }
  if (options.normalize) {
    const int64_t plane = s * s;
    for (int64_t i = 0; i < k; ++i)
      for (int c = 0; c < 3; ++c) {
        const float mean = float(kImageNetMean[size_t(c)]), inv_std = float(1.0 / kImageNetStd[size_t(c)]);
        float* p = out + (i * 3 + c) * plane;
        for (int64_t j = 0; j < plane; ++j) p[j] = (p[j] - mean) * inv_std;
      }
  }
  return clip;
}

Tensor decode_clip(const std::vector<std::string>& frame_files, const std::optional<PixelBox>& face_box,
                   const ClipOptions& options) {
  STGS_CHECK(!frame_files.empty(), "decode_clip: the clip has no frame files");
  STGS_CHECK(options.frames >= 1 && options.size >= 1, "decode_clip: frames (", options.frames, ") and size (",
             options.size, ") must be >= 1");
  std::vector<Image> frames;
  std::vector<std::string> names;
  const std::vector<int64_t> picked = sample_frame_indices(int64_t(frame_files.size()), options.frames);
  for (size_t i = 0; i < picked.size(); ++i) {
    const std::string& file = frame_files[size_t(picked[i])];
    // A short clip repeats frames: each file is decoded once.
    frames.push_back(i > 0 && picked[i] == picked[i - 1] ? frames.back() : read_image(file));
    names.push_back("frame '" + file + "'");
  }
  return frames_to_clip(frames, names, face_box, options);
}

}  // namespace stgs::data
