// Model construction, buffer planning and the stage-level forward/backward (embedding → blocks → final
// norm → LM head → cross-entropy, each part on the stage that holds it). Blocks: block.cpp.
#include "model/model.h"

#include <algorithm>
#include <cmath>

#include "model/model_slot.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/memory.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "parallel/vocab_parallel.h"

namespace prores {

namespace {

ModelShard resolve(const ModelConfig& config, ModelShard shard) {
  config.validate();
  if (shard.num_layers < 0) shard.num_layers = config.num_layers - shard.first_layer + 1;
  return shard;
}

}  // namespace

Model::Model(const ModelConfig& config, int64_t micro_batch, DType dtype, const ModelShard& shard,
             Communicator* tp, int64_t num_slots, const ModelExecution& execution)
    : config_(config),
      shard_(resolve(config, shard)),
      table_(config_, shard_),
      B_(micro_batch),
      dtype_(dtype),
      execution_(execution),
      own_tp_(tp ? nullptr : make_single_process_communicator()),
      tp_(tp ? tp : own_tp_.get()),
      arena_(execution.device,
             execution.device == Device::CPU ? DeviceMemory{} : ops::device_memory(execution.device)) {
  PRORES_CHECK(micro_batch >= 1, "--micro-batch-size must be positive, got ", micro_batch);
  PRORES_CHECK(num_slots >= 1, "model: need at least one activation slot, got ", num_slots);
  PRORES_CHECK(dtype == DType::F32 || dtype == DType::F64, "model dtype must be f32 or f64, got ", dtype_name(dtype));
  PRORES_CHECK(!execution.flash_attention ||
                   (execution.device == Device::CUDA && dtype == DType::F32 &&
                    ops::flash_attention_supports(config_.head_size())),
               "flash attention needs --device cuda, f32 and a head size of 64 or 128, got head size ",
               config_.head_size(), " on ", execution.device == Device::CUDA ? "cuda" : "the cpu");
  PRORES_CHECK(execution.matmul_precision == ops::MatmulPrecision::Fp32 || dtype == DType::F32,
               "bf16 matmuls need an f32 model, got ", dtype_name(dtype));
  PRORES_CHECK(execution.recompute_layers >= 0 && execution.recompute_layers <= local_layers(),
               "model: ", execution.recompute_layers, " layers to recompute, the stage has ", local_layers());
  PRORES_CHECK(tp_->size() == shard_.tp_size && tp_->rank() == shard_.tp_rank, "model: tensor-parallel group is rank ",
               tp_->rank(), " of ", tp_->size(), ", the shard says ", shard_.tp_rank, " of ", shard_.tp_size);
  vocab_start_ = shard_.tp_rank * (config_.vocab_size / shard_.tp_size);
  residual_scale_.assign(static_cast<size_t>(local_layers()), 1.0);
  slots_.resize(static_cast<size_t>(num_slots));
  plan_buffers();
  ops::rope_table(rope_cos_, rope_sin_, config_.rotary_base);
}

Model::~Model() = default;

int64_t Model::num_slots() const { return static_cast<int64_t>(slots_.size()); }

void Model::plan_buffers() {
  const int64_t N = B_ * config_.seq_length, T = config_.seq_length, C = config_.hidden_size;
  const int64_t TP = shard_.tp_size, L = local_layers();
  const int64_t F = config_.ffn_hidden_size / TP, V = config_.vocab_size / TP;
  const int64_t NH = config_.num_attention_heads / TP, KV = config_.kv_groups() / TP, HS = config_.head_size();
  const int64_t QKV = (NH + 2 * KV) * HS;
  const SublayerShape shape = sublayer_shape(config_.norm_placement, config_.num_layers);
  const DType d = dtype_;
  // With bf16 matmuls, the activations that only feed and leave matmuls (and SwiGLU between them) are
  // stored in bf16: the normed branch inputs, the SwiGLU input and output and their gradients, and the LM
  // head's input and output (the logits, overwritten by their gradient); with flash attention too,
  // everything between the q|k|v and o projections (q, k, v, the attention output and their gradients). The
  // residual stream, the branch outputs and every norm's input stay in d.
  const bool bf16 = execution_.matmul_precision == ops::MatmulPrecision::Bf16 && execution_.bf16_activations;
  const DType a16 = bf16 ? DType::BF16 : d, attn16 = bf16 && execution_.flash_attention ? DType::BF16 : d;
  auto nc = [&](Tensor* t) { arena_.reserve(t, d, {N, C}); };
  auto rows = [&](Tensor* t) { arena_.reserve(t, d, {N}); };
  auto plan_sublayer = [&](SublayerActivations& a) {
    if (shape.in_norm) { arena_.reserve(&a.f_in, a16, {N, C}); rows(&a.rstd_in); }
    if (shape.out_norm) { nc(&a.branch); rows(&a.rstd_out); }
    if (shape.post_norm) { nc(&a.s); rows(&a.rstd_post); }
  };
  auto plan_block = [&](BlockActivations& b) {
    plan_sublayer(b.attn);
    plan_sublayer(b.mlp);
    nc(&b.mid);
    arena_.reserve(&b.q, attn16, {B_, NH, T, HS});
    arena_.reserve(&b.k, attn16, {B_, KV, T, HS});
    arena_.reserve(&b.v, attn16, {B_, KV, T, HS});
    if (execution_.flash_attention) arena_.reserve(&b.att, d, {B_, NH, T});
    else arena_.reserve(&b.att, d, {B_, NH, T, T});
    arena_.reserve(&b.attn_out, attn16, {N, NH * HS});
    arena_.reserve(&b.gate_up, a16, {N, 2 * F});
    arena_.reserve(&b.swiglu_out, a16, {N, F});
  };
  const int64_t R = execution_.recompute_layers;

  arena_.reserve(&params_, d, {table_.total_numel()});
  if (execution_.matmul_precision == ops::MatmulPrecision::Bf16 && d == DType::F32)
    arena_.reserve(&params16_, DType::BF16, {table_.total_numel()});
  if (execution_.gradients) arena_.reserve(&grads_, d, {table_.total_numel()});
  if (R > 0) {
    recomputed_ = std::make_unique<BlockActivations>();
    plan_block(*recomputed_);
    nc(&recompute_out_);
  }
  for (Slot& slot : slots_) {
    slot.blocks.resize(static_cast<size_t>(L));
    for (int64_t l = R; l < L; ++l) plan_block(slot.blocks[static_cast<size_t>(l)]);
    arena_.reserve(&slot.tokens, DType::I32, {N});
    arena_.reserve(&slot.targets, DType::I32, {N});
    arena_.reserve(&slot.residual, d, {(L + 1) * N, C});
    if (shard_.last_stage) {
      arena_.reserve(&slot.logits, a16, {N, V});
      for (Tensor* t : {&slot.losses, &slot.final_rstd}) rows(t);
      arena_.reserve(&slot.ce_stats, d, {4, N});
      arena_.reserve(&slot.final_norm_out, a16, {N, C});
    }
  }
  scratch_ = std::make_unique<BlockScratch>();
  BlockScratch& s = *scratch_;
  arena_.reserve(&s.qkv, attn16, {N, QKV});
  arena_.reserve(&s.dqkv, attn16, {N, QKV});
  arena_.reserve(&s.dq, attn16, {B_, NH, T, HS});
  for (Tensor* t : {&s.dk, &s.dv}) arena_.reserve(t, attn16, {B_, KV, T, HS});
  if (execution_.flash_attention) {
    arena_.reserve(&s.datt, d, {B_, NH, T});
  } else {
    for (Tensor* t : {&s.y_heads, &s.dy_heads}) arena_.reserve(t, d, {B_, NH, T, HS});
    arena_.reserve(&s.datt, d, {B_, NH, T, T});
  }
  arena_.reserve(&s.dattn_out, attn16, {N, NH * HS});
  for (Tensor* t : {&s.branch, &s.branch_normed, &s.dmid, &s.dsum, &s.dbranch, &s.dfin}) nc(t);
  arena_.reserve(&s.db, shape.out_norm ? d : a16, {N, C});  // bf16 where it only feeds the o / down backward
  arena_.reserve(&s.dgate_up, a16, {N, 2 * F});
  arena_.reserve(&s.dswiglu, a16, {N, F});
  for (Tensor* t : {&dresidual_a_, &dresidual_b_, &dfinal_}) nc(t);
  arena_.reserve(&rope_cos_, d, {T, HS / 2});
  arena_.reserve(&rope_sin_, d, {T, HS / 2});
  arena_.allocate();
  if (recomputed_) for (Slot& slot : slots_) std::fill_n(slot.blocks.begin(), R, *recomputed_);
  weights_ = weights_of(params_);
  if (execution_.gradients) dweights_ = weights_of(grads_);
  if (params16_.defined()) weights16_ = weights_of(params16_);
}

Tensor Model::view_of(const Tensor& flat, const std::string& name) const {
  const ParamEntry& e = table_.find(name);
  Tensor t = flat.slice_rows(e.offset, e.numel);
  t.ndim = static_cast<int>(e.shape.size());
  for (int i = 0; i < t.ndim; ++i) t.shape[i] = e.shape[static_cast<size_t>(i)];
  return t;
}

Tensor Model::param(const std::string& name) const { return view_of(params_, name); }
Tensor Model::grad(const std::string& name) const {
  PRORES_CHECK(execution_.gradients, "model: grad(", name, ") of a model built without gradients (evaluation only)");
  return view_of(grads_, name);
}

Model::Weights Model::weights_of(const Tensor& flat) const {
  const bool sandwich = config_.norm_placement == NormPlacement::Sandwich;
  Weights w;
  if (shard_.first_stage) w.embedding = view_of(flat, "model.embed_tokens.weight");
  if (shard_.last_stage) {
    w.final_norm = view_of(flat, "model.norm.weight");
    w.lm_head = view_of(flat, "lm_head.weight");
  }
  for (int64_t l = 0; l < local_layers(); ++l) {
    const int64_t i = shard_.first_layer - 1 + l;
    auto get = [&](const char* suffix) { return view_of(flat, layer_param(i, suffix)); };
    LayerWeights lw;
    lw.attn_norm = get("input_layernorm.weight");
    const Tensor q = get("self_attn.q_proj.weight"), k = get("self_attn.k_proj.weight");
    lw.qkv = q;  // q, k, v shards are adjacent: one ((NH + 2 KV)/TP · HS, C) matrix
    lw.qkv.shape[0] = q.shape[0] + 2 * k.shape[0];
    lw.o = get("self_attn.o_proj.weight");
    lw.mlp_norm = get("post_attention_layernorm.weight");
    lw.gate_up = get("mlp.gate_proj.weight");  // gate, up shards are adjacent: one (2F/TP, C) matrix
    lw.gate_up.shape[0] *= 2;
    lw.down = get("mlp.down_proj.weight");
    if (sandwich) {
      lw.attn_out_norm = get("attn_out_layernorm.weight");
      lw.mlp_out_norm = get("mlp_out_layernorm.weight");
    }
    w.layers.push_back(lw);
  }
  return w;
}

void Model::set_residual_scales(std::span<const double> scales) {
  PRORES_CHECK(static_cast<int64_t>(scales.size()) == local_layers(), "set_residual_scales: got ", scales.size(),
               " values for ", local_layers(), " layers");
  residual_scale_.assign(scales.begin(), scales.end());
}

void Model::set_residual_scales(const ResidualSchedule& schedule, int64_t t) {
  schedule.alphas(t, shard_.first_layer, local_layers(), residual_scale_.data());
}

void Model::zero_grads() {
  PRORES_CHECK(execution_.gradients, "model: zero_grads on a model built without gradients (evaluation only)");
  ops::zero(grads_);
}

void Model::round_matmul_weights() {
  if (params16_.defined()) ops::round_to_bf16(params16_, params_);
}

Tensor Model::residual(int64_t slot, int64_t index) const {
  const int64_t N = B_ * config_.seq_length;
  return slots_[static_cast<size_t>(slot)].residual.slice_rows(index * N, N);
}

Tensor Model::logits(int64_t slot) const { return slots_[static_cast<size_t>(slot)].logits; }

std::vector<double> Model::block_output_rms(int64_t slot) const {
  PRORES_CHECK(slot >= 0 && slot < num_slots(), "model: activation slot ", slot, " out of range");
  const double n = static_cast<double>(B_ * config_.seq_length * config_.hidden_size);
  std::vector<double> rms(static_cast<size_t>(local_layers()));
  for (int64_t l = 0; l < local_layers(); ++l)
    rms[static_cast<size_t>(l)] = std::sqrt(ops::sum_squares(residual(slot, l + 1)) / n);
  return rms;
}

double Model::forward(int64_t slot_index, const int32_t* tokens, const int32_t* targets) {
  PRORES_CHECK(slot_index >= 0 && slot_index < num_slots(), "model: activation slot ", slot_index, " out of range");
  Slot& slot = slots_[static_cast<size_t>(slot_index)];
  const int64_t N = B_ * config_.seq_length, L = local_layers();
  // Token and target ids are checked against the vocabulary by the vocabulary-parallel ops.
  if (shard_.first_stage) {
    ops::copy_from_host(slot.tokens, tokens);
    vocab_parallel_embedding_forward(residual(slot_index, 0), slot.tokens, weights_.embedding, vocab_start_, *tp_);
  }
  for (int64_t l = 0; l < L; ++l) block_forward(slot, l, residual(slot_index, l), residual(slot_index, l + 1));
  if (!shard_.last_stage) return 0.0;
  ops::copy_from_host(slot.targets, targets);
  ops::rmsnorm_forward(slot.final_norm_out, slot.final_rstd, residual(slot_index, L), weights_.final_norm,
                       config_.norm_eps, 1.0);
  ops::linear_forward(slot.logits, slot.final_norm_out, matmul_weights().lm_head, execution_.matmul_precision);
  vocab_parallel_cross_entropy_forward(slot.losses, slot.logits, slot.targets, vocab_start_,
                                       VocabParallelCrossEntropy::from_buffer(slot.ce_stats), *tp_);
  return ops::sum(slot.losses) / static_cast<double>(N);
}

void Model::backward(int64_t slot_index, double loss_scale) {
  PRORES_CHECK(execution_.gradients, "model: backward on a model built without gradients (evaluation only)");
  PRORES_CHECK(slot_index >= 0 && slot_index < num_slots(), "model: activation slot ", slot_index, " out of range");
  const Slot& slot = slots_[static_cast<size_t>(slot_index)];
  const int64_t N = B_ * config_.seq_length, L = local_layers();
  Tensor dy = dresidual_a_, dx = dresidual_b_;
  if (shard_.last_stage) {
    vocab_parallel_cross_entropy_backward(slot.logits, slot.logits, slot.targets, vocab_start_,
                                          VocabParallelCrossEntropy::from_buffer(slot.ce_stats),
                                          loss_scale / static_cast<double>(N));
    ops::linear_backward(dfinal_, dweights_.lm_head, slot.logits, slot.final_norm_out, matmul_weights().lm_head,
                         execution_.matmul_precision, ops::InputGrad::Overwrite);
    tp_->all_reduce(dfinal_, ReduceOp::Sum);  // column-parallel head: the input gradient sums over shards
    ops::rmsnorm_backward(dy, dweights_.final_norm, dfinal_, residual(slot_index, L), weights_.final_norm,
                          slot.final_rstd, 1.0, ops::InputGrad::Overwrite);
  }
  for (int64_t l = L - 1; l >= 0; --l) {
    if (l < execution_.recompute_layers)  // the activations the backward reads, as the forward left them
      block_forward(slots_[static_cast<size_t>(slot_index)], l, residual(slot_index, l), recompute_out_);
    block_backward(slot, l, residual(slot_index, l), dy, dx);
    if (grad_ready_hook_) grad_ready_hook_(l);
    std::swap(dx, dy);
  }
  input_grad_ = dy;
  if (shard_.first_stage) {
    vocab_parallel_embedding_backward(dweights_.embedding, dy, slot.tokens, vocab_start_);
    if (grad_ready_hook_) grad_ready_hook_(-1);
  }
}

}  // namespace prores
