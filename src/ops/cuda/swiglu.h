// CUDA kernels for SwiGLU on a fused [gate | up] projection (ops/swiglu.h), mirroring ops/cpu/swiglu.h,
// templated on float, double, or uint16_t for bf16 storage (computed in float, results rounded to nearest
// even). Pointers are device memory; plain C++ declarations (no CUDA headers).
// Everything runs asynchronously on the current device and the legacy default stream; launch errors throw.
#pragma once
#include <cstdint>

namespace prores::ops::cuda {

// out (N, F) (=) silu(gate) * up; inp (N, 2F) holds gate in columns [0, F) and up in [F, 2F).
// One thread per output element.
template <typename T>
void swiglu_forward(T* out, const T* inp, int64_t N, int64_t F);

// dinp (N, 2F) (=) from dout (N, F) and the forward's inp (N, 2F):
//   dgate = dout * up * sig(gate) * (1 + gate * (1 - sig(gate))),  dup = dout * silu(gate).
template <typename T>
void swiglu_backward(T* dinp, const T* dout, const T* inp, int64_t N, int64_t F);

}  // namespace prores::ops::cuda
