// FakeAVCeleb v1.2 importer: reads ROOT/meta_data.csv and plans one clip per listed video (see importers.h).
//
// meta_data.csv (v1.2) has the header
//   source,target1,target2,method,category,type,race,gender,path,
// whose tenth column has no name and holds the clip's folder, prefixed with the dataset's name:
//   id00076,-,-,real,A,RealVideo-RealAudio,African,men,00109.mp4,FakeAVCeleb/RealVideo-RealAudio/African/men/id00076
// `source` is the identity, `category` A-D the label, `path` the file name within the folder. Columns are found
// by name, so a copy re-saved by pandas (an index column first, the folder column named "Unnamed: 9") reads too.
#include <filesystem>
#include <map>
#include <sstream>

#include "data/importers.h"
#include "engine/io/read_file.h"
#include "kernels/check.h"

namespace stgs::data {

namespace fs = std::filesystem;

namespace {

struct MetadataColumns {
  int source = -1, method = -1, category = -1, path = -1, folder = -1;
};

MetadataColumns parse_metadata_header(const std::vector<std::string>& names, const std::string& where) {
  MetadataColumns c;
  for (int i = 0; i < int(names.size()); ++i) {
    const std::string& name = names[size_t(i)];
    if (name == "source") c.source = i;
    else if (name == "method") c.method = i;
    else if (name == "category") c.category = i;
    else if (name == "path") c.path = i;
    // The folder: the first unnamed column after `path` (pandas calls an unnamed column "Unnamed: <index>").
    else if (c.path >= 0 && c.folder < 0 && (name.empty() || name.rfind("Unnamed:", 0) == 0)) c.folder = i;
  }
  for (const auto& [index, name] : {std::pair{c.source, "source"}, {c.method, "method"}, {c.category, "category"},
                                    {c.path, "path"}})
    STGS_CHECK(index >= 0, where, ": the header lacks the column '", name,
               "' (expected FakeAVCeleb v1.2's source,target1,target2,method,category,type,race,gender,path,<folder>)");
  STGS_CHECK(c.folder >= 0, where,
             ": the header has no unnamed folder column after 'path' (FakeAVCeleb v1.2's tenth column, holding "
             "e.g. FakeAVCeleb/RealVideo-RealAudio/African/men/id00076)");
  return c;
}

// "FakeAVCeleb/RealVideo-RealAudio/African/men/id00076" -> "RealVideo-RealAudio/African/men/id00076": the
// first component names the dataset (FakeAVCeleb, FakeAVCeleb_v1.2, ...), which is ROOT here.
std::string folder_below_root(const std::string& folder) {
  const size_t slash = folder.find('/');
  if (folder.rfind("FakeAVCeleb", 0) == 0 && slash != std::string::npos) return folder.substr(slash + 1);
  return folder;
}

}  // namespace

ImportReport import_fakeavceleb(const std::string& root, const ImportOptions& options,
                                const std::function<void(const ImportProgress&)>& progress) {
  std::error_code ec;
  STGS_CHECK(fs::exists(root, ec), "FakeAVCeleb root '", root, "' does not exist");
  STGS_CHECK(fs::is_directory(root, ec), "FakeAVCeleb root '", root, "' is not a directory");
  const std::string metadata = (fs::path(root) / "meta_data.csv").string();
  std::string text = read_file(metadata, "the FakeAVCeleb metadata",
                               " (FakeAVCeleb v1.2 keeps its metadata, meta_data.csv, at the root of the dataset)");
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);

  std::vector<ClipSource> clips;
  std::map<std::string, int> line_of;  // clip key -> line it was first listed on
  int64_t duplicates = 0;
  std::string first_duplicate;
  MetadataColumns column;
  size_t header_fields = 0;
  std::vector<std::string> fields;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = metadata + ":" + std::to_string(number);
    const std::string problem = split_csv_line(line, fields);
    STGS_CHECK(problem.empty(), where, ": ", problem);
    if (header_fields == 0) {
      column = parse_metadata_header(fields, where);
      header_fields = fields.size();
      continue;
    }
    STGS_CHECK(fields.size() == header_fields, where, ": ", fields.size(), " fields, but the header has ",
               header_fields, " columns");
    auto field = [&](int c, const char* name) -> const std::string& {
      STGS_CHECK(!fields[size_t(c)].empty(), where, ": empty '", name, "' field");
      return fields[size_t(c)];
    };
    ClipSource clip;
    const std::string& category = field(column.category, "category");
    STGS_CHECK(category.size() == 1 && category[0] >= 'A' && category[0] <= 'D', where, ": unknown category '",
               category, "' (expected A, B, C or D)");
    clip.category = Category(category[0] - 'A');
    clip.identities = {field(column.source, "source")};
    clip.method = field(column.method, "method");
    clip.key = folder_below_root(field(column.folder, "folder")) + "/" + field(column.path, "path");
    clip.video = clip.audio = (fs::path(root) / clip.key).lexically_normal().string();
    // v1.2 lists some files twice (a D clip under two methods): one file, one clip.
    if (const auto [first, inserted] = line_of.emplace(clip.key, number); !inserted) {
      if (duplicates++ == 0) first_duplicate = where + " repeats line " + std::to_string(first->second);
      continue;
    }
    clips.push_back(std::move(clip));
  }
  STGS_CHECK(header_fields > 0, metadata, ": empty file (expected FakeAVCeleb v1.2's header and one row per video)");
  STGS_CHECK(!clips.empty(), metadata, ": no video rows after the header");

  ImportReport report = import_clips("FakeAVCeleb", std::move(clips), options, progress);
  if (duplicates > 0)
    report.notes.push_back(std::to_string(duplicates) + " metadata rows name a file listed before and were left out (" +
                           first_duplicate + ")");
  return report;
}

}  // namespace stgs::data
