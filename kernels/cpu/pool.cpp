// CPU reference: window and adaptive pooling over (planes, H, W). One thread owns each plane, so the
// backward scatters run in a fixed order and the results do not depend on the thread count.
#include "kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/stride.h"

namespace stgs::kernels::cpu {
namespace {

// Runs body(p) for every plane; planes go to threads in static blocks.
template <class Body>
void for_each_plane(int64_t planes, int64_t work_per_plane, Body body) {
#pragma omp parallel for schedule(static) if (planes > 1 && planes * work_per_plane > 32768)
  for (int64_t p = 0; p < planes; ++p) body(p);
}

// Rectangle [h0, h1) x [w0, w1) of a plane, already clipped to it.
struct Rect {
  int64_t h0, h1, w0, w1;
};

// Window (oh, ow) of a window pool, clipped to the plane; `full` is its size counting padding.
inline Rect window_rect(int64_t oh, int64_t ow, int64_t H, int64_t W, const PoolWindow& k, int64_t* full) {
  int64_t h0 = oh * k.sh - k.ph, w0 = ow * k.sw - k.pw;
  int64_t h1 = std::min(h0 + k.kh, H + k.ph), w1 = std::min(w0 + k.kw, W + k.pw);
  if (full) *full = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, H);
  w1 = std::min(w1, W);
  return {h0, h1, w0, w1};
}

inline Rect adaptive_rect(int64_t oh, int64_t ow, int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
  return {adaptive_begin(oh, Ho, H), adaptive_end(oh, Ho, H), adaptive_begin(ow, Wo, W), adaptive_end(ow, Wo, W)};
}

// Max over a rectangle of one plane: the first maximum, or the first NaN. Sets *arg to its flat index.
template <class T>
T rect_max(const T* xp, int64_t W, const Rect& r, int64_t* arg) {
  T m = -std::numeric_limits<T>::infinity();
  int64_t a = r.h0 * W + r.w0;
  for (int64_t h = r.h0; h < r.h1; ++h) {
    for (int64_t w = r.w0; w < r.w1; ++w) {
      const T v = xp[h * W + w];
      if (v > m || std::isnan(v)) {
        m = v;
        a = h * W + w;
        if (std::isnan(v)) {
          if (arg != nullptr) *arg = a;
          return m;
        }
      }
    }
  }
  if (arg != nullptr) *arg = a;
  return m;
}

template <class T>
T rect_sum(const T* xp, int64_t W, const Rect& r) {
  T s = 0;
  for (int64_t h = r.h0; h < r.h1; ++h)
    for (int64_t w = r.w0; w < r.w1; ++w) s += xp[h * W + w];
  return s;
}

template <class T>
void rect_add(T* dxp, int64_t W, const Rect& r, T v) {
  for (int64_t h = r.h0; h < r.h1; ++h)
    for (int64_t w = r.w0; w < r.w1; ++w) dxp[h * W + w] += v;
}

// dx = 0, then dx[argmax] += dy, plane by plane.
template <class T>
void scatter_argmax(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo) {
  const int64_t in = H * W, out = Ho * Wo;
  for_each_plane(planes, in + out, [&](int64_t p) {
    T* dxp = dx + p * in;
    const T* dyp = dy + p * out;
    const int64_t* ap = argmax + p * out;
    std::fill(dxp, dxp + in, T(0));
    for (int64_t o = 0; o < out; ++o) dxp[ap[o]] += dyp[o];
  });
}

// y, argmax: (planes, Ho, Wo) <- the maximum of x: (planes, H, W) over rect_of(oh, ow) for every output;
// argmax may be null (no backward). work_per_plane sizes the parallel split.
template <class T, class RectOf>
void max_over_rects(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                    int64_t work_per_plane, RectOf rect_of) {
  for_each_plane(planes, work_per_plane, [&](int64_t p) {
    const T* xp = x + p * H * W;
    T* yp = y + p * Ho * Wo;
    int64_t* ap = argmax != nullptr ? argmax + p * Ho * Wo : nullptr;
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow)
        yp[oh * Wo + ow] = rect_max(xp, W, rect_of(oh, ow), ap != nullptr ? &ap[oh * Wo + ow] : nullptr);
  });
}

// The larger of a and b, NaN if either is (b's NaN when both): rect_max's value without its index.
template <class T>
inline T max_or_nan(T a, T b) {
  return b > a || std::isnan(b) ? b : a;
}

