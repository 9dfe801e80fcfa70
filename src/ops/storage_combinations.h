// Explicit-instantiation helpers for kernels templated on the storage of their activations: f32 (float) or
// bf16 (uint16_t holding the bits). Each macro applies M to every combination, one per line of expansion.
#pragma once
#include <cstdint>

// M(A, B, C) for A, B, C each float or uint16_t.
#define PRORES_FOR_EACH_STORAGE_TRIPLE(M) \
  M(float, float, float)                  \
  M(float, float, uint16_t)               \
  M(float, uint16_t, float)               \
  M(float, uint16_t, uint16_t)            \
  M(uint16_t, float, float)               \
  M(uint16_t, float, uint16_t)            \
  M(uint16_t, uint16_t, float)            \
  M(uint16_t, uint16_t, uint16_t)

// M(A, B, C, D) for A, B, C, D each float or uint16_t.
#define PRORES_FOR_EACH_STORAGE_QUAD(M)         \
  PRORES_FOR_EACH_STORAGE_TRIPLE_THEN(M, float) \
  PRORES_FOR_EACH_STORAGE_TRIPLE_THEN(M, uint16_t)

// M(A, B, C, D) for A, B, C each float or uint16_t and the given D.
#define PRORES_FOR_EACH_STORAGE_TRIPLE_THEN(M, D) \
  M(float, float, float, D)                       \
  M(float, float, uint16_t, D)                    \
  M(float, uint16_t, float, D)                    \
  M(float, uint16_t, uint16_t, D)                 \
  M(uint16_t, float, float, D)                    \
  M(uint16_t, float, uint16_t, D)                 \
  M(uint16_t, uint16_t, float, D)                 \
  M(uint16_t, uint16_t, uint16_t, D)
