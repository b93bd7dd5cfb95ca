// Kernel microbenchmarks: `make bench` (build/<variant>/stgs_bench [--quick]).
//
// Every row states what it measured, the rate it reached, and a reference measured in the same run on the
// same machine, so the ratio is meaningful whatever the hardware:
//   matmul      engine matmul (output allocated per call)  vs  cblas_sgemm into a preallocated C
//   add / mul   engine op on 16M floats (output allocated)  vs  a plain OpenMP copy loop
//   overhead    one 1-element add with autograd recording, in ns per op
//   gumbel      the Gumbel-softmax kernels alone (forward with and without noise, backward) on 1M rows of
//               K = 5  vs  a plain OpenMP copy loop; informational (no target)
//   spectrogram the 300x257 spectrogram of a 3.0 s 16 kHz clip, clips/s on one thread and on all, with
//               the achieved GFLOP/s of its FFTs; informational (no target)
//   loader      clips per second through the batch loader with 2 workers, decoded (frames, audio,
//               spectrogram, normalisation: the model's inputs) and, second row, decoded and augmented (each
//               clip through one of the 36 augmentations in turn) on a small synthetic set  vs  twice the
//               same rate with 1 worker
//               (perfect scaling); and the fraction of time the consumer waited for batches, for one that
//               does no work and one whose step outlasts the decoding; informational (no target)
// Napkin math is beside each formula. Targets come from the engine-core issue: matmul >= 95% of OpenBLAS,
// elementwise >= 70% of copy bandwidth, per-op overhead <= 1000 ns.
// The CUDA section (apps/bench_cuda.cpp) follows the CPU one; its rows count toward the final total.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "apps/bench_cuda.h"
#include "apps/bench_models.h"
#include "data/clip_batch.h"
#include "data/augment.h"
#include "data/loader.h"
#include "data/spectrogram.h"
#include "data/synthetic.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "engine/version.h"
#include "kernels/gumbel.h"

extern "C" char* openblas_get_corename(void);
extern "C" void openblas_set_num_threads(int num_threads);

using namespace stgs;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of `reps` timed calls after `warmup` untimed ones.
double median_time(int warmup, int reps, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_s();
    fn();
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

int g_failed_targets = 0;

void row(const char* name, const std::string& shape, double ms, double rate, const char* unit, double reference,
         double target_ratio) {
  const double ratio = rate / reference;
  const bool ok = ratio >= target_ratio;
  if (!ok) ++g_failed_targets;
  std::printf("%-10s %-18s %9.3f ms %9.1f %-7s ref %9.1f %-7s %6.1f%%  target >= %3.0f%%  %s\n", name, shape.c_str(),
              ms, rate, unit, reference, unit, 100 * ratio, 100 * target_ratio, ok ? "ok" : "BELOW TARGET");
}

void bench_matmul(int64_t n, int reps) {
  // 2 n^3 flops: 2.1 GFLOP at 1024, 17.2 GFLOP at 2048; at ~250 GFLOP/s that is ~9 ms and ~70 ms.
  const double flops = 2.0 * double(n) * double(n) * double(n);
  Generator g(1);
  const Tensor a = rand({n, n}, DType::F32, Device::cpu(), &g), b = rand({n, n}, DType::F32, Device::cpu(), &g);
  Tensor c = empty({n, n});
  // The reference is OpenBLAS threading itself over all cores; the engine keeps OpenBLAS single-threaded
  // and splits the product over its OpenMP threads (kernels/cpu/gemm.cpp), so restore that afterwards.
  openblas_set_num_threads(omp_get_max_threads());
  const double t_blas = median_time(1, reps, [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f, a.data<float>(), int(n),
                b.data<float>(), int(n), 0.0f, c.data<float>(), int(n));
  });
  openblas_set_num_threads(1);
  const double t_engine = median_time(1, reps, [&] { Tensor y = matmul(a, b); });
  const std::string shape = std::to_string(n) + "^3";
  row("matmul", shape, 1e3 * t_engine, flops / t_engine * 1e-9, "GFLOP/s", flops / t_blas * 1e-9, 0.95);
}

void bench_elementwise(int64_t n, int reps) {
  // add reads 2 and writes 1 float per element: 12 B/elem, 201 MB at 16M; the copy loop moves 8 B/elem.
  Generator g(2);
  const Tensor a = rand({n}, DType::F32, Device::cpu(), &g), b = rand({n}, DType::F32, Device::cpu(), &g);
  Tensor dst = empty({n});
  const float* src = a.data<float>();
  float* out = dst.data<float>();
  const double t_copy = median_time(2, reps, [&] {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = src[i];
  });
  const double copy_gbs = 8.0 * double(n) / t_copy * 1e-9;
  const double t_add = median_time(2, reps, [&] { Tensor y = add(a, b); });
  const double t_mul = median_time(2, reps, [&] { Tensor y = mul(a, b); });
  const std::string shape = std::to_string(n / (1 << 20)) + "M F32";
  row("add", shape, 1e3 * t_add, 12.0 * double(n) / t_add * 1e-9, "GB/s", copy_gbs, 0.70);
  row("mul", shape, 1e3 * t_mul, 12.0 * double(n) / t_mul * 1e-9, "GB/s", copy_gbs, 0.70);
}