// The column side of every output row's windows, the same in each row and plane: output ow's clipped
// column range [lo[ow], hi[ow]), and the outputs [interior_lo, interior_hi) whose windows lie wholly inside
// the row, cm[ow sw - pw, + kw).
struct ColumnWindows {
  std::vector<int64_t> lo, hi;
  int64_t interior_lo = 0, interior_hi = 0;

  ColumnWindows(int64_t H, int64_t W, int64_t Wo, const PoolWindow& k) : lo(size_t(Wo)), hi(size_t(Wo)) {
    for (int64_t ow = 0; ow < Wo; ++ow) {
      const Rect r = window_rect(0, ow, H, W, k, nullptr);
      lo[size_t(ow)] = r.w0;
      hi[size_t(ow)] = r.w1;
    }
    interior_lo = std::min(Wo, (k.pw + k.sw - 1) / k.sw);
    const int64_t last_inside = W + k.pw - k.kw;  // windows with ow * sw <= last_inside end inside the row
    interior_hi = std::max(interior_lo, std::min(Wo, last_inside >= 0 ? last_inside / k.sw + 1 : 0));
  }
  int64_t outputs() const { return int64_t(lo.size()); }
};

// One output row of window maxima without the argmax, from the row's column maxima cm: output ow takes
// the best of cm[cols.lo[ow], cols.hi[ow]), from -inf as rect_max starts. On the interior outputs the loops
// run over the outputs, one per column of the window in order (with_stride: the loads are shuffles, not
// gathers), so they vectorise; starting from the window's first value instead of -inf gives the same result.
template <class T>
void row_max(T* y, const T* cm, const ColumnWindows& cols, const PoolWindow& k) {
  auto edge = [&](int64_t ow) {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t w = cols.lo[size_t(ow)]; w < cols.hi[size_t(ow)]; ++w) m = max_or_nan(m, cm[w]);
    y[ow] = m;
  };
  for (int64_t ow = 0; ow < cols.interior_lo; ++ow) edge(ow);
  with_stride(k.sw, [&](auto s) {
    const int64_t sw = strided<s()>(k.sw), lo = cols.interior_lo, hi = cols.interior_hi;
    for (int64_t ow = lo; ow < hi; ++ow) y[ow] = cm[ow * sw - k.pw];
    for (int64_t t = 1; t < k.kw; ++t)
      for (int64_t ow = lo; ow < hi; ++ow) y[ow] = max_or_nan(y[ow], cm[ow * sw - k.pw + t]);
  });
  for (int64_t ow = cols.interior_hi; ow < cols.outputs(); ++ow) edge(ow);
}

// Whether a column's best value v (first reached at row `row`) replaces the window's best so far, m at mrow:
// the first NaN, else the larger value, a tie going to the smaller row; columns come in increasing order, so
// an equal value in the same row keeps the smaller column. That is rect_max's row-major first maximum.
template <class T>
inline bool takes(T v, int32_t row, T m, int32_t mrow) {
  return std::isnan(m) ? std::isnan(v) && row < mrow : std::isnan(v) || v > m || (v == m && row < mrow);
}

// row_max with the argmax: cr holds each column's row of its best value; arg gets the flat index row W + column.
// The interior loops are row_max's, with the row and column of each output's best kept as int32 in
// best_row, best_col (one per output) so that they vectorise.
template <class T>
void row_argmax(T* y, int64_t* arg, const T* cm, const int32_t* cr, int64_t W, int64_t h0, const ColumnWindows& cols,
                const PoolWindow& k, int32_t* best_row, int32_t* best_col) {
  auto edge = [&](int64_t ow) {
    // From -inf at the window's first element, as rect_max starts (an empty window keeps both).
    T m = -std::numeric_limits<T>::infinity();
    int32_t mh = int32_t(h0);
    int64_t mw = cols.lo[size_t(ow)];
    for (int64_t w = cols.lo[size_t(ow)]; w < cols.hi[size_t(ow)]; ++w)
      if (takes(cm[w], cr[w], m, mh)) {
        m = cm[w];
        mh = cr[w];
        mw = w;
      }
    y[ow] = m;
    arg[ow] = int64_t(mh) * W + mw;
  };
  for (int64_t ow = 0; ow < cols.interior_lo; ++ow) edge(ow);
  with_stride(k.sw, [&](auto s) {
    const int64_t sw = strided<s()>(k.sw), lo = cols.interior_lo, hi = cols.interior_hi;
    for (int64_t ow = lo; ow < hi; ++ow) {
      const int64_t c = ow * sw - k.pw;
      y[ow] = cm[c];
      best_row[ow] = cr[c];
      best_col[ow] = int32_t(c);
    }
    for (int64_t t = 1; t < k.kw; ++t)
      for (int64_t ow = lo; ow < hi; ++ow) {
        const int64_t c = ow * sw - k.pw + t;
        const bool take = takes(cm[c], cr[c], y[ow], best_row[ow]);
        y[ow] = take ? cm[c] : y[ow];
        best_row[ow] = take ? cr[c] : best_row[ow];
        best_col[ow] = take ? int32_t(c) : best_col[ow];
      }
    for (int64_t ow = lo; ow < hi; ++ow) arg[ow] = int64_t(best_row[ow]) * W + best_col[ow];
  });
  for (int64_t ow = cols.interior_hi; ow < cols.outputs(); ++ow) edge(ow);
}

