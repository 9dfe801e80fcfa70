// Causal grouped-query self-attention. NH query heads share KV groups: head h reads group h / (NH / KV).
#pragma once
#include "core/tensor.h"

namespace prores::ops {

// Splits a fused projection qkv (B, T, (NH + 2 KV) * HS), laid out [q heads | k groups | v groups],
// into head-major q (B, NH, T, HS), k (B, KV, T, HS), v (B, KV, T, HS) (=).
void split_heads_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& qkv);

// dqkv (B, T, (NH + 2 KV) * HS) (=) the inverse permutation of dq, dk, dv.
void split_heads_backward(const Tensor& dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv);

// att (B, NH, T, T) (=) causal softmax(q k^T / sqrt(HS)) (zeros above the diagonal);
// out (B, T, NH * HS) (=) att · v, heads concatenated; y_heads (B, NH, T, HS) is scratch.
void attention_forward(const Tensor& out, const Tensor& att, const Tensor& y_heads, const Tensor& q,
                       const Tensor& k, const Tensor& v);

// dq (B, NH, T, HS) (=), dk, dv (B, KV, T, HS) (=) from dout (B, T, NH * HS) and the forward's att, q, k, v.
// datt (B, NH, T, T) and dy_heads (B, NH, T, HS) are scratch.
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& datt,
                        const Tensor& dy_heads, const Tensor& dout, const Tensor& att, const Tensor& q,
                        const Tensor& k, const Tensor& v);

}  // namespace prores::ops
