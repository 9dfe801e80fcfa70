// CPU rotary position embedding: a cos/sin table and an in-place rotation threaded over (b, h, t) rows (of
// f32, f64 or bf16 storage).
#include "ops/cpu/rope.h"

#include <cmath>

#include "core/bf16.h"
#include "ops/cpu/elementwise.h"
#include "ops/rope_rotation.h"

namespace prores::ops::cpu {

namespace {

// Rotates every row of x (rows, HS) by the angle of its position (row % seq_len); sign = +1 is the
// forward rotation, -1 its inverse.
template <typename T, typename TX>
void rotate(TX* x, const T* cos, const T* sin, int64_t rows, int64_t seq_len, int64_t HS, T sign) {
  const int64_t half = HS / 2;
#pragma omp parallel for schedule(static) if (rows * HS >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    TX* lo = x + r * HS;
    TX* hi = lo + half;
    const T* c = cos + (r % seq_len) * half;
    const T* s = sin + (r % seq_len) * half;
#pragma omp simd
    for (int64_t i = 0; i < half; ++i) {
      const RopePair<T> r = rope_rotate(load_element(lo[i]), load_element(hi[i]), c[i], sign * s[i]);
      lo[i] = store_element<TX>(r.lo);
      hi[i] = store_element<TX>(r.hi);
    }
  }
}

}  // namespace

template <typename T>
void rope_table(T* cos, T* sin, int64_t seq_len, int64_t HS, double base) {
  const int64_t half = HS / 2;
#pragma omp parallel for schedule(static) if (seq_len * half >= kParallelMinElements)
  for (int64_t t = 0; t < seq_len; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(HS));
      const double angle = static_cast<double>(t) * inv_freq;
      cos[t * half + i] = static_cast<T>(std::cos(angle));
      sin[t * half + i] = static_cast<T>(std::sin(angle));
    }
  }
}

template <typename T, typename TX>
void rope_forward(TX* x, const T* cos, const T* sin, int64_t B, int64_t H, int64_t seq_len, int64_t HS) {
  rotate(x, cos, sin, B * H * seq_len, seq_len, HS, T(1));
}

template <typename T, typename TX>
void rope_backward(TX* dx, const T* cos, const T* sin, int64_t B, int64_t H, int64_t seq_len, int64_t HS) {
  rotate(dx, cos, sin, B * H * seq_len, seq_len, HS, T(-1));
}

template void rope_table<float>(float*, float*, int64_t, int64_t, double);
template void rope_table<double>(double*, double*, int64_t, int64_t, double);
template void rope_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t);
template void rope_forward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t, int64_t);
template void rope_backward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t);
template void rope_backward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t,
                                    int64_t);
template void rope_forward<float, uint16_t>(uint16_t*, const float*, const float*, int64_t, int64_t, int64_t,
                                            int64_t);
template void rope_backward<float, uint16_t>(uint16_t*, const float*, const float*, int64_t, int64_t, int64_t,
                                             int64_t);

}  // namespace prores::ops::cpu
