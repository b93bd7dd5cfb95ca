// Genotypes (derivation, JSON round trip, malformed files, DOT) and the fixed network built from one
// (shapes, parameter count, F64 gradient checks).
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/ops.h"
#include "tests/test_files.h"
#include "nas/fixed_network.h"
#include "nas/genotype.h"
#include "tests/module_gradcheck.h"

using namespace stgs;
using namespace stgs::nas;
namespace fs = std::filesystem;
using Catch::Contains;
using json = nlohmann::json;

namespace {

constexpr FusionOpKind kZero = FusionOpKind::Zero, kSum = FusionOpKind::Sum, kAttention = FusionOpKind::Attention,
                       kGlu = FusionOpKind::LinearGLU, kConcatFC = FusionOpKind::ConcatFC;

struct ScratchDir : testing::TempDir {
  ScratchDir() : testing::TempDir("genotype") {}
};

using testing::read_file_bytes;
using testing::write_file_bytes;

// Three inputs a, b, c (3, 4, 5 channels), 2 cells of 2 steps, all five ops; small enough for F64 checks.
SearchConfig small_config() {
  SearchConfig c;
  c.input_names = {"a", "b", "c"};
  c.input_channels = {3, 4, 5};
  c.C = 4;
  c.L = 3;
  c.dropout = 0;
  return c;
}

// cell0 reads c and a; cell1 reads cell0 and b. Node indices: a = 0, b = 1, c = 2, cell0 = 3.
Genotype small_genotype(FusionOpKind op00, FusionOpKind op01, FusionOpKind op10, FusionOpKind op11) {
  Genotype g;
  g.config = small_config();
  g.cells = {{{2, 0}, {{{0, 1}, op00}, {{2, 1}, op01}}}, {{3, 1}, {{{1, 0}, op10}, {{0, 2}, op11}}}};
  return g;
}

// The paper's setting (image and audio layer1..4 of width-64 ResNet-34s, C = 128, L = 8, 2 cells of 2 steps)
// with a plausible searched structure: cell0 fuses image.layer3 and audio.layer4, cell1 fuses cell0 and
// audio.layer2.
Genotype representative_genotype() {
  Genotype g;
  g.config = SearchConfig::defaults(64);
  g.cells = {{{2, 7}, {{{0, 1}, kGlu}, {{2, 0}, kAttention}}}, {{8, 5}, {{{0, 1}, kConcatFC}, {{1, 2}, kGlu}}}};
  return g;
}

// Logits where every entry is 0 except the ones a test sets.
struct Logits {
  ArchLayout layout;
  Tensor alpha, beta, gamma;
  explicit Logits(const SearchConfig& c)
      : layout(c),
        alpha(zeros({layout.alpha_rows(), 2}, DType::F64)),
        beta(zeros({layout.beta_rows(), 2}, DType::F64)),
        gamma(zeros({layout.gamma_rows(), layout.gamma_cols()}, DType::F64)) {}
  // Sets the (Zero, Identity) logits of cell v's edge from node u.
  void edge(int v, int u, double zero, double identity) {
    alpha.data<double>()[layout.alpha_row(v, u) * 2 + kEdgeZero] = zero;
    alpha.data<double>()[layout.alpha_row(v, u) * 2 + kEdgeIdentity] = identity;
  }
  void inner(int v, int k, int j, double identity) {
    beta.data<double>()[layout.beta_row(v, k, j) * 2 + kEdgeIdentity] = identity;
  }
  void op(int v, int k, int column, double logit) {
    gamma.data<double>()[layout.gamma_row(v, k) * layout.gamma_cols() + column] = logit;
  }
};

// Runs `command` through the shell; returns its exit status (-1 when it did not exit normally).
int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Feeds fixed features to a FixedNetwork through the single-input Module interface, for
// check_module_gradients (which perturbs the feature tensors in place through `wrt`).
class WithFeatures : public Module {
 public:
  WithFeatures(std::shared_ptr<FixedNetwork> net, std::vector<Tensor> features)
      : Module("WithFeatures"), net_(register_module("net", std::move(net))), features_(std::move(features)) {}
  Tensor forward(const Tensor&) override { return net_->forward(features_); }

