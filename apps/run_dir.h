// A run directory (runs/<name>-<timestamp>/) and the files every search and evaluation writes into it: the
// timestamped log, CSV tables and JSON documents, all replaced atomically so that a run killed at any moment
// leaves only complete files.
// defines: RunDir, CsvTable
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stgs::apps {

class RunDir {
 public:
  // Creates root/<name>-<YYYYmmdd-HHMMSS> (root too when missing); when that exists already (two runs in one
  // second), -2, -3, ... is appended. Throws naming the directory when it cannot be created.
  static RunDir create(const std::string& root, const std::string& name);
  // An existing run directory, for --resume: throws when it or its config.json is missing.
  static RunDir open(const std::string& path);

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool exists(const std::string& name) const;

  // Appends "[YYYY-mm-dd HH:MM:SS] line" to log.txt (flushed at once: the log survives a kill) and, unless
  // quiet, echoes the line to stderr.
  void log(const std::string& line) const;
  void set_quiet(bool quiet) { quiet_ = quiet; }

  // Replace a file of the run atomically.
  void write_text(const std::string& name, const std::string& text) const;
  void write_json(const std::string& name, const nlohmann::json& doc) const;  // pretty-printed, 2 spaces
  nlohmann::json read_json(const std::string& name) const;  // strict: duplicate keys and bad JSON throw

 private:
  explicit RunDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
  bool quiet_ = false;
};

// A CSV table kept whole in memory and rewritten atomically on save, so that a resumed run can cut it back
// to its checkpoint (truncate) and a reader never sees half a row. Numbers are written with %.9g.
class CsvTable {
 public:
  explicit CsvTable(std::vector<std::string> header) : header_(std::move(header)) {}
  // Reads a table this class wrote; throws naming the file and line when the header differs from `header`
  // or a row has the wrong number of fields.
  static CsvTable load(const std::string& path, const std::vector<std::string>& header);
  // The first `epochs` rows of a per-epoch table a checkpoint at `epochs` goes with: a run stopped in its first
  // epoch has no table yet (empty when the file is missing and epochs == 0); fewer rows than epochs is an
  // error naming the file (the table was cut or edited), later rows (written before a kill) are dropped.
  static CsvTable load_epochs(const std::string& path, const std::vector<std::string>& header, int64_t epochs);

  // One row, its fields in header order (strings are quoted when they hold a comma or a quote).
  void add(const std::vector<std::string>& fields);
  void add_numbers(const std::vector<double>& values);
  void truncate(size_t rows);  // keeps the first `rows` rows
  size_t rows() const { return rows_.size(); }
  const std::vector<std::string>& row(size_t i) const { return rows_[i]; }
  const std::vector<std::string>& header() const { return header_; }
  // The number in row `row`, column `column` ("nan", "inf" accepted); throws naming the file, row and column
  // when the column does not exist or the field is not a number.
  double number(size_t row, const std::string& column) const;

  std::string str() const;
  void save(const std::string& path) const;  // atomic

  static std::string number(double v);  // "%.9g", "nan" / "inf" / "-inf" for non-finite values

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::string path_;  // the file it was loaded from, for messages
};

}  // namespace stgs::apps
