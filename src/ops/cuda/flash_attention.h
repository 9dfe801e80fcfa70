// CUDA flash attention: causal grouped-query attention that never materializes the (T, T) scores, for
// Hopper (sm_90) bf16 tensor cores with f32 accumulation and softmax; q, k, v, out and their gradients are
// f32 or bf16 (TIO: float, or uint16_t holding bf16 bits; results rounded to nearest even). Sizes as in
// ops/cpu/attention.h (AttentionDims: B batch, T sequence, NH query heads, KV groups, HS head size; head h
// reads group h / (NH / KV)). Tiles of q, k, v and dout are rounded to bf16 when staged into shared memory,
// so results agree with the f32 reference to bf16 accuracy (~1e-2 relative). The backward (FlashAttention-2
// style) recomputes the probabilities from q, k and the forward's log-sum-exp and is deterministic: no
// atomics, every output element is summed by one thread in a fixed order. Plain C++ declarations; all
// pointers are device memory (16-byte aligned), row-major, asynchronous on the legacy default stream of the
// current device.
#pragma once

#include "ops/cpu/attention.h"

namespace prores::ops::cuda {

using cpu::AttentionDims;

// True when the kernels take these dims: HS 64 or 128, NH divisible by KV, all sizes >= 1 (and a launch
// grid within CUDA's limits).
bool flash_attention_supports(const AttentionDims& d);

// q (B, NH, T, HS); k, v (B, KV, T, HS) head-major (as split_heads_forward writes them).
// out (B, T, NH * HS) (=) causal softmax(q k^T / sqrt(HS)) v per head, heads concatenated along the last
// axis (the layout attention_forward writes); lse (B, NH, T) (=) the natural-log log-sum-exp of each row
// of the scaled, masked scores (what the backward needs). Throws prores::Error for unsupported dims.
template <typename TIO>
void flash_attention_forward(TIO* out, float* lse, const TIO* q, const TIO* k, const TIO* v, const AttentionDims& d);

// dq (B, NH, T, HS) (=), dk, dv (B, KV, T, HS) (=) from dout (B, T, NH * HS) and the forward's out, lse and
// inputs q, k, v; dk and dv sum over the NH / KV heads of each group. delta (B, NH, T) is scratch (=)
// rowsum(dout * out) per head (dout rounded to bf16, as the products see it). Throws prores::Error for
// unsupported dims.
template <typename TIO>
void flash_attention_backward(TIO* dq, TIO* dk, TIO* dv, float* delta, const TIO* dout, const TIO* out,
                              const float* lse, const TIO* q, const TIO* k, const TIO* v, const AttentionDims& d);

}  // namespace prores::ops::cuda
