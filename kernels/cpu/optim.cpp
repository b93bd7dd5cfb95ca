// CPU reference: SGD and Adam/AdamW updates, sum of squares and scaling for gradient clipping.
#include "kernels/optim.h"

#include <cmath>
#include <vector>

namespace stgs::kernels::cpu {
namespace {
constexpr int64_t kBlock = 4096;
constexpr int64_t kParallelMin = 32768;  // below this an OpenMP team costs more than it saves
}  // namespace

template <class T>
void sgd_update(T* param, T* momentum_buf, const T* grad, int64_t n, double lr, double momentum, double dampening,
                double weight_decay, bool nesterov, bool first_step) {
  const T lr_t = T(lr), mom = T(momentum), keep = T(1 - dampening), wd = T(weight_decay);
  const bool use_momentum = momentum != 0;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i];
    if (weight_decay != 0) g += wd * param[i];
    if (use_momentum) {
      const T buf = first_step ? g : mom * momentum_buf[i] + keep * g;
      momentum_buf[i] = buf;
      g = nesterov ? g + mom * buf : buf;
    }
    param[i] -= lr_t * g;
  }
}

template <class T>
void adam_update(T* param, T* m, T* v, const T* grad, int64_t n, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step) {
  // Scalars in double, as PyTorch computes them in Python floats.
  const double bias1 = 1 - std::pow(beta1, double(step));
  const double bias2 = 1 - std::pow(beta2, double(step));
  const T step_size = T(lr / bias1), bias2_sqrt = T(std::sqrt(bias2));
  const T b1 = T(beta1), b2 = T(beta2), one_b1 = T(1 - beta1), one_b2 = T(1 - beta2), eps_t = T(eps);
  const T wd = T(weight_decay), decay = T(1 - lr * weight_decay);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i];
    T p = param[i];
    if (weight_decay != 0) {
      if (decoupled) {
        p *= decay;
      } else {
        g += wd * p;
      }
    }
    const T mi = b1 * m[i] + one_b1 * g;
    const T vi = b2 * v[i] + one_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = p - step_size * mi / (std::sqrt(vi) / bias2_sqrt + eps_t);
  }
}

template <class T>
void sum_squares(double* out, const T* x, int64_t n) {
  const int64_t nblocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(size_t(nblocks), 0.0);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t lo = b * kBlock, hi = lo + kBlock < n ? lo + kBlock : n;
    double acc = 0;
    for (int64_t i = lo; i < hi; ++i) acc += double(x[i]) * double(x[i]);
    partial[size_t(b)] = acc;
  }
  double total = 0;
  for (double p : partial) total += p;
  out[0] = total;
}

template <class T>
void scale_inplace(T* x, int64_t n, double s) {
  const T st = T(s);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) x[i] *= st;
}

#define STGS_INSTANTIATE(T)                                                                                  \
  template void sgd_update<T>(T*, T*, const T*, int64_t, double, double, double, double, bool, bool);        \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, double, bool, \
                               int64_t);                                                                     \
  template void sum_squares<T>(double*, const T*, int64_t);                                                  \
  template void scale_inplace<T>(T*, int64_t, double);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
