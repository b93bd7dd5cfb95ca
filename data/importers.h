// Dataset importers: FakeAVCeleb v1.2 and SWAN-DF videos -> K frame images + a 16 kHz mono WAV per clip and a
// manifest, so the loader sees real sets exactly like the synthetic one.
// defines: FrameFormat, ImportOptions, ClipSource, ImportFailure, ImportProgress, ImportReport, import_clips,
//          import_fakeavceleb, import_swandf
//
// Output:
//   OUT/manifest.csv               id,split,label,category,frames,audio,face_box,source (sorted by id; paths
//                                  relative to OUT)
//   OUT/sources.csv                id,split,category,identities,method,video,audio: where each clip came from
//                                  (absolute paths; identities separated by ';')
//   OUT/<id>/frame_00.png ..       K frames spread evenly over the video (sample_frame_indices), native size
//   OUT/<id>/audio.wav             16 kHz mono 16-bit PCM, decoded and resampled by ffmpeg
//   OUT/<id>/.complete             written last: the clip's source key, K and the image format
// An id is 16 hex digits of a hash of the clip's source files (relative to the dataset root), so it says
// nothing about the label and stays the same from run to run. Splits are identity-disjoint: the identities of
// all planned clips (failed ones too, so a flaky file does not move anybody) are joined into groups (people who
// share a clip), the groups shuffled by the seed and cut by the split ratios over the number of groups.
//
// Resuming: a clip whose .complete matches and whose K frames and audio exist is reused without running
// ffmpeg; any other clip directory is removed and redone. Every file is written through a temporary file and a
// rename, the two CSV files last, so an interrupted run leaves no manifest naming a missing file, and a run
// with nothing new rewrites identical CSV files. Clips run on `jobs` threads (one ffmpeg each); the output does
// not depend on the number.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/manifest.h"

namespace stgs::data {

enum class FrameFormat { Png, Jpeg };

struct ImportOptions {
  std::string out;                       // output directory (created when missing; earlier clips are reused)
  int frames = 8;                        // K frames per clip
  FrameFormat format = FrameFormat::Png;
  uint64_t seed = 1;                     // shuffles the identity groups before the split
  double split[3] = {0.70, 0.15, 0.15};  // train, val, test shares of the identity groups
  int jobs = 0;                          // parallel ffmpeg runs; 0 = the number of cores, at most 4
  // An unreadable video or audio file stops the import with an error (default: listed and skipped).
  bool strict = false;
  std::string real_dir;  // SWAN-DF only: the real SWAN videos to pair with the fakes ("" = none)

  // Throws naming the first value out of range.
  void validate() const;
};

// One clip to extract, as an importer plans it.
struct ClipSource {
  std::string key;    // unique and stable within the dataset (source files relative to the root); hashed to the id
  std::string video;  // file the frames come from
  std::string audio;  // file the audio comes from (often the video itself)
  Category category = Category::A;
  std::vector<std::string> identities;  // the people the clip shows or voices; splits never separate them
  std::string method;                   // how it was made (provenance only, for sources.csv)
};

struct ImportFailure {
  std::string file;    // the file ffmpeg could not decode (or that is missing)
  std::string reason;  // ffmpeg's last stderr line, or what was missing
};

struct ImportProgress {
  int64_t done = 0, total = 0;  // clips finished (in any way) and planned
  int64_t reused = 0;           // of done: complete from an earlier run
  int64_t failed = 0;           // of done: unreadable
};

struct ImportReport {
  std::string manifest;                // path of the manifest written
  std::vector<ManifestRow> rows;       // its rows, sorted by id
  int64_t planned = 0;                 // clips planned
  int64_t extracted = 0, reused = 0;   // clips written by this run / complete from an earlier one
  std::vector<ImportFailure> failures;  // unreadable clips (left out of the manifest), in id order
  std::vector<std::string> notes;      // what the importer left out of its plan, and why
  int64_t groups = 0;                  // identity groups split
};

// The shared back end of the importers: extracts `clips` into options.out, assigns the splits and writes
// manifest.csv (with `source` as its source column) and sources.csv. `progress` is called after every clip,
// from one thread at a time. Throws on a duplicate key, when ffmpeg is missing, on a write error, and (with
// options.strict) on the first unreadable file.
ImportReport import_clips(const std::string& source, std::vector<ClipSource> clips, const ImportOptions& options,
                          const std::function<void(const ImportProgress&)>& progress = {});

// FakeAVCeleb v1.2 (README "Importing FakeAVCeleb and SWAN-DF"): ROOT/meta_data.csv lists every clip with
// its identity (`source`), category A-D and folder; one clip per row, audio from the video itself. Throws
// "<ROOT>/meta_data.csv:<line>: <problem>" for a malformed metadata file, and names ROOT when it is missing.
ImportReport import_fakeavceleb(const std::string& root, const ImportOptions& options,
                                const std::function<void(const ImportProgress&)>& progress = {});

// SWAN-DF (same README section): fake videos ROOT/**/<W>x<H>/<subject1>/<recording>-<tags>-<subject2>.<video
// ext> and voice-converted audio ROOT/**/wav/<subject1>/<recording>-<tags>-<subject2>.wav, paired by
// (subject1, recording, subject2) into category D; with options.real_dir, the real recordings
// (<recording>.<video ext> anywhere below it) add A (real), B (real video, converted voice) and C (fake
// video, real voice).
ImportReport import_swandf(const std::string& root, const ImportOptions& options,
                           const std::function<void(const ImportProgress&)>& progress = {});

}  // namespace stgs::data
