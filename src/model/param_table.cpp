// ParamTable construction: the parameter order per block keeps q/k/v and gate/up adjacent so that each
// pair forms one fused matrix ((NH + 2 KV)·HS, C) and (2F, C) in the flat buffer.
#include "model/param_table.h"

#include "core/check.h"

namespace prores {

std::string layer_param(int64_t layer_index0, const std::string& suffix) {
  return "model.layers." + std::to_string(layer_index0) + "." + suffix;
}

ParamTable::ParamTable(const ModelConfig& c) {
  const int64_t C = c.hidden_size, F = c.ffn_hidden_size, V = c.vocab_size;
  const int64_t HS = c.head_size(), NH = c.num_attention_heads, KV = c.kv_groups();
  const bool sandwich = c.norm_placement == NormPlacement::Sandwich;
  add("model.embed_tokens.weight", {V, C}, false, 0);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const int64_t l = i + 1;
    add(layer_param(i, "input_layernorm.weight"), {C}, false, l);
    add(layer_param(i, "self_attn.q_proj.weight"), {NH * HS, C}, true, l);
    add(layer_param(i, "self_attn.k_proj.weight"), {KV * HS, C}, true, l);
    add(layer_param(i, "self_attn.v_proj.weight"), {KV * HS, C}, true, l);
    add(layer_param(i, "self_attn.o_proj.weight"), {C, NH * HS}, true, l);
    if (sandwich) add(layer_param(i, "attn_out_layernorm.weight"), {C}, false, l);
    add(layer_param(i, "post_attention_layernorm.weight"), {C}, false, l);
    add(layer_param(i, "mlp.gate_proj.weight"), {F, C}, true, l);
    add(layer_param(i, "mlp.up_proj.weight"), {F, C}, true, l);
    add(layer_param(i, "mlp.down_proj.weight"), {C, F}, true, l);
    if (sandwich) add(layer_param(i, "mlp_out_layernorm.weight"), {C}, false, l);
  }
  add("model.norm.weight", {C}, false, 0);
  add("lm_head.weight", {V, C}, true, 0);
}

void ParamTable::add(const std::string& name, std::vector<int64_t> shape, bool weight_decay, int64_t layer) {
  ParamEntry e;
  e.name = name;
  e.numel = 1;
  for (int64_t d : shape) e.numel *= d;
  e.shape = std::move(shape);
  e.offset = total_;
  e.weight_decay = weight_decay;
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
    if (e.shape.size() == 2 && e.name != "model.embed_tokens.weight") n += e.numel;
  return n;
}

}  // namespace prores
