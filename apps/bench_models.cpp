// ResNet-34 images/s (inference and a training step) for the image and audio presets, against PyTorch.
//
// Napkin math: a ResNet-34 forward is 3.66 GMAC = 7.3 GFLOP at 3x224x224 and 11.2 GFLOP at 1x300x257
// (5.6 GMAC); a training step is about 3x the forward (forward, backward-data, backward-weight). On 2 AVX2
// cores (OpenBLAS SGEMM about 140 GFLOP/s) that bounds inference near 19 img/s and training near 6 img/s
// at 224x224. Each row prints our rate, the achieved GFLOP/s, and PyTorch's rate measured in this run.
#include "apps/bench_models.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "engine/cuda/runtime.h"
#include "engine/nn/resnet.h"
#include "engine/ops.h"
#include "engine/optim/sgd.h"
#include "nas/architect.h"

using namespace stgs;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of `reps` steps after two warm-up steps (the first builds caches, algorithm choices and
// the allocator's pool), synchronising the GPU around each timed step.
template <class Fn>
double median_step(Device device, int reps, Fn step) {
  auto sync = [&] {
    if (device.is_cuda()) cuda_rt::synchronize(device.index);
  };
  for (int i = 0; i < 2; ++i) step();
  sync();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_s();
    step();
    sync();
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// A Python that imports torch and torchvision: STGS_PYTHON, else /usr/bin/python3, else python3; empty
// (with a note printed) when there is none.
std::string find_python() {
  if (const char* env = std::getenv("STGS_PYTHON")) return env;
  for (const char* candidate : {"/usr/bin/python3", "python3"}) {
    const std::string probe = std::string(candidate) + " -c 'import torch, torchvision' >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return candidate;
  }
  std::printf("(PyTorch rows skipped: no python3 with torch and torchvision; set STGS_PYTHON)\n");
  return "";
}

// Runs `script args` with the Python find_python() picks, passing each output line to on_line; returns
// false (running nothing) when there is no such Python.
template <class OnLine>
bool run_pytorch_script(const std::string& script, const std::string& args, Device device, int reps, OnLine on_line) {
  const std::string python = find_python();
  if (python.empty()) return false;
  const std::string command = python + " " + script + " --device " + (device.is_cuda() ? "cuda" : "cpu") +
                              " --threads " + std::to_string(omp_get_max_threads()) + " --reps " +
                              std::to_string(reps) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return false;
  char line[1024];
  while (std::fgets(line, sizeof line, pipe) != nullptr) on_line(line);
  pclose(pipe);
  return true;
}

// The PyTorch rates keyed "preset/mode", from apps/bench_resnet_torch.py; empty when PyTorch is missing.
std::map<std::string, double> pytorch_rates(Device device, int batch, int reps) {
  std::map<std::string, double> rates;
  const std::string args = "--batch " + std::to_string(batch) + (cuda_rt::allow_tf32() ? " --tf32" : "");
  run_pytorch_script("apps/bench_resnet_torch.py", args, device, reps, [&](const char* line) {
    // {"preset": "image", "mode": "infer", "img_s": 9.28, "ms": 861.8}
    char preset[16], mode[16];
    double img_s = 0;
    if (std::sscanf(line, "{\"preset\": \"%15[a-z]\", \"mode\": \"%15[a-z]\", \"img_s\": %lf", preset, mode, &img_s) == 3)
      rates[std::string(preset) + "/" + mode] = img_s;
    else
      std::printf("  pytorch: %s", line);
  });
  return rates;
}

}  // namespace

int run_model_benchmarks(Device device, int batch, int reps, double target_ratio) {
  struct Preset {
    const char* name;
    ResNetConfig config;
    Shape input;
    double gflop;  // forward, per image
  };
  const std::vector<Preset> presets{{"image", ResNetConfig::image(64, 2), Shape{batch, 3, 224, 224}, 7.33},
                                    {"audio", ResNetConfig::audio(64, 2), Shape{batch, 1, 300, 257}, 11.2}};
  std::printf("ResNet-34 width 64, batch %d, F32 on %s%s\n", batch, device.str().c_str(),
              device.is_cuda() && cuda_rt::allow_tf32() ? " (TF32)" : "");
  struct Result {
    std::string key, label;
    double img_s, gflops;
    bool target;  // held to target_ratio (else printed with its ratio only)
  };
  std::vector<Result> results;
  int failed = 0;
  // On a GPU each row runs twice: with the convolution algorithms cuDNN's heuristics pick (the default),
  // then timed once per shape (`find`, cudnnFind*: what PyTorch's cudnn.benchmark does, so those rows
  // carry the target).
  std::vector<bool> modes{false};
  if (device.is_cuda()) modes.push_back(true);
  const bool benchmark_was = cuda_rt::conv_benchmark();
  for (const bool find : modes) {
    if (device.is_cuda()) cuda_rt::set_conv_benchmark(find);
    for (const Preset& p : presets) try {
      Generator gen(1);
      ResNet34 net(p.config, &gen);
      net.to(device);
      const Tensor x = randn(p.input, DType::F32, device, &gen);
      std::vector<int64_t> label_values;
      for (int i = 0; i < batch; ++i) label_values.push_back(i % 2);
      const Tensor labels = from_vector(label_values, Shape{batch}, device);
      SGD opt(net.parameters(), SGDOptions{.lr = 0.01, .momentum = 0.9});

      const double infer_s = median_step(device, reps, [&] {
        net.eval();
        NoGradGuard no_grad;
        net(x);
      });
      const double train_s = median_step(device, reps, [&] {
        net.train();
        opt.zero_grad();
        cross_entropy(net(x), labels).backward();
        opt.step();
      });
      const std::string shape = p.input.str() + (find ? " find" : "");
      const bool target = find || !device.is_cuda();
      results.push_back({std::string(p.name) + "/infer", std::string(p.name) + " infer " + shape, batch / infer_s,
                         batch * p.gflop / infer_s, target});
      results.push_back({std::string(p.name) + "/train", std::string(p.name) + " train " + shape, batch / train_s,
                         3 * batch * p.gflop / train_s, target});
    } catch (const Error& e) {  // one failed row (say, out of memory) must not cost the others
      std::printf("%s %s: FAILED: %s\n", p.name, find ? "find" : "heuristics", e.what());
      ++failed;
    }
  }
  if (device.is_cuda()) {
    cuda_rt::set_conv_benchmark(benchmark_was);
    cuda_rt::allocator(device.index).empty_cache();  // the pool's blocks back before PyTorch runs on the GPU
  }

  const std::map<std::string, double> torch = pytorch_rates(device, batch, reps);
  int below = failed;
  for (const Result& r : results) {
    auto it = torch.find(r.key);
    if (it == torch.end()) {
      std::printf("%-37s %8.2f img/s %7.1f GFLOP/s\n", r.label.c_str(), r.img_s, r.gflops);
      continue;
    }
    const double ratio = r.img_s / it->second;
    if (!r.target) {
      std::printf("%-37s %8.2f img/s %7.1f GFLOP/s  pytorch %8.2f img/s  %5.2fx  (heuristics; no target)\n",
                  r.label.c_str(), r.img_s, r.gflops, it->second, ratio);
      continue;
    }
    const bool ok = ratio >= target_ratio;
    below += ok ? 0 : 1;
    std::printf("%-37s %8.2f img/s %7.1f GFLOP/s  pytorch %8.2f img/s  %5.2fx  target >= %.1fx  %s\n",
                r.label.c_str(), r.img_s, r.gflops, it->second, ratio, target_ratio, ok ? "ok" : "BELOW TARGET");
  }
  return below;
}

int run_search_benchmark(Device device, int batch, int samples, int reps, double target_ms) {
  using namespace stgs::nas;
  // Napkin math: per draw the exact path runs every op of 4 steps (2 cells x 2): LinearGLU's 1x1 conv
  // 256 -> 256 and ConcatFC's 256 -> 128 over B L = 64 positions are 2 * 64 * (65536 + 32768) = 12.6 MFLOP,
  // plus the cell outputs: about 55 MFLOP forward, ~165 MFLOP with the backward; M = 15 draws in each of the
  // two steps: ~5 GFLOP per iteration, ~50 ms at 100 GFLOP/s, in some 20,000 small ops.
  const SearchConfig config = SearchConfig::defaults(64);
  Generator gen(1), data(2), sampler(3);
  SearchNetwork net(config, &gen);
  ArchParams arch(config, &gen);
  net.to(device);
  arch.to(device);
  ArchitectOptions options;
  options.samples = samples;
  Architect architect(net, arch, options, 1000, &sampler);
  auto batch_of = [&] {
    SearchBatch b;
    for (int64_t c : config.input_channels) b.features.push_back(randn(Shape{batch, c, config.L}, DType::F32, device, &data));
    std::vector<int64_t> labels;
    for (int i = 0; i < batch; ++i) labels.push_back(i % 2);
    b.labels = from_vector(labels, Shape{batch}, device);
    return b;
  };
  const SearchBatch train = batch_of(), val = batch_of();
  const double seconds = median_step(device, reps, [&] { architect.step(train, val, 0); });
  const double ms = seconds * 1e3;
  const bool ok = ms <= target_ms;
  std::printf("search iteration batch %d, M = %d, exact   %8.1f ms  target <= %.0f ms  %s\n", batch, samples, ms,
              target_ms, ok ? "ok" : "BELOW TARGET");
  double torch_ms = 0;
  const std::string args = "--batch " + std::to_string(batch) + " --samples " + std::to_string(samples);
  run_pytorch_script("apps/bench_search_torch.py", args, device, reps, [&](const char* line) {
    if (std::sscanf(line, "{\"ms\": %lf", &torch_ms) != 1) std::printf("  pytorch: %s", line);
  });
  if (torch_ms > 0)
    std::printf("  pytorch eager, same iteration         %8.1f ms  (%.2fx faster here)\n", torch_ms, torch_ms / ms);
  return ok ? 0 : 1;
}
