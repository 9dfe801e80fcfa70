// Plain configuration structs shared across folders (filled by cli/ from Boost.Program_options + INI).
#pragma once
#include <cstdint>
#include <string>

namespace prores {

enum class NormPlacement { Pre, Post, Sandwich, DeepNorm };
enum class InitScheme { Normal, Scaled, DsInit, DeepNorm };

NormPlacement parse_norm_placement(const std::string& name);  // throws prores::Error naming the value
InitScheme parse_init_scheme(const std::string& name);
const char* norm_placement_name(NormPlacement p);
const char* init_scheme_name(InitScheme s);

struct ModelConfig {
  int64_t num_layers = 2;          // L
  int64_t hidden_size = 64;        // C
  int64_t ffn_hidden_size = 128;   // F
  int64_t num_attention_heads = 4; // NH
  int64_t num_query_groups = 0;    // KV; 0 means NH (plain multi-head attention)
  int64_t seq_length = 32;         // T
  int64_t vocab_size = 256;        // V
  double rotary_base = 10000.0;
  double norm_eps = 1e-5;
  NormPlacement norm_placement = NormPlacement::Pre;
  InitScheme init_scheme = InitScheme::Normal;
  double init_method_std = 0.02;
  bool layernorm_scaling = false;

  int64_t kv_groups() const { return num_query_groups > 0 ? num_query_groups : num_attention_heads; }
  int64_t head_size() const { return hidden_size / num_attention_heads; }
  void validate() const;  // throws prores::Error naming the offending option and value
};

}  // namespace prores
