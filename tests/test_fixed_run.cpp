// Training a genotype's fixed network (nas/fixed_run.h): learning, model selection on validation, and the
// resume-at-any-step guarantee.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "engine/ops.h"
#include "engine/random.h"
#include "nas/fixed_run.h"

using namespace stgs;
using namespace stgs::nas;

namespace {

// One cell reading the informative input b and the noise input a; dropout on, so the resume check covers the
// default generator's stream.
Genotype tiny_genotype() {
  return parse_genotype(R"({"format": "stgs-genotype", "version": 1,
    "config": {"inputs": [{"name": "a", "channels": 4}, {"name": "b", "channels": 4}, {"name": "c", "channels": 4}],
               "C": 8, "L": 4, "cells": 1, "steps": 2, "dropout": 0.1, "num_classes": 2,
               "ops": ["zero", "sum", "attention", "linear_glu", "concat_fc"]},
    "cells": [{"inputs": ["b", "a"], "steps": [{"inputs": ["x", "y"], "op": "linear_glu"},
                                                {"inputs": ["s0", "x"], "op": "sum"}]}]})",
                        "tiny genotype");
}

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
    s.features.push_back(i == 1 ? (noise + sign * 1.0).contiguous() : noise);
  }
  return s;
}

FixedRunOptions tiny_options() {
  FixedRunOptions o;
  o.epochs = 6;
  o.batch_size = 8;
  o.lr = 0.01;
  o.seed = 3;
  return o;
}

bool same_state(const StateDict& a, const StateDict& b, std::string& first_difference) {
  if (a.size() != b.size()) return first_difference = "sizes differ", false;
  for (const auto& [name, t] : a) {
    const Tensor* u = b.find(name);
    if (u == nullptr) return first_difference = name + " missing", false;
    const Tensor x = t.contiguous(), y = u->contiguous();
    if (x.shape() != y.shape() || std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())))
      return first_difference = name, false;
  }
  return true;
}

}  // namespace

TEST_CASE("fixed run: learns, keeps the best validation epoch, scores a test split", "[nas][eval]") {
  manual_seed(2);
  const FeatureSet train = informative_set(64, 1), val = informative_set(32, 2), test = informative_set(32, 3);
  FixedRun run(tiny_genotype(), tiny_options(), train, val);
  CHECK(run.best_epoch() == -1);
  double best_auc = -1;
  for (int e = 0; e < 6; ++e) {
    const FixedEpochResult r = run.run_epoch();
    REQUIRE(r.complete);
    CHECK(r.best == (r.val.auc > best_auc));
    if (r.best) best_auc = r.val.auc;
    CHECK(std::isfinite(r.train_loss));
    CHECK(r.lr > 0);
  }
  CHECK(run.best_val_auc() == best_auc);
  const SplitScores s = run.evaluate_best(test);
  INFO("test AUC " << s.auc << ", accuracy " << s.accuracy << ", EER " << s.eer);
  CHECK(s.scores.size() == 32);
  CHECK(s.auc > 0.9);
  CHECK(s.eer < 0.2);
}

TEST_CASE("fixed run: stopped mid-epoch and resumed, it ends bitwise where an uninterrupted run ends",
          "[nas][eval]") {
  const FeatureSet train = informative_set(40, 1), val = informative_set(16, 2);
  manual_seed(7);
  FixedRun whole(tiny_genotype(), tiny_options(), train, val);
  whole.run_epoch();
  whole.run_epoch();
  const FixedEpochResult whole_last = whole.run_epoch();

  manual_seed(7);
  StateDict saved;
  {
    FixedRun first(tiny_genotype(), tiny_options(), train, val);
    first.run_epoch();
    int calls = 0;
    CHECK_FALSE(first.run_epoch([&] { return ++calls > 3; }).complete);
    saved = first.state_dict().clone();
  }
  manual_seed(999);
  FixedRun resumed(tiny_genotype(), tiny_options(), train, val);
  resumed.load_state_dict(saved);
  CHECK(resumed.epoch() == 1);
  CHECK(resumed.step_in_epoch() == 3);
  resumed.run_epoch();
  const FixedEpochResult resumed_last = resumed.run_epoch();
  CHECK(resumed_last.train_loss == whole_last.train_loss);
  CHECK(resumed_last.val.scores == whole_last.val.scores);
  CHECK(resumed.best_epoch() == whole.best_epoch());
  std::string diff;
  CHECK(same_state(whole.state_dict(), resumed.state_dict(), diff));
  INFO(diff);
}

TEST_CASE("fixed run: features that do not match the genotype are refused", "[nas][eval]") {
  FeatureSet train = informative_set(16, 1);
  train.names = {"a", "b"};
  train.features.pop_back();
  REQUIRE_THROWS_WITH(FixedRun(tiny_genotype(), tiny_options(), train, informative_set(8, 2)),
                      Catch::Contains("do not match the genotype"));
}
