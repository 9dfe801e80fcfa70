// One transformer block, forward and backward: two sublayers (attention, MLP) around the residual stream,
// shaped by the norm placement (sublayer_shape, model/block.h) and scaled by the block's ProRes residual
// scale α (Model::set_residual_scales). The backward mirrors the forward line by line. A block whose α is
// exactly 0 skips both branches (same numbers, less work), except under a probe (Model::set_probe), which
// needs the branch outputs. Under sequence parallelism (ModelExecution::sequence_parallel) the branches gather
// their input rows and scatter their output rows, and the norms' weight gradients are summed over TP per block.
#include "model/block.h"

#include <cmath>

#include "model/model_slot.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/swiglu.h"

namespace prores {

SublayerShape sublayer_shape(NormPlacement placement, int64_t num_layers) {
  SublayerShape s;
  switch (placement) {
    case NormPlacement::Pre: s.in_norm = true; break;
    case NormPlacement::Post: s.post_norm = true; break;
    case NormPlacement::Sandwich: s.in_norm = s.out_norm = true; break;
    case NormPlacement::DeepNorm:
      s.post_norm = true;
      s.c = std::pow(2.0 * static_cast<double>(num_layers), 0.25);
      break;
  }
  return s;
}

// How the unfused attention's products multiply: in bf16 with bf16 matmuls on CUDA (cuBLASLt's f32-via-bf16
// mode), always in f32 on the CPU, whose attention GEMMs (per head and block of 64 query rows) are too small
// to gain from bf16: bench_train_step --bf16 ran at 1162 tokens/s with them in bf16, 1286 in f32.
ops::MatmulPrecision Model::attention_precision() const {
  return execution_.device == Device::CUDA ? execution_.matmul_precision : ops::MatmulPrecision::Fp32;
}

// LayerNorm Scaling's 1/sqrt(l) for the global layer l of this stage's block layer0.
double Model::norm_scale(int64_t layer0) const {
  const double l = static_cast<double>(shard_.layer(layer0));
  return config_.layernorm_scaling ? 1.0 / std::sqrt(l) : 1.0;
}

// y (=) block(x). layer0 is the block's index on this stage.
void Model::block_forward(Slot& slot, int64_t layer0, const Tensor& x, const Tensor& y) {
  BlockActivations& a = slot.blocks[static_cast<size_t>(layer0)];
  sublayer_forward(a, layer0, Branch::Attention, a.attn, x, a.mid);
  sublayer_forward(a, layer0, Branch::Mlp, a.mlp, a.mid, y);
  if (probe_) probe_(layer0, ProbePoint::BlockOutput, whole_rows(scratch_->partial, y));
}

// dx (=) from dy; weight gradients (+=).
void Model::block_backward(const Slot& slot, int64_t layer0, const Tensor& x, const Tensor& dy, const Tensor& dx) {
  const BlockActivations& a = slot.blocks[static_cast<size_t>(layer0)];
  const LayerWeights& dw = dweights_.layers[static_cast<size_t>(layer0)];
  begin_norm_grads();
  sublayer_backward(a, layer0, Branch::Mlp, a.mlp, a.mid, dy, scratch_->dmid);
  sublayer_backward(a, layer0, Branch::Attention, a.attn, x, scratch_->dmid, dx);
  if (config_.norm_placement == NormPlacement::Sandwich)
    end_norm_grads({dw.attn_norm, dw.mlp_norm, dw.attn_out_norm, dw.mlp_out_norm});
  else
    end_norm_grads({dw.attn_norm, dw.mlp_norm});
}

Tensor Model::whole_rows(const Tensor& whole, const Tensor& local) const {
  if (!execution_.sequence_parallel) return local;
  tp_->all_gather(whole, local);
  return whole;
}

void Model::begin_norm_grads() {
  if (execution_.sequence_parallel) ops::zero(scratch_->dnorms);
}

// Rows: 0 the attention sublayer's norm (N_in or N_post), 1 the MLP's, 2 and 3 their output norms; 0 the final
// norm on its own.
Tensor Model::norm_grad(int64_t row, const Tensor& grad) const {
  if (!execution_.sequence_parallel) return grad;
  return scratch_->dnorms.slice_rows(row, 1).view({config_.hidden_size});
}

void Model::end_norm_grads(std::initializer_list<Tensor> grads) {
  if (!execution_.sequence_parallel) return;
  const int64_t n = static_cast<int64_t>(grads.size());
  tp_->all_reduce(scratch_->dnorms.slice_rows(0, n), ReduceOp::Sum);
  int64_t row = 0;
  for (const Tensor& grad : grads) ops::accumulate(grad, 1.0, norm_grad(row++, grad));
}

// v (=) sublayer(u), as model/block.h spells out.
void Model::sublayer_forward(BlockActivations& act, int64_t layer0, Branch branch, SublayerActivations& a,
                             const Tensor& u, const Tensor& v) {
  const SublayerShape shape = sublayer_shape(config_.norm_placement, config_.num_layers);
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer0)];
  const bool attn = branch == Branch::Attention;
  // The one norm of a Pre-/Post-LN sublayer: N_in for pre and sandwich, N_post for post and deepnorm.
  const Tensor& norm = attn ? w.attn_norm : w.mlp_norm;
  const double residual_scale = residual_scale_[static_cast<size_t>(layer0)], ns = norm_scale(layer0);
  const double eps = config_.norm_eps;
  const bool probed = static_cast<bool>(probe_);
  const bool skip = skip_zero_residual_scale_ && residual_scale == 0.0 && !probed;
  BlockScratch& s = *scratch_;

  const Tensor sum = shape.post_norm ? a.s : v;
  // The branch's last linear forms the sum itself, unless a probe needs the branch output alone or its rows
  // are reduce-scattered (sequence parallelism).
  const bool sum_in_branch = !skip && !shape.out_norm && !probed && !execution_.sequence_parallel;
  Tensor b2 = u;  // with the branch skipped the sum below is c·u + 0·u, bitwise c·u + 0·b2
  if (!skip) {
    Tensor f_in = u;
    if (shape.in_norm) {
      ops::rmsnorm_forward(a.f_in, a.rstd_in, u, norm, eps, ns);
      f_in = a.f_in;
    }
    const Tensor b = shape.out_norm ? a.branch : s.branch;
    branch_forward(act, layer0, branch, whole_rows(s.gathered, f_in),
                   sum_in_branch ? BranchOutput{sum, u, shape.c, residual_scale} : BranchOutput{b, Tensor{}, 1, 1});
    b2 = b;
    if (shape.out_norm) {
      ops::rmsnorm_forward(s.branch_normed, a.rstd_out, b, attn ? w.attn_out_norm : w.mlp_out_norm, eps, ns);
      b2 = s.branch_normed;
    }
    if (probed) probe_(layer0, attn ? ProbePoint::AttentionBranch : ProbePoint::MlpBranch, whole_rows(s.partial, b2));
  }
  if (!sum_in_branch) ops::axpby(sum, shape.c, u, residual_scale, b2);
  if (shape.post_norm) ops::rmsnorm_forward(v, a.rstd_post, a.s, norm, eps, ns);
}

