// CPU kernels of the bias-free linear layer (PyTorch weight layout (OC, IC)), as GEMMs: exact in one dtype,
// or on bf16 matmuls with an f32 dweight and weights and activations stored as f32 or bf16.
#pragma once
#include <cstdint>

namespace prores::ops::cpu {

// out (N, OC) (=) inp (N, IC) · weight^T, weight (OC, IC).
template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC);

// dinp (N, IC) (=) dout (N, OC) · weight + dinp_beta · dinp (dinp_beta 1: (+=), 0: (=) without reading
// dinp);  dweight (OC, IC) (+=) dout^T · inp. Null outputs are skipped.
template <typename T>
void linear_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC, float dinp_beta);

// The same products on bf16 matmuls (gemm_bf16: bf16 operands, fp32 accumulation) with an f32 dweight;
// the weight and each activation (out, inp, dinp, dout) are float, or uint16_t holding bf16 bits (a weight
// rounded once by its owner). f32 operands are rounded to bf16, bf16 results rounded from the fp32 sums.
template <typename TOut, typename TIn, typename TW>
void linear_forward_bf16(TOut* out, const TIn* inp, const TW* weight, int64_t N, int64_t IC, int64_t OC);

template <typename TDin, typename TDout, typename TIn, typename TW>
void linear_backward_bf16(TDin* dinp, float* dweight, const TDout* dout, const TIn* inp, const TW* weight,
                          int64_t N, int64_t IC, int64_t OC, float dinp_beta);

}  // namespace prores::ops::cpu