 private:
  std::shared_ptr<FixedNetwork> net_;
  std::vector<Tensor> features_;
};

std::vector<Tensor> random_features(const SearchConfig& c, int64_t B, DType dtype, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> features;
  for (int64_t C_u : c.input_channels) features.push_back(randn({B, C_u, c.L}, dtype, Device::cpu(), &gen));
  return features;
}

}  // namespace

// ---- derivation -----------------------------------------------------------------------------------------

TEST_CASE("derive_genotype picks the strongest edges and the argmax op", "[nas]") {
  const SearchConfig c = small_config();
  Logits l(c);
  // Cell 0 over a, b, c: b and c are strongest, c first.
  l.edge(0, 0, 0, 0.1);
  l.edge(0, 1, 0, 1.0);
  l.edge(0, 2, 0, 2.0);
  // Cell 1 over a, b, c, cell0: the strength is p(Identity), not the raw Identity logit: a's edge (5, 5) has
  // p = 0.5 and loses to b's (0, 1) with p = 0.73 and cell0's (-1, 1) with p = 0.88.
  l.edge(1, 0, 5, 5);
  l.edge(1, 1, 0, 1);
  l.edge(1, 3, -1, 1);
  // Cell 0 step 1 over x, y, s0: s0 then x. Cell 1 step 1: y then s0.
  l.inner(0, 1, 2, 3);
  l.inner(0, 1, 0, 1);
  l.inner(1, 1, 1, 2);
  l.inner(1, 1, 2, 1);
  // Step 0 always reads x and y; its order follows strength: cell 1 step 0 prefers y.
  l.inner(1, 0, 1, 1);
  // Ops (columns zero, sum, attention, linear_glu, concat_fc).
  l.op(0, 0, 3, 2);
  l.op(0, 1, 2, 1);
  l.op(1, 0, 4, 0.5);
  l.op(1, 1, 1, 0.1);

  const Genotype g = derive_genotype(c, l.alpha, l.beta, l.gamma);
  REQUIRE(g.cells.size() == 2);
  CHECK(g.cells[0].inputs == std::array<int, 2>{2, 1});
  CHECK(g.cells[1].inputs == std::array<int, 2>{3, 1});
  CHECK(g.cells[0].steps[0] == StepGenotype{{0, 1}, kGlu});
  CHECK(g.cells[0].steps[1] == StepGenotype{{2, 0}, kAttention});
  CHECK(g.cells[1].steps[0] == StepGenotype{{1, 0}, kConcatFC});
  CHECK(g.cells[1].steps[1] == StepGenotype{{1, 2}, kSum});
  CHECK(g.config.input_names == c.input_names);

  // F32 logits give the same answer.
  CHECK(derive_genotype(c, l.alpha.to(DType::F32), l.beta.to(DType::F32), l.gamma.to(DType::F32)) == g);
}