void bench_overhead(int iters) {
  // Everything but the arithmetic: validation, allocation, dispatch and one autograd node per op.
  Tensor a = ones({1}).set_requires_grad(true);
  const Tensor b = ones({1});
  const double t0 = now_s();
  for (int i = 0; i < iters; ++i) {
    Tensor y = add(a, b);
  }
  const double per_op_ns = (now_s() - t0) / iters * 1e9;
  Tensor p = ones({1});
  const double t1 = now_s();
  for (int i = 0; i < iters; ++i) {
    Tensor y = add(p, b);
  }
  const double plain_ns = (now_s() - t1) / iters * 1e9;
  const bool ok = per_op_ns <= 1000;
  if (!ok) ++g_failed_targets;
  std::printf("%-10s %-18s %9.0f ns/op with autograd, %6.0f ns/op without          target <= 1000 ns  %s\n",
              "overhead", "add 1 elem", per_op_ns, plain_ns, ok ? "ok" : "BELOW TARGET");
}

// A row without a target: the same columns as row(), never counted as below target.
void info_row(const char* name, const std::string& shape, double ms, double rate, const char* unit,
              double reference) {
  std::printf("%-10s %-18s %9.3f ms %9.1f %-7s ref %9.1f %-7s %6.1f%%  (no target)\n", name, shape.c_str(), ms, rate,
              unit, reference, unit, 100 * rate / reference);
}

void bench_gumbel(int64_t rows, int64_t K, int reps) {
  // Forward: read logits 4 B, write soft and hard 8 B per element, index 8 B per row: 13.6 B/elem at K = 5,
  // 71 MB for 5.2M elements. Backward: read grad and soft, write dlogits: 12 B/elem. Per element the noisy
  // forward also evaluates a Philox block (~80 integer ops), two logs and an exp: compute-bound on a CPU, so
  // expect a small fraction of copy bandwidth; the noise-free row shows what the noise costs.
  const int64_t n = rows * K;
  Generator g(3);
  const Tensor x = randn({rows, K}, DType::F32, Device::cpu(), &g), grad = randn({rows, K}, DType::F32, Device::cpu(), &g);
  Tensor soft = empty({rows, K}), hard = empty({rows, K}), index = empty({rows}, DType::I64), dx = empty({rows, K});
  const float* src = x.data<float>();
  float* out = dx.data<float>();
  const double t_copy = median_time(2, reps, [&] {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = src[i];
  });
  const double copy_gbs = 8.0 * double(n) / t_copy * 1e-9;
  auto forward = [&](bool noise) {
    kernels::cpu::gumbel_softmax_fwd<float>(soft.data<float>(), hard.data<float>(), index.data<int64_t>(),
                                            x.data<float>(), rows, K, 1.0f, noise, 7, 0);
  };
  const double t_fwd = median_time(1, reps, [&] { forward(true); });
  const double t_plain = median_time(1, reps, [&] { forward(false); });
  const double t_bwd = median_time(1, reps, [&] {
    kernels::cpu::gumbel_softmax_bwd<float>(dx.data<float>(), grad.data<float>(), soft.data<float>(), rows, K, 1.0f);
  });
  const double fwd_bytes = 12.0 * double(n) + 8.0 * double(rows), bwd_bytes = 12.0 * double(n);
  const std::string shape = std::to_string(rows >> 20) + "Mx" + std::to_string(K) + " F32";
  info_row("gumbel fwd", shape, 1e3 * t_fwd, fwd_bytes / t_fwd * 1e-9, "GB/s", copy_gbs);
  info_row("gumbel fwd", shape + " no noise", 1e3 * t_plain, fwd_bytes / t_plain * 1e-9, "GB/s", copy_gbs);
  info_row("gumbel bwd", shape, 1e3 * t_bwd, bwd_bytes / t_bwd * 1e-9, "GB/s", copy_gbs);
}

