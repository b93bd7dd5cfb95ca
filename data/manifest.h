// Dataset manifests: one CSV file listing every clip of a dataset (real sets through importers, or the
// synthetic generator), so the loader sees them all the same way.
// defines: Split, Label, Category, split_name, label_name, category_name, category_type, category_label,
//          ManifestRow, Manifest, ManifestReadOptions, read_manifest, write_manifest, split_csv_line, csv_field,
//          split_indices, parse_face_box
//
// Format (README "Data: manifests, decoding, spectrograms"): UTF-8 CSV with a header naming the columns
// (any order): id, split, label, category, frames, audio, and optionally face_box and source. Fields may be
// double-quoted (RFC 4180, "" for a quote) but not span lines; unquoted fields are trimmed of spaces and
// tabs. Blank lines and lines starting with '#' are ignored. Relative paths are relative to the manifest's
// directory. Every problem is reported as "<manifest>:<line>: <problem>".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/image_io.h"

namespace stgs::data {

enum class Split { Train, Val, Test };
// Class indices of the detector's two logits: 1 = fake, so the score P(fake) is the softmax's second entry.
enum class Label { Real = 0, Fake = 1 };
// FakeAVCeleb's categories: A RealVideo-RealAudio, B RealVideo-FakeAudio, C FakeVideo-RealAudio,
// D FakeVideo-FakeAudio. Only A is real.
enum class Category { A, B, C, D };

const char* split_name(Split split);           // "train", "val", "test"
const char* label_name(Label label);           // "real", "fake"
const char* category_name(Category category);  // "A" .. "D"
const char* category_type(Category category);  // "RealVideo-RealAudio" ..
Label category_label(Category category);       // A -> Real, B/C/D -> Fake

struct ManifestRow {
  std::string id;  // unique within the manifest
  Split split = Split::Train;
  Label label = Label::Real;
  Category category = Category::A;
  // Exactly one of the two: a directory of frame images, or the frame files in time order.
  std::string frames_dir;
  std::vector<std::string> frame_files;
  std::string audio;
  std::optional<PixelBox> face_box;  // in pixels of the frames; none = centre crop
  std::string source;                // source dataset (free text, may be empty)
  int line = 0;                      // line in the manifest it was read from (0 when built in code)

  // The frame files in time order: frame_files, or the sorted frame images of frames_dir.
  std::vector<std::string> frames() const;
};

struct Manifest {
  std::string path;
  std::vector<ManifestRow> rows;      // in file order, paths resolved against the manifest's directory
  std::vector<std::string> skipped;  // with skip_bad: "<manifest>:<line>: <problem>" of every row left out
};

// Indices into manifest.rows of the clips in `split`, in manifest order.
std::vector<int64_t> split_indices(const Manifest& manifest, Split split);

struct ManifestReadOptions {
  // Leave bad rows out (listed in Manifest::skipped) instead of throwing on the first one. Problems with
  // the file or its header always throw.
  bool skip_bad = false;
  // Require every frames directory (with at least one frame image), frame file and audio file to exist.
  bool check_files = true;
};

// Throws stgs::Error "<path>:<line>: <problem>" for a bad row (unless skip_bad): wrong field count,
// unterminated quote, empty or duplicate id, unknown split/label/category, a label that contradicts the
// category, a malformed face box, an empty or missing frames/audio path.
Manifest read_manifest(const std::string& path, const ManifestReadOptions& options = {});

// Writes rows as a manifest with every column, paths relative to the manifest's directory, atomically.
// Throws naming the row when it cannot be written faithfully (empty or duplicate id, label contradicting
// the category, both or neither of frames_dir / frame_files, a ';' inside a listed frame path, a line break
// in any field).
void write_manifest(const std::string& path, const std::vector<ManifestRow>& rows);

// A face box as the manifest's face_box column writes it: "x y w h" or "x,y,w,h", four integers with w, h > 0
// (x, y may be negative: detector boxes overhang frame edges). Returns the problem, or "" and sets `box`.
std::string parse_face_box(const std::string& text, PixelBox& box);

// The CSV dialect of manifests, for other CSV files (dataset metadata, importers' side files).
// Splits one line into fields (quoted fields unquoted, unquoted ones trimmed); returns the problem, or "" when
// the line is well formed.
std::string split_csv_line(const std::string& line, std::vector<std::string>& fields);
// A value as one CSV field: quoted when split_csv_line would otherwise not read it back unchanged.
std::string csv_field(const std::string& value);

}  // namespace stgs::data
