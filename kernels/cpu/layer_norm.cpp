// CPU reference: layer norm. Rows are independent; the parameter gradients are summed column by
// column in row order, so they do not depend on the thread count.
#include "kernels/layer_norm.h"

#include <cmath>

namespace stgs::kernels::cpu {

template <class T>
void layer_norm_fwd(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, int64_t rows, int64_t D,
                    T eps) {
#pragma omp parallel for schedule(static) if (rows * D > 8192)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    T* yr = y + r * D;
    T mu = 0;
    for (int64_t j = 0; j < D; ++j) mu += xr[j];
    mu /= T(D);
    T var = 0;
    for (int64_t j = 0; j < D; ++j) var += (xr[j] - mu) * (xr[j] - mu);
    var /= T(D);
    const T rs = T(1) / std::sqrt(var + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (int64_t j = 0; j < D; ++j) {
      const T xhat = (xr[j] - mu) * rs;
      yr[j] = gamma ? xhat * gamma[j] + (beta ? beta[j] : T(0)) : xhat + (beta ? beta[j] : T(0));
    }
  }
}

template <class T>
void layer_norm_bwd(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                    const T* gamma, int64_t rows, int64_t D) {
#pragma omp parallel for schedule(static) if (rows * D > 8192)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    const T* dyr = dy + r * D;
    T* dxr = dx + r * D;
    const T mu = mean[r], rs = rstd[r];
    T mean_g = 0, mean_gx = 0;
    for (int64_t j = 0; j < D; ++j) {
      const T g = dyr[j] * (gamma ? gamma[j] : T(1));
      mean_g += g;
      mean_gx += g * (xr[j] - mu) * rs;
    }
    mean_g /= T(D);
    mean_gx /= T(D);
    for (int64_t j = 0; j < D; ++j) {
      const T g = dyr[j] * (gamma ? gamma[j] : T(1));
      const T xhat = (xr[j] - mu) * rs;
      dxr[j] = rs * (g - mean_g - xhat * mean_gx);
    }
  }
  if (dgamma == nullptr && dbeta == nullptr) return;
#pragma omp parallel for schedule(static) if (rows * D > 8192)
  for (int64_t j = 0; j < D; ++j) {
    T dg = 0, db = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const T d = dy[r * D + j];
      dg += d * (x[r * D + j] - mean[r]) * rstd[r];
      db += d;
    }
    if (dgamma) dgamma[j] = dg;
    if (dbeta) dbeta[j] = db;
  }
}

template void layer_norm_fwd<float>(float*, float*, float*, const float*, const float*, const float*, int64_t,
                                    int64_t, float);
template void layer_norm_fwd<double>(double*, double*, double*, const double*, const double*, const double*, int64_t,
                                     int64_t, double);
template void layer_norm_bwd<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                    const float*, int64_t, int64_t);
template void layer_norm_bwd<double>(double*, double*, double*, const double*, const double*, const double*,
                                     const double*, const double*, int64_t, int64_t);

}  // namespace stgs::kernels::cpu