void bench_spectrogram(int reps) {
  // 3.0 s at 16 kHz = 48000 samples -> 1 + 48000 / 160 = 301 frames, each a real FFT of 512: about
  // 2.5 N log2 N = 11.5 kFLOP, 3.47 MFLOP per clip (plus 400 window products and 257 magnitudes per frame,
  // 0.2 MFLOP). At a few GFLOP/s per core in FFTW's size-512 codelets, ~1 ms per clip per thread.
  const int64_t n = 3 * data::kSampleRate;
  Generator g(5);
  const std::vector<float> wav = rand({n}, DType::F32, Device::cpu(), &g, -0.5, 0.5).to_vector<float>();
  const double flops = double(data::spectrogram_frames(n)) * 2.5 * data::kNfft * std::log2(double(data::kNfft));
  auto one_clip = [&] { data::crop_window(data::spectrogram(wav), data::kWindowFrames); };
  const double t1 = median_time(3, reps, one_clip);
  const int threads = omp_get_max_threads(), clips = 4 * threads;
  const double tn = median_time(1, reps, [&] {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < clips; ++i) one_clip();
  });
  std::printf("%-10s %-18s %9.3f ms %9.1f clips/s 1 thread, %9.1f clips/s %d threads, %5.2f GFLOP/s per "
              "thread  (no target)\n", "spectrogram", "3 s clip 300x257", 1e3 * t1, 1 / t1, clips / tn, threads,
              flops / t1 * 1e-9);
}

// One pass of the loader over `epochs` epochs of the set; the consumer sleeps `step_s` per batch (a step on
// another device leaves the cores to the workers, as a GPU step does).
struct LoaderRun {
  double clips_per_s;    // clips handed out per second of epoch wall time
  double wait_fraction;  // of that wall time, the part next() spent blocked
  double fill_fraction;  // the part of it spent waiting for each epoch's first batch (the pipeline filling)
};

// augment: clip i goes through augmentation i mod 36 of the catalogue (each kind of augmentation in turn, as
// the offline feature cache applies them).
LoaderRun run_loader(const data::Manifest& manifest, const data::SpectrogramStats& stats, int workers, int epochs,
                     double step_s, bool augment = false) {
  data::LoaderOptions options;
  options.workers = workers;
  options.batch_size = 4;
  const std::vector<data::Augmentation>& catalogue = data::augmentation_catalogue();
  data::Loader<data::ClipBatch> loader(int64_t(manifest.rows.size()), options,
                                       [&](const std::vector<int64_t>& indices, uint64_t seed) {
                                         if (!augment) return data::load_clip_batch(manifest, indices, {}, stats, true, seed);
                                         std::vector<data::ClipItem> items;
                                         for (int64_t i : indices)
                                           items.push_back({i, &catalogue[size_t(i) % catalogue.size()]});
                                         data::ClipBatchOptions o;
                                         o.stats = &stats;
                                         o.train = true;
                                         return data::load_clip_batch(manifest, items, o, seed);
                                       });
  double busy = 0, wait = 0, fill = 0;
  int64_t clips = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch(epoch);
    const double t0 = now_s();
    std::optional<data::LoadedBatch<data::ClipBatch>> batch = loader.next();
    fill += now_s() - t0;
    for (; batch; batch = loader.next()) {
      clips += int64_t(batch->indices.size());
      if (step_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(step_s));
    }
    busy += loader.busy_seconds();
    wait += loader.wait_seconds();
  }
  return {double(clips) / busy, wait / busy, fill / busy};
}

