#include "apps/run_dir.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "engine/io/read_file.h"
#include "engine/io/json_strict.h"
#include "kernels/check.h"

namespace stgs::apps {
namespace {

std::string local_time(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// Splits one CSV line written by CsvTable::str (RFC 4180 quoting, no line breaks inside fields).
std::vector<std::string> split_csv_line(const std::string& line, const std::string& where) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  STGS_CHECK(!quoted, where, ": unterminated quote");
  return fields;
}

std::string quote_csv(const std::string& field) {
  if (field.find_first_of(",\"\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

RunDir RunDir::create(const std::string& root, const std::string& name) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  STGS_CHECK(!ec, root, ": cannot create the runs directory: ", ec.message());
  const std::string base = root + "/" + name + "-" + local_time("%Y%m%d-%H%M%S");
  for (int k = 1;; ++k) {
    const std::string path = k == 1 ? base : base + "-" + std::to_string(k);
    if (::mkdir(path.c_str(), 0755) == 0) return RunDir(path);
    STGS_CHECK(errno == EEXIST, path, ": cannot create the run directory: ", std::strerror(errno));
  }
}

RunDir RunDir::open(const std::string& path) {
  STGS_CHECK(std::filesystem::is_directory(path), path, ": no such run directory");
  STGS_CHECK(std::filesystem::exists(path + "/config.json"), path,
             ": not a run directory (it has no config.json; was the run started?)");
  return RunDir(path);
}

bool RunDir::exists(const std::string& name) const { return std::filesystem::exists(file(name)); }

void RunDir::log(const std::string& line) const {
  std::string stamped = "[";
  stamped += local_time("%Y-%m-%d %H:%M:%S");
  stamped += "] ";
  stamped += line;
  stamped += '\n';
  FILE* f = std::fopen(file("log.txt").c_str(), "a");
  STGS_CHECK(f != nullptr, file("log.txt"), ": cannot append: ", std::strerror(errno));
  std::fputs(stamped.c_str(), f);
  std::fclose(f);
  if (!quiet_) std::fputs(stamped.c_str(), stderr);
}

void RunDir::write_text(const std::string& name, const std::string& text) const {
  write_file_atomically(file(name), text, "run directory: ");
}

void RunDir::write_json(const std::string& name, const nlohmann::json& doc) const {
  write_text(name, doc.dump(2) + "\n");
}

nlohmann::json RunDir::read_json(const std::string& name) const {
  return parse_json_strict(read_file(file(name), "run file"), file(name) + ": ", "JSON document");
}

CsvTable CsvTable::load(const std::string& path, const std::vector<std::string>& header) {
  std::istringstream in(read_file(path, "CSV table"));
  std::string line;
  STGS_CHECK(std::getline(in, line), path, ": empty file (expected the header line)");
  const std::vector<std::string> got = split_csv_line(line, path + ":1");
  CsvTable table(header);
  STGS_CHECK(got == header, path, ":1: unexpected header '", line, "' (expected '", table.str().substr(0, table.str().find('\n')),
             "')");
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    std::vector<std::string> fields = split_csv_line(line, path + ":" + std::to_string(n));
    STGS_CHECK(fields.size() == header.size(), path, ":", n, ": ", fields.size(), " fields (expected ", header.size(),
               ")");
    table.rows_.push_back(std::move(fields));
  }
  table.path_ = path;
  return table;
}

CsvTable CsvTable::load_epochs(const std::string& path, const std::vector<std::string>& header, int64_t epochs) {
  if (epochs == 0 && !std::filesystem::exists(path)) return CsvTable(header);
  CsvTable table = load(path, header);
  STGS_CHECK(int64_t(table.rows()) >= epochs, path, ": ", table.rows(), " rows, but the checkpoint is at epoch ",
             epochs, " (the table was cut or edited)");
  table.truncate(size_t(epochs));
  return table;
}

double CsvTable::number(size_t row, const std::string& column) const {
  const std::string where = path_.empty() ? std::string("CSV table") : path_;
  const auto it = std::find(header_.begin(), header_.end(), column);
  STGS_CHECK(it != header_.end(), where, ": no column '", column, "'");
  STGS_CHECK(row < rows_.size(), where, ": no row ", row + 1, " (", rows_.size(), " rows)");
  const std::string& text = rows_[row][size_t(it - header_.begin())];
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  STGS_CHECK(!text.empty() && *end == '\0', where, ": row ", row + 1, ", column '", column, "' is '", text,
             "', not a number");
  return v;
}

void CsvTable::add(const std::vector<std::string>& fields) {
  STGS_CHECK(fields.size() == header_.size(), "CsvTable::add: ", fields.size(), " fields for ", header_.size(),
             " columns");
  rows_.push_back(fields);
}

void CsvTable::add_numbers(const std::vector<double>& values) {
  std::vector<std::string> fields;
  fields.reserve(values.size());
  for (double v : values) fields.push_back(number(v));
  add(fields);
}

void CsvTable::truncate(size_t rows) {
  if (rows < rows_.size()) rows_.resize(rows);
}

std::string CsvTable::str() const {
  std::string out;
  auto line = [&](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) out += ',';
      out += quote_csv(fields[i]);
    }
    out += "\n";
  };
  line(header_);
  for (const auto& r : rows_) line(r);
  return out;
}

void CsvTable::save(const std::string& path) const { write_file_atomically(path, str(), "CSV table: "); }

std::string CsvTable::number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace stgs::apps