// y (and argmax when not null): (planes, Ho, Wo) <- window maxima of x, as rect_max gives them (the first
// maximum in row-major order, or the first NaN), computed separably: per output row, the window's rows are
// first reduced column by column (contiguous, vectorised; with the argmax each column keeps the row of its
// first maximum or first NaN), then each output takes the best of its columns, a tie going to the smaller
// row and then the smaller column, which is row-major order. Without the argmax the ties are not tracked:
// the values are rect_max's (equal, or both NaN), though a zero maximum may come out as -0 where rect_max
// gives +0 and a NaN may carry another payload. A 3x3 window reads each value ~3 times instead
// of ~9 and with few branches (ResNet-34's stem pool over (64, 149, 128) per image: ~4 ms -> ~1 ms per
// image, 2 threads). The row pass over the outputs whose windows lie inside the row is vectorised too
// (row_max, row_argmax): the image stem pool at batch 8, (512, 112, 112) -> 56x56, 7.2 -> 1.3 ms without
// the argmax and 9.0 -> 3.05 ms with it (a scalar loop per output, branching on NaN, before).
template <class T>
void window_max(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                const PoolWindow& k) {
  const ColumnWindows cols(H, W, Wo, k);
  for_each_plane(planes, Ho * Wo * k.kh * k.kw, [&](int64_t p) {
    thread_local std::vector<T> column_max;
    thread_local std::vector<int32_t> column_row;  // as wide as a float: the column pass vectorises
    thread_local std::vector<int32_t> best;        // row_argmax's best rows, then best columns, per output
    column_max.resize(size_t(W));
    column_row.resize(size_t(W));
    best.resize(size_t(2 * Wo));
    T* cm = column_max.data();
    int32_t* cr = column_row.data();
    const T* xp = x + p * H * W;
    T* yp = y + p * Ho * Wo;
    int64_t* ap = argmax != nullptr ? argmax + p * Ho * Wo : nullptr;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const Rect rows = window_rect(oh, 0, H, W, k, nullptr);
      if (rows.h0 >= rows.h1) {  // windows wholly in the padding (rect_max: -inf at the clipped corner)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          yp[oh * Wo + ow] = -std::numeric_limits<T>::infinity();
          if (ap != nullptr) ap[oh * Wo + ow] = rows.h0 * W + cols.lo[size_t(ow)];
        }
        continue;
      }
      std::copy(xp + rows.h0 * W, xp + (rows.h0 + 1) * W, cm);
      if (ap == nullptr) {
        for (int64_t h = rows.h0 + 1; h < rows.h1; ++h) {
          const T* xr = xp + h * W;
          for (int64_t w = 0; w < W; ++w) cm[w] = max_or_nan(cm[w], xr[w]);
        }
        row_max(yp + oh * Wo, cm, cols, k);
        continue;
      }
      std::fill(cr, cr + W, int32_t(rows.h0));
      for (int64_t h = rows.h0 + 1; h < rows.h1; ++h) {
        const T* xr = xp + h * W;
        for (int64_t w = 0; w < W; ++w) {
          const bool take = !std::isnan(cm[w]) && (xr[w] > cm[w] || std::isnan(xr[w]));
          cm[w] = take ? xr[w] : cm[w];
          cr[w] = take ? int32_t(h) : cr[w];
        }
      }
      row_argmax(yp + oh * Wo, ap + oh * Wo, cm, cr, W, rows.h0, cols, k, best.data(), best.data() + Wo);
    }
  });
}

}  // namespace

