// Manifest CSV reading and writing (see manifest.h).
#include "data/manifest.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "engine/io/read_file.h"
#include "kernels/check.h"

namespace stgs::data {

namespace fs = std::filesystem;

const char* split_name(Split split) {
  switch (split) {
    case Split::Train: return "train";
    case Split::Val: return "val";
    case Split::Test: return "test";
  }
  return "?";
}

const char* label_name(Label label) { return label == Label::Real ? "real" : "fake"; }

const char* category_name(Category category) {
  static const char* const names[] = {"A", "B", "C", "D"};
  return names[int(category)];
}

const char* category_type(Category category) {
  static const char* const types[] = {"RealVideo-RealAudio", "RealVideo-FakeAudio", "FakeVideo-RealAudio",
                                      "FakeVideo-FakeAudio"};
  return types[int(category)];
}

Label category_label(Category category) { return category == Category::A ? Label::Real : Label::Fake; }

std::vector<std::string> ManifestRow::frames() const { return frame_files.empty() ? list_frame_files(frames_dir) : frame_files; }

namespace {

// Column order of written manifests; the reader accepts any order.
const std::vector<std::string> kColumns = {"id", "split", "label", "category", "frames", "audio", "face_box", "source"};
constexpr size_t kRequiredColumns = 6;  // the first six of kColumns
enum Column { kId, kSplit, kLabel, kCategory, kFrames, kAudio, kFaceBox, kSource };

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_blank(s[b])) ++b;
  while (e > b && is_blank(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string resolve(const fs::path& base, const std::string& value) {
  const fs::path p(value);
  return (p.is_absolute() ? p : base / p).lexically_normal().string();
}

}  // namespace

std::string parse_face_box(const std::string& text, PixelBox& box) {
  const auto commas = std::count(text.begin(), text.end(), ',');
  if (commas != 0 && commas != 3) return "face_box '" + text + "' is not four integers 'x y w h'";
  std::string spaced = text;
  std::replace(spaced.begin(), spaced.end(), ',', ' ');
  std::istringstream in(spaced);
  std::vector<int> values;
  for (std::string token; in >> token;) {
    int v = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc() || end != token.data() + token.size())
      return "face_box '" + text + "' is not four integers 'x y w h'";
    values.push_back(v);
  }
  if (values.size() != 4) return "face_box '" + text + "' is not four integers 'x y w h'";
  box = PixelBox{values[0], values[1], values[2], values[3]};
  if (box.w <= 0 || box.h <= 0) return "face_box '" + text + "' has a width or height <= 0";
  return "";
}

namespace {

std::string check_label_matches(Label label, Category category) {
  if (label == category_label(category)) return "";
  return std::string("label '") + label_name(label) + "' contradicts category " + category_name(category) + " (" +
         category_type(category) + "), which is " + label_name(category_label(category));
}

// The frames field: one directory, or image files separated by ';' (told apart by their extensions).
std::string parse_frames(const std::string& text, const fs::path& base, bool check_files, ManifestRow& row) {
  std::vector<std::string> parts;
  for (size_t b = 0;;) {
    const size_t e = std::min(text.find(';', b), text.size());
    parts.push_back(trim(text.substr(b, e - b)));
    if (e == text.size()) break;
    b = e + 1;
  }
  if (parts.size() == 1 && parts[0].empty()) return "empty frames field";
  if (parts.size() == 1 && !is_frame_file_name(parts[0])) {
    row.frames_dir = resolve(base, parts[0]);
    if (!check_files) return "";
    std::error_code ec;
    if (!fs::is_directory(row.frames_dir, ec))
      return "frames directory '" + row.frames_dir + "' " + (fs::exists(row.frames_dir, ec) ? "is not a directory" : "does not exist");
    for (fs::directory_iterator it(row.frames_dir, ec), end; !ec && it != end; it.increment(ec))
      if (is_frame_file_name(it->path().filename().string())) return "";
    return "frames directory '" + row.frames_dir + "' holds no .png, .jpg or .jpeg file";
  }
  for (const std::string& part : parts) {
    if (part.empty()) return "empty entry in the frames list '" + text + "'";
    if (!is_frame_file_name(part)) return "frames list entry '" + part + "' is not a .png, .jpg or .jpeg file";
    row.frame_files.push_back(resolve(base, part));
    std::error_code ec;
    if (check_files && !fs::is_regular_file(row.frame_files.back(), ec))
      return "frame file '" + row.frame_files.back() + "' does not exist";
  }
  return "";
}

// Fills `row` from one line's fields; returns the first problem, or "".
std::string parse_row(const std::vector<std::string>& fields, const std::vector<int>& column_of, const fs::path& base,
                      bool check_files, ManifestRow& row) {
  auto field = [&](Column c) -> const std::string& {
    static const std::string absent;
    return column_of[size_t(c)] < 0 ? absent : fields[size_t(column_of[size_t(c)])];
  };
  row.id = field(kId);
  if (row.id.empty()) return "empty id";

  const std::string& split = field(kSplit);
  if (split == "train") row.split = Split::Train;
  else if (split == "val") row.split = Split::Val;
  else if (split == "test") row.split = Split::Test;
  else return "unknown split '" + split + "' (expected train, val or test)";

  const std::string& label = field(kLabel);
  if (label == "real") row.label = Label::Real;
  else if (label == "fake") row.label = Label::Fake;
  else return "unknown label '" + label + "' (expected real or fake)";

  const std::string& category = field(kCategory);
  bool known = false;
  for (Category c : {Category::A, Category::B, Category::C, Category::D}) {
    if (category == category_name(c) || category == category_type(c)) {
      row.category = c;
      known = true;
    }
  }
  if (!known)
    return "unknown category '" + category + "' (expected A, B, C, D or RealVideo-RealAudio, RealVideo-FakeAudio, "
           "FakeVideo-RealAudio, FakeVideo-FakeAudio)";
  if (std::string problem = check_label_matches(row.label, row.category); !problem.empty()) return problem;

  if (std::string problem = parse_frames(field(kFrames), base, check_files, row); !problem.empty()) return problem;

  if (field(kAudio).empty()) return "empty audio field";
  row.audio = resolve(base, field(kAudio));
  std::error_code ec;
  if (check_files && !fs::is_regular_file(row.audio, ec)) return "audio file '" + row.audio + "' does not exist";

  if (!field(kFaceBox).empty()) {
    PixelBox box;
    if (std::string problem = parse_face_box(field(kFaceBox), box); !problem.empty()) return problem;
    row.face_box = box;
  }
  row.source = field(kSource);
  return "";
}

// Header names -> column_of[Column] (-1 for an absent optional column); throws on a bad header.
std::vector<int> parse_header(const std::string& line, const std::string& where) {
  std::vector<std::string> names;
  const std::string problem = split_csv_line(line, names);
  STGS_CHECK(problem.empty(), where, ": header: ", problem);
  std::vector<int> column_of(kColumns.size(), -1);
  for (size_t i = 0; i < names.size(); ++i) {
    const auto known = std::find(kColumns.begin(), kColumns.end(), names[i]);
    std::string list;
    for (const std::string& c : kColumns) {
      if (!list.empty()) list += ", ";
      list += c;
    }
    STGS_CHECK(known != kColumns.end(), where, ": unknown column '", names[i], "' in the header (known columns: ",
               list, ")");
    const size_t c = size_t(known - kColumns.begin());
    STGS_CHECK(column_of[c] < 0, where, ": column '", names[i], "' appears twice in the header");
    column_of[c] = int(i);
  }
  for (size_t c = 0; c < kRequiredColumns; ++c)
    STGS_CHECK(column_of[c] >= 0, where, ": the header lacks the required column '", kColumns[c], "'");
  return column_of;
}

}  // namespace

std::string split_csv_line(const std::string& line, std::vector<std::string>& fields) {
  fields.clear();
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && is_blank(line[i])) ++i;
    std::string field;
    if (i < n && line[i] == '"') {
      const size_t opened = i++;
      bool closed = false;
      while (i < n && !closed) {
        if (line[i] != '"') {
          field += line[i++];
        } else if (i + 1 < n && line[i + 1] == '"') {
          field += '"';
          i += 2;
        } else {
          ++i;
          closed = true;
        }
      }
      if (!closed)
        return "unterminated quoted field at column " + std::to_string(opened + 1) + " (fields cannot span lines)";
      while (i < n && is_blank(line[i])) ++i;
      if (i < n && line[i] != ',') return "unexpected text after the quoted field at column " + std::to_string(i + 1);
    } else {
      const size_t end = std::min(line.find(',', i), n);
      field = trim(line.substr(i, end - i));
      if (field.find('"') != std::string::npos)
        return "a quote inside the unquoted field '" + field + "' (quote the whole field and double inner quotes)";
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= n) return "";
    ++i;  // the comma
  }
}

