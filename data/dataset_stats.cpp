#include "data/dataset_stats.h"

#include <omp.h>

#include <algorithm>
#include <exception>

#include "kernels/check.h"

namespace stgs::data {

SpectrogramStats compute_spectrogram_stats(const Manifest& manifest, const std::vector<int64_t>& indices, int threads,
                                           const std::function<void(int64_t, int64_t)>& progress) {
  constexpr int64_t kBlock = 16;  // clips summed in order into one partial result
  const int64_t n = int64_t(indices.size()), blocks = (n + kBlock - 1) / kBlock;
  std::vector<SpectrogramStats> partial(static_cast<size_t>(blocks));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(blocks));
  int64_t done = 0;
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : omp_get_max_threads())
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    try {
      for (int64_t i = b * kBlock; i < end; ++i) {
        const int64_t index = indices[size_t(i)];
        STGS_CHECK(index >= 0 && index < int64_t(manifest.rows.size()), "compute_spectrogram_stats: index ", index,
                   " outside manifest '", manifest.path, "' of ", manifest.rows.size(), " clips");
        const ManifestRow& row = manifest.rows[size_t(index)];
        try {
          partial[size_t(b)].add(spectrogram_from_file(row.audio));  // = clip_spectrogram(load_raw_clip(row))
        } catch (const Error& e) {
          throw Error(manifest.path + ":" + std::to_string(row.line) + ": clip '" + row.id + "': " + e.what());
        }
      }
    } catch (...) {
      errors[size_t(b)] = std::current_exception();
    }
#pragma omp critical(compute_spectrogram_stats_progress)
    {
      done += end - b * kBlock;
      if (progress) progress(done, n);
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  SpectrogramStats stats;
  for (const SpectrogramStats& p : partial) stats.merge(p);
  return stats;
}

}  // namespace stgs::data
