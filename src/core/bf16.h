// bf16 on the host: the f32 → bf16 rounding (round to nearest, ties to even; NaN stays a quiet NaN) and the
// exact bf16 → f32 widening, on raw 16-bit patterns (the upper half of the f32 pattern). One definition for
// the CPU bf16 matmuls, the safetensors writer and reader, and the tests of the CUDA bf16 kernels.
#pragma once
#include <bit>
#include <cstdint>

namespace prores {

inline uint16_t float_to_bf16(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_float(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

// x rounded to the nearest bf16, as an f32.
inline float round_to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

}  // namespace prores
