// Plain configuration structs shared across folders (filled by cli/ from Boost.Program_options + INI), and
// ModelConfig's one field list (for_each_model_field), from which the command-line options, the checkpoint
// attributes and the checkpoint-ownership checks are all made.
#pragma once
#include <charconv>
#include <cstdint>
#include <string>
#include <type_traits>

namespace prores {

enum class NormPlacement { Pre, Post, Sandwich, DeepNorm };
enum class InitScheme { Normal, Scaled, DsInit, DsInitXavier, DeepNorm };
// How the normal draws of --init-scheme are made (docs/prores.md): the released code's plain normal with the
// token embedding at σ·√d, or the paper's truncated normal (at ±3 std) for every weight, the embedding at σ.
enum class InitDistribution { Normal, TruncatedNormal };

NormPlacement parse_norm_placement(const std::string& name);  // throws prores::Error naming the value
InitScheme parse_init_scheme(const std::string& name);
InitDistribution parse_init_distribution(const std::string& name);
const char* norm_placement_name(NormPlacement p);
const char* init_scheme_name(InitScheme s);
const char* init_distribution_name(InitDistribution d);
// The same, overloaded for generic code over the fields of ModelConfig.
inline const char* name_of(NormPlacement p) { return norm_placement_name(p); }
inline const char* name_of(InitScheme s) { return init_scheme_name(s); }
inline const char* name_of(InitDistribution d) { return init_distribution_name(d); }
inline void parse_into(const std::string& name, NormPlacement& p) { p = parse_norm_placement(name); }
inline void parse_into(const std::string& name, InitScheme& s) { s = parse_init_scheme(name); }
inline void parse_into(const std::string& name, InitDistribution& d) { d = parse_init_distribution(name); }

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
  InitDistribution init_distribution = InitDistribution::Normal;
  double init_method_std = 0.02;
  bool layernorm_scaling = false;

  int64_t kv_groups() const { return num_query_groups > 0 ? num_query_groups : num_attention_heads; }
  int64_t head_size() const { return hidden_size / num_attention_heads; }
  void validate() const;  // throws prores::Error naming the offending option and value
};

// One field of ModelConfig as the outside world names it.
struct ModelField {
  const char* option;  // the command-line option without dashes; the checkpoint attribute is attribute_key(option)
  const char* help;
  // Whether a loaded checkpoint decides the field (docs/checkpoints.md): true for everything that defines the
  // network's function, and for the init settings the checkpoint records (the loaded weights were made with them);
  // false for what may change on resume (the sequence length).
  bool owned_by_checkpoint;
};

// "num-layers" -> "num_layers".
std::string attribute_key(const char* option);

// A field's value as the command line writes it: true or false, the enum's name, the shortest digits of a
// number that read back to it.
template <typename T>
std::string field_text(const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_enum_v<T>) {
    return name_of(value);
  } else {
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, value).ptr);
  }
}

// Calls f(field, &ModelConfig::member) for every field of ModelConfig, in a fixed order. The members are int64_t,
// double, bool, NormPlacement, InitScheme or InitDistribution.
template <typename F>
void for_each_model_field(F&& f) {
  f(ModelField{"num-layers", "transformer blocks L", true}, &ModelConfig::num_layers);
  f(ModelField{"hidden-size", "model width C", true}, &ModelConfig::hidden_size);
  f(ModelField{"ffn-hidden-size", "SwiGLU width F", true}, &ModelConfig::ffn_hidden_size);
  f(ModelField{"num-attention-heads", "query heads NH", true}, &ModelConfig::num_attention_heads);
  f(ModelField{"num-query-groups", "key/value groups KV for grouped-query attention (0: one per head)", true},
    &ModelConfig::num_query_groups);
  f(ModelField{"seq-length", "sequence length T", false}, &ModelConfig::seq_length);
  f(ModelField{"vocab-size", "vocabulary size V", true}, &ModelConfig::vocab_size);
  f(ModelField{"rotary-base", "rotary embedding base", true}, &ModelConfig::rotary_base);
  f(ModelField{"norm-eps", "RMSNorm epsilon", true}, &ModelConfig::norm_eps);
  f(ModelField{"norm-placement", "pre, post, sandwich or deepnorm", true}, &ModelConfig::norm_placement);
  f(ModelField{"init-scheme", "normal, scaled, ds-init, ds-init-xavier or deepnorm", true}, &ModelConfig::init_scheme);
  f(ModelField{"init-distribution",
               "normal (the reference code: embedding at sigma*sqrt(d)) or truncated-normal (the paper: every weight "
               "truncated at 3 std, embedding at sigma)",
               true},
    &ModelConfig::init_distribution);
  f(ModelField{"init-method-std", "init std sigma", true}, &ModelConfig::init_method_std);
  f(ModelField{"layernorm-scaling", "scale block l's norms by 1/sqrt(l)", true}, &ModelConfig::layernorm_scaling);
}

// Every field as "option value", comma-separated ("num-layers 2, hidden-size 64, ..."), for the start-up line.
std::string describe(const ModelConfig& config);

}  // namespace prores
