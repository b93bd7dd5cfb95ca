// `stgs show-input MANIFEST --id ID --out DIR`: writes what the two backbones see for one clip, to check the
// data pipeline by eye: the K face crops (de-normalised back to RGB PNG), the spectrogram as images, and the
// raw and normalised spectrograms as safetensors tensors.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/options.h"
#include "data/augment.h"
#include "data/clip_batch.h"
#include "data/clip.h"
#include "engine/io/safetensors.h"
#include "engine/nn/resnet.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

namespace fs = std::filesystem;

CommandLine show_input_flags() {
  const data::ClipOptions d;
  return CommandLine(
      "stgs show-input", "stgs show-input MANIFEST --id ID --out DIR [options]",
      "Writes what the model sees for one clip of a manifest (evaluation pipeline: centred spectrogram window):\n"
      "  DIR/frame_00.png ...           the K face crops, S x S, de-normalised from the ImageNet-normalised input\n"
      "  DIR/spectrogram.png            the clip's log-magnitude spectrogram (time on x, low frequencies at the\n"
      "                                 bottom, 80 dB below the peak shown black)\n"
      "  DIR/spectrogram_normalised.png the per-bin normalised 300-frame window the audio backbone takes\n"
      "                                 (-3 to +3 standard deviations)\n"
      "  DIR/spectrogram.safetensors    spectrogram_raw (T, 257) and spectrogram_normalised (1, 300, 257), F32\n"
      "\n"
      "exit status: 0 on success, 1 on a bad value, an unknown id or a read/write error, 2 on a usage error.",
      {Flag{"manifest", "", "the manifest CSV", "MANIFEST"}.positional().required(),
       Flag{"id", "", "the clip (manifest column id)", "ID"}.required(),
       Flag{"out", "", "output directory (created; the files above and earlier frame_*.png are replaced)", "DIR"}
           .required(),
       {"stats", "",
        "per-bin spectrogram statistics (safetensors) to normalise with; without it the clip's own statistics are "
        "used, which the model never sees (a note says so)",
        "FILE"},
       Flag{"frames", d.frames, "frames per clip", "K"}.in(1, 1000),
       Flag{"size", d.size, "face crop size in pixels", "S"}.in(8, 1024),
       {"augment", "", "also write each augmented variant (`stgs augment --list`) the same way, in DIR/<name>/",
        "A[,B]"},
       Flag{"seed", 1, "seed of the augmentations' random parameters, as `stgs extract --seed`"}.at_least(0)});
}

const data::ManifestRow& find_clip(const data::Manifest& manifest, const std::string& id) {
  for (const data::ManifestRow& row : manifest.rows)
    if (row.id == id) return row;
  std::string known;
  constexpr size_t kListed = 5;
  for (size_t i = 0; i < manifest.rows.size() && i < kListed; ++i) known += (i ? ", " : "") + manifest.rows[i].id;
  if (manifest.rows.size() > kListed) known += ", ...";
  STGS_FAIL("no clip '", id, "' in manifest '", manifest.path, "' (", manifest.rows.size(), " clips",
            manifest.rows.empty() ? "" : ": ", known, ")");
}

// A dark-to-bright colour map for values in [0, 1]: black, indigo, crimson, orange, pale yellow, linearly
// interpolated. Brightness rises monotonically, so the image also reads in grey.
std::array<uint8_t, 3> colour(double v) {
  static constexpr double kStops[5][3] = {{0, 0, 0}, {50, 20, 110}, {185, 45, 80}, {248, 145, 35}, {252, 250, 190}};
  const double x = std::clamp(v, 0.0, 1.0) * 4;
  const int i = std::min(int(x), 3);
  const double f = x - i;
  std::array<uint8_t, 3> rgb;
  for (int c = 0; c < 3; ++c)
    rgb[size_t(c)] = uint8_t(std::lround(kStops[i][c] + f * (kStops[i + 1][c] - kStops[i][c])));
  return rgb;
}