TEST_CASE("derive_genotype breaks ties towards the lower index and can choose the Zero op", "[nas]") {
  const SearchConfig c = small_config();
  Logits l(c);
  SECTION("all-equal logits") {
    const Genotype g = derive_genotype(c, l.alpha, l.beta, l.gamma);
    for (const CellGenotype& cell : g.cells) {
      CHECK(cell.inputs == std::array<int, 2>{0, 1});
      for (const StepGenotype& s : cell.steps) CHECK(s == StepGenotype{{0, 1}, kZero});  // column 0 is Zero
    }
  }
  SECTION("a tie for second place") {
    l.edge(0, 2, 0, 3);
    l.edge(0, 0, 0, 1);
    l.edge(0, 1, 0, 1);
    CHECK(derive_genotype(c, l.alpha, l.beta, l.gamma).cells[0].inputs == std::array<int, 2>{2, 0});
  }
  SECTION("Zero wins its gamma row") {
    l.op(1, 1, 0, 4);
    l.op(1, 1, 3, 3.9);
    CHECK(derive_genotype(c, l.alpha, l.beta, l.gamma).cells[1].steps[1].op == kZero);
  }
  SECTION("gamma columns follow the configured op list") {
    SearchConfig sub = c;
    sub.ops = {kConcatFC, kSum};
    Logits s(sub);
    s.op(0, 0, 1, 1);
    const Genotype g = derive_genotype(sub, s.alpha, s.beta, s.gamma);
    CHECK(g.cells[0].steps[0].op == kSum);
    CHECK(g.cells[0].steps[1].op == kConcatFC);
  }
}

TEST_CASE("derive_genotype rejects logits that do not match the layout", "[nas]") {
  const SearchConfig c = small_config();  // alpha 3 + 4 = 7 rows, beta 2 * (2 + 3) = 10 rows, gamma 4 x 5
  Logits l(c);
  CHECK_THROWS_WITH(derive_genotype(c, zeros({6, 2}, DType::F64), l.beta, l.gamma),
                    Contains("alpha must be (7, 2)") && Contains("3 inputs, 2 cells of 2 steps"));
  CHECK_THROWS_WITH(derive_genotype(c, l.alpha, zeros({10, 3}, DType::F64), l.gamma),
                    Contains("beta must be (10, 2)"));
  CHECK_THROWS_WITH(derive_genotype(c, l.alpha, l.beta, zeros({4, 4}, DType::F64)),
                    Contains("gamma must be (4, 5)") && Contains("5 ops"));
  CHECK_THROWS_WITH(derive_genotype(c, Tensor(), l.beta, l.gamma), Contains("undefined"));
  l.beta.data<double>()[7] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(derive_genotype(c, l.alpha, l.beta, l.gamma), Contains("beta row 3") && Contains("non-finite"));
  SearchConfig one = c;
  one.input_names = {"a"};
  one.input_channels = {3};
  Logits o(one);
  CHECK_THROWS_WITH(derive_genotype(one, o.alpha, o.beta, o.gamma), Contains("two distinct inputs"));
}

// ---- JSON -----------------------------------------------------------------------------------------------

