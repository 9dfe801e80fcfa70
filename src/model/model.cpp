// Model construction, buffer planning and the whole-model forward/backward (embedding → blocks → final
// norm → LM head → cross-entropy). The blocks themselves are in model_block.cpp.
#include "model/model.h"

#include "model/block.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"

namespace prores {

Model::Model(const ModelConfig& config, int64_t micro_batch, DType dtype)
    : config_(config), table_((config.validate(), config)), B_(micro_batch), dtype_(dtype) {
  PRORES_CHECK(micro_batch >= 1, "--micro-batch-size must be positive, got ", micro_batch);
  PRORES_CHECK(dtype == DType::F32 || dtype == DType::F64, "model dtype must be f32 or f64, got ",
               dtype_name(dtype));
  alpha_.assign(static_cast<size_t>(config_.num_layers), 1.0);
  plan_buffers();
  ops::rope_table(rope_cos_, rope_sin_, config_.rotary_base);
}

Model::~Model() = default;

void Model::plan_buffers() {
  const int64_t N = B_ * config_.seq_length, T = config_.seq_length, C = config_.hidden_size;
  const int64_t F = config_.ffn_hidden_size, V = config_.vocab_size, L = config_.num_layers;
  const int64_t NH = config_.num_attention_heads, KV = config_.kv_groups(), HS = config_.head_size();
  const int64_t QKV = (NH + 2 * KV) * HS;
  const SublayerShape shape = sublayer_shape(config_.norm_placement, L);
  const DType d = dtype_;
  auto nc = [&](Tensor* t) { arena_.reserve(t, d, {N, C}); };
  auto rows = [&](Tensor* t) { arena_.reserve(t, d, {N}); };
  auto plan_sublayer = [&](SublayerActivations& a) {
    if (shape.in_norm) { nc(&a.f_in); rows(&a.rstd_in); }
    if (shape.out_norm) { nc(&a.branch); rows(&a.rstd_out); }
    if (shape.post_norm) { nc(&a.s); rows(&a.rstd_post); }
  };

  arena_.reserve(&params_, d, {table_.total_numel()});
  arena_.reserve(&grads_, d, {table_.total_numel()});
  blocks_.resize(static_cast<size_t>(L));
  for (BlockActivations& b : blocks_) {
    plan_sublayer(b.attn);
    plan_sublayer(b.mlp);
    nc(&b.mid);
    arena_.reserve(&b.q, d, {B_, NH, T, HS});
    arena_.reserve(&b.k, d, {B_, KV, T, HS});
    arena_.reserve(&b.v, d, {B_, KV, T, HS});
    arena_.reserve(&b.att, d, {B_, NH, T, T});
    arena_.reserve(&b.attn_out, d, {N, NH * HS});
    arena_.reserve(&b.gate_up, d, {N, 2 * F});
    arena_.reserve(&b.swiglu_out, d, {N, F});
  }
  scratch_ = std::make_unique<BlockScratch>();
  BlockScratch& s = *scratch_;
  arena_.reserve(&s.qkv, d, {N, QKV});
  arena_.reserve(&s.dqkv, d, {N, QKV});
  for (Tensor* t : {&s.y_heads, &s.dy_heads, &s.dq}) arena_.reserve(t, d, {B_, NH, T, HS});
  for (Tensor* t : {&s.dk, &s.dv}) arena_.reserve(t, d, {B_, KV, T, HS});
  arena_.reserve(&s.datt, d, {B_, NH, T, T});
  arena_.reserve(&s.dattn_out, d, {N, NH * HS});
  for (Tensor* t : {&s.branch, &s.branch_normed, &s.dmid, &s.dsum, &s.db, &s.dbranch, &s.dfin}) nc(t);
  arena_.reserve(&s.dgate_up, d, {N, 2 * F});
  arena_.reserve(&s.dswiglu, d, {N, F});

  arena_.reserve(&tokens_, DType::I32, {N});
  arena_.reserve(&targets_, DType::I32, {N});
  arena_.reserve(&residual_, d, {(L + 1) * N, C});
  arena_.reserve(&logits_, d, {N, V});
  rows(&losses_);
  for (Tensor* t : {&final_norm_out_, &dresidual_a_, &dresidual_b_, &dfinal_}) nc(t);
  rows(&final_rstd_);
  arena_.reserve(&rope_cos_, d, {T, HS / 2});
  arena_.reserve(&rope_sin_, d, {T, HS / 2});
  arena_.allocate();
  weights_ = weights_of(params_);
  dweights_ = weights_of(grads_);
}

Tensor Model::view_of(const Tensor& flat, const std::string& name) const {
  const ParamEntry& e = table_.find(name);
  Tensor t = flat.slice_rows(e.offset, e.numel);
  t.ndim = static_cast<int>(e.shape.size());
  for (int i = 0; i < t.ndim; ++i) t.shape[i] = e.shape[static_cast<size_t>(i)];
  return t;
}

Tensor Model::param(const std::string& name) const { return view_of(params_, name); }
Tensor Model::grad(const std::string& name) const { return view_of(grads_, name); }

Model::Weights Model::weights_of(const Tensor& flat) const {
  const int64_t C = config_.hidden_size, F = config_.ffn_hidden_size;
  const int64_t QKV = (config_.num_attention_heads + 2 * config_.kv_groups()) * config_.head_size();
  const bool sandwich = config_.norm_placement == NormPlacement::Sandwich;
  Weights w;
  w.embedding = view_of(flat, "model.embed_tokens.weight");
  w.final_norm = view_of(flat, "model.norm.weight");
  w.lm_head = view_of(flat, "lm_head.weight");
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    auto get = [&](const char* suffix) { return view_of(flat, layer_param(i, suffix)); };
    LayerWeights lw;
    lw.attn_norm = get("input_layernorm.weight");
    lw.qkv = get("self_attn.q_proj.weight");  // q, k, v are adjacent: one (QKV, C) matrix
    lw.qkv.shape[0] = QKV;
    lw.o = get("self_attn.o_proj.weight");
    lw.mlp_norm = get("post_attention_layernorm.weight");
    lw.gate_up = get("mlp.gate_proj.weight");  // gate, up are adjacent: one (2F, C) matrix
    lw.gate_up.shape[0] = 2 * F;
    lw.down = get("mlp.down_proj.weight");
    if (sandwich) {
      lw.attn_out_norm = get("attn_out_layernorm.weight");
      lw.mlp_out_norm = get("mlp_out_layernorm.weight");
    }
    PRORES_CHECK(lw.qkv.shape[1] == C && lw.gate_up.shape[1] == C, "parameter table layout mismatch");
    w.layers.push_back(lw);
  }
  return w;
}

