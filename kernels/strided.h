// Iteration layouts shared by the kernels that walk tensors with arbitrary strides.
// defines: kernels::kMaxDims, StridedLayout
#pragma once

#include <cstdint>

namespace stgs::kernels {

constexpr int kMaxDims = 8;

// An output walked in row-major order over `sizes`, with up to three operands whose element strides
// are given per dimension (0 on a broadcast dimension). The output itself is always contiguous.
struct StridedLayout {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= sizes[i];
    return n;
  }

  // True when operands first..last all walk their elements in row-major order (size-1 dims ignored):
  // the case kernels take as one flat loop.
  bool contiguous(int first, int last) const {
    int64_t expect = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      for (int k = first; k <= last; ++k)
        if (sizes[i] != 1 && strides[k][i] != expect) return false;
      expect *= sizes[i];
    }
    return true;
  }

  // True when operand k reads one element for all of the output (a broadcast scalar).
  bool scalar(int k) const {
    for (int i = 0; i < ndim; ++i)
      if (sizes[i] != 1 && strides[k][i] != 0) return false;
    return true;
  }
};

}  // namespace stgs::kernels