// du (=) from dv; weight gradients (+=).
void Model::sublayer_backward(const BlockActivations& act, int64_t layer0, Branch branch,
                              const SublayerActivations& a, const Tensor& u, const Tensor& dv, const Tensor& du) {
  const SublayerShape shape = sublayer_shape(config_.norm_placement, config_.num_layers);
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer0)];
  const LayerWeights& dw = dweights_.layers[static_cast<size_t>(layer0)];
  const bool attn = branch == Branch::Attention;
  const Tensor& norm = attn ? w.attn_norm : w.mlp_norm;
  const Tensor dnorm = norm_grad(attn ? 0 : 1, attn ? dw.attn_norm : dw.mlp_norm);
  const double residual_scale = residual_scale_[static_cast<size_t>(layer0)], ns = norm_scale(layer0);
  const bool skip = skip_zero_residual_scale_ && residual_scale == 0.0;
  BlockScratch& s = *scratch_;

  Tensor dsum = dv;
  if (shape.post_norm) {
    ops::rmsnorm_backward(s.dsum, dnorm, dv, a.s, norm, a.rstd_post, ns, ops::InputGrad::Overwrite);
    dsum = s.dsum;
  }
  if (skip) return ops::axpby(du, shape.c, dsum, 0.0, dsum);
  // d b2 = α · d sum; in bf16 (rounded once) where it feeds the bf16 matmuls of the branch backward directly.
  if (s.db.dtype == DType::BF16) ops::round_to_bf16(s.db, dsum, residual_scale);
  else ops::axpby(s.db, residual_scale, dsum, 0.0, dsum);
  Tensor db = s.db;
  if (shape.out_norm) {
    ops::rmsnorm_backward(s.dbranch, norm_grad(attn ? 2 : 3, attn ? dw.attn_out_norm : dw.mlp_out_norm), s.db,
                          a.branch, attn ? w.attn_out_norm : w.mlp_out_norm, a.rstd_out, ns, ops::InputGrad::Overwrite);
    db = s.dbranch;
  }
  const Tensor f_in = shape.in_norm ? a.f_in : u;
  branch_backward(act, layer0, branch, whole_rows(s.gathered, f_in), whole_rows(s.gathered_grad, db), s.dfin);
  // Megatron's f: the branch input is replicated over TP, so its gradient sums over the shards (this rank's rows
  // of the sum under sequence parallelism).
  Tensor dfin = s.dfin;
  if (execution_.sequence_parallel) {
    tp_->reduce_scatter(s.dfin_local, s.dfin);
    dfin = s.dfin_local;
  } else {
    tp_->all_reduce(s.dfin, ReduceOp::Sum);
  }
  // du = c·dsum + the branch input's gradient; with an input norm c is 1 and the norm's backward adds dsum.
  if (shape.in_norm)
    ops::rmsnorm_backward(du, dnorm, dfin, u, norm, a.rstd_in, ns, ops::InputGrad::Overwrite, dsum);
  else
    ops::axpby(du, shape.c, dsum, 1.0, dfin);
}