TEST_CASE("Genotype JSON round-trips through an atomically written file", "[nas]") {
  ScratchDir tmp;
  const std::string path = tmp.file("genotype.json");
  const Genotype g = representative_genotype();

  SECTION("save then load gives the same genotype; the text is the documented format") {
    save_genotype(path, g);
    CHECK(load_genotype(path) == g);
    CHECK(tmp.listing() == std::vector<std::string>{"genotype.json"});
    const json doc = json::parse(read_file_bytes(path));
    CHECK(doc["format"] == "stgs-genotype");
    CHECK(doc["version"] == Genotype::kFormatVersion);
    CHECK(doc["config"]["inputs"][2] == json{{"name", "image.layer3"}, {"channels", 256}});
    CHECK(doc["config"]["dropout"] == 0.2);
    CHECK(doc["config"]["ops"] == json{"zero", "sum", "attention", "linear_glu", "concat_fc"});
    CHECK(doc["cells"][0]["inputs"] == json{"image.layer3", "audio.layer4"});
    CHECK(doc["cells"][1]["inputs"] == json{"cell0", "audio.layer2"});
    CHECK(doc["cells"][0]["steps"][1] == json{{"inputs", {"s0", "x"}}, {"op", "attention"}});
    CHECK(read_file_bytes(path) == genotype_to_json(g));
  }
  SECTION("other configurations round-trip too") {
    Genotype h = small_genotype(kZero, kSum, kConcatFC, kGlu);
    h.config.ops = {kGlu, kZero, kSum, kConcatFC};
    h.config.dropout = 0.1;
    h.config.num_classes = 7;
    CHECK(parse_genotype(genotype_to_json(h), "mem") == h);
    Genotype other = h;
    other.cells[1].steps[0].inputs = {0, 1};
    CHECK_FALSE(other == h);
  }
  SECTION("saving replaces an existing file and leaves nothing else behind") {
    write_file_bytes(path, "previous contents");
    save_genotype(path, g);
    CHECK(load_genotype(path) == g);
    CHECK(tmp.listing() == std::vector<std::string>{"genotype.json"});
  }
  SECTION("a failed save leaves no temporary file and names the path") {
    fs::create_directories(tmp.dir / "genotype.json" / "inside");  // rename() cannot replace a directory
    CHECK_THROWS_WITH(save_genotype(path, g), Contains(path) && Contains("renaming"));
    CHECK(tmp.listing() == std::vector<std::string>{"genotype.json"});
    const std::string missing = tmp.file("no/such/dir/genotype.json");
    CHECK_THROWS_WITH(save_genotype(missing, g), Contains(missing) && Contains("No such file or directory"));
  }
  SECTION("an invalid genotype is not written") {
    Genotype bad = g;
    bad.cells[0].inputs = {3, 3};
    CHECK_THROWS_WITH(save_genotype(path, bad), Contains("cells[0].inputs: both inputs are image.layer4"));
    CHECK(tmp.listing().empty());
  }
  SECTION("loading names the file") {
    CHECK_THROWS_WITH(load_genotype(tmp.file("absent.json")), Contains("absent.json") && Contains("cannot open"));
    write_file_bytes(path, "{\"format\": \"stgs-genotype\", \"version\": 1}");
    CHECK_THROWS_WITH(load_genotype(path), Contains(path + ": top level: missing field \"config\""));
  }
}