void bench_loader(int epochs) {
  // Per clip (default options: K = 8 frames at 224x224, a 300-frame window): 8 PNG decodes of 64x64 (12 KB
  // of pixels each); 8 crop-and-resizes of the ~40 px face to 3x224x224, 1.2M output floats at 2 taps per
  // axis when upsampling, ~10 MFLOP in stb's scalar loops (~1-2 GFLOP/s: 5-10 ms); the ImageNet
  // normalisation and the copy into the batch, ~20 MB of memory traffic (~2 ms); a 3-3.5 s WAV and its
  // spectrogram (~0.4 ms, see the spectrogram row). So ~10 ms per clip per worker, ~100 clips/s each.
  namespace fs = std::filesystem;
  std::string dir = (fs::temp_directory_path() / "stgs_bench_loader_XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    std::printf("%-10s cannot create a temporary directory under %s (skipped)\n", "loader",
                fs::temp_directory_path().c_str());
    return;
  }
  data::SynthConfig config;
  config.clips = 16;
  config.seed = 3;
  data::generate_synthetic(dir, config);
  const data::Manifest manifest = data::read_manifest(dir + "/manifest.csv");
  data::SpectrogramStats stats;
  for (const data::ManifestRow& row : manifest.rows)
    stats.add(data::clip_spectrogram(data::load_raw_clip(row, manifest.path, {})));

  const LoaderRun one = run_loader(manifest, stats, 1, epochs, 0), two = run_loader(manifest, stats, 2, epochs, 0);
  info_row("loader", "2 workers, clip", 1e3 / two.clips_per_s, two.clips_per_s, "clips/s", 2 * one.clips_per_s);
  const LoaderRun one_aug = run_loader(manifest, stats, 1, epochs, 0, true),
                  two_aug = run_loader(manifest, stats, 2, epochs, 0, true);
  info_row("loader", "2 workers, +augment", 1e3 / two_aug.clips_per_s, two_aug.clips_per_s, "clips/s",
           2 * one_aug.clips_per_s);
  // A consumer whose step takes 1.5x the time 2 workers need per batch: apart from each epoch's first batch
  // (one worker decodes it alone while the consumer has nothing to do) it should never wait.
  const double step_s = 1.5 * 4 / two.clips_per_s;
  const LoaderRun busy = run_loader(manifest, stats, 2, epochs, step_s);
  std::printf("%-10s %-18s consumer waited %5.1f%% of the epoch with no work of its own; %4.1f%% with a %.0f ms "
              "step per batch (first batches %4.1f%%, others %4.1f%%)  (no target)\n", "loader", "2 workers, wait",
              100 * two.wait_fraction, 100 * busy.wait_fraction, 1e3 * step_s, 100 * busy.fill_fraction,
              100 * std::max(0.0, busy.wait_fraction - busy.fill_fraction));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, cpu = true, cuda = true, models = true, kernels = true, data_rows = true, resnets = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--cpu-only")) {
      cuda = false;
    } else if (!std::strcmp(argv[i], "--cuda-only")) {
      cpu = false;
    } else if (!std::strcmp(argv[i], "--no-models")) {
      models = false;
    } else if (!std::strcmp(argv[i], "--models-only")) {
      kernels = data_rows = false;
    } else if (!std::strcmp(argv[i], "--search-only")) {
      kernels = data_rows = resnets = false;
    } else if (!std::strcmp(argv[i], "--data-only")) {
      kernels = models = cuda = false;
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf("usage: stgs_bench [--quick] [--cpu-only | --cuda-only] [--no-models | --models-only | "
                  "--search-only | --data-only]\n"
                  "  --quick        fewer repetitions (a smoke run, noisier numbers)\n"
                  "  --cpu-only     skip the CUDA section\n"
                  "  --cuda-only    skip the CPU section\n"
                  "  --no-models    skip the whole-model rows (ResNet-34 images/s against PyTorch)\n"
                  "  --models-only  only the whole-model rows\n"
                  "  --search-only  only the search-iteration rows (STGS-BMNAS step against PyTorch)\n"
                  "  --data-only    only the data rows (spectrogram, loader)\n");
      return 0;
    } else {
      std::fprintf(stderr, "stgs_bench: unknown option '%s' (try --help)\n", argv[i]);
      return 2;
    }
  }
  std::printf("stgs %s kernel benchmarks\n", kVersion);
  std::printf("device: %s, %d OpenMP threads; OpenBLAS core %s (single-threaded under the engine's OpenMP "
              "threads)\n\n", cpu_name().c_str(), omp_get_max_threads(), openblas_get_corename());
  if (cpu) {
    std::printf("== CPU ==\n");
    if (kernels) {
      bench_matmul(1024, quick ? 3 : 15);
      bench_matmul(2048, quick ? 2 : 7);
      bench_elementwise(int64_t(16) << 20, quick ? 3 : 15);
      bench_overhead(quick ? 20000 : 200000);
      bench_gumbel(int64_t(1) << 20, 5, quick ? 3 : 15);
    }
    if (data_rows) {
      bench_spectrogram(quick ? 5 : 30);
      bench_loader(quick ? 1 : 3);
    }
    // The CPU anchor: batch 8 on this machine's threads, >= 1.0x PyTorch.
    if (models && resnets) g_failed_targets += run_model_benchmarks(Device::cpu(), 8, quick ? 1 : 5, 1.0);
    // One search iteration (issue anchor: PyTorch eager about 225 ms here; target <= 75 ms).
    if (models) g_failed_targets += run_search_benchmark(Device::cpu(), 8, 15, quick ? 3 : 7, 75.0);
    std::printf("\n");
  }
  if (cuda) {
    if (kernels) g_failed_targets += run_cuda_benchmarks(quick);
    // On a GPU: batch 64, >= 0.8x PyTorch eager (cudnn.benchmark on, same precision).
    if (models && cuda_available()) {
      if (resnets) g_failed_targets += run_model_benchmarks(Device::cuda(0), 64, quick ? 3 : 10, 0.8);
      g_failed_targets += run_search_benchmark(Device::cuda(0), 8, 15, quick ? 3 : 10, 75.0);
    }
  }
  std::printf("\n%d row(s) below target\n", g_failed_targets);
  return 0;
}