// (T, F) values -> a T x F image through `to_unit` (value -> [0, 1]) and the colour map: time on x, bin 0
// in the bottom row.
template <class ToUnit>
data::Image spectrogram_image(const Tensor& spec, ToUnit to_unit) {
  const Tensor x = spec.contiguous();
  const int t_count = int(x.size(0)), bins = int(x.size(1));
  const float* v = x.data<float>();
  data::Image image{t_count, bins, std::vector<uint8_t>(size_t(t_count) * bins * 3)};
  for (int t = 0; t < t_count; ++t)
    for (int f = 0; f < bins; ++f) {
      const std::array<uint8_t, 3> rgb = colour(to_unit(v[size_t(t) * bins + f]));
      std::copy(rgb.begin(), rgb.end(), image.rgb.begin() + (size_t(bins - 1 - f) * t_count + t) * 3);
    }
  return image;
}

// The raw magnitude spectrogram in decibels, the top 80 dB of the clip (a common display range: speech
// harmonics stand out, room noise stays dark).
data::Image log_magnitude_image(const Tensor& spec) {
  constexpr double kRangeDb = 80, kFloor = 1e-10;  // the floor keeps log10 finite on exact zeros
  const std::vector<float> v = spec.to_vector<float>();
  const double peak_db = 20 * std::log10(std::max(double(*std::max_element(v.begin(), v.end())), kFloor));
  return spectrogram_image(spec, [&](float m) {
    return (20 * std::log10(std::max(double(m), kFloor)) - (peak_db - kRangeDb)) / kRangeDb;
  });
}

// One ImageNet-normalised frame (3, S, S) back to 8-bit RGB: x * std + mean, clamped to [0, 1].
data::Image denormalised_frame(const Tensor& frame) {
  const Tensor x = frame.contiguous();
  const int s = int(x.size(1));
  const float* v = x.data<float>();
  data::Image image{s, s, std::vector<uint8_t>(size_t(s) * s * 3)};
  for (int c = 0; c < 3; ++c)
    for (size_t p = 0; p < size_t(s) * s; ++p) {
      const double u = v[size_t(c) * s * s + p] * kImageNetStd[size_t(c)] + kImageNetMean[size_t(c)];
      image.rgb[p * 3 + size_t(c)] = uint8_t(std::lround(std::clamp(u, 0.0, 1.0) * 255));
    }
  return image;
}

// Writes the model's view of one clip (frames in [0, 1], its raw spectrogram) into dir: the face crops, the
// spectrogram images and tensors. Returns the number of frames written.
int64_t write_view(const fs::path& dir, const Tensor& frames, const Tensor& spec, const data::SpectrogramStats& stats,
                   const std::map<std::string, std::string>& metadata) {
  const data::ClipInput input = data::make_clip_input(frames, spec, stats);
  std::error_code ec;
  fs::create_directories(dir, ec);
  STGS_CHECK(!ec, "stgs show-input: cannot create output directory '", dir.string(), "': ", ec.message());
  // Frames of an earlier run with a larger K would pass for this clip's.
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("frame_") && name.ends_with(".png")) fs::remove(entry.path());
  }
  const int64_t k = input.frames.size(0);
  for (int64_t f = 0; f < k; ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "frame_%02lld.png", (long long)f);
    data::write_png((dir / name).string(), denormalised_frame(input.frames.select(0, f)));
  }
  data::write_png((dir / "spectrogram.png").string(), log_magnitude_image(spec));
  constexpr double kShownStd = 3;  // normalised values beyond +-3 std are clipped in the image only
  data::write_png((dir / "spectrogram_normalised.png").string(),
                  spectrogram_image(input.spectrogram.select(0, 0),
                                    [](float z) { return (z + kShownStd) / (2 * kShownStd); }));
  save_safetensors((dir / "spectrogram.safetensors").string(),
                   {{"spectrogram_raw", spec}, {"spectrogram_normalised", input.spectrogram}}, metadata);
  return k;
}

}  // namespace

