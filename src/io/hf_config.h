// Hugging Face LlamaForCausalLM config.json: writing, reading and the tensors such a model holds.
//
// Parameter names map by identity: ours ARE Hugging Face Llama's (model.embed_tokens.weight,
// model.layers.{i}.input_layernorm.weight, model.layers.{i}.self_attn.{q,k,v,o}_proj.weight,
// model.layers.{i}.post_attention_layernorm.weight, model.layers.{i}.mlp.{gate,up,down}_proj.weight,
// model.norm.weight, lm_head.weight), every linear in PyTorch's (out, in) layout, so export and import
// copy tensors unchanged. Rotary embedding: ours is HF's rotate-half convention (ops/rope.h pairs
// element i with i + HS/2 of each head), so q_proj and k_proj need no row permutation either; only
// Meta's original interleaved checkpoints need one, and those are not read here.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace prores::io {

// The fields of a LlamaConfig that define the network. Defaults are transformers' LlamaConfig
// defaults, which parse_hf_config also applies when an optional field is absent.
struct HfLlamaConfig {
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // = num_attention_heads unless grouped-query attention
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;  // written by to_json; parse_hf_config refuses true
  std::string torch_dtype = "float32";  // the dtype of the weights in model.safetensors
  double initializer_range = 0.02;
  std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;  // written only when set
};

// Throws prores::Error (starting with `where`) unless every size is positive, num_attention_heads
// divides hidden_size, num_key_value_heads divides num_attention_heads, and eps and theta are positive.
void check_hf_config(const HfLlamaConfig& config, const std::string& where);

// config.json text as transformers writes it (keys sorted, two-space indent, trailing newline), with
// "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", no biases,
// "head_dim" = hidden_size / num_attention_heads, "rope_scaling": null and the RoPE base twice: as
// "rope_theta" (what transformers 4.x reads) and as "rope_parameters": {"rope_theta": θ, "rope_type":
// "default"} (what 5.x reads), so that both versions build the same model. Written with nlohmann-json,
// whose numbers are Python json's for the values a config holds (1e-05, 0.02, 500000.0). They differ for
// 1e15 <= |x| < 1e16 (1e+15, Python 1000000000000000.0) and, in about 0.1% of doubles that need 16-17
// digits, in the last digit (nlohmann's Grisu2 is not always the shortest); both read back to the same
// double. Checks config first.
std::string to_json(const HfLlamaConfig& config);

// Reads a config.json as transformers 4.x or 5.x writes it. Required: hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads, vocab_size, max_position_embeddings; a missing one throws naming
// it. num_key_value_heads defaults to num_attention_heads, the others to LlamaConfig's defaults; "dtype"
// (newer transformers) is read as torch_dtype; a token id given as a list keeps its first element. The
// RoPE base is the top-level rope_theta, rope_parameters.rope_theta or rope_scaling.rope_theta (10000 when
// none is given); bases given in more than one place must agree. Settings this trainer cannot reproduce
// throw, naming the field and its value: model_type other than "llama", hidden_act other than "silu",
// attention or MLP bias, tied embeddings, a head_dim other than hidden_size / num_attention_heads, a RoPE
// type other than "default" or any other key in rope_parameters / rope_scaling, partial_rotary_factor
// other than 1, attention_dropout other than 0, pretraining_tp below 1 and a quantization_config. Errors
// start with path_for_errors.
HfLlamaConfig parse_hf_config(const std::string& json_text, const std::string& path_for_errors);

// parse_hf_config on the contents of path.
HfLlamaConfig read_hf_config(const std::string& path);
// Writes to_json(config) to path.tmp, then renames it to path.
void write_hf_config(const std::string& path, const HfLlamaConfig& config);

// A tensor of the Hugging Face checkpoint: name and PyTorch shape.
struct HfTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor a LlamaForCausalLM with this config holds, in our ParamTable's order (embedding, blocks,
// final norm, LM head; no lm_head.weight when tie_word_embeddings).
std::vector<HfTensorSpec> hf_llama_tensors(const HfLlamaConfig& config);

}  // namespace prores::io
