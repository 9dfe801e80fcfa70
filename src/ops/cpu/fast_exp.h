// exp for CPU kernels in a form that GCC vectorizes inside `omp simd` loops (std::exp on float stays a
// scalar call without -ffast-math): used by softmax (attention, cross-entropy) and SiLU.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace prores::ops::cpu {

// exp(x) in a form that GCC vectorizes inside `omp simd` loops (std::exp on float stays a scalar call).
// Cephes expf: x = n ln2 + r with |r| <= ln2/2, a degree-7 polynomial for exp(r), then 2^n through the
// exponent bits; relative error within 1 ulp. Below ln(FLT_MIN) = -87.34 it returns 0 (no subnormals),
// above ln(FLT_MAX) = 88.72 infinity; NaN stays NaN.
inline float exp_vec(float x) {
  constexpr float kLo = -87.33654f, kHi = 88.72283f;
  const float xc = x >= kLo ? (x <= kHi ? x : kHi) : kLo;  // NaN -> kLo: the int conversion stays defined
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n as two factors, so that n = 128 (x just under the top) does not overflow the exponent field.
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t half = ni >> 1;
  const float y =
      p * std::bit_cast<float>((half + 127) << 23) * std::bit_cast<float>((ni - half + 127) << 23);
  // x - x is 0, or NaN for a NaN input, which then propagates.
  return x < kLo ? 0.0f : (x > kHi ? std::numeric_limits<float>::infinity() : y + (x - x));
}

// Double precision keeps the library exp: the f64 path is the reference.
inline double exp_vec(double x) { return std::exp(x); }

}  // namespace prores::ops::cpu
