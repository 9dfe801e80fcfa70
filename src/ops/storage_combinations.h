// Explicit-instantiation helpers for kernels templated on the storage of their activations: f32 (float) or
// bf16 (uint16_t holding the bits). Each macro applies M to every combination, one per line of expansion.
#pragma once
#include <cstdint>

// M(A, B, C, ...) for A, B, C each float or uint16_t, followed by the given trailing arguments, if any.
#define PRORES_FOR_EACH_STORAGE_TRIPLE_AND(M, ...)         \
  M(float, float, float __VA_OPT__(, ) __VA_ARGS__)        \
  M(float, float, uint16_t __VA_OPT__(, ) __VA_ARGS__)     \
  M(float, uint16_t, float __VA_OPT__(, ) __VA_ARGS__)     \
  M(float, uint16_t, uint16_t __VA_OPT__(, ) __VA_ARGS__)  \
  M(uint16_t, float, float __VA_OPT__(, ) __VA_ARGS__)     \
  M(uint16_t, float, uint16_t __VA_OPT__(, ) __VA_ARGS__)  \
  M(uint16_t, uint16_t, float __VA_OPT__(, ) __VA_ARGS__)  \
  M(uint16_t, uint16_t, uint16_t __VA_OPT__(, ) __VA_ARGS__)

// M(A, B, C) for A, B, C each float or uint16_t.
#define PRORES_FOR_EACH_STORAGE_TRIPLE(M) PRORES_FOR_EACH_STORAGE_TRIPLE_AND(M)

// M(A, B, C, D) for A, B, C, D each float or uint16_t.
#define PRORES_FOR_EACH_STORAGE_QUAD(M)         \
  PRORES_FOR_EACH_STORAGE_TRIPLE_AND(M, float) \
  PRORES_FOR_EACH_STORAGE_TRIPLE_AND(M, uint16_t)
