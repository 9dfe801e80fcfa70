// CPU causal grouped-query attention. Each (batch, head) runs as a few GEMMs on blocks of kRowBlock query
// rows; a block only touches key columns up to its last row, so blocks above the diagonal are skipped.
// The head outputs are written straight into the concatenated (B, T, NH * HS) layout via the GEMM's
// leading dimension, and dout is read the same way, so no separate permute is needed.
#include "ops/cpu/attention.h"

#include <algorithm>
#include <cmath>

#include "ops/cpu/fast_exp.h"
#include "ops/cpu/gemm.h"
#include "ops/rope_rotation.h"

namespace prores::ops::cpu {
namespace {

constexpr int64_t kRowBlock = 64;

// Problems below this many elements or multiply-adds stay on one thread (a parallel region costs
// microseconds); a single (batch, head) item instead lets the GEMMs use all threads.
constexpr int64_t kParallelMinWork = int64_t{1} << 16;

// Copies `heads` consecutive HS-vectors between a token row and head-major storage (stride T * HS); with
// a RoPE table row (cos, sin of one position, HS/2 each) it rotates them on the way, by sign * sin.
template <typename T>
void copy_heads(T* dst, int64_t dst_head_stride, const T* src, int64_t src_head_stride, int64_t heads,
                int64_t HS, const compute_type<T>* cos = nullptr, const compute_type<T>* sin = nullptr,
                compute_type<T> sign = 1) {
  const int64_t half = HS / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const T* from = src + h * src_head_stride;
    T* to = dst + h * dst_head_stride;
    if (cos == nullptr) {
      std::copy_n(from, HS, to);
      continue;
    }
    for (int64_t i = 0; i < half; ++i) {
      const RopePair<compute_type<T>> r =
          rope_rotate(load_element(from[i]), load_element(from[i + half]), cos[i], sign * sin[i]);
      to[i] = store_element<T>(r.lo);
      to[i + half] = store_element<T>(r.hi);
    }
  }
}

// row[0 : n) (=) softmax(row[0 : n)), row[n : Tn) (=) 0.
template <typename T>
void causal_softmax_row(T* row, int64_t n, int64_t Tn) {
  T max_val = row[0];
#pragma omp simd reduction(max : max_val)
  for (int64_t j = 1; j < n; ++j) max_val = row[j] > max_val ? row[j] : max_val;
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    row[j] = exp_vec(row[j] - max_val);
    sum += row[j];
  }
  const T inv = T(1) / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
  std::fill(row + n, row + Tn, T(0));
}

// ds[0 : n) (=) p * (dp - <p, dp>) over the causal prefix, in place over dp; ds[n : end) (=) 0.
template <typename T>
void softmax_backward_row(T* dp, const T* p, int64_t n, int64_t end) {
  T dot = 0;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < n; ++j) dot += p[j] * dp[j];
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - dot);
  std::fill(dp + n, dp + end, T(0));
}

// One head, Tn query rows at positions [start, start + Tn) over the keys of positions [0, start + Tn):
// P (Tn, start + Tn) (=) causal softmax(scale Q K^T) (query row i sees keys [0, start + i]); Y (Tn, HS, leading
// dim ldy) (=) P V. start 0: plain causal self-attention.
template <typename T>
void forward_head(T* Y, int64_t ldy, T* P, const T* Q, const T* K, const T* V, int64_t Tn, int64_t start, int64_t HS,
                  bool bf16) {
  const T scale = T(1) / std::sqrt(static_cast<T>(HS));
  const int64_t ldp = start + Tn;
  for (int64_t r0 = 0; r0 < Tn; r0 += kRowBlock) {
    const int64_t r1 = std::min(r0 + kRowBlock, Tn), keys = start + r1;
    gemm_bf16_if<T>(bf16, false, true, r1 - r0, keys, HS, scale, Q + r0 * HS, HS, K, HS, T(0), P + r0 * ldp, ldp);
    for (int64_t i = r0; i < r1; ++i) causal_softmax_row(P + i * ldp, start + i + 1, ldp);
    gemm_bf16_if<T>(bf16, false, false, r1 - r0, HS, keys, T(1), P + r0 * ldp, ldp, V, HS, T(0), Y + r0 * ldy, ldy);
  }
}

