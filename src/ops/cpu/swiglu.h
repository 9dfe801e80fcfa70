// CPU kernels for SwiGLU on a fused [gate | up] projection (ops/swiglu.h), templated on float, double, or
// uint16_t for bf16 storage (computed in float, results rounded to nearest even).
#pragma once
#include <cstdint>

namespace prores::ops::cpu {

// out (N, F) (=) silu(gate) * up; inp (N, 2F) holds gate in columns [0, F) and up in [F, 2F).
template <typename T>
void swiglu_forward(T* out, const T* inp, int64_t N, int64_t F);

// dinp (N, 2F) (=) from dout (N, F) and the forward's inp (N, 2F):
//   dgate = dout * up * sig(gate) * (1 + gate * (1 - sig(gate))),  dup = dout * silu(gate).
template <typename T>
void swiglu_backward(T* dinp, const T* dout, const T* inp, int64_t N, int64_t F);

}  // namespace prores::ops::cpu
