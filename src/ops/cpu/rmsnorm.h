// CPU kernels for RMSNorm with a constant output scale (ops/rmsnorm.h), templated on float / double.
#pragma once
#include <cstdint>

namespace prores::ops::cpu {

// out (N, C) (=) scale * weight * inp * rstd;  rstd (N) (=) 1 / sqrt(mean(inp^2) + eps), the mean in
// double. out may alias inp. TOut is T, or uint16_t (bf16 bits, rounded to nearest even) for T = float.
template <typename T, typename TOut = T>
void rmsnorm_forward(TOut* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps,
                     double scale);

// dinp (N, C) (=) dres (N, C) + the input gradient, dweight (C) (+=), given dout (N, C), the forward's inp
// and rstd (N), and weight (C); dres may alias dinp ((+=)) or be null ((=) the gradient alone). dweight is reduced over rows in per-thread
// double partial sums combined in thread order (deterministic for a given thread count).
template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd,
                      int64_t N, int64_t C, double scale, const T* dres);

}  // namespace prores::ops::cpu
