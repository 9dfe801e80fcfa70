// ParamTable construction. Per block the order keeps q/k/v and gate/up adjacent, so that each rank's
// shards form one fused matrix ((NH + 2 KV)/TP · HS, C) and (2F/TP, C) in the flat buffer. Column-parallel
// weights (q, k, v, gate, up, the vocabulary-parallel embedding and LM head) split rows; row-parallel
// ones (o_proj, down_proj) split columns; norms are replicated.
#include "model/param_table.h"

#include "core/check.h"

namespace prores {

std::string layer_param(int64_t layer_index0, const std::string& suffix) {
  return "model.layers." + std::to_string(layer_index0) + "." + suffix;
}

ParamTable::ParamTable(const ModelConfig& c, const ModelShard& s) : tp_size_(s.tp_size), tp_rank_(s.tp_rank) {
  const int64_t C = c.hidden_size, F = c.ffn_hidden_size, V = c.vocab_size;
  const int64_t HS = c.head_size(), NH = c.num_attention_heads, KV = c.kv_groups();
  const bool sandwich = c.norm_placement == NormPlacement::Sandwich;
  const int64_t num_layers = s.num_layers < 0 ? c.num_layers : s.num_layers;
  PRORES_CHECK(s.tp_size >= 1 && s.tp_rank >= 0 && s.tp_rank < s.tp_size, "bad tensor-parallel rank ", s.tp_rank,
               " of ", s.tp_size);
  ModelShard resolved = s;
  resolved.num_layers = num_layers;
  PRORES_CHECK(s.chunks >= 1 && num_layers % s.chunks == 0, "stage of ", num_layers, " layers in ", s.chunks,
               " chunks");
  const int64_t last = num_layers > 0 ? resolved.layer(num_layers - 1) : s.first_layer - 1;
  PRORES_CHECK(s.first_layer >= 1 && last <= c.num_layers, "stage layers ", s.first_layer, "..", last, " outside 1..",
               c.num_layers);
  if (s.first_stage) add("model.embed_tokens.weight", {V, C}, 0, ParamRole::Embedding, 0);
  for (int64_t local = 0; local < num_layers; ++local) {
    const int64_t l = resolved.layer(local), i = l - 1;
    add(layer_param(i, "input_layernorm.weight"), {C}, -1, ParamRole::Norm, l);
    add(layer_param(i, "self_attn.q_proj.weight"), {NH * HS, C}, 0, ParamRole::QueryKey, l);
    add(layer_param(i, "self_attn.k_proj.weight"), {KV * HS, C}, 0, ParamRole::QueryKey, l);
    add(layer_param(i, "self_attn.v_proj.weight"), {KV * HS, C}, 0, ParamRole::Value, l);
    add(layer_param(i, "self_attn.o_proj.weight"), {C, NH * HS}, 1, ParamRole::ResidualOut, l);
    if (sandwich) add(layer_param(i, "attn_out_layernorm.weight"), {C}, -1, ParamRole::Norm, l);
    add(layer_param(i, "post_attention_layernorm.weight"), {C}, -1, ParamRole::Norm, l);
    add(layer_param(i, "mlp.gate_proj.weight"), {F, C}, 0, ParamRole::MlpIn, l);
    add(layer_param(i, "mlp.up_proj.weight"), {F, C}, 0, ParamRole::MlpIn, l);
    add(layer_param(i, "mlp.down_proj.weight"), {C, F}, 1, ParamRole::ResidualOut, l);
    if (sandwich) add(layer_param(i, "mlp_out_layernorm.weight"), {C}, -1, ParamRole::Norm, l);
  }
  if (s.last_stage) {
    add("model.norm.weight", {C}, -1, ParamRole::Norm, 0);
    add("lm_head.weight", {V, C}, 0, ParamRole::LmHead, 0);
  }
}

void ParamTable::add(const std::string& name, std::vector<int64_t> global_shape, int shard_axis, ParamRole role,
                     int64_t layer) {
  ParamEntry e;
  e.name = name;
  e.shape = global_shape;
  if (shard_axis >= 0) {
    const int64_t extent = global_shape[static_cast<size_t>(shard_axis)];
    PRORES_CHECK(extent % tp_size_ == 0, name, ": dimension ", extent, " is not divisible by the tensor-parallel size ",
                 tp_size_);
    e.shape[static_cast<size_t>(shard_axis)] = extent / tp_size_;
    e.shard_offset = tp_rank_ * (extent / tp_size_);
  }
  e.global_shape = std::move(global_shape);
  e.shard_axis = shard_axis;
  e.numel = 1;
  for (int64_t d : e.shape) e.numel *= d;
  e.offset = total_;
  e.role = role;
  e.weight_decay = role != ParamRole::Embedding && role != ParamRole::Norm;
  e.layer = layer;
  total_ += e.numel;
  entries_.push_back(std::move(e));
}

const ParamEntry& ParamTable::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return e;
  PRORES_FAIL("unknown parameter '", name, "'");
}

bool ParamTable::contains(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return true;
  return false;
}

int64_t ParamTable::matmul_numel() const {
  int64_t n = 0;
  for (const auto& e : entries_)
    if (e.role != ParamRole::Embedding && e.role != ParamRole::Norm) n += e.numel;
  return n;
}

}  // namespace prores