void Model::set_alphas(std::span<const double> alpha) {
  PRORES_CHECK(static_cast<int64_t>(alpha.size()) == config_.num_layers, "set_alphas: got ", alpha.size(),
               " values for ", config_.num_layers, " layers");
  alpha_.assign(alpha.begin(), alpha.end());
}

void Model::zero_grads() { ops::zero(grads_); }

Tensor Model::residual(int64_t index) const {
  const int64_t N = B_ * config_.seq_length;
  return residual_.slice_rows(index * N, N);
}

double Model::forward(const int32_t* tokens, const int32_t* targets) {
  const int64_t N = B_ * config_.seq_length, V = config_.vocab_size;
  for (int64_t i = 0; i < N; ++i) {
    PRORES_CHECK(tokens[i] >= 0 && tokens[i] < V, "token id ", tokens[i], " at position ", i,
                 " is outside the vocabulary [0, ", V, ")");
    PRORES_CHECK(targets[i] >= 0 && targets[i] < V, "target id ", targets[i], " at position ", i,
                 " is outside the vocabulary [0, ", V, ")");
  }
  std::copy(tokens, tokens + N, tokens_.as<int32_t>());
  std::copy(targets, targets + N, targets_.as<int32_t>());

  ops::embedding_forward(residual(0), tokens_, weights_.embedding);
  for (int64_t l = 0; l < config_.num_layers; ++l) block_forward(l, residual(l), residual(l + 1));
  ops::rmsnorm_forward(final_norm_out_, final_rstd_, residual(config_.num_layers), weights_.final_norm,
                       config_.norm_eps, 1.0);
  ops::linear_forward(logits_, final_norm_out_, weights_.lm_head);
  ops::cross_entropy_forward(losses_, logits_, targets_);
  return ops::sum(losses_) / static_cast<double>(N);
}

void Model::backward(double loss_scale) {
  const int64_t N = B_ * config_.seq_length, L = config_.num_layers;
  ops::cross_entropy_backward(logits_, logits_, targets_, loss_scale / static_cast<double>(N));
  ops::zero(dfinal_);
  ops::linear_backward(dfinal_, dweights_.lm_head, logits_, final_norm_out_, weights_.lm_head);
  Tensor dy = dresidual_a_, dx = dresidual_b_;
  ops::zero(dy);
  ops::rmsnorm_backward(dy, dweights_.final_norm, dfinal_, residual(L), weights_.final_norm,
                        final_rstd_, 1.0);
  for (int64_t l = L - 1; l >= 0; --l) {
    block_backward(l, residual(l), dy, dx);
    std::swap(dx, dy);
  }
  ops::embedding_backward(dweights_.embedding, dy, tokens_);
}

}  // namespace prores
