// CPU reference: GLU.
#include "kernels/glu.h"

#include <cmath>

namespace stgs::kernels::cpu {

template <class T>
void glu_fwd(T* y, const T* x, int64_t outer, int64_t h, int64_t inner) {
  const int64_t half = h * inner;
#pragma omp parallel for schedule(static) if (outer * half > 8192)
  for (int64_t o = 0; o < outer; ++o) {
    const T* a = x + o * 2 * half;
    const T* b = a + half;
    T* yo = y + o * half;
    for (int64_t j = 0; j < half; ++j) yo[j] = a[j] / (T(1) + std::exp(-b[j]));
  }
}

template <class T>
void glu_bwd(T* dx, const T* dy, const T* x, int64_t outer, int64_t h, int64_t inner) {
  const int64_t half = h * inner;
#pragma omp parallel for schedule(static) if (outer * half > 8192)
  for (int64_t o = 0; o < outer; ++o) {
    const T* a = x + o * 2 * half;
    const T* b = a + half;
    const T* g = dy + o * half;
    T* da = dx + o * 2 * half;
    T* db = da + half;
    for (int64_t j = 0; j < half; ++j) {
      const T s = T(1) / (T(1) + std::exp(-b[j]));
      da[j] = g[j] * s;
      db[j] = g[j] * a[j] * s * (T(1) - s);
    }
  }
}

template void glu_fwd<float>(float*, const float*, int64_t, int64_t, int64_t);
template void glu_fwd<double>(double*, const double*, int64_t, int64_t, int64_t);
template void glu_bwd<float>(float*, const float*, const float*, int64_t, int64_t, int64_t);
template void glu_bwd<double>(double*, const double*, const double*, int64_t, int64_t, int64_t);

}  // namespace stgs::kernels::cpu
