// The epoch driver of the search (nas/search_run.h): batch order, argmax architecture, metrics, and the
// resume-at-any-step guarantee.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <set>

#include "engine/ops.h"
#include "engine/random.h"
#include "nas/search_run.h"

using namespace stgs;
using namespace stgs::nas;

namespace {

SearchConfig tiny_config() {
  SearchConfig c;
  c.input_names = {"a", "b", "c"};
  c.input_channels = {4, 4, 4};
  c.cells = 1;
  c.steps = 2;
  c.C = 8;
  c.L = 4;
  c.dropout = 0.1;  // dropout on: the resume check covers the default generator's stream too
  return c;
}

// `clips` clips whose input b carries the label (+-1 shift), the others noise.
FeatureSet informative_set(int64_t clips, uint64_t seed) {
  Generator gen(seed);
  FeatureSet s;
  s.names = {"a", "b", "c"};
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < clips; ++i) labels.push_back(i % 2);
  s.labels = from_vector(labels, Shape{clips});
  const Tensor sign = (s.labels.to(DType::F32) * 2.0 - 1.0).reshape(Shape{clips, 1, 1});
  for (int i = 0; i < 3; ++i) {
    const Tensor noise = randn(Shape{clips, 4, 4}, DType::F32, Device::cpu(), &gen);
    s.features.push_back(i == 1 ? (noise + sign * 1.5).contiguous() : noise);
  }
  for (int64_t i = 0; i < clips; ++i) s.ids.push_back("clip" + std::to_string(i));
  return s;
}

SearchRunOptions tiny_options() {
  SearchRunOptions o;
  o.epochs = 3;
  o.batch_size = 8;
  o.seed = 4;
  o.architect.samples = 2;
  o.architect.temperature = TemperatureSchedule::fixed(1.0);
  o.architect.weight_optimizer = WeightOptimizer::Adam;
  o.architect.arch_lr = 0.05;
  return o;
}

bool same_state(const StateDict& a, const StateDict& b, std::string& first_difference) {
  if (a.size() != b.size()) return first_difference = "sizes differ", false;
  for (const auto& [name, t] : a) {
    const Tensor* u = b.find(name);
    if (u == nullptr) return first_difference = name + " missing", false;
    const Tensor x = t.contiguous().to(Device::cpu()), y = u->contiguous().to(Device::cpu());
    if (x.shape() != y.shape() || x.dtype() != y.dtype() ||
        std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) != 0)
      return first_difference = name, false;
  }
  return true;
}

}  // namespace

TEST_CASE("search run: epoch batches are a seeded partition", "[nas][search]") {
  const auto a = epoch_batches(21, 4, 7, 0, 1);
  CHECK(a == epoch_batches(21, 4, 7, 0, 1));
  CHECK(a != epoch_batches(21, 4, 7, 1, 1));
  CHECK(a != epoch_batches(21, 4, 7, 0, 2));
  std::multiset<int64_t> seen;
  for (const auto& b : a) seen.insert(b.begin(), b.end());
  CHECK(a.size() == 5);        // 4+4+4+4+4, the last single clip dropped
  CHECK(seen.size() == 20);
  CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 20);
  CHECK(epoch_batches(22, 4, 7, 0, 1).size() == 6);  // a last batch of two is kept
  REQUIRE_THROWS_WITH(epoch_batches(10, 1, 0, 0, 0), Catch::Contains("at least 2"));
}

TEST_CASE("search run: argmax architecture is one-hot on each row's maximum", "[nas][search]") {
  Generator g(3);
  ArchParams arch(tiny_config(), &g);
  const ArchSample s = argmax_architecture(arch);
  const std::vector<float> logits = arch.gamma.to_vector<float>(), w = s.gamma.to_vector<float>();
  const int64_t cols = arch.gamma.size(1);
  for (int64_t r = 0; r < arch.gamma.size(0); ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < cols; ++c)
      if (logits[size_t(r * cols + c)] > logits[size_t(r * cols + best)]) best = c;
    for (int64_t c = 0; c < cols; ++c) CHECK(w[size_t(r * cols + c)] == (c == best ? 1.0f : 0.0f));
  }
}

TEST_CASE("search run: epochs learn the informative input and report metrics", "[nas][search]") {
  manual_seed(9);
  const FeatureSet train = informative_set(48, 1), val = informative_set(24, 2);
  SearchRunOptions options = tiny_options();
  options.epochs = 6;
  options.architect.weight_lr = 0.02;
  SearchRun run(tiny_config(), options, train, val);
  CHECK(run.steps_per_epoch() == 6);
  EpochResult r;
  for (int e = 0; e < 6; ++e) r = run.run_epoch();
  CHECK(r.complete);
  CHECK(r.epoch == 5);
  CHECK(run.epoch() == 6);
  CHECK(std::isfinite(r.train_loss));
  CHECK(r.val.scores.size() == 24);
  INFO("val AUC " << r.val.auc << ", accuracy " << r.val.accuracy);
  CHECK(r.val.auc > 0.9);  // the shift is 1.5 sigma on every element of input b
  CHECK(r.genotype.cells.size() == 1);
  CHECK(r.entropies.alpha > 0);
}

TEST_CASE("search run: stopped mid-epoch and resumed, it ends bitwise where an uninterrupted run ends",
          "[nas][search]") {
  const FeatureSet train = informative_set(40, 1), val = informative_set(16, 2);
  manual_seed(11);
  SearchRun whole(tiny_config(), tiny_options(), train, val);
  whole.run_epoch();
  const EpochResult whole_last = whole.run_epoch();

  manual_seed(11);
  StateDict saved;
  {
    SearchRun first(tiny_config(), tiny_options(), train, val);
    first.run_epoch();
    int calls = 0;
    const EpochResult partial = first.run_epoch([&] { return ++calls > 2; });  // two steps, then "Ctrl-C"
    CHECK_FALSE(partial.complete);
    CHECK(partial.steps == 2);
    saved = first.state_dict().clone();
  }
  manual_seed(12345);  // the checkpoint, not the process state, must carry the streams
  SearchRun resumed(tiny_config(), tiny_options(), train, val);
  resumed.load_state_dict(saved);
  CHECK(resumed.epoch() == 1);
  CHECK(resumed.step_in_epoch() == 2);
  const EpochResult resumed_last = resumed.run_epoch();
  CHECK(resumed_last.complete);
  CHECK(resumed_last.train_loss == whole_last.train_loss);
  CHECK(resumed_last.val.scores == whole_last.val.scores);
  CHECK(resumed_last.genotype == whole_last.genotype);
  std::string diff;
  CHECK(same_state(whole.state_dict(), resumed.state_dict(), diff));
  INFO(diff);
}

TEST_CASE("search run: mismatched features are refused", "[nas][search]") {
  FeatureSet train = informative_set(16, 1), val = informative_set(8, 2);
  val.names = {"a", "b", "x"};
  REQUIRE_THROWS_WITH(SearchRun(tiny_config(), tiny_options(), train, val),
                      Catch::Contains("validation features do not match"));
  FeatureSet bad = informative_set(16, 1);
  bad.features[0] = bad.features[0].slice(0, 0, 8).contiguous();
  REQUIRE_THROWS_WITH(SearchRun(tiny_config(), tiny_options(), bad, informative_set(8, 2)),
                      Catch::Contains("a must be F32 (16, C, L)"));
}
