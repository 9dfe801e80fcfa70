// Name parsing and validation for the configuration structs.
#include "core/config.h"

#include <cmath>

#include "core/check.h"

namespace prores {

NormPlacement parse_norm_placement(const std::string& name) {
  if (name == "pre") return NormPlacement::Pre;
  if (name == "post") return NormPlacement::Post;
  if (name == "sandwich") return NormPlacement::Sandwich;
  if (name == "deepnorm") return NormPlacement::DeepNorm;
  PRORES_FAIL("--norm-placement: unknown value '", name, "' (expected pre, post, sandwich or deepnorm)");
}

InitScheme parse_init_scheme(const std::string& name) {
  if (name == "normal") return InitScheme::Normal;
  if (name == "scaled") return InitScheme::Scaled;
  if (name == "ds-init") return InitScheme::DsInit;
  if (name == "ds-init-xavier") return InitScheme::DsInitXavier;
  if (name == "deepnorm") return InitScheme::DeepNorm;
  PRORES_FAIL("--init-scheme: unknown value '", name,
              "' (expected normal, scaled, ds-init, ds-init-xavier or deepnorm)");
}

InitDistribution parse_init_distribution(const std::string& name) {
  if (name == "normal") return InitDistribution::Normal;
  if (name == "truncated-normal") return InitDistribution::TruncatedNormal;
  PRORES_FAIL("--init-distribution: unknown value '", name, "' (expected normal or truncated-normal)");
}

const char* norm_placement_name(NormPlacement p) {
  switch (p) {
    case NormPlacement::Pre: return "pre";
    case NormPlacement::Post: return "post";
    case NormPlacement::Sandwich: return "sandwich";
    case NormPlacement::DeepNorm: return "deepnorm";
  }
  return "?";
}

const char* init_scheme_name(InitScheme s) {
  switch (s) {
    case InitScheme::Normal: return "normal";
    case InitScheme::Scaled: return "scaled";
    case InitScheme::DsInit: return "ds-init";
    case InitScheme::DsInitXavier: return "ds-init-xavier";
    case InitScheme::DeepNorm: return "deepnorm";
  }
  return "?";
}

const char* init_distribution_name(InitDistribution d) {
  switch (d) {
    case InitDistribution::Normal: return "normal";
    case InitDistribution::TruncatedNormal: return "truncated-normal";
  }
  return "?";
}

std::string attribute_key(const char* option) {
  std::string key = option;
  for (char& c : key)
    if (c == '-') c = '_';
  return key;
}

std::string describe(const ModelConfig& config) {
  std::string text;
  for_each_model_field([&](const ModelField& field, auto member) {
    text += (text.empty() ? "" : ", ") + std::string(field.option) + " " + field_text(config.*member);
  });
  return text;
}

void ModelConfig::validate() const {
  PRORES_CHECK(num_layers >= 1, "--num-layers must be at least 1, got ", num_layers);
  PRORES_CHECK(hidden_size >= 1, "--hidden-size must be positive, got ", hidden_size);
  PRORES_CHECK(ffn_hidden_size >= 1, "--ffn-hidden-size must be positive, got ", ffn_hidden_size);
  PRORES_CHECK(num_attention_heads >= 1, "--num-attention-heads must be positive, got ", num_attention_heads);
  PRORES_CHECK(hidden_size % num_attention_heads == 0, "--hidden-size ", hidden_size,
               " is not divisible by --num-attention-heads ", num_attention_heads);
  PRORES_CHECK(head_size() % 2 == 0, "head size --hidden-size / --num-attention-heads = ", head_size(),
               " must be even for rotary embeddings");
  PRORES_CHECK(num_query_groups >= 0, "--num-query-groups must be non-negative, got ", num_query_groups);
  PRORES_CHECK(num_attention_heads % kv_groups() == 0, "--num-attention-heads ", num_attention_heads,
               " is not divisible by --num-query-groups ", kv_groups());
  PRORES_CHECK(seq_length >= 1, "--seq-length must be positive, got ", seq_length);
  PRORES_CHECK(vocab_size >= 2, "--vocab-size must be at least 2, got ", vocab_size);
  PRORES_CHECK(std::isfinite(rotary_base) && rotary_base > 0, "--rotary-base must be positive, got ", rotary_base);
  PRORES_CHECK(std::isfinite(norm_eps) && norm_eps > 0, "--norm-eps must be positive, got ", norm_eps);
  PRORES_CHECK(std::isfinite(init_method_std) && init_method_std > 0, "--init-method-std must be positive, got ",
               init_method_std);
}

}  // namespace prores
