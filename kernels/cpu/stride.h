// A stride as a compile-time constant for the loops that step through memory with it: a loop reading or
// writing every s-th element vectorises with shuffles when s is a known 1 or 2, with gathers (or not at all)
// when it is read at run time (im2col at stride 2: the image stem's forward 11.5 -> 10.8 ms at batch 8;
// the max pool's row pass).
// defines: cpu::with_stride, cpu::strided
#pragma once

#include <cstdint>
#include <type_traits>

namespace stgs::kernels::cpu {

// f(std::integral_constant<int, s>{}) with s = stride when it is 1 or 2, else s = 0 (run time).
template <class F>
void with_stride(int64_t stride, F f) {
  if (stride == 1)
    f(std::integral_constant<int, 1>{});
  else if (stride == 2)
    f(std::integral_constant<int, 2>{});
  else
    f(std::integral_constant<int, 0>{});
}

// The step of a with_stride body: its constant, or the run-time stride where that is 0.
template <int kStride>
constexpr int64_t strided(int64_t stride) {
  return kStride > 0 ? kStride : stride;
}

}  // namespace stgs::kernels::cpu
