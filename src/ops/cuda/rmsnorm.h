// CUDA kernels for RMSNorm with a constant output scale (ops/rmsnorm.h), mirroring ops/cpu/rmsnorm.h,
// templated on float / double. Pointers are device memory. Plain C++ declarations (no CUDA headers).
// Everything runs asynchronously on the current device and the legacy default stream; launch errors throw
// prores::Error.
#pragma once
#include <cstdint>

namespace prores::ops::cuda {

// out (N, C) (=) scale * weight * inp * rstd;  rstd (N) (=) 1 / sqrt(mean(inp^2) + eps), the mean in
// double. A block per row at a time, holding it in registers: C is at most 8192 (else prores::Error). out
// may alias inp. TOut is T, or uint16_t (bf16 bits, rounded to nearest even) for T = float.
template <typename T, typename TOut = T>
void rmsnorm_forward(TOut* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps,
                     double scale);

// dinp (N, C) (=) dres (N, C) + the input gradient, dweight (C) (+=), given dout (N, C), the forward's inp
// and rstd (N), and weight (C); dres may alias dinp ((+=)) or be null ((=) the gradient alone). C is at
// most 8192, as for the forward. dweight is deterministic: a grid that depends only on N gives each block a
// fixed contiguous range of rows whose column sums it accumulates in double (each column by the one thread
// that owns it, rows in order), then a second pass adds the per-block partials in block order.
template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd,
                      int64_t N, int64_t C, double scale, const T* dres);

}  // namespace prores::ops::cuda