// A field as CSV: quoted when it holds a comma or quote, has blanks at either end (the reader trims
// unquoted fields) or starts with '#' (which would make the line a comment).
std::string csv_field(const std::string& value) {
  const bool quote = value.find_first_of(",\"") != std::string::npos ||
                     (!value.empty() && (is_blank(value.front()) || is_blank(value.back()) || value.front() == '#'));
  if (!quote) return value;
  std::string out = "\"";
  for (char c : value) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

Manifest read_manifest(const std::string& path, const ManifestReadOptions& options) {
  std::string text = read_file(path, "manifest");
  // A binary file (arguments swapped: a checkpoint, WAV or image given as the manifest) would otherwise be
  // reported as a CSV syntax error quoting its raw bytes.
  STGS_CHECK(text.find('\0') == std::string::npos, "manifest '", path, "' is not a CSV text file (it holds NUL bytes at ",
             "byte ", text.find('\0'), ")");
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte-order mark (spreadsheet exports)

  Manifest manifest;
  manifest.path = path;
  const fs::path base = fs::path(path).parent_path();
  std::vector<int> column_of;
  size_t header_fields = 0;
  std::map<std::string, int> first_line_of_id;
  std::vector<std::string> fields;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string trimmed = trim(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(number);
    if (column_of.empty()) {
      column_of = parse_header(line, where);
      header_fields = size_t(*std::max_element(column_of.begin(), column_of.end())) + 1;
      continue;
    }
    auto bad = [&](const std::string& problem) {
      const std::string message = where + ": " + problem;
      if (!options.skip_bad) STGS_FAIL(message);
      manifest.skipped.push_back(message);
    };
    if (std::string problem = split_csv_line(line, fields); !problem.empty()) {
      bad(problem);
      continue;
    }
    if (fields.size() != header_fields) {
      bad(std::to_string(fields.size()) + " fields, but the header has " + std::to_string(header_fields) + " columns");
      continue;
    }
    ManifestRow row;
    row.line = number;
    if (std::string problem = parse_row(fields, column_of, base, options.check_files, row); !problem.empty()) {
      bad(problem);
      continue;
    }
    const auto [first, inserted] = first_line_of_id.emplace(row.id, number);
    if (!inserted) {
      bad("duplicate id '" + row.id + "' (first on line " + std::to_string(first->second) + ")");
      continue;
    }
    manifest.rows.push_back(std::move(row));
  }
  STGS_CHECK(!column_of.empty(), path, ": no header line (expected the columns id, split, label, category, frames, ",
             "audio and optionally face_box, source)");
  return manifest;
}

void write_manifest(const std::string& path, const std::vector<ManifestRow>& rows) {
  const fs::path base = fs::absolute(path).parent_path();
  // Paths are stored relative to the manifest's directory, so a dataset directory can be moved as a whole.
  auto relative = [&](const std::string& p) {
    return fs::absolute(p).lexically_normal().lexically_proximate(base).generic_string();
  };
  std::string out;
  for (size_t c = 0; c < kColumns.size(); ++c) {
    if (c) out += ',';
    out += kColumns[c];
  }
  out += "\n";
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ManifestRow& r = rows[i];
    const std::string where = "write_manifest '" + path + "': row " + std::to_string(i) + " (id '" + r.id + "')";
    STGS_CHECK(!r.id.empty(), where, ": empty id");
    const auto [first, inserted] = seen.emplace(r.id, i);
    STGS_CHECK(inserted, where, ": duplicate id (also row ", first->second, ")");
    const std::string mismatch = check_label_matches(r.label, r.category);
    STGS_CHECK(mismatch.empty(), where, ": ", mismatch);
    STGS_CHECK(r.frames_dir.empty() != r.frame_files.empty(), where,
               ": exactly one of frames_dir and frame_files must be given");
    STGS_CHECK(!r.audio.empty(), where, ": empty audio path");
    std::string frames;
    if (!r.frames_dir.empty()) {
      frames = relative(r.frames_dir);
      STGS_CHECK(!is_frame_file_name(frames), where, ": frames directory '", frames,
                 "' ends like an image file, so it would be read back as a one-frame list");
    }
    for (const std::string& f : r.frame_files) {
      STGS_CHECK(f.find(';') == std::string::npos && is_frame_file_name(f), where, ": frame file '", f,
                 "' contains ';' or is not a .png/.jpg/.jpeg file");
      if (!frames.empty()) frames += ';';
      frames += relative(f);
    }
    std::string box;
    if (r.face_box) {
      const PixelBox& b = *r.face_box;
      STGS_CHECK(b.w > 0 && b.h > 0, where, ": face box width and height must be > 0, got ", b.w, "x", b.h);
      box = std::to_string(b.x) + " " + std::to_string(b.y) + " " + std::to_string(b.w) + " " + std::to_string(b.h);
    }
    const std::vector<std::string> values = {r.id,   split_name(r.split), label_name(r.label), category_name(r.category),
                                             frames, relative(r.audio),   box,                 r.source};
    for (size_t c = 0; c < values.size(); ++c) {
      STGS_CHECK(values[c].find_first_of("\r\n") == std::string::npos, where, ": field ", kColumns[c],
                 " contains a line break");
      if (c) out += ',';
      out += csv_field(values[c]);
    }
    out += "\n";
  }
  write_file_atomically(path, out, "write_manifest '" + path + "': ");
}

std::vector<int64_t> split_indices(const Manifest& manifest, Split split) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < manifest.rows.size(); ++i)
    if (manifest.rows[i].split == split) out.push_back(int64_t(i));
  return out;
}

}  // namespace stgs::data
