// bf16 on the host: the f32 → bf16 rounding (round to nearest, ties to even; NaN stays a quiet NaN) and the
// exact bf16 → f32 widening, on raw 16-bit patterns (the upper half of the f32 pattern), and the loads and
// stores of CPU kernels templated on their storage type (float, double, or uint16_t for bf16 bits). One
// definition for the CPU kernels, the safetensors writer and reader, and the tests of the CUDA bf16 kernels.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace prores {

// Bit copies through memcpy rather than std::bit_cast: CUDA sources include this header and build as C++17.
inline uint16_t float_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_float(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// x rounded to the nearest bf16, as an f32.
inline float round_to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

// The arithmetic type of a stored element: float for bf16 bits (uint16_t), the type itself otherwise.
template <typename T>
using compute_type = std::conditional_t<std::is_same_v<T, uint16_t>, float, T>;

// A stored element as its arithmetic type.
template <typename T>
compute_type<T> load_element(T x) {
  if constexpr (std::is_same_v<T, uint16_t>) return bf16_to_float(x);
  else return x;
}

// v stored as T (bf16 bits: rounded to nearest even).
template <typename T, typename V>
T store_element(V v) {
  if constexpr (std::is_same_v<T, uint16_t>) return float_to_bf16(static_cast<float>(v));
  else return static_cast<T>(v);
}

}  // namespace prores
