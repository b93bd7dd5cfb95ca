// Genotype derivation, validation, JSON (write, strict parse) and DOT output.
#include "nas/genotype.h"

#include <cstdint>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "engine/io/json_strict.h"
#include "engine/ops.h"

namespace stgs::nas {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kFormatName = "stgs-genotype";

// ---- names of nodes and states ----------------------------------------------------------------------

std::string cell_ref(int j) { return "cell" + std::to_string(j); }

// The decimal number s[from..]: digits only, no leading zero, at most 9 of them (so adding a node or state
// offset cannot overflow an int); -1 for anything else.
int parse_index(const std::string& s, size_t from) {
  if (s.size() <= from || s.size() - from > 9 || (s[from] == '0' && s.size() > from + 1)) return -1;
  int value = 0;
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

// "cell12" -> 12; -1 for anything else.
int parse_cell_ref(const std::string& s) { return s.compare(0, 4, "cell") == 0 ? parse_index(s, 4) : -1; }

// Node u as the JSON writes it: the input's name or "cell<j>".
std::string node_name(const SearchConfig& c, int u) {
  if (u >= 0 && u < c.num_inputs()) return c.input_names[size_t(u)];
  if (u >= c.num_inputs()) return cell_ref(u - c.num_inputs());
  return "node index " + std::to_string(u);
}

// State j of a cell: "x", "y", "s<i>".
std::string state_name(int j) {
  if (j == 0) return "x";
  if (j == 1) return "y";
  if (j >= 2) return "s" + std::to_string(j - 2);
  return "state index " + std::to_string(j);
}

// "s3" -> 5, "x" -> 0, "y" -> 1; -1 for anything else.
int parse_state(const std::string& s) {
  if (s == "x") return 0;
  if (s == "y") return 1;
  const int i = s.compare(0, 1, "s") == 0 ? parse_index(s, 1) : -1;
  return i < 0 ? -1 : 2 + i;
}

std::string op_list(const std::vector<FusionOpKind>& ops) {
  std::string out;
  for (FusionOpKind op : ops) out += (out.empty() ? "" : ", ") + std::string(fusion_op_name(op));
  return out;
}

std::string all_op_names() { return op_list({kFusionOpKinds.begin(), kFusionOpKinds.end()}); }

std::string field(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }
std::string item(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// Every genotype error: "<source>: <path>: <message>".
template <class... Args>
[[noreturn]] void fail(const std::string& source, const std::string& path, const Args&... args) {
  STGS_FAIL(source, ": ", path.empty() ? "top level" : path, ": ", args...);
}

// ---- derivation -------------------------------------------------------------------------------------

// Row-wise softmax of a (rows, cols) logit matrix, row-major, after checking its shape and values.
std::vector<double> row_probabilities(const Tensor& logits, const char* name, int64_t rows, int64_t cols,
                                      const std::string& layout) {
  STGS_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == rows && logits.size(1) == cols,
             "derive_genotype: ", name, " must be (", rows, ", ", cols, ") for ", layout, ", got ",
             logits.defined() ? logits.str() : std::string("an undefined tensor"));
  const Tensor values = logits.detach().to(Device::cpu()).to(DType::F64);
  const std::vector<double> raw = values.to_vector<double>();
  for (size_t i = 0; i < raw.size(); ++i)
    STGS_CHECK(std::isfinite(raw[i]), "derive_genotype: ", name, " row ", int64_t(i) / cols, " holds a non-finite logit ",
               raw[i]);
  return softmax(values, 1).to_vector<double>();
}

// The two distinct candidates with the largest strength, strongest first; ties go to the lower index
// (strictly greater wins while scanning upwards).
std::array<int, 2> strongest_two(const std::vector<double>& strength) {
  int first = 0;
  for (int i = 1; i < int(strength.size()); ++i)
    if (strength[size_t(i)] > strength[size_t(first)]) first = i;
  int second = first == 0 ? 1 : 0;
  for (int i = second + 1; i < int(strength.size()); ++i)
    if (i != first && strength[size_t(i)] > strength[size_t(second)]) second = i;
  return {first, second};
}

// ---- JSON reading helpers: types and field sets; values are checked by validate_genotype ------------

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  // Throws unless v is an object whose keys are exactly `fields`.
  void object(const json& v, const std::string& path, std::initializer_list<const char*> fields) const {
    if (!v.is_object()) fail(source_, path, "expected an object, got ", describe(v));
    std::string expected;
    for (const char* f : fields) {
      if (!v.contains(f)) fail(source_, path, "missing field \"", f, "\"");
      expected += (expected.empty() ? "" : ", ") + std::string(f);
    }
    for (const auto& [key, value] : v.items()) {
      bool known = false;
      for (const char* f : fields) known = known || key == f;
      if (!known) fail(source_, path, "unknown field \"", key, "\" (expected ", expected, ")");
    }
  }
  const json& array(const json& v, const std::string& path) const {
    if (!v.is_array()) fail(source_, path, "expected an array, got ", describe(v));
    return v;
  }
  std::string string(const json& v, const std::string& path) const {
    if (!v.is_string()) fail(source_, path, "expected a string, got ", describe(v));
    return v.get<std::string>();
  }
  // Any integer; the range that makes sense is validate_genotype's business.
  int64_t integer(const json& v, const std::string& path) const {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
      fail(source_, path, "expected an integer, got ", describe(v));
    return v.get<int64_t>();
  }
  // An integer that fits an int (cell and step counts).
  int small_integer(const json& v, const std::string& path) const {
    const int64_t x = integer(v, path);
    if (x < INT32_MIN || x > INT32_MAX) fail(source_, path, x, " is out of range");
    return int(x);
  }
  double number(const json& v, const std::string& path) const {
    if (!v.is_number()) fail(source_, path, "expected a number, got ", describe(v));
    return v.get<double>();
  }
  // Exactly two strings.
  std::array<std::string, 2> pair(const json& v, const std::string& path) const {
    array(v, path);
    if (v.size() != 2) fail(source_, path, "expected 2 names, got ", v.size());
    return {string(v[0], item(path, 0)), string(v[1], item(path, 1))};
  }
  // A fusion op by its name (fusion_op_name).
  FusionOpKind op(const json& v, const std::string& path) const {
    const std::string name = string(v, path);
    for (FusionOpKind kind : kFusionOpKinds)
      if (name == fusion_op_name(kind)) return kind;
    fail(source_, path, "unknown op '", name, "' (expected ", all_op_names(), ")");
  }

 private:
  // "array [1,2]", "string \"abc\"": the type and, when short, the value.
  static std::string describe(const json& v) {
    std::string text = v.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return std::string(v.type_name()) + " " + text;
  }
  std::string source_;
};

SearchConfig read_config(const Reader& r, const json& v, const std::string& path) {
  r.object(v, path, {"inputs", "C", "L", "cells", "steps", "dropout", "num_classes", "ops"});
  SearchConfig c;
  const json& inputs = r.array(v["inputs"], field(path, "inputs"));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string at = item(field(path, "inputs"), i);
    r.object(inputs[i], at, {"name", "channels"});
    c.input_names.push_back(r.string(inputs[i]["name"], field(at, "name")));
    c.input_channels.push_back(r.integer(inputs[i]["channels"], field(at, "channels")));
  }
  c.C = r.integer(v["C"], field(path, "C"));
  c.L = r.integer(v["L"], field(path, "L"));
  c.cells = r.small_integer(v["cells"], field(path, "cells"));
  c.steps = r.small_integer(v["steps"], field(path, "steps"));
  c.dropout = r.number(v["dropout"], field(path, "dropout"));
  c.num_classes = r.integer(v["num_classes"], field(path, "num_classes"));
  c.ops.clear();
  const json& ops = r.array(v["ops"], field(path, "ops"));
  for (size_t i = 0; i < ops.size(); ++i) c.ops.push_back(r.op(ops[i], item(field(path, "ops"), i)));
  return c;
}

}  // namespace

