// CUDA kernels of the bias-free linear layer (PyTorch weight layout (OC, IC)), mirroring ops/cpu/linear.h:
// one cuBLASLt GEMM each (ops/cuda/gemm.h) with fp32 accumulation. T is float (f32) or uint16_t (bf16 bits);
// the weight gradient TW may be float with bf16 activations (fp32 gradient accumulation). bf16 (f32 only):
// the products take bf16-rounded copies of the operands (gemm_f32_rounded_to_bf16's numbers). Plain C++
// declarations; asynchronous on the legacy default stream of the current device.
#pragma once
#include <cstdint>

namespace prores::ops::cuda {

// out (N, OC) (=) inp (N, IC) · weight^T, weight (OC, IC).
template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC, bool bf16 = false);

// dinp (N, IC) (+=) dout (N, OC) · weight;  dweight (OC, IC) (+=) dout^T · inp. Null outputs are skipped.
// Instantiated for (T, TW) = (float, float), (uint16_t, uint16_t) and (uint16_t, float).
template <typename T, typename TW>
void linear_backward(T* dinp, TW* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC, bool bf16 = false);

}  // namespace prores::ops::cuda
