// The batch loader (data/loader.h): order and content independent of worker count and timing, epochs, the
// bounded queue, errors and shutdown; and clip batches from a small synthetic set (data/clip_batch.h).
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "data/clip_batch.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "engine/random.h"
#include "kernels/check.h"
#include "tests/test_files.h"

using namespace stgs;
using namespace stgs::data;
using stgs::testing::TempDir;

namespace {

// What a test batch holds: its indices as load() saw them and the seed it was given.
struct Echo {
  std::vector<int64_t> indices;
  uint64_t seed = 0;
};

// Loads echo batches after a pause that varies with the batch, so that with several workers they finish out
// of order.
Loader<Echo>::LoadFn echo_after_jitter() {
  return [](const std::vector<int64_t>& indices, uint64_t seed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(indices.front() % 3 * 2));
    return Echo{indices, seed};
  };
}

std::vector<LoadedBatch<Echo>> whole_epoch(Loader<Echo>& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<LoadedBatch<Echo>> out;
  while (std::optional<LoadedBatch<Echo>> b = loader.next()) out.push_back(std::move(*b));
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("loader: same batches, order and seeds for 1 and 3 workers", "[loader]") {
  LoaderOptions options;
  options.batch_size = 4;
  options.seed = 11;
  options.workers = 1;
  Loader<Echo> one(23, options, echo_after_jitter());
  options.workers = 3;
  Loader<Echo> three(23, options, echo_after_jitter());
  REQUIRE(one.batches_per_epoch() == 6);
  for (int64_t epoch : {0, 1}) {
    const std::vector<LoadedBatch<Echo>> a = whole_epoch(one, epoch), b = whole_epoch(three, epoch);
    REQUIRE(a.size() == 6);
    REQUIRE(b.size() == 6);
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].number == int64_t(i));
      CHECK(b[i].number == int64_t(i));
      CHECK(a[i].indices == b[i].indices);
      CHECK(a[i].data.indices == a[i].indices);  // load() got exactly the batch's indices
      CHECK(b[i].data.indices == b[i].indices);
      CHECK(a[i].data.seed == b[i].data.seed);
      CHECK(a[i].data.seed == batch_seed(11, epoch, int64_t(i)));
    }
  }
}

TEST_CASE("loader: every index once per epoch; drop_last; fresh permutations; shuffle off", "[loader]") {
  LoaderOptions options;
  options.batch_size = 5;
  Loader<Echo> loader(23, options, echo_after_jitter());
  REQUIRE(loader.batches_per_epoch() == 5);
  const std::vector<LoadedBatch<Echo>> e0 = whole_epoch(loader, 0), e1 = whole_epoch(loader, 1);
  std::vector<int64_t> order0, order1;
  for (const auto& b : e0) order0.insert(order0.end(), b.indices.begin(), b.indices.end());
  for (const auto& b : e1) order1.insert(order1.end(), b.indices.begin(), b.indices.end());
  CHECK(e0.back().indices.size() == 3);  // 23 = 4 x 5 + 3
  std::vector<int64_t> sorted = order0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(23);
  for (int64_t i = 0; i < 23; ++i) all[size_t(i)] = i;
  CHECK(sorted == all);
  CHECK(order0 != all);     // shuffled
  CHECK(order1 != order0);  // a fresh permutation per epoch ...
  CHECK(whole_epoch(loader, 0)[2].indices == e0[2].indices);  // ... and the same one for the same epoch

  options.drop_last = true;
  Loader<Echo> dropping(23, options, echo_after_jitter());
  REQUIRE(dropping.batches_per_epoch() == 4);
  const std::vector<LoadedBatch<Echo>> d = whole_epoch(dropping, 0);
  std::set<int64_t> seen;
  for (const auto& b : d) {
    CHECK(b.indices.size() == 5);
    seen.insert(b.indices.begin(), b.indices.end());
  }
  CHECK(seen.size() == 20);  // distinct

  options.drop_last = false;
  options.shuffle = false;
  Loader<Echo> ordered(23, options, echo_after_jitter());
  std::vector<int64_t> in_order;
  for (const auto& b : whole_epoch(ordered, 3)) in_order.insert(in_order.end(), b.indices.begin(), b.indices.end());
  CHECK(in_order == all);

  // Edge cases: an empty dataset has no batches; bad options are refused naming the value.
  Loader<Echo> empty_set(0, options, echo_after_jitter());
  CHECK(whole_epoch(empty_set, 0).empty());
  options.workers = 0;
  CHECK_THROWS_WITH(Loader<Echo>(5, options, echo_after_jitter()), Catch::Contains("workers must be >= 1, got 0"));
}

TEST_CASE("loader: an exception in load is rethrown by next(), naming the batch", "[loader]") {
  LoaderOptions options;
  options.batch_size = 2;
  options.shuffle = false;
  options.workers = 2;
  Loader<Echo> loader(8, options, [](const std::vector<int64_t>& indices, uint64_t seed) {
    if (indices.front() == 4) throw Error("clip 4 is corrupt");
    return Echo{indices, seed};
  });
  loader.start_epoch(0);
  CHECK(loader.next()->number == 0);
  CHECK(loader.next()->number == 1);
  CHECK_THROWS_WITH(loader.next(), Catch::Contains("loader: batch 2 of epoch 0 (dataset indices 4, 5)") &&
                                       Catch::Contains("clip 4 is corrupt"));
  // The failed batch is consumed; the epoch goes on.
  CHECK(loader.next()->number == 3);
  CHECK_FALSE(loader.next().has_value());
}