bool operator==(const Genotype& a, const Genotype& b) {
  const SearchConfig &x = a.config, &y = b.config;
  return x.input_names == y.input_names && x.input_channels == y.input_channels && x.cells == y.cells &&
         x.steps == y.steps && x.C == y.C && x.L == y.L && x.dropout == y.dropout && x.ops == y.ops &&
         x.num_classes == y.num_classes && a.cells == b.cells;
}

// ---- derivation -----------------------------------------------------------------------------------------

Genotype derive_genotype(const SearchConfig& config, const Tensor& alpha, const Tensor& beta, const Tensor& gamma) {
  const ArchLayout layout(config);  // validates the config
  const int N = config.num_inputs();
  STGS_CHECK(N >= 2, "derive_genotype: ", N, " input node; cell 0 needs two distinct inputs");
  const std::string sizes = std::to_string(N) + " inputs, " + std::to_string(config.cells) + " cells of " +
                            std::to_string(config.steps) + " steps";
  const std::vector<double> pa = row_probabilities(alpha, "alpha", layout.alpha_rows(), 2, sizes);
  const std::vector<double> pb = row_probabilities(beta, "beta", layout.beta_rows(), 2, sizes);
  const int64_t n_ops = layout.gamma_cols();
  const std::vector<double> pg =
      row_probabilities(gamma, "gamma", layout.gamma_rows(), n_ops, sizes + ", " + std::to_string(n_ops) + " ops");

  Genotype g;
  g.config = config;
  for (int v = 0; v < config.cells; ++v) {
    CellGenotype cell;
    std::vector<double> edge(size_t(N + v));
    for (int u = 0; u < N + v; ++u) edge[size_t(u)] = pa[size_t(layout.alpha_row(v, u) * 2 + kEdgeIdentity)];
    cell.inputs = strongest_two(edge);
    for (int k = 0; k < config.steps; ++k) {
      StepGenotype step;
      std::vector<double> state(size_t(2 + k));
      for (int j = 0; j < 2 + k; ++j) state[size_t(j)] = pb[size_t(layout.beta_row(v, k, j) * 2 + kEdgeIdentity)];
      step.inputs = strongest_two(state);
      const double* row = &pg[size_t(layout.gamma_row(v, k) * n_ops)];
      int best = 0;
      for (int o = 1; o < n_ops; ++o)
        if (row[o] > row[best]) best = o;
      step.op = config.ops[size_t(best)];
      cell.steps.push_back(step);
    }
    g.cells.push_back(std::move(cell));
  }
  validate_genotype(g, "derive_genotype");  // the config's input names must not read as cell references
  return g;
}

