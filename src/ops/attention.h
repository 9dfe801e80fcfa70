// Causal grouped-query self-attention. NH query heads share KV groups: head h reads group h / (NH / KV).
#pragma once
#include "core/tensor.h"
#include "ops/gemm.h"

namespace prores::ops {

// Splits a fused projection qkv (B, T, (NH + 2 KV) * HS), laid out [q heads | k groups | v groups],
// into head-major q (B, NH, T, HS), k (B, KV, T, HS), v (B, KV, T, HS) (=). With RoPE tables rope_cos,
// rope_sin (T, HS/2; f32 next to bf16, else q's dtype) q and k are also rotated as they are copied: the
// numbers of rope_forward (ops/rope.h) on them afterwards, in one pass.
void split_heads_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& qkv,
                         const Tensor& rope_cos = Tensor(), const Tensor& rope_sin = Tensor());

// dqkv (B, T, (NH + 2 KV) * HS) (=) the inverse permutation of dq, dk, dv. With RoPE tables, dq and dk are
// inverse-rotated on the way: the numbers of rope_backward on them first, in one pass (dq, dk unchanged).
void split_heads_backward(const Tensor& dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                          const Tensor& rope_cos = Tensor(), const Tensor& rope_sin = Tensor());

// att (B, NH, T, T) (=) causal softmax(q k^T / sqrt(HS)) (zeros above the diagonal);
// out (B, T, NH * HS) (=) att · v, heads concatenated; y_heads (B, NH, T, HS) is scratch. precision: how
// the products multiply (Bf16: f32 tensors only).
void attention_forward(const Tensor& out, const Tensor& att, const Tensor& y_heads, const Tensor& q,
                       const Tensor& k, const Tensor& v, MatmulPrecision precision = MatmulPrecision::Fp32);

// dq (B, NH, T, HS) (=), dk, dv (B, KV, T, HS) (=) from dout (B, T, NH * HS) and the forward's att, q, k, v.
// datt (B, NH, T, T) and dy_heads (B, NH, T, HS) are scratch.
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& datt,
                        const Tensor& dy_heads, const Tensor& dout, const Tensor& att, const Tensor& q,
                        const Tensor& k, const Tensor& v, MatmulPrecision precision = MatmulPrecision::Fp32);

// Decoding with a key/value cache (CPU): the T positions [start, start + T) of each row attend to the keys and
// values of positions [0, start + T) held in k_cache, v_cache (B, KV, Tc, HS), Tc >= start + T (earlier forwards
// wrote [0, start), kv_cache_write this forward's). out (B, T, NH * HS) (=); att (B, NH, T, start + T) (=) the
// probabilities (query i sees keys [0, start + i]); q (B, NH, T, HS). For start 0 and Tc = T: attention_forward's
// numbers. f32 or f64; CUDA tensors are refused (no kernel yet).
void cached_attention_forward(const Tensor& out, const Tensor& att, const Tensor& q, const Tensor& k_cache,
                              const Tensor& v_cache, int64_t start, MatmulPrecision precision = MatmulPrecision::Fp32);

// cache (B, KV, Tc, HS) positions [start, start + T) (=) rows (B, KV, T, HS). Same dtype; CPU.
void kv_cache_write(const Tensor& cache, const Tensor& rows, int64_t start);

// Flash attention (CUDA, f32 or bf16 q, k, v, out and gradients, f32 lse and delta; bf16 tensor-core
// arithmetic with f32 accumulation, bf16 results rounded to nearest even): the same
// function as attention_forward without the (B, NH, T, T) probabilities. out (B, T, NH * HS) (=);
// lse (B, NH, T) (=) each row's log-sum-exp of the scaled, masked scores, kept for the backward. Host
// tensors are refused (the CPU path is attention_forward); throws unless flash_attention_supports.
void flash_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v);

// dq (B, NH, T, HS) (=), dk, dv (B, KV, T, HS) (=) from dout (B, T, NH * HS) and the forward's out and lse;
// delta (B, NH, T) is scratch.
void flash_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& delta,
                              const Tensor& dout, const Tensor& out, const Tensor& lse, const Tensor& q,
                              const Tensor& k, const Tensor& v);

// True when this build has the flash kernels and they take heads of size head_size (64 or 128).
bool flash_attention_supports(int64_t head_size);

// cuDNN's fused attention (ops/cuda/cudnn_attention.h): flash_attention_forward's function in its layouts, on
// bf16 CUDA q, k, v, out (and gradients) with f32 stats (B, NH, T), each row's log-sum-exp. workspace: a CUDA
// tensor of at least cudnn_attention_workspace_bytes bytes (any dtype). Host tensors are refused.
void cudnn_attention_forward(const Tensor& out, const Tensor& stats, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& workspace);

// dq (B, NH, T, HS) (=), dk, dv (B, KV, T, HS) (=) from dout (B, T, NH * HS) and the forward's out and stats.
void cudnn_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                              const Tensor& out, const Tensor& stats, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& workspace);

// True when this build has cuDNN's attention (a CUDA build that found the cuDNN frontend).
bool cudnn_attention_built();

// Throws, saying why and what to do, unless cudnn_attention_built().
void require_cudnn_attention();

// The workspace bytes cuDNN's attention forward and backward need for these sizes, building their graphs on the
// current GPU; throws with cuDNN's reason when it has no fused attention for them, or without cuDNN attention in
// the build.
int64_t cudnn_attention_workspace_bytes(int64_t B, int64_t T, int64_t NH, int64_t KV, int64_t HS);

}  // namespace prores::ops
