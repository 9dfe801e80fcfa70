// CPU kernels of causal grouped-query attention on head-major layouts: per-(batch, head) GEMMs inside
// OpenMP parallel loops, with the causal softmax in between. Sizes: B batch, T sequence, NH query heads,
// KV key/value groups (head h reads group h / (NH / KV)), HS head size. With bf16 (f32 only) every product
// takes bf16-rounded operands with fp32 accumulation (gemm_bf16).
#pragma once
#include <cstdint>

#include "core/bf16.h"

namespace prores::ops::cpu {

struct AttentionDims {
  int64_t B, T, NH, KV, HS;
};

// q (B, NH, T, HS), k, v (B, KV, T, HS) (=) the slices of qkv (B, T, (NH + 2 KV) * HS). T is float, double
// or uint16_t (bf16 bits): a permutation. With RoPE tables cos, sin (T, HS/2) of T's compute type (float
// for bf16), q and k are rotated as they are copied: rope_forward's numbers, in the same pass.
template <typename T>
void split_heads_forward(T* q, T* k, T* v, const T* qkv, const AttentionDims& d,
                         const compute_type<T>* cos = nullptr, const compute_type<T>* sin = nullptr);

// dqkv (B, T, (NH + 2 KV) * HS) (=) dq, dk, dv permuted back; with RoPE tables, dq and dk inverse-rotated
// on the way (rope_backward's numbers; dq and dk are left as they are).
template <typename T>
void split_heads_backward(T* dqkv, const T* dq, const T* dk, const T* dv, const AttentionDims& d,
                          const compute_type<T>* cos = nullptr, const compute_type<T>* sin = nullptr);

// att (B, NH, T, T) (=) causal softmax(q k^T / sqrt(HS)), exact zeros above the diagonal;
// out (B, T, NH * HS) (=) att · v with the heads concatenated (written in place, no permute needed).
template <typename T>
void attention_forward(T* out, T* att, const T* q, const T* k, const T* v, const AttentionDims& d,
                       bool bf16 = false);

// Attention of T new positions [start, start + T) per row over a key/value cache of cache_length positions
// (holding [0, start + T)): out (B, T, NH * HS) (=) softmax(q k^T / sqrt(HS)) · v, query i seeing keys
// [0, start + i]; q (B, NH, T, HS), k_cache, v_cache (B, KV, cache_length, HS); att (B, NH, T, start + T) (=) the
// probabilities, zeros after each row's last key. attention_forward's numbers for start 0.
template <typename T>
void cached_attention_forward(T* out, T* att, const T* q, const T* k_cache, const T* v_cache, const AttentionDims& d,
                              int64_t cache_length, int64_t start, bool bf16 = false);

// cache (groups, cache_length, HS) rows [start, start + n) of every group (=) rows (groups, n, HS).
template <typename T>
void kv_cache_write(T* cache, const T* rows, int64_t groups, int64_t cache_length, int64_t start, int64_t n,
                    int64_t HS);

// dq (B, NH, T, HS) (=), dk, dv (B, KV, T, HS) (=) from dout (B, T, NH * HS) and the forward's att, q, k, v.
// datt (B, NH, T, T) is scratch (it ends up holding the softmax-input gradient times 1/sqrt(HS)).
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, T* datt, const T* dout, const T* att, const T* q, const T* k,
                        const T* v, const AttentionDims& d, bool bf16 = false);

}  // namespace prores::ops::cpu