// ---- validation -----------------------------------------------------------------------------------------

namespace {

// The config part of validate_genotype; parse_genotype runs it before resolving the cells' names, so a bad
// config is reported as such rather than as an unknown node.
void validate_config(const SearchConfig& c, const std::string& source) {
  const int N = c.num_inputs();
  if (c.input_channels.size() != c.input_names.size())
    fail(source, "config.inputs", c.input_names.size(), " names but ", c.input_channels.size(), " channel counts");
  if (N < 2) fail(source, "config.inputs", N, " input node(s); a cell needs two distinct inputs");
  std::map<std::string, size_t> first_use;
  for (size_t i = 0; i < size_t(N); ++i) {
    const std::string at = item("config.inputs", i);
    const std::string& name = c.input_names[i];
    if (name.empty()) fail(source, field(at, "name"), "empty name");
    if (parse_cell_ref(name) >= 0)
      fail(source, field(at, "name"), "'", name, "' reads as a cell reference; rename the input");
    if (const auto [it, fresh] = first_use.emplace(name, i); !fresh)
      fail(source, field(at, "name"), "'", name, "' repeats config.inputs[", it->second, "].name");
    if (c.input_channels[i] < 1) fail(source, field(at, "channels"), "must be >= 1, got ", c.input_channels[i]);
  }
  if (c.C < 1) fail(source, "config.C", "must be >= 1, got ", c.C);
  if (c.L < 1) fail(source, "config.L", "must be >= 1, got ", c.L);
  if (c.cells < 1) fail(source, "config.cells", "must be >= 1, got ", c.cells);
  if (c.steps < 1) fail(source, "config.steps", "must be >= 1, got ", c.steps);
  if (!(c.dropout >= 0 && c.dropout < 1)) fail(source, "config.dropout", "must be in [0, 1), got ", c.dropout);
  if (c.num_classes < 2) fail(source, "config.num_classes", "must be >= 2, got ", c.num_classes);
  if (c.ops.empty()) fail(source, "config.ops", "empty; expected some of ", all_op_names());
  for (size_t i = 0; i < c.ops.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (c.ops[i] == c.ops[j])
        fail(source, item("config.ops", i), "'", fusion_op_name(c.ops[i]), "' repeats config.ops[", j, "]");
}

}  // namespace

void validate_genotype(const Genotype& g, const std::string& source) {
  const SearchConfig& c = g.config;
  const int N = c.num_inputs();
  validate_config(c, source);
  if (g.cells.size() != size_t(c.cells))
    fail(source, "cells", g.cells.size(), " cells, but config.cells is ", c.cells);
  for (int v = 0; v < c.cells; ++v) {
    const CellGenotype& cell = g.cells[size_t(v)];
    const std::string at = item("cells", size_t(v));
    const std::string readable = v == 0 ? "input nodes only"
                                 : v == 1 ? "input nodes and cell0"
                                          : "input nodes and cell0..cell" + std::to_string(v - 1);
    for (size_t i = 0; i < 2; ++i) {
      const int u = cell.inputs[i];
      if (u < 0 || u >= N + v)
        fail(source, item(field(at, "inputs"), i), node_name(c, u), " is not an earlier node (cell ", v, " reads ",
             readable, ")");
    }
    if (cell.inputs[0] == cell.inputs[1])
      fail(source, field(at, "inputs"), "both inputs are ", node_name(c, cell.inputs[0]),
           "; a cell reads two distinct nodes");
    if (cell.steps.size() != size_t(c.steps))
      fail(source, field(at, "steps"), cell.steps.size(), " steps, but config.steps is ", c.steps);
    for (int k = 0; k < c.steps; ++k) {
      const StepGenotype& step = cell.steps[size_t(k)];
      const std::string sat = item(field(at, "steps"), size_t(k));
      for (size_t i = 0; i < 2; ++i) {
        const int j = step.inputs[i];
        if (j < 0 || j >= 2 + k) {
          std::string states = "x, y";
          for (int s = 0; s < k; ++s) states += ", " + state_name(2 + s);
          fail(source, item(field(sat, "inputs"), i), state_name(j), " is not an earlier state (step ", k, " reads ",
               states, ")");
        }
      }
      if (step.inputs[0] == step.inputs[1])
        fail(source, field(sat, "inputs"), "both inputs are ", state_name(step.inputs[0]),
             "; a step reads two distinct states");
      bool configured = false;
      for (FusionOpKind op : c.ops) configured = configured || op == step.op;
      if (!configured)
        fail(source, field(sat, "op"), "'", fusion_op_name(step.op), "' is not one of config.ops (", op_list(c.ops),
             ")");
    }
  }
}

// ---- JSON ----------------------------------------------------------------------------------------------

std::string genotype_to_json(const Genotype& g) {
  validate_genotype(g);
  const SearchConfig& c = g.config;
  ordered_json inputs = ordered_json::array();
  for (int u = 0; u < c.num_inputs(); ++u)
    inputs.push_back({{"name", c.input_names[size_t(u)]}, {"channels", c.input_channels[size_t(u)]}});
  ordered_json ops = ordered_json::array();
  for (FusionOpKind op : c.ops) ops.push_back(fusion_op_name(op));
  ordered_json cells = ordered_json::array();
  for (const CellGenotype& cell : g.cells) {
    ordered_json steps = ordered_json::array();
    for (const StepGenotype& s : cell.steps)
      steps.push_back({{"inputs", {state_name(s.inputs[0]), state_name(s.inputs[1])}}, {"op", fusion_op_name(s.op)}});
    cells.push_back(
        {{"inputs", {node_name(c, cell.inputs[0]), node_name(c, cell.inputs[1])}}, {"steps", std::move(steps)}});
  }
  ordered_json doc = {{"format", kFormatName},
                      {"version", Genotype::kFormatVersion},
                      {"config",
                       {{"inputs", std::move(inputs)},
                        {"C", c.C},
                        {"L", c.L},
                        {"cells", c.cells},
                        {"steps", c.steps},
                        {"dropout", c.dropout},
                        {"num_classes", c.num_classes},
                        {"ops", std::move(ops)}}},
                      {"cells", std::move(cells)}};
  return doc.dump(2) + "\n";
}

Genotype parse_genotype(const std::string& text, const std::string& source_name) {
  const Reader r(source_name);
  const json doc = parse_json_strict(text, source_name + ": ", "genotype");
  if (!doc.is_object()) fail(source_name, "", "expected a JSON object, got ", doc.type_name());
  // Format and version first: a file of another kind or version should say so, not list field mismatches.
  if (!doc.contains("format")) fail(source_name, "", "missing field \"format\"; is this a genotype file?");
  const std::string format = r.string(doc["format"], "format");
  if (format != kFormatName) fail(source_name, "format", "expected \"", kFormatName, "\", got \"", format, "\"");
  if (!doc.contains("version")) fail(source_name, "", "missing field \"version\"");
  const int64_t version = r.integer(doc["version"], "version");
  if (version != Genotype::kFormatVersion)
    fail(source_name, "version", "unsupported version ", version, " (this build reads version ",
         Genotype::kFormatVersion, ")");
  r.object(doc, "", {"format", "version", "config", "cells"});

  Genotype g;
  g.config = read_config(r, doc["config"], "config");
  validate_config(g.config, source_name);
  const SearchConfig& c = g.config;
  const json& cells = r.array(doc["cells"], "cells");
  for (size_t v = 0; v < cells.size(); ++v) {
    const std::string at = item("cells", v);
    r.object(cells[v], at, {"inputs", "steps"});
    CellGenotype cell;
    const auto names = r.pair(cells[v]["inputs"], field(at, "inputs"));
    for (size_t i = 0; i < 2; ++i) {
      int u = -1;
      for (int n = 0; n < c.num_inputs() && u < 0; ++n)
        if (c.input_names[size_t(n)] == names[i]) u = n;
      if (u < 0 && parse_cell_ref(names[i]) >= 0) u = c.num_inputs() + parse_cell_ref(names[i]);
      if (u < 0)
        fail(source_name, item(field(at, "inputs"), i), "unknown node '", names[i],
             "' (expected an input name from config.inputs or cell<j>)");
      cell.inputs[i] = u;
    }
    const json& steps = r.array(cells[v]["steps"], field(at, "steps"));
    for (size_t k = 0; k < steps.size(); ++k) {
      const std::string sat = item(field(at, "steps"), k);
      r.object(steps[k], sat, {"inputs", "op"});
      StepGenotype step;
      const auto states = r.pair(steps[k]["inputs"], field(sat, "inputs"));
      for (size_t i = 0; i < 2; ++i) {
        step.inputs[i] = parse_state(states[i]);
        if (step.inputs[i] < 0)
          fail(source_name, item(field(sat, "inputs"), i), "unknown state '", states[i], "' (expected x, y or s<i>)");
      }
      step.op = r.op(steps[k]["op"], field(sat, "op"));
      cell.steps.push_back(step);
    }
    g.cells.push_back(std::move(cell));
  }
  validate_genotype(g, source_name);
  return g;
}

void save_genotype(const std::string& path, const Genotype& g) {
  write_file_atomically(path, genotype_to_json(g), "save_genotype '" + path + "': ");
}

Genotype load_genotype(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STGS_CHECK(in, path, ": cannot open the genotype file");
  std::ostringstream text;
  text << in.rdbuf();
  STGS_CHECK(!in.bad(), path, ": reading the genotype file failed");
  return parse_genotype(text.str(), path);
}

// ---- DOT ------------------------------------------------------------------------------------------------

namespace {

// One label line inside a DOT double-quoted string: backslashes and quotes escaped, so that no user text
// (an input name) can end the string or form an escape such as \N; control characters become spaces.
std::string dot_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '\\' || ch == '"') out += '\\';
    out += (static_cast<unsigned char>(ch) < 0x20) ? ' ' : ch;
  }
  return out;
}

