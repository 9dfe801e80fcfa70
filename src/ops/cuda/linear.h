// CUDA kernels of the bias-free linear layer (PyTorch weight layout (OC, IC)), mirroring ops/cpu/linear.h:
// one cuBLASLt GEMM each (ops/cuda/gemm.h) with fp32 accumulation. T is float (f32) or uint16_t (bf16 bits);
// the weight gradient TW may be float with bf16 activations (fp32 gradient accumulation). Plain C++
// declarations; asynchronous on the legacy default stream of the current device.
#pragma once
#include <cstdint>

namespace prores::ops::cuda {

// out (N, OC) (=) alpha · inp (N, IC) · weight^T + beta · residual, weight (OC, IC); with residual null (the
// default) out (=) inp · weight^T. The residual (N, OC), distinct from out, is read by the GEMM's epilogue.
template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC, float alpha = 1.0f,
                    const T* residual = nullptr, float beta = 0.0f);

// dinp (N, IC) (=) dout (N, OC) · weight + dinp_beta · dinp (dinp_beta 1: (+=), 0: (=) without reading
// dinp);  dweight (OC, IC) (+=) dout^T · inp. Null outputs are skipped. Instantiated for (T, TW) =
// (float, float), (uint16_t, uint16_t) and (uint16_t, float).
template <typename T, typename TW>
void linear_backward(T* dinp, TW* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC, float dinp_beta);

// The same products on bf16 matmuls with an f32 dweight, as cpu::linear_*_bf16: the weight and each
// activation (out, inp, dinp, dout) are float or uint16_t (bf16 bits); f32 operands go through bf16 copies
// (rounded to nearest even, in stream-ordered memory), bf16 ones are used as they are, and bf16 results are
// rounded from the fp32 sums. One copy of dout serves both products of the backward. The forward's
// alpha, residual and beta are linear_forward's.
template <typename TOut, typename TIn, typename TW>
void linear_forward_bf16(TOut* out, const TIn* inp, const TW* weight, int64_t N, int64_t IC, int64_t OC,
                         float alpha = 1.0f, const TOut* residual = nullptr, float beta = 0.0f);

template <typename TDin, typename TDout, typename TIn, typename TW>
void linear_backward_bf16(TDin* dinp, float* dweight, const TDout* dout, const TIn* inp, const TW* weight,
                          int64_t N, int64_t IC, int64_t OC, float dinp_beta);

}  // namespace prores::ops::cuda
