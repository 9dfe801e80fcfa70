// CPU kernels of the bias-free linear layer (PyTorch weight layout (OC, IC)), as GEMMs; with bf16 the
// products take bf16-rounded operands with fp32 accumulation (gemm_bf16, f32 only).
#pragma once
#include <cstdint>

namespace prores::ops::cpu {

// out (N, OC) (=) inp (N, IC) · weight^T, weight (OC, IC).
template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC, bool bf16 = false);

// dinp (N, IC) (+=) dout (N, OC) · weight;  dweight (OC, IC) (+=) dout^T · inp. Null outputs are skipped.
template <typename T>
void linear_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC, bool bf16 = false);

}  // namespace prores::ops::cpu