// A quoted label from lines joined by DOT's centred line break.
std::string dot_label(const std::vector<std::string>& lines) {
  std::string out = "\"";
  for (size_t i = 0; i < lines.size(); ++i) out += (i ? "\\n" : "") + dot_escape(lines[i]);
  return out + "\"";
}

}  // namespace

std::string genotype_to_dot(const Genotype& g) {
  validate_genotype(g);
  const SearchConfig& c = g.config;
  const int N = c.num_inputs();
  std::set<int> used;
  for (const CellGenotype& cell : g.cells) used.insert(cell.inputs.begin(), cell.inputs.end());
  // Node ids: in<u>, c<v>_x, c<v>_y, c<v>_s<k>, c<v>_out, head.
  auto node_id = [&](int u) { return u < N ? "in" + std::to_string(u) : "c" + std::to_string(u - N) + "_out"; };
  auto state_id = [](int v, int j) {
    const std::string cell = "c" + std::to_string(v) + "_";
    return cell + (j == 0 ? "x" : j == 1 ? "y" : "s" + std::to_string(j - 2));
  };

  const std::string concat = c.steps == 1 ? "s0" : "s0..s" + std::to_string(c.steps - 1);

  std::ostringstream dot;
  dot << "digraph genotype {\n"
      << "  rankdir=LR;\n"
      << "  graph [fontname=\"Helvetica\"];\n"
      << "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\"];\n"
      << "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  for (int u = 0; u < N; ++u) {
    dot << "  " << node_id(u) << " [label="
        << dot_label({c.input_names[size_t(u)], std::to_string(c.input_channels[size_t(u)]) + " ch"});
    if (used.count(u)) {
      dot << ", fillcolor=lightblue];\n";
    } else {
      dot << ", color=gray, fontcolor=gray];\n";  // unused input: no reshape layer in the fixed network
    }
  }
  for (int v = 0; v < c.cells; ++v) {
    const CellGenotype& cell = g.cells[size_t(v)];
    dot << "  subgraph cluster_cell" << v << " {\n"
        << "    label=" << dot_label({cell_ref(v)}) << ";\n"
        << "    style=rounded;\n"
        << "    " << state_id(v, 0) << " [label=\"x\", shape=ellipse];\n"
        << "    " << state_id(v, 1) << " [label=\"y\", shape=ellipse];\n";
    for (int k = 0; k < c.steps; ++k) {
      const StepGenotype& s = cell.steps[size_t(k)];
      const std::string call = std::string(fusion_op_name(s.op)) + "(" + state_name(s.inputs[0]) + ", " +
                               state_name(s.inputs[1]) + ")";
      dot << "    " << state_id(v, 2 + k) << " [label=" << dot_label({state_name(2 + k), call})
          << ", fillcolor=lightyellow];\n";
      for (int j : s.inputs) dot << "    " << state_id(v, j) << " -> " << state_id(v, 2 + k) << ";\n";
    }
    dot << "    " << node_id(N + v) << " [label="
        << dot_label({cell_ref(v) + " output", "concat " + concat + ", conv 1x1, BN, ReLU", "+ x, LayerNorm"})
        << ", fillcolor=lightgreen];\n";
    for (int k = 0; k < c.steps; ++k) dot << "    " << state_id(v, 2 + k) << " -> " << node_id(N + v) << ";\n";
    dot << "    " << state_id(v, 0) << " -> " << node_id(N + v) << " [style=dashed, label=\"residual\"];\n"
        << "  }\n";
    dot << "  " << node_id(cell.inputs[0]) << " -> " << state_id(v, 0) << ";\n"
        << "  " << node_id(cell.inputs[1]) << " -> " << state_id(v, 1) << ";\n";
  }
  dot << "  head [label="
      << dot_label({"head", "concat cells, LayerNorm, ReLU", "Linear -> " + std::to_string(c.num_classes) + " logits"})
      << ", fillcolor=lightpink];\n";
  for (int v = 0; v < c.cells; ++v) dot << "  " << node_id(N + v) << " -> head;\n";
  dot << "}\n";
  return dot.str();
}

}  // namespace stgs::nas