template <class T>
void max_pool2d_fwd(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo, PoolWindow win) {
  STGS_CHECK(H <= std::numeric_limits<int32_t>::max() && W <= std::numeric_limits<int32_t>::max(), "max_pool2d: ",
             H, "x", W, " planes (rows and columns each at most 2^31 - 1: the argmax keeps them as int32)");
  window_max(y, argmax, x, planes, H, W, Ho, Wo, win);
}

template <class T>
void max_pool2d_bwd(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo, PoolWindow) {
  scatter_argmax(dx, dy, argmax, planes, H, W, Ho, Wo);
}

template <class T>
void avg_pool2d_fwd(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, PoolWindow win,
                    bool count_include_pad) {
  for_each_plane(planes, Ho * Wo * win.kh * win.kw, [&](int64_t p) {
    const T* xp = x + p * H * W;
    T* yp = y + p * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        int64_t full = 0;
        const Rect r = window_rect(oh, ow, H, W, win, &full);
        const int64_t count = count_include_pad ? full : (r.h1 - r.h0) * (r.w1 - r.w0);
        yp[oh * Wo + ow] = rect_sum(xp, W, r) / T(count);
      }
    }
  });
}

template <class T>
void avg_pool2d_bwd(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, PoolWindow win,
                    bool count_include_pad) {
  for_each_plane(planes, Ho * Wo * win.kh * win.kw, [&](int64_t p) {
    T* dxp = dx + p * H * W;
    const T* dyp = dy + p * Ho * Wo;
    std::fill(dxp, dxp + H * W, T(0));
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        int64_t full = 0;
        const Rect r = window_rect(oh, ow, H, W, win, &full);
        const int64_t count = count_include_pad ? full : (r.h1 - r.h0) * (r.w1 - r.w0);
        rect_add(dxp, W, r, dyp[oh * Wo + ow] / T(count));
      }
    }
  });
}

template <class T>
void adaptive_max_pool2d_fwd(T* y, int64_t* argmax, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                             int64_t Wo) {
  max_over_rects(y, argmax, x, planes, H, W, Ho, Wo, H * W + Ho * Wo,
                 [&](int64_t oh, int64_t ow) { return adaptive_rect(oh, ow, H, W, Ho, Wo); });
}

template <class T>
void adaptive_max_pool2d_bwd(T* dx, const T* dy, const int64_t* argmax, int64_t planes, int64_t H, int64_t W,
                             int64_t Ho, int64_t Wo) {
  scatter_argmax(dx, dy, argmax, planes, H, W, Ho, Wo);
}

template <class T>
void adaptive_avg_pool2d_fwd(T* y, const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
  for_each_plane(planes, H * W + Ho * Wo, [&](int64_t p) {
    const T* xp = x + p * H * W;
    T* yp = y + p * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const Rect r = adaptive_rect(oh, ow, H, W, Ho, Wo);
        yp[oh * Wo + ow] = rect_sum(xp, W, r) / T((r.h1 - r.h0) * (r.w1 - r.w0));
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_bwd(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
  for_each_plane(planes, H * W + Ho * Wo, [&](int64_t p) {
    T* dxp = dx + p * H * W;
    const T* dyp = dy + p * Ho * Wo;
    std::fill(dxp, dxp + H * W, T(0));
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const Rect r = adaptive_rect(oh, ow, H, W, Ho, Wo);
        rect_add(dxp, W, r, dyp[oh * Wo + ow] / T((r.h1 - r.h0) * (r.w1 - r.w0)));
      }
    }
  });
}

#define STGS_INSTANTIATE(T)                                                                                       \
  template void max_pool2d_fwd<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,            \
                                  PoolWindow);                                                                    \
  template void max_pool2d_bwd<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t,      \
                                  PoolWindow);                                                                    \
  template void avg_pool2d_fwd<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, PoolWindow, bool);   \
  template void avg_pool2d_bwd<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, PoolWindow, bool);   \
  template void adaptive_max_pool2d_fwd<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);  \
  template void adaptive_max_pool2d_bwd<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t,      \
                                           int64_t);                                                              \
  template void adaptive_avg_pool2d_fwd<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);            \
  template void adaptive_avg_pool2d_bwd<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);
STGS_INSTANTIATE(float)
STGS_INSTANTIATE(double)
#undef STGS_INSTANTIATE

}  // namespace stgs::kernels::cpu