TEST_CASE("parse_genotype rejects malformed genotypes with the JSON path of the problem", "[nas]") {
  const std::string valid = genotype_to_json(small_genotype(kGlu, kSum, kConcatFC, kAttention));
  REQUIRE_NOTHROW(parse_genotype(valid, "g.json"));
  // A copy of the valid document changed by `edit`.
  auto edited = [&](const std::function<void(json&)>& edit) {
    json doc = json::parse(valid);
    edit(doc);
    return doc.dump();
  };
  struct Case {
    const char* what;
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"not JSON", "{\"format\": ", "genotype is not valid JSON"},
      {"NUL byte", std::string("{}\0{}", 5), "genotype is not valid JSON: NUL byte at byte 2"},
      {"top level not an object", "[1, 2]", "top level: expected a JSON object, got array"},
      {"missing format", edited([](json& d) { d.erase("format"); }), "top level: missing field \"format\""},
      {"wrong format", edited([](json& d) { d["format"] = "stgs-checkpoint"; }),
       "format: expected \"stgs-genotype\", got \"stgs-checkpoint\""},
      {"newer version", edited([](json& d) { d["version"] = 2; }),
       "version: unsupported version 2 (this build reads version 1)"},
      {"version as a string", edited([](json& d) { d["version"] = "1"; }),
       "version: expected an integer, got string \"1\""},
      {"unknown top-level field", edited([](json& d) { d["comment"] = "hi"; }),
       "top level: unknown field \"comment\" (expected format, version, config, cells)"},
      {"missing config field", edited([](json& d) { d["config"].erase("L"); }), "config: missing field \"L\""},
      {"config not an object", edited([](json& d) { d["config"] = json::array(); }),
       "config: expected an object, got array"},
      {"fractional C", edited([](json& d) { d["config"]["C"] = 4.5; }), "config.C: expected an integer, got number 4.5"},
      {"zero C", edited([](json& d) { d["config"]["C"] = 0; }), "config.C: must be >= 1, got 0"},
      {"dropout out of range", edited([](json& d) { d["config"]["dropout"] = 1.5; }),
       "config.dropout: must be in [0, 1), got 1.5"},
      {"one class", edited([](json& d) { d["config"]["num_classes"] = 1; }), "config.num_classes: must be >= 2, got 1"},
      {"huge cell count", edited([](json& d) { d["config"]["cells"] = 3000000000LL; }),
       "config.cells: 3000000000 is out of range"},
      {"repeated input name", edited([](json& d) { d["config"]["inputs"][1]["name"] = "a"; }),
       "config.inputs[1].name: 'a' repeats config.inputs[0].name"},
      {"input named like a cell", edited([](json& d) { d["config"]["inputs"][2]["name"] = "cell0"; }),
       "config.inputs[2].name: 'cell0' reads as a cell reference"},
      {"negative channels", edited([](json& d) { d["config"]["inputs"][0]["channels"] = -3; }),
       "config.inputs[0].channels: must be >= 1, got -3"},
      {"one input node", edited([](json& d) { d["config"]["inputs"] = json::array({d["config"]["inputs"][0]}); }),
       "config.inputs: 1 input node(s); a cell needs two distinct inputs"},
      {"unknown op in the config", edited([](json& d) { d["config"]["ops"][1] = "conv"; }),
       "config.ops[1]: unknown op 'conv' (expected zero, sum, attention, linear_glu, concat_fc)"},
      {"repeated op in the config", edited([](json& d) { d["config"]["ops"][2] = "sum"; }),
       "config.ops[2]: 'sum' repeats config.ops[1]"},
      {"too few cells", edited([](json& d) { d["cells"].erase(1); }), "cells: 1 cells, but config.cells is 2"},
      {"too few steps", edited([](json& d) { d["cells"][0]["steps"].erase(1); }),
       "cells[0].steps: 1 steps, but config.steps is 2"},
      {"three cell inputs", edited([](json& d) { d["cells"][0]["inputs"].push_back("b"); }),
       "cells[0].inputs: expected 2 names, got 3"},
      {"unknown node", edited([](json& d) { d["cells"][0]["inputs"][1] = "video.layer1"; }),
       "cells[0].inputs[1]: unknown node 'video.layer1'"},
      {"forward reference to the cell itself", edited([](json& d) { d["cells"][1]["inputs"][0] = "cell1"; }),
       "cells[1].inputs[0]: cell1 is not an earlier node (cell 1 reads input nodes and cell0)"},
      {"reference to a later cell", edited([](json& d) { d["cells"][0]["inputs"][1] = "cell1"; }),
       "cells[0].inputs[1]: cell1 is not an earlier node (cell 0 reads input nodes only)"},
      {"cell reference with a leading zero", edited([](json& d) { d["cells"][1]["inputs"][0] = "cell00"; }),
       "cells[1].inputs[0]: unknown node 'cell00'"},
      {"the same node twice", edited([](json& d) { d["cells"][1]["inputs"] = {"b", "b"}; }),
       "cells[1].inputs: both inputs are b; a cell reads two distinct nodes"},
      {"cell input not a string", edited([](json& d) { d["cells"][0]["inputs"][0] = 2; }),
       "cells[0].inputs[0]: expected a string, got number 2"},
      {"step reads its own output", edited([](json& d) { d["cells"][0]["steps"][1]["inputs"][0] = "s1"; }),
       "cells[0].steps[1].inputs[0]: s1 is not an earlier state (step 1 reads x, y, s0)"},
      {"unknown state", edited([](json& d) { d["cells"][1]["steps"][0]["inputs"][1] = "z"; }),
       "cells[1].steps[0].inputs[1]: unknown state 'z' (expected x, y or s<i>)"},
      {"negative state index", edited([](json& d) { d["cells"][0]["steps"][1]["inputs"][0] = "s-1"; }),
       "cells[0].steps[1].inputs[0]: unknown state 's-1'"},
      {"the same state twice", edited([](json& d) { d["cells"][1]["steps"][0]["inputs"] = {"x", "x"}; }),
       "cells[1].steps[0].inputs: both inputs are x; a step reads two distinct states"},
      {"unknown step op", edited([](json& d) { d["cells"][1]["steps"][0]["op"] = "conv"; }),
       "cells[1].steps[0].op: unknown op 'conv' (expected zero, sum, attention, linear_glu, concat_fc)"},
      {"op outside the configured ops",
       edited([](json& d) { d["config"]["ops"] = {"sum", "linear_glu", "concat_fc"}; }),
       "cells[1].steps[1].op: 'attention' is not one of config.ops (sum, linear_glu, concat_fc)"},
      {"op of the wrong type", edited([](json& d) { d["cells"][0]["steps"][0]["op"] = 3; }),
       "cells[0].steps[0].op: expected a string, got number 3"},
      {"unknown step field", edited([](json& d) { d["cells"][0]["steps"][0]["weight"] = 0.5; }),
       "cells[0].steps[0]: unknown field \"weight\" (expected inputs, op)"},
      {"duplicate key", "{\"format\": \"stgs-genotype\", \"version\": 1, \"config\": {}, "
                        "\"cells\": [{\"steps\": [{}, {\"op\": \"sum\", \"op\": \"zero\"}]}]}",
       "genotype has a duplicate key \"op\" at cells[0].steps[1]"},
  };
  REQUIRE(cases.size() >= 15);
  for (const Case& c : cases) {
    INFO("case: " << c.what << "\n" << c.text);
    CHECK_THROWS_AS(parse_genotype(c.text, "g.json"), stgs::Error);
    CHECK_THROWS_WITH(parse_genotype(c.text, "g.json"), Contains("g.json: " + c.message));
  }
}

