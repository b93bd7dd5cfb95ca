// `stgs detect CLIP RUN_DIR` and `stgs detect --manifest MANIFEST RUN_DIR --out SCORES.csv`: P(fake) of new clips
// from a finished evaluation run (apps/detector.h), with what each model of the run says on its own.
//
// One clip: a directory of frame images with --audio FILE, or a video file (frames and sound decoded by the
// `ffmpeg` program); text, or one JSON object with --json. A manifest: every clip (or one --split) in batches,
// written atomically to SCORES.csv with the columns id,label,score (as the run's scores.csv) then one column per
// further model the run provides.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/detector.h"
#include "apps/options.h"
#include "apps/progress.h"
#include "apps/run_dir.h"
#include "apps/run_report.h"
#include "apps/run_tables.h"
#include "data/clip.h"
#include "data/ffmpeg.h"
#include "engine/io/atomic_file.h"
#include "kernels/check.h"
#include "nas/metrics.h"

namespace stgs::apps {
namespace {

namespace fs = std::filesystem;

CommandLine detect_flags() {
  return CommandLine(
      "stgs detect",
      "stgs detect CLIP RUN_DIR [--audio FILE] [--face-box X,Y,W,H] [--json]\n"
      "       stgs detect --manifest MANIFEST RUN_DIR --out SCORES.csv [--split test]",
      "Says how likely a clip is fake, with the models of a finished `stgs eval` run: the fused model's P(fake),\n"
      "then what the image-only and audio-only models of the run and the backbones' own pretrained heads say.\n"
      "CLIP is a directory of frame images (give its sound with --audio) or a video file (its frames and sound\n"
      "are decoded with ffmpeg; --audio replaces the sound). The clip goes through exactly the preprocessing the\n"
      "run's feature cache recorded: its K frames of S x S pixels, its spectrogram statistics and backbones, whose\n"
      "SHA-256 must still match. With --manifest, every clip of the manifest (or of --split) is scored into a CSV.",
      {Flag{"clip", "", "the clip: a directory of frame images (with --audio) or a video file", "CLIP"}.positional(),
       Flag{"run", "", "the finished `stgs eval` run directory", "RUN_DIR"}.positional(),
       {"audio", "", "the clip's audio file, required with a frames directory (none: a video's own sound)", "FILE"},
       {"face-box", "", "the face in pixels of the frames (none: the centre square)", "X,Y,W,H"},
       {"manifest", "", "score every clip of this manifest instead of one clip (needs --out)", "MANIFEST"},
       {"split", "", "with --manifest: only this split, train, val or test (none: every clip)", "SPLIT"},
       {"out", "", "with --manifest: the scores CSV to write", "FILE"},
       {"image-backbone", "", "the image backbone, when it moved since extraction (same SHA-256)", "FILE"},
       {"audio-backbone", "", "the audio backbone, when it moved since extraction (same SHA-256)", "FILE"},
       {"stats", "", "the spectrogram statistics, when they moved since extraction (same SHA-256)", "FILE"},
       Flag{"threshold", 0.5, "P(fake) at or above which a clip is called fake"}.in(0, 1),
       Flag{"batch", 16, "with --manifest: clips per backbone pass"}.in(1, 1 << 20),
       Flag{"workers", 2, "with --manifest: loader threads decoding clips ahead of the backbones"}.in(1, 256),
       {"skip-bad", false,
        "with --manifest: leave out clips whose row or files cannot be read (listed on stderr) instead of stopping "
        "at the first"},
       {"device", "auto", "auto, cpu, cuda or cuda:N"},
       {"json", false, "print one JSON object instead of text"},
       {"quiet", false, "no progress bar"}});
}

// The clip's decoded frames and waveform: a frames directory with its audio file, or a video.
data::RawClip load_clip(const std::string& clip, const std::string& audio, const std::optional<data::PixelBox>& box,
                        const data::ClipOptions& options) {
  STGS_CHECK(fs::exists(clip), "clip '", clip, "' does not exist (expected a directory of frame images or a video)");
  STGS_CHECK(audio.empty() || fs::is_regular_file(audio), "--audio: audio file '", audio, "' does not exist");
  if (fs::is_directory(clip)) {
    STGS_CHECK(!audio.empty(), "clip '", clip, "' is a directory of frames: give its audio file with --audio FILE");
    return data::load_raw_clip_files(data::list_frame_files(clip), box, audio, options);
  }
  // ffmpeg would wait forever on a pipe or device nobody writes to.
  STGS_CHECK(fs::is_regular_file(clip), "clip '", clip, "' is neither a directory of frames nor a regular (video) file");
  return data::load_raw_video_clip(data::find_ffmpeg(), clip, box, audio, options);
}

std::string prediction(double p, double threshold) { return p >= threshold ? "fake" : "real"; }

int detect_one(const ParsedCommand& cmd, Detector& detector) {
  const nlohmann::json& c = cmd.config;
  const std::string clip = c["clip"], audio = c["audio"], face_box = c["face_box"];
  const double threshold = c["threshold"];
  std::optional<data::PixelBox> box;
  if (!face_box.empty()) {
    data::PixelBox parsed;
    const std::string problem = data::parse_face_box(face_box, parsed);
    STGS_CHECK(problem.empty(), "--face-box: ", problem);
    box = parsed;
  }
  const data::RawClip raw = load_clip(clip, audio, box, detector.clip_options());
  const data::ClipInput input = data::make_clip_input(raw.frames, data::clip_spectrogram(raw), detector.stats());
  data::ClipBatch batch;
  batch.frames = input.frames.unsqueeze(0);            // (1, K, 3, S, S)
  batch.spectrograms = input.spectrogram.unsqueeze(0);  // (1, 1, 300, 257)
  batch.labels = from_vector(std::vector<int64_t>{0}, {1});  // unknown; only its shape is read
  batch.ids = {clip};
  const std::vector<double> scores = detector.score(batch).at(0);
  const std::vector<Evidence>& evidence = detector.evidence();
  const double seconds = double(raw.wav.size()) / data::kSampleRate;
  // The model reads a 300-frame (3 s) window; a shorter clip's is filled by repeating it, which the score
  // should be read with.
  std::vector<std::string> warnings;
  const double window_seconds = double(data::kWindowFrames) * data::kHopLength / data::kSampleRate;
  if (seconds < window_seconds) {
    char text[160];
    std::snprintf(text, sizeof text, "the audio is %.2f s; the model's %.0f s window repeats it to fill the rest",
                  seconds, window_seconds);
    warnings.push_back(text);
  }

  if (c["json"].get<bool>()) {
    nlohmann::json doc = {{"clip", clip},
                          {"audio", audio},
                          {"run", detector.run_dir()},
                          {"p_fake", scores[0]},
                          {"threshold", threshold},
                          {"prediction", prediction(scores[0], threshold)},
                          {"audio_seconds", seconds},
                          {"warnings", warnings},
                          {"preprocessing", detector.preprocessing()}};
    doc["evidence"] = nlohmann::json::object();
    for (size_t e = 0; e < evidence.size(); ++e)
      doc["evidence"][evidence[e].key] = {{"p_fake", scores[e]},
                                          {"description", evidence[e].description},
                                          {"auc", evidence[e].auc},  // NaN is written as null
                                          {"auc_split", evidence[e].auc_split}};
    std::printf("%s\n", doc.dump(2).c_str());
    return 0;
  }
  const nlohmann::json& pre = detector.preprocessing();
  std::printf("clip     %s (%s frames of %sx%s, %.2f s of audio%s)\n", clip.c_str(), pre["frames"].dump().c_str(),
              pre["size"].dump().c_str(), pre["size"].dump().c_str(), seconds,
              audio.empty() ? "" : (" from " + audio).c_str());
  for (const std::string& w : warnings) std::printf("warning  %s\n", w.c_str());
  std::printf("run      %s\n", detector.run_dir().c_str());
  std::printf("P(fake)  %.6f: %s (threshold %g)\n\n", scores[0], prediction(scores[0], threshold).c_str(), threshold);
  std::printf("  %-8s  %-6s  %-4s  %s\n", "P(fake)", "AUC", "on", "model");
  for (size_t e = 0; e < evidence.size(); ++e)
    std::printf("  %.6f  %-6s  %-4s  %s\n", scores[e], format_metric(evidence[e].auc).c_str(),
                evidence[e].auc_split.c_str(), evidence[e].description.c_str());
  std::printf("\nAUC: each model's on the run's test split (test), or the backbone's on its pretraining validation "
              "split (val).\n");
  return 0;
}

int detect_manifest(const ParsedCommand& cmd, Detector& detector) {
  const nlohmann::json& c = cmd.config;
  const std::string manifest_path = c["manifest"], out = c["out"], split = c["split"];
  data::ManifestReadOptions read_options;
  read_options.skip_bad = c["skip_bad"];
  const data::Manifest manifest = data::read_manifest(manifest_path, read_options);
  for (const std::string& problem : manifest.skipped) std::fprintf(stderr, "stgs detect: skipped %s\n", problem.c_str());
  std::vector<data::ClipItem> items;
  for (size_t r = 0; r < manifest.rows.size(); ++r)
    if (split.empty() || split == data::split_name(manifest.rows[r].split)) items.push_back({int64_t(r)});
  STGS_CHECK(split.empty() || split == "train" || split == "val" || split == "test", "--split '", split,
             "': expected train, val or test");
  STGS_CHECK(!items.empty(), manifest_path, ": no clips", split.empty() ? "" : " in the " + split + " split");
  // Scoring a large manifest takes a while: an output that cannot be written is found now.
  std::filesystem::create_directories(std::filesystem::absolute(out).parent_path());
  check_writable(out, "stgs detect: --out: ");

  const std::vector<Evidence>& evidence = detector.evidence();
  std::vector<std::string> header = kScoresHeader;  // id, label, score (the fused model's, as eval's scores.csv)
  for (size_t e = 1; e < evidence.size(); ++e) header.push_back(evidence[e].key);
  CsvTable table(header);
  std::vector<double> fused;
  std::vector<int64_t> labels;
  data::ClipBatchOptions clip;
  clip.clip = detector.clip_options();
  clip.stats = &detector.stats();
  clip.skip_bad = c["skip_bad"];
  int64_t skipped = int64_t(manifest.skipped.size());
  ProgressBar bar("detect", int64_t(items.size()), "clips", c["quiet"].get<bool>());
  data::for_each_clip_batch(manifest, items, clip, c["workers"], c["batch"], [&](const data::ClipBatch& b, int64_t first) {
    for (const auto& [id, error] : b.skipped) std::fprintf(stderr, "stgs detect: skipped %s: %s\n", id.c_str(), error.c_str());
    skipped += int64_t(b.skipped.size());
    bar.update(first + int64_t(b.rows.size() + b.skipped.size()));
    if (b.rows.empty()) return;
    const std::vector<std::vector<double>> scores = detector.score(b);
    const std::vector<int64_t> batch_labels = b.labels.to_vector<int64_t>();
    for (size_t i = 0; i < scores.size(); ++i) {
      std::vector<std::string> row = {b.ids[i], std::to_string(batch_labels[i])};
      for (double p : scores[i]) row.push_back(CsvTable::number(p));
      table.add(row);
      fused.push_back(scores[i][0]);
      labels.push_back(batch_labels[i]);
    }
  });
  STGS_CHECK(table.rows() > 0, manifest_path, ": every clip was skipped (listed above)");
  bar.finish();
  table.save(out);

  // The manifest's labels against the fused scores, when both classes are there.
  const bool both = std::set<int64_t>(labels.begin(), labels.end()).size() == 2;
  const double auc = both ? nas::roc_auc(fused, labels) : NAN, acc = nas::accuracy_at(fused, labels, c["threshold"]);
  if (c["json"].get<bool>()) {
    const nlohmann::json doc = {{"out", out},         {"clips", table.rows()}, {"skipped", skipped}, {"auc", auc},
                                {"accuracy", acc},    {"columns", header},     {"run", detector.run_dir()}};
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("scored %zu clips of %s%s with %s: %s (fused AUC %s, ACC @ %g %s)%s\n", table.rows(),
                manifest_path.c_str(), split.empty() ? "" : (" (" + split + ")").c_str(), detector.run_dir().c_str(),
                out.c_str(), format_metric(auc).c_str(), c["threshold"].get<double>(), format_metric(acc).c_str(),
                skipped == 0 ? "" : ("; " + std::to_string(skipped) + " skipped").c_str());
  }
  return 0;
}

}  // namespace

int run_detect(int argc, char** argv) {
  const CommandLine flags = detect_flags();
  const std::optional<ParsedCommand> parsed = flags.parse_or_print_help(argc, argv);
  if (!parsed) return 0;
  ParsedCommand cmd = *parsed;
  nlohmann::json& c = cmd.config;
  const bool batch = !c["manifest"].get<std::string>().empty();
  // `stgs detect --manifest MANIFEST RUN_DIR`: the one argument fills the first positional flag, CLIP.
  if (batch && c["run"] == "") std::swap(c["clip"], c["run"]);
  if (batch) {
    if (c["run"] == "" || c["clip"] != "")
      throw UsageError("stgs detect: expected `stgs detect --manifest MANIFEST RUN_DIR --out SCORES.csv` (no CLIP)");
    if (c["out"] == "") throw UsageError("stgs detect: --manifest needs --out SCORES.csv (the file to write)");
  } else if (c["clip"] == "" || c["run"] == "") {
    throw UsageError("stgs detect: expected `stgs detect CLIP RUN_DIR` (or --manifest MANIFEST RUN_DIR)");
  }
  DetectorOptions options;
  options.image_backbone = c["image_backbone"];
  options.audio_backbone = c["audio_backbone"];
  options.stats = c["stats"];
  options.device = parse_device_option("stgs detect", c["device"]);
  Detector detector(c["run"], options);
  return batch ? detect_manifest(cmd, detector) : detect_one(cmd, detector);
}

}  // namespace stgs::apps
