// CUDA kernels of causal grouped-query attention on head-major layouts, mirroring ops/cpu/attention.h.
// Sizes as there (AttentionDims: B batch, T sequence, NH query heads, KV groups, HS head size; head h reads
// group h / (NH / KV)). The heads of one group are consecutive in q (B, NH, T, HS), so for each (batch,
// group) the group's G = NH / KV heads form one (G T, HS) matrix against the group's (T, HS) keys and
// values: every product is one strided batched cuBLASLt GEMM over the B KV (batch, group) pairs, with the
// causal softmax (and its backward) as a row kernel in between. The full T x T scores are computed and
// masked (flash attention is ops/cuda/flash_attention.h). With bf16 the products multiply on the bf16
// tensor cores with fp32 accumulation (cuBLASLt's f32-via-bf16 mode). Plain C++ declarations; asynchronous
// on the legacy default stream of the current device.
#pragma once
#include <cstdint>

#include "ops/cpu/attention.h"

namespace prores::ops::cuda {

using cpu::AttentionDims;

// q (B, NH, T, HS), k, v (B, KV, T, HS) (=) the slices of qkv (B, T, (NH + 2 KV) * HS). T is float, double
// or uint16_t (bf16 bits). With RoPE tables cos, sin (T, HS/2) of T's compute type (float for bf16), q and
// k are rotated as they are copied (the rotation of ops/cuda/rope.h, in the same pass).
template <typename T>
void split_heads_forward(T* q, T* k, T* v, const T* qkv, const AttentionDims& d,
                         const compute_type<T>* cos = nullptr, const compute_type<T>* sin = nullptr);

// dqkv (B, T, (NH + 2 KV) * HS) (=) dq, dk, dv permuted back; with RoPE tables, dq and dk inverse-rotated
// on the way (dq and dk are left as they are).
template <typename T>
void split_heads_backward(T* dqkv, const T* dq, const T* dk, const T* dv, const AttentionDims& d,
                          const compute_type<T>* cos = nullptr, const compute_type<T>* sin = nullptr);

// att (B, NH, T, T) (=) causal softmax(q k^T / sqrt(HS)), exact zeros above the diagonal;
// y_heads (B, NH, T, HS) (=) att · v per head; out (B, T, NH * HS) (=) y_heads with the heads concatenated.
void attention_forward(float* out, float* att, float* y_heads, const float* q, const float* k, const float* v,
                       const AttentionDims& d, bool bf16 = false);

// dq (B, NH, T, HS) (=), dk, dv (B, KV, T, HS) (=) from dout (B, T, NH * HS) and the forward's att, q, k, v.
// dy_heads (B, NH, T, HS) (=) dout per head and datt (B, NH, T, T) (=) the softmax-input gradient
// (without the 1/sqrt(HS) factor, zero above the diagonal) are scratch.
void attention_backward(float* dq, float* dk, float* dv, float* datt, float* dy_heads, const float* dout,
                        const float* att, const float* q, const float* k, const float* v, const AttentionDims& d,
                        bool bf16 = false);

}  // namespace prores::ops::cuda