TEST_CASE("validate_genotype checks in-memory genotypes with the same paths", "[nas]") {
  Genotype g = small_genotype(kSum, kSum, kSum, kSum);
  REQUIRE_NOTHROW(validate_genotype(g));
  Genotype bad = g;
  bad.cells[0].inputs = {-1, 0};
  CHECK_THROWS_WITH(validate_genotype(bad, "mine"), Contains("mine: cells[0].inputs[0]: node index -1 is not an"));
  bad = g;
  bad.config.input_channels.pop_back();
  CHECK_THROWS_WITH(validate_genotype(bad), Contains("genotype: config.inputs: 3 names but 2 channel counts"));
  bad = g;
  bad.cells[1].steps[1].inputs = {0, -2};
  CHECK_THROWS_WITH(validate_genotype(bad), Contains("cells[1].steps[1].inputs[1]: state index -2 is not"));
}

// ---- DOT ------------------------------------------------------------------------------------------------

TEST_CASE("genotype_to_dot writes a digraph that graphviz parses", "[nas]") {
  Genotype g = representative_genotype();
  // Names that would break an unescaped DOT string.
  g.config.input_names[2] = "image \"layer3\" {x}";
  g.config.input_names[7] = "audio\\layer4\\N";
  const std::string dot = genotype_to_dot(g);
  CHECK_THAT(dot, Contains("digraph genotype {") && Contains("rankdir=LR;"));
  CHECK_THAT(dot, Contains("subgraph cluster_cell0") && Contains("subgraph cluster_cell1"));
  CHECK_THAT(dot, Contains("label=\"image \\\"layer3\\\" {x}\\n256 ch\""));
  CHECK_THAT(dot, Contains("label=\"audio\\\\layer4\\\\N\\n512 ch\""));
  CHECK_THAT(dot, Contains("c0_s1 [label=\"s1\\nattention(s0, x)\""));
  CHECK_THAT(dot, Contains("in2 -> c0_x;") && Contains("in7 -> c0_y;") && Contains("c0_out -> c1_x;"));
  CHECK_THAT(dot, Contains("in0 [label=\"image.layer1\\n64 ch\", color=gray"));  // unused input
  CHECK_THAT(dot, Contains("c1_out -> head;") && Contains("Linear -> 2 logits"));

  if (run_shell("command -v dot > /dev/null 2>&1") != 0) {
    WARN("SKIPPED: graphviz `dot` is not installed (make deps installs it); the DOT text was not parsed");
    return;
  }
  ScratchDir tmp;
  write_file_bytes(tmp.file("g.dot"), dot);
  const int rc = run_shell("dot -Tsvg '" + tmp.file("g.dot") + "' -o '" + tmp.file("g.svg") + "' 2> '" +
                           tmp.file("err.txt") + "'");
  INFO("dot stderr: " << read_file_bytes(tmp.file("err.txt")));
  REQUIRE(rc == 0);
  CHECK(read_file_bytes(tmp.file("err.txt")).empty());
  const std::string svg = read_file_bytes(tmp.file("g.svg"));
  CHECK_THAT(svg, Contains("image &quot;layer3&quot; {x}") && Contains("audio\\layer4\\N"));
  CHECK_THAT(svg, Contains("linear_glu(x, y)") && Contains("cell1 output"));
}

