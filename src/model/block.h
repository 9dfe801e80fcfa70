// The saved activations of one transformer block and the per-placement shape of its two sublayers.
// A sublayer maps u to v around a branch F (attention or MLP), with α = the block's ProRes scale:
//   f_in = N_in(u) when the placement has an input norm (pre, sandwich), else u
//   b    = F(f_in);  b2 = N_out(b) when it has an output norm (sandwich), else b
//   s    = c·u + α·b2 (c = (2L)^{1/4} for DeepNorm, else 1)
//   v    = N_post(s) when it has a post norm (post, deepnorm), else s
#pragma once
#include "core/config.h"
#include "core/tensor.h"

namespace prores {

struct SublayerShape {
  bool in_norm = false, out_norm = false, post_norm = false;
  double c = 1.0;
};
SublayerShape sublayer_shape(NormPlacement placement, int64_t num_layers);

// Shapes: N = B·T token rows, Nl = the rows this rank holds of the residual stream (N, or N/TP with sequence
// parallelism, ModelExecution::sequence_parallel).
// Tensors a sublayer keeps for backward (undefined where the placement has no such norm).
// With bf16 matmuls, f_in, gate_up, swiglu_out, dgate_up and dswiglu are bf16, and with flash attention also
// q, k, v, attn_out, qkv, dqkv, dq, dk, dv and dattn_out (Model::plan_buffers).
struct SublayerActivations {
  Tensor f_in, rstd_in;    // N_in output (Nl, C) and its rstd (Nl)
  Tensor branch, rstd_out; // F output b (Nl, C) before N_out, and N_out's rstd (Nl)
  Tensor s, rstd_post;     // c·u + α·b2 (Nl, C) before N_post, and N_post's rstd (Nl)
};

struct BlockActivations {
  SublayerActivations attn, mlp;
  Tensor mid;                // h: the residual stream between the sublayers (Nl, C)
  Tensor q, k, v;            // rotated q (B, NH, T, HS), rotated k, v (B, KV, T, HS)
  Tensor att;                // softmax probabilities (B, NH, T, T); flash attention: row log-sum-exp (B, NH, T)
  Tensor attn_out;           // heads concatenated (N, NH·HS): o_proj input
  Tensor gate_up;            // (N, 2F): SwiGLU input
  Tensor swiglu_out;         // (N, F): down_proj input
};

// Per-step temporaries shared by all blocks (not kept for backward).
struct BlockScratch {
  Tensor qkv, dqkv;                    // (N, (NH + 2 KV)·HS)
  Tensor y_heads, dy_heads, dq;        // (B, NH, T, HS); y_heads, dy_heads: unfused attention only
  Tensor dk, dv;                       // (B, KV, T, HS)
  Tensor datt;                         // (B, NH, T, T); flash attention: its delta (B, NH, T); cuDNN: none
  Tensor dattn_out;                    // (N, NH·HS)
  Tensor attention_workspace;          // cuDNN attention: the bytes cuDNN asks for (f32 words)
  Tensor branch, branch_normed;        // (Nl, C): b when not kept, N_out(b)
  Tensor dmid, dsum, db, dbranch;      // (Nl, C) gradients inside a block; db bf16 with bf16 activations
                                       // when no output norm follows the branch
  Tensor dfin;                         // (N, C): the branch input's gradient (this TP rank's partial sums)
  Tensor dgate_up;                     // (N, 2F)
  Tensor dswiglu;                      // (N, F)
  // With sequence parallelism only:
  Tensor gathered;       // (N, C): a branch's all-gathered input, in f_in's dtype (u's without an input norm)
  Tensor gathered_grad;  // (N, C): a branch's all-gathered output gradient, in db's dtype
  Tensor gathered_head;  // (N, C): the final norm's all-gathered output (last stage), in its dtype
  Tensor partial;        // (N, C): partial sums before their reduce-scatter; a probed tensor, gathered
  Tensor dfin_local;     // (Nl, C): this rank's rows of a reduce-scattered input gradient
  Tensor dnorms;         // (4, C): the norm weights' gradients of this rank's rows (Model::norm_grad)
};

}  // namespace prores