int run_show_input(int argc, char** argv) {
  const CommandLine flags = show_input_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  const ParsedCommand& cmd = *parsed;
  const nlohmann::json& c = cmd.config;
  const std::string manifest_path = c["manifest"], id = c["id"], out = c["out"], stats_path = c["stats"],
                    augment = c["augment"];
  const uint64_t seed = c["seed"];
  data::ClipOptions options;
  options.frames = c["frames"];
  options.size = c["size"];

  // Only this clip's files matter: a missing file elsewhere in a large set should not stop the look at one clip.
  data::ManifestReadOptions read_options;
  read_options.check_files = false;
  const data::Manifest manifest = data::read_manifest(manifest_path, read_options);
  const data::ManifestRow& row = find_clip(manifest, id);
  // Every name is checked before anything is written.
  std::vector<const data::Augmentation*> augmentations;
  for (const std::string& name : split_list(augment, ',')) augmentations.push_back(&data::find_augmentation(name));

  // The evaluation pipeline of data/clip.h: raw frames and waveform, spectrogram, model input (centred window).
  const data::RawClip raw = data::load_raw_clip(row, manifest.path, options);
  const Tensor spec = data::clip_spectrogram(raw);  // (T, 257)
  data::SpectrogramStats stats;
  std::string stats_source;
  if (!stats_path.empty()) {
    stats = data::SpectrogramStats::load(stats_path);
    stats_source = "statistics " + stats_path + " (" + std::to_string(stats.frames()) + " frames)";
  } else {
    stats.add(spec);
    stats_source = "this clip's own statistics";
  }
  const std::map<std::string, std::string> metadata = {
      {"manifest", manifest.path}, {"id", row.id}, {"normalised_with", stats_source}};
  const int64_t k = write_view(out, raw.frames, spec, stats, metadata);
  // Each augmented variant through the same stages (data/clip.h), its parameters from (seed, id, name).
  std::vector<std::string> augmented;
  for (const data::Augmentation* augmentation : augmentations) {
    const data::Augmentation& a = *augmentation;
    const uint64_t aug_seed = data::augmentation_seed(seed, row.id, a.name);  // as stgs extract --seed draws it
    data::RawClip variant = raw;
    variant.frames = data::augment_frames(a, raw.frames, aug_seed);
    variant.wav = data::augment_waveform(a, raw.wav, aug_seed);
    const Tensor variant_spec = data::augment_spectrogram(a, data::clip_spectrogram(variant), aug_seed);
    std::map<std::string, std::string> m = metadata;
    m["augmentation"] = a.name;
    write_view(fs::path(out) / a.name, variant.frames, variant_spec, stats, m);
    augmented.push_back(a.name);
  }

  std::printf("clip %s (%s, %s, category %s %s), %s:%d\n", row.id.c_str(), data::split_name(row.split),
              data::label_name(row.label), data::category_name(row.category), data::category_type(row.category),
              manifest.path.c_str(), row.line);
  std::printf("  frames       %lld x 3 x %d x %d, %s: %s/frame_00.png .. frame_%02lld.png\n", (long long)k,
              options.size, options.size, row.face_box ? "face box crop" : "centre crop", out.c_str(),
              (long long)(k - 1));
  std::printf("  spectrogram  %lld x %d (%.2f s): %s/spectrogram.png\n", (long long)spec.size(0), data::kFreqBins,
              double(raw.wav.size()) / data::kSampleRate, out.c_str());
  std::printf("  window       centred, %d x %d, normalised with %s: %s/spectrogram_normalised.png\n",
              data::kWindowFrames, data::kFreqBins, stats_source.c_str(), out.c_str());
  std::printf("  tensors      spectrogram_raw, spectrogram_normalised: %s/spectrogram.safetensors\n", out.c_str());
  for (const std::string& name : augmented)
    std::printf("  augmented    %s: the same files in %s/%s/\n", name.c_str(), out.c_str(), name.c_str());
  if (stats_path.empty())
    std::printf("note: no --stats given, so the window is normalised with the clip's own per-bin statistics; the "
                "model is fed the training split's\n");
  return 0;
}

}  // namespace stgs::apps