// ---- fixed network --------------------------------------------------------------------------------------

TEST_CASE("FixedNetwork builds only the chosen parts and maps features to logits", "[nas]") {
  Generator gen(7);
  const Genotype g = small_genotype(kGlu, kAttention, kConcatFC, kZero);
  FixedNetwork net(g, &gen);
  // Inputs a (0) and c (2) are read; b (1) only by cell 1, so all three have reshape layers here.
  for (int u = 0; u < 3; ++u) CHECK(net.reshape(u) != nullptr);
  Genotype unused_b = g;
  unused_b.cells[1].inputs = {3, 0};
  FixedNetwork net2(unused_b, &gen);
  CHECK(net2.reshape(1) == nullptr);
  std::vector<std::string> names;
  for (const auto& [name, t] : net2.named_parameters()) names.push_back(name);
  CHECK(std::find(names.begin(), names.end(), "reshape.0.conv.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "reshape.1.conv.weight") == names.end());
  CHECK(std::find(names.begin(), names.end(), "cells.0.steps.0.conv.weight") != names.end());  // LinearGLU
  CHECK(std::find(names.begin(), names.end(), "cells.0.steps.1.ln.weight") != names.end());    // Attention
  CHECK(std::find(names.begin(), names.end(), "cells.1.conv.weight") != names.end());
  CHECK(names.back() == "classifier.bias");

  const std::vector<Tensor> features = random_features(g.config, 5, DType::F32, 1);
  const Tensor logits = net2.forward(features);
  CHECK(logits.shape() == Shape{5, 2});
  net2.eval();
  CHECK(net2.forward(features).shape() == Shape{5, 2});

  // The unused input is still shape-checked.
  std::vector<Tensor> wrong = features;
  wrong[1] = zeros({5, 6, 3});
  CHECK_THROWS_WITH(net2.forward(wrong), Contains("input 1 ('b') must be (B, 4, 3)"));
  wrong = features;
  wrong[2] = zeros({4, 5, 3});
  CHECK_THROWS_WITH(net2.forward(wrong), Contains("share the batch size"));
  CHECK_THROWS_WITH(net2.forward({features[0], features[1]}), Contains("expected 3 input features"));

  Genotype bad = g;
  bad.cells[1].steps[1].inputs = {3, 0};
  CHECK_THROWS_WITH(FixedNetwork(bad), Contains("cells[1].steps[1].inputs[0]: s1 is not an earlier state"));
}

TEST_CASE("FixedNetwork parameter count for the paper's configuration", "[nas]") {
  const Genotype g = representative_genotype();
  FixedNetwork net(g);
  // By hand, C = 128, L = 8. Reshape C_i -> C: conv C_i C + C, BN 2C. LinearGLU: conv 2C x 2C + 2C, BN 4C.
  // Attention: LayerNorm 2 C L. ConcatFC: conv 2C x C + C, BN 2C. Cell output: conv 2C x C + C, BN 2C,
  // LayerNorm 2 C L. Head: LayerNorm 2 (2C) L, Linear 2C L x 2 + 2.
  const int64_t C = 128, L = 8;
  auto reshape = [&](int64_t C_i) { return C_i * C + C + 2 * C; };
  const int64_t glu = 2 * C * 2 * C + 2 * C + 4 * C, attention = 2 * C * L, concat_fc = 2 * C * C + C + 2 * C;
  const int64_t cell_out = 2 * C * C + C + 2 * C + 2 * C * L;
  const int64_t head = 2 * 2 * C * L + 2 * C * L * 2 + 2;
  const int64_t expected = reshape(256) + reshape(512) + reshape(128) + (glu + attention + cell_out) +
                           (concat_fc + glu + cell_out) + head;
  CHECK(expected == 362242);
  CHECK(net.num_parameters() == expected);
  // For the record next to the paper's 0.26 M (Table 2; Table 3 lists 0.16 M to 2.2 M across settings).
  std::printf("FixedNetwork, paper config, representative genotype: %lld parameters (%lld in reshape layers)\n",
              (long long)net.num_parameters(), (long long)(reshape(256) + reshape(512) + reshape(128)));
}

TEST_CASE("FixedNetwork gradients match central differences (F64, BN in training mode)", "[nas][grad]") {
  Generator gen(11);
  // Dropout 0 and no Attention (its dropout is fixed at 0.1): the training-mode forward is deterministic.
  // Cell 1 reads cell0 and b, so gradients flow through a cell output into the next cell.
  Genotype g = small_genotype(kGlu, kConcatFC, kSum, kZero);
  g.cells[1].steps[1] = {{2, 1}, kGlu};
  auto net = std::make_shared<FixedNetwork>(g, &gen);
  net->to(DType::F64);
  net->train();
  std::vector<Tensor> features = random_features(g.config, 4, DType::F64, 2);
  for (Tensor& f : features) f.set_requires_grad(true);
  WithFeatures model(net, features);
  std::vector<std::pair<std::string, Tensor>> wrt = {{"features[0]", features[0]},
                                                      {"features[1]", features[1]},
                                                      {"features[2]", features[2]}};
  for (const auto& entry : net->named_parameters()) wrt.push_back(entry);
  testing::check_module_gradients(model, Tensor(), wrt, 8);
}

TEST_CASE("FixedNetwork gradients match central differences (F64, eval mode, Attention)", "[nas][grad]") {
  Generator gen(12);
  const Genotype g = small_genotype(kAttention, kGlu, kConcatFC, kAttention);
  auto net = std::make_shared<FixedNetwork>(g, &gen);
  net->to(DType::F64);
  {
    // Non-trivial running statistics, so eval mode exercises them.
    NoGradGuard no_grad;
    Generator stats(13);
    for (auto& [name, t] : net->named_buffers()) {
      if (name.find("running_mean") != std::string::npos) t.copy_(randn(t.shape(), DType::F64, Device::cpu(), &stats));
      if (name.find("running_var") != std::string::npos)
        t.copy_(rand(t.shape(), DType::F64, Device::cpu(), &stats, 0.5, 2.0));
    }
  }
  net->eval();
  std::vector<Tensor> features = random_features(g.config, 3, DType::F64, 3);
  for (Tensor& f : features) f.set_requires_grad(true);
  WithFeatures model(net, features);
  std::vector<std::pair<std::string, Tensor>> wrt = {{"features[0]", features[0]}, {"features[2]", features[2]}};
  for (const auto& entry : net->named_parameters()) wrt.push_back(entry);
  testing::check_module_gradients(model, Tensor(), wrt, 8);
}