// output.out (N, C) (=) attention(f_in) or mlp(f_in), or c·residual + α· that (BranchOutput); f_in (N, C).
// Column-parallel q|k|v and gate|up (this rank's heads / ffn columns), row-parallel o and down; Megatron's
// g: the row-parallel outputs are partial sums, all-reduced over TP. With a residual, TP rank 0 adds
// c·residual to α· its partial sum and the other ranks write α· theirs, so that the all-reduce forms the sum.
// Sequence parallelism: the partial sums are reduce-scattered, output.out (Nl, C) (=) this rank's rows, no
// residual.
void Model::branch_forward(BlockActivations& a, int64_t layer0, Branch branch, const Tensor& f_in,
                           const BranchOutput& output) {
  const LayerWeights& w = matmul_weights().layers[static_cast<size_t>(layer0)];
  BlockScratch& s = *scratch_;
  const int64_t T = window_length_;
  const ops::MatmulPrecision mp = execution_.matmul_precision;
  const Tensor sums = execution_.sequence_parallel ? s.partial : output.out;
  const auto project = [&](const Tensor& x, const Tensor& weight) {  // the row-parallel o or down
    const double c = tp_->rank() == 0 ? output.c : 0.0;
    if (output.residual.defined())
      ops::linear_forward_residual(sums, x, weight, output.residual_scale, output.residual, c, mp);
    else
      ops::linear_forward(sums, x, weight, mp);
  };
  if (branch == Branch::Attention) {
    ops::linear_forward(s.qkv, f_in, w.qkv, mp);
    // RoPE of this window's positions [start, start + T).
    ops::split_heads_forward(a.q, a.k, a.v, s.qkv.view({B_, T, s.qkv.shape[1]}),
                             rope_cos_.slice_rows(window_start_, T), rope_sin_.slice_rows(window_start_, T));
    const Tensor out = a.attn_out.view({B_, T, a.attn_out.shape[1]});
    if (execution_.kv_cache) {
      const KvCache& cache = kv_cache_[static_cast<size_t>(layer0)];
      ops::kv_cache_write(cache.k, a.k, window_start_);
      ops::kv_cache_write(cache.v, a.v, window_start_);
      const int64_t keys = window_start_ + T;  // the probabilities over every position seen so far
      ops::cached_attention_forward(out, a.att.leading({B_, a.att.shape[1], T, keys}), a.q, cache.k, cache.v,
                                    window_start_, attention_precision());
    } else if (execution_.attention == AttentionKernel::Flash) {
      ops::flash_attention_forward(out, a.att, a.q, a.k, a.v);
    } else if (execution_.attention == AttentionKernel::Cudnn) {
      ops::cudnn_attention_forward(out, a.att, a.q, a.k, a.v, s.attention_workspace);
    } else {
      ops::attention_forward(out, a.att, s.y_heads, a.q, a.k, a.v, attention_precision());
    }
    project(a.attn_out, w.o);
  } else {
    ops::linear_forward(a.gate_up, f_in, w.gate_up, mp);
    ops::swiglu_forward(a.swiglu_out, a.gate_up);
    project(a.swiglu_out, w.down);
  }
  if (execution_.sequence_parallel) tp_->reduce_scatter(output.out, s.partial);
  else tp_->all_reduce(output.out, ReduceOp::Sum);
}