// One head's backward. dQ (T, HS) (=); dK, dV (T, HS) (+=); dY has leading dimension ldy; dS (T, T) is
// scratch that ends up holding dP's softmax backward, zero above the diagonal within each row block.
template <typename T>
void backward_head(T* dQ, T* dK, T* dV, T* dS, const T* dY, int64_t ldy, const T* P, const T* Q, const T* K,
                   const T* V, int64_t Tn, int64_t HS, bool bf16) {
  const T scale = T(1) / std::sqrt(static_cast<T>(HS));
  for (int64_t r0 = 0; r0 < Tn; r0 += kRowBlock) {
    const int64_t r1 = std::min(r0 + kRowBlock, Tn);
    gemm_bf16_if<T>(bf16, false, true, r1 - r0, r1, HS, T(1), dY + r0 * ldy, ldy, V, HS, T(0), dS + r0 * Tn, Tn);
    for (int64_t i = r0; i < r1; ++i) softmax_backward_row(dS + i * Tn, P + i * Tn, i + 1, r1);
    gemm_bf16_if<T>(bf16, false, false, r1 - r0, HS, r1, scale, dS + r0 * Tn, Tn, K, HS, T(0), dQ + r0 * HS, HS);
  }
  // Key block [j0, j1) is used by query rows i >= j0; those rows are zero above the diagonal up to j1.
  for (int64_t j0 = 0; j0 < Tn; j0 += kRowBlock) {
    const int64_t j1 = std::min(j0 + kRowBlock, Tn);
    const T* Pj = P + j0 * Tn + j0;
    const T* dSj = dS + j0 * Tn + j0;
    gemm_bf16_if<T>(bf16, true, false, j1 - j0, HS, Tn - j0, T(1), Pj, Tn, dY + j0 * ldy, ldy, T(1), dV + j0 * HS, HS);
    gemm_bf16_if<T>(bf16, true, false, j1 - j0, HS, Tn - j0, scale, dSj, Tn, Q + j0 * HS, HS, T(1), dK + j0 * HS, HS);
  }
}

}  // namespace

template <typename T>
void split_heads_forward(T* q, T* k, T* v, const T* qkv, const AttentionDims& d, const compute_type<T>* cos,
                         const compute_type<T>* sin) {
  const int64_t Tn = d.T, HS = d.HS, W = (d.NH + 2 * d.KV) * HS, head = Tn * HS, half = HS / 2;
#pragma omp parallel for schedule(static) if (d.B * Tn * W >= kParallelMinWork)
  for (int64_t bt = 0; bt < d.B * Tn; ++bt) {
    const int64_t b = bt / Tn, t = bt % Tn;
    const T* row = qkv + bt * W;
    const compute_type<T>* c = cos == nullptr ? nullptr : cos + t * half;
    const compute_type<T>* s = cos == nullptr ? nullptr : sin + t * half;
    copy_heads(q + b * d.NH * head + t * HS, head, row, HS, d.NH, HS, c, s);
    copy_heads(k + b * d.KV * head + t * HS, head, row + d.NH * HS, HS, d.KV, HS, c, s);
    copy_heads(v + b * d.KV * head + t * HS, head, row + (d.NH + d.KV) * HS, HS, d.KV, HS);
  }
}

template <typename T>
void split_heads_backward(T* dqkv, const T* dq, const T* dk, const T* dv, const AttentionDims& d,
                          const compute_type<T>* cos, const compute_type<T>* sin) {
  const int64_t Tn = d.T, HS = d.HS, W = (d.NH + 2 * d.KV) * HS, head = Tn * HS, half = HS / 2;
#pragma omp parallel for schedule(static) if (d.B * Tn * W >= kParallelMinWork)
  for (int64_t bt = 0; bt < d.B * Tn; ++bt) {
    const int64_t b = bt / Tn, t = bt % Tn;
    T* row = dqkv + bt * W;
    const compute_type<T>* c = cos == nullptr ? nullptr : cos + t * half;
    const compute_type<T>* s = cos == nullptr ? nullptr : sin + t * half;
    copy_heads(row, HS, dq + b * d.NH * head + t * HS, head, d.NH, HS, c, s, compute_type<T>(-1));
    copy_heads(row + d.NH * HS, HS, dk + b * d.KV * head + t * HS, head, d.KV, HS, c, s, compute_type<T>(-1));
    copy_heads(row + (d.NH + d.KV) * HS, HS, dv + b * d.KV * head + t * HS, head, d.KV, HS);
  }
}

