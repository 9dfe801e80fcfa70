// CUDA kernels for rotary position embedding (ops/rope.h), rotate-half convention, mirroring
// ops/cpu/rope.h, templated on float / double; the rotated x may also be stored as uint16_t (bf16 bits) next
// to a float table, computed in float and rounded to nearest even. Sizes: B batch, H heads, seq_len (the
// docs' T) positions, HS head size (even). Pointers are device memory; plain C++ declarations (no CUDA headers). Everything
// runs asynchronously on the current device and the legacy default stream; launch errors throw.
#pragma once
#include <cstdint>

namespace prores::ops::cuda {

// cos, sin (seq_len, HS/2) (=): angle[t, i] = t * base^(-2i/HS), computed in double. One thread per entry.
template <typename T>
void rope_table(T* cos, T* sin, int64_t seq_len, int64_t HS, double base);

// x (B, H, seq_len, HS) rotated in place (=): for i < HS/2, with c = cos[t,i], s = sin[t,i]:
//   x[i] <- x[i]*c - x[i+HS/2]*s;  x[i+HS/2] <- x[i+HS/2]*c + x[i]*s.
// One thread per (row, i) pair.
template <typename T, typename TX = T>
void rope_forward(TX* x, const T* cos, const T* sin, int64_t B, int64_t H, int64_t seq_len, int64_t HS);

// dx (B, H, seq_len, HS) (=) the inverse rotation of itself (the forward's transpose), in place.
template <typename T, typename TX = T>
void rope_backward(TX* dx, const T* cos, const T* sin, int64_t B, int64_t H, int64_t seq_len, int64_t HS);

}  // namespace prores::ops::cuda