// dfin (N, C) (=) this rank's partial sums of the input gradient, and weight gradients (+=), from db (N, C) and
// the forward's f_in (N, C).
void Model::branch_backward(const BlockActivations& a, int64_t layer0, Branch branch, const Tensor& f_in,
                            const Tensor& db, const Tensor& dfin) {
  const LayerWeights& w = matmul_weights().layers[static_cast<size_t>(layer0)];
  const LayerWeights& dw = dweights_.layers[static_cast<size_t>(layer0)];
  BlockScratch& s = *scratch_;
  const int64_t T = config_.seq_length;
  const ops::MatmulPrecision mp = execution_.matmul_precision;
  if (branch == Branch::Attention) {
    ops::linear_backward(s.dattn_out, dw.o, db, a.attn_out, w.o, mp, ops::InputGrad::Overwrite);
    const Tensor dout = s.dattn_out.view({B_, T, s.dattn_out.shape[1]});
    const Tensor out = a.attn_out.view({B_, T, a.attn_out.shape[1]});
    if (execution_.attention == AttentionKernel::Flash)
      ops::flash_attention_backward(s.dq, s.dk, s.dv, s.datt, dout, out, a.att, a.q, a.k, a.v);
    else if (execution_.attention == AttentionKernel::Cudnn)
      ops::cudnn_attention_backward(s.dq, s.dk, s.dv, dout, out, a.att, a.q, a.k, a.v, s.attention_workspace);
    else
      ops::attention_backward(s.dq, s.dk, s.dv, s.datt, s.dy_heads, dout, a.att, a.q, a.k, a.v,
                              attention_precision());
    ops::split_heads_backward(s.dqkv.view({B_, T, s.dqkv.shape[1]}), s.dq, s.dk, s.dv, rope_cos_, rope_sin_);
    ops::linear_backward(dfin, dw.qkv, s.dqkv, f_in, w.qkv, mp, ops::InputGrad::Overwrite);
  } else {
    ops::linear_backward(s.dswiglu, dw.down, db, a.swiglu_out, w.down, mp, ops::InputGrad::Overwrite);
    ops::swiglu_backward(s.dgate_up, s.dswiglu, a.gate_up);
    ops::linear_backward(dfin, dw.gate_up, s.dgate_up, f_in, w.gate_up, mp, ops::InputGrad::Overwrite);
  }
}

}  // namespace prores