TEST_CASE("loader: at most `prefetch` batches are loading or waiting", "[loader]") {
  LoaderOptions options;
  options.batch_size = 1;
  options.prefetch = 3;
  options.workers = 4;  // more workers than the bound allows to run
  std::atomic<int64_t> started{0};
  Loader<Echo> loader(10, options, [&](const std::vector<int64_t>& indices, uint64_t seed) {
    ++started;
    return Echo{indices, seed};
  });
  loader.start_epoch(0);
  for (int64_t consumed = 0; consumed < 10; ++consumed) {
    // The queue fills up to the bound (loads are instant) ...
    const int64_t expected = std::min<int64_t>(consumed + options.prefetch, 10);
    const auto t0 = std::chrono::steady_clock::now();
    while (started.load() < expected && seconds_since(t0) < 10)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // ... and stays there while the consumer does not take a batch.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(started.load() == expected);
    REQUIRE(loader.next()->number == consumed);
  }
  CHECK_FALSE(loader.next().has_value());
}

TEST_CASE("loader: destroying or restarting mid-epoch does not hang", "[loader]") {
  LoaderOptions options;
  options.batch_size = 2;
  options.workers = 3;
  auto slow = [](const std::vector<int64_t>& indices, uint64_t seed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return Echo{indices, seed};
  };
  const auto t0 = std::chrono::steady_clock::now();
  {
    Loader<Echo> loader(100, options, slow);
    loader.start_epoch(0);
    CHECK(loader.next()->number == 0);
  }  // workers blocked on the bound and inside load() are stopped and joined
  {
    Loader<Echo> never_read(100, options, slow);
    never_read.start_epoch(0);
  }
  CHECK(seconds_since(t0) < 5);

  Loader<Echo> loader(100, options, slow);
  loader.start_epoch(0);
  loader.next();
  loader.start_epoch(1);  // drops epoch 0's remaining batches
  const std::optional<LoadedBatch<Echo>> first = loader.next();
  CHECK(first->number == 0);
  CHECK(first->data.seed == batch_seed(options.seed, 1, 0));
  CHECK(loader.wait_seconds() <= loader.busy_seconds());
}

TEST_CASE("loader: clip batches from a manifest", "[loader][data]") {
  TempDir tmp("loader_clips");
  SynthConfig config;
  config.clips = 4;
  config.size = 40;
  config.frames = 6;
  generate_synthetic(tmp.dir.string(), config);
  const Manifest manifest = read_manifest(tmp.file("manifest.csv"));
  ClipOptions options;
  options.frames = 3;
  options.size = 32;
  SpectrogramStats stats;
  stats.add(clip_spectrogram(load_raw_clip(manifest.rows[0], manifest.path, options)));

  const ClipBatch batch = load_clip_batch(manifest, {2, 0}, options, stats, true, 99);
  REQUIRE(batch.frames.shape() == Shape{2, 3, 3, 32, 32});
  REQUIRE(batch.spectrograms.shape() == Shape{2, 1, kWindowFrames, kFreqBins});
  REQUIRE(batch.labels.shape() == Shape{2});
  CHECK(batch.labels.dtype() == DType::I64);
  CHECK(batch.labels.to_vector<int64_t>() ==
        std::vector<int64_t>{int64_t(manifest.rows[2].label), int64_t(manifest.rows[0].label)});
  CHECK(batch.ids == std::vector<std::string>{manifest.rows[2].id, manifest.rows[0].id});

  // Clip i of a training batch takes its window from Generator(batch_seed + i); evaluation centres it.
  const RawClip raw = load_raw_clip(manifest.rows[0], manifest.path, options);
  Generator gen(99 + 1);
  const ClipInput expected = make_clip_input(raw.frames, clip_spectrogram(raw), stats, &gen);
  const size_t per_clip = size_t(kWindowFrames) * kFreqBins;
  CHECK(std::memcmp(batch.spectrograms.select(0, 1).contiguous().data<float>(), expected.spectrogram.data<float>(),
                    per_clip * sizeof(float)) == 0);
  CHECK(std::memcmp(batch.frames.select(0, 1).contiguous().data<float>(), expected.frames.data<float>(),
                    size_t(expected.frames.numel()) * sizeof(float)) == 0);
  const ClipBatch eval = load_clip_batch(manifest, {0}, options, stats, false, 5);
  const ClipInput centred = make_clip_input(raw.frames, clip_spectrogram(raw), stats);
  CHECK(std::memcmp(eval.spectrograms.data<float>(), centred.spectrogram.data<float>(), per_clip * sizeof(float)) ==
        0);
  CHECK_THROWS_WITH(load_clip_batch(manifest, {4}, options, stats, false, 0),
                    Catch::Contains("index 4 outside manifest"));

  // Through the loader: every clip once, labels and ids in batch order.
  LoaderOptions loader_options;
  loader_options.batch_size = 3;
  Loader<ClipBatch> loader(int64_t(manifest.rows.size()), loader_options,
                           [&](const std::vector<int64_t>& indices, uint64_t seed) {
                             return load_clip_batch(manifest, indices, options, stats, true, seed);
                           });
  loader.start_epoch(0);
  std::set<std::string> ids;
  while (std::optional<LoadedBatch<ClipBatch>> b = loader.next()) {
    CHECK(b->data.frames.size(0) == int64_t(b->indices.size()));
    for (size_t i = 0; i < b->indices.size(); ++i) CHECK(b->data.ids[i] == manifest.rows[size_t(b->indices[i])].id);
    ids.insert(b->data.ids.begin(), b->data.ids.end());
  }
  CHECK(ids.size() == manifest.rows.size());
}