template <typename T>
void attention_forward(T* out, T* att, const T* q, const T* k, const T* v, const AttentionDims& d, bool bf16) {
  const int64_t Tn = d.T, HS = d.HS, C = d.NH * HS, group = d.NH / d.KV;
  const int64_t items = d.B * d.NH;
#pragma omp parallel for schedule(static) if (items > 1 && items * Tn * Tn * HS >= kParallelMinWork)
  for (int64_t bh = 0; bh < items; ++bh) {
    const int64_t b = bh / d.NH, h = bh % d.NH, bg = b * d.KV + h / group;
    forward_head(out + b * Tn * C + h * HS, C, att + bh * Tn * Tn, q + bh * Tn * HS, k + bg * Tn * HS,
                 v + bg * Tn * HS, Tn, 0, HS, bf16);
  }
}

template <typename T>
void cached_attention_forward(T* out, T* att, const T* q, const T* k_cache, const T* v_cache, const AttentionDims& d,
                              int64_t cache_length, int64_t start, bool bf16) {
  const int64_t Tn = d.T, HS = d.HS, C = d.NH * HS, group = d.NH / d.KV, keys = start + Tn;
  const int64_t items = d.B * d.NH;
#pragma omp parallel for schedule(static) if (items > 1 && items * Tn * keys * HS >= kParallelMinWork)
  for (int64_t bh = 0; bh < items; ++bh) {
    const int64_t b = bh / d.NH, h = bh % d.NH, bg = b * d.KV + h / group;
    forward_head(out + b * Tn * C + h * HS, C, att + bh * Tn * keys, q + bh * Tn * HS, k_cache + bg * cache_length * HS,
                 v_cache + bg * cache_length * HS, Tn, start, HS, bf16);
  }
}

template <typename T>
void kv_cache_write(T* cache, const T* rows, int64_t groups, int64_t cache_length, int64_t start, int64_t n,
                    int64_t HS) {
  for (int64_t g = 0; g < groups; ++g)
    std::copy_n(rows + g * n * HS, n * HS, cache + (g * cache_length + start) * HS);
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, T* datt, const T* dout, const T* att, const T* q, const T* k,
                        const T* v, const AttentionDims& d, bool bf16) {
  const int64_t Tn = d.T, HS = d.HS, C = d.NH * HS, group = d.NH / d.KV;
  const int64_t items = d.B * d.KV;
  // One (batch, group) per iteration: the group's heads accumulate into its dk, dv without races.
#pragma omp parallel for schedule(static) if (items > 1 && d.B * d.NH * Tn * Tn * HS >= kParallelMinWork)
  for (int64_t bg = 0; bg < items; ++bg) {
    const int64_t b = bg / d.KV, g = bg % d.KV;
    T* dk_g = dk + bg * Tn * HS;
    T* dv_g = dv + bg * Tn * HS;
    std::fill(dk_g, dk_g + Tn * HS, T(0));
    std::fill(dv_g, dv_g + Tn * HS, T(0));
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const int64_t bh = b * d.NH + h;
      backward_head(dq + bh * Tn * HS, dk_g, dv_g, datt + bh * Tn * Tn, dout + b * Tn * C + h * HS, C,
                    att + bh * Tn * Tn, q + bh * Tn * HS, k + bg * Tn * HS, v + bg * Tn * HS, Tn, HS,
                    bf16);
    }
  }
}

#define PRORES_INSTANTIATE_SPLIT_HEADS(T)                                                                      \
  template void split_heads_forward<T>(T*, T*, T*, const T*, const AttentionDims&, const compute_type<T>*,     \
                                       const compute_type<T>*);                                                \
  template void split_heads_backward<T>(T*, const T*, const T*, const T*, const AttentionDims&,                 \
                                        const compute_type<T>*, const compute_type<T>*);
#define PRORES_INSTANTIATE_ATTENTION(T)                                                                 \
  template void attention_forward<T>(T*, T*, const T*, const T*, const T*, const AttentionDims&, bool); \
  template void attention_backward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, const T*, \
                                      const AttentionDims&, bool);                                      \
  template void cached_attention_forward<T>(T*, T*, const T*, const T*, const T*, const AttentionDims&, \
                                            int64_t, int64_t, bool);                                    \
  template void kv_cache_write<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);
PRORES_INSTANTIATE_SPLIT_HEADS(float)
PRORES_INSTANTIATE_SPLIT_HEADS(double)
PRORES_INSTANTIATE_SPLIT_HEADS(uint16_t)
PRORES_INSTANTIATE_ATTENTION(float)
PRORES_INSTANTIATE_ATTENTION(double)
#undef PRORES_INSTANTIATE_SPLIT_HEADS
#undef PRORES_INSTANTIATE_ATTENTION

}  // namespace prores::ops::cpu
