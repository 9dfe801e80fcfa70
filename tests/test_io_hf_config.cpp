// Hugging Face config.json as transformers 4.x and 5.x write it: the RoPE base read from the top-level
// rope_theta (4.x), rope_parameters (5.x) or rope_scaling, bases that disagree refused, every LlamaConfig
// setting this trainer cannot reproduce refused with an error naming the field and its value, and
// to_json's output read back unchanged.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/check.h"
#include "io/hf_config.h"

namespace {

using namespace prores;
using namespace prores::io;

// What transformers 4.57.6 saves for LlamaConfig(..., rope_theta=50000) (with the "architectures" a model's
// save adds): the base at the top level, rope_scaling null.
const char* const kTransformers4 = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 1, "dtype": "float32", "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu",
  "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 32,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
  "num_key_value_heads": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "rope_theta": 50000.0, "tie_word_embeddings": false, "transformers_version": "4.57.6",
  "use_cache": true, "vocab_size": 256})";

// The same by transformers 5.25.0 (rope_parameters={"rope_theta": 50000.0, "rope_type": "default"}): no
// top-level rope_theta, the base only in rope_parameters.
const char* const kTransformers5 = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 1, "dtype": "float32", "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu",
  "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 32,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
  "num_key_value_heads": 2, "pad_token_id": null, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_parameters": {"rope_theta": 50000.0, "rope_type": "default"}, "tie_word_embeddings": false,
  "transformers_version": "5.25.0", "use_cache": true, "vocab_size": 256})";

// text with its first occurrence of from replaced by to.
std::string replaced(const std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.substr(0, at) + to + text.substr(at + from.size());
}

// The message parse_hf_config throws for text ("" when it accepts it).
std::string error_of(const std::string& text) {
  try {
    parse_hf_config(text, "hf/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfConfigRope, Transformers4ConfigGivesItsBase) {
  const HfLlamaConfig c = parse_hf_config(kTransformers4, "config.json");
  EXPECT_EQ(c.rope_theta, 50000.0);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(HfConfigRope, Transformers5ConfigGivesItsBase) {
  const HfLlamaConfig c = parse_hf_config(kTransformers5, "config.json");
  EXPECT_EQ(c.rope_theta, 50000.0);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.eos_token_id, 2);
}

TEST(HfConfigRope, EveryPlaceOfTheBaseIsRead) {
  const std::string v4 = kTransformers4;
  const std::string no_theta = replaced(v4, "\"rope_theta\": 50000.0,", "");
  EXPECT_EQ(parse_hf_config(no_theta, "c").rope_theta, 10000.0);
  for (const char* scaling : {R"({"rope_type": "default", "rope_theta": 50000})",
                              R"({"type": "default", "rope_theta": 50000.0})"}) {
    const std::string text = replaced(no_theta, "\"rope_scaling\": null", std::string("\"rope_scaling\": ") + scaling);
    EXPECT_EQ(parse_hf_config(text, "c").rope_theta, 50000.0) << scaling;
  }
  const std::string default_type = replaced(v4, "\"rope_scaling\": null", R"("rope_scaling": {"type": "default"})");
  EXPECT_EQ(parse_hf_config(default_type, "c").rope_theta, 50000.0);
  const std::string both = replaced(v4, "\"rope_scaling\": null",
                                    R"("rope_parameters": {"rope_theta": 50000, "rope_type": "default",
                                       "partial_rotary_factor": 1.0})");
  EXPECT_EQ(parse_hf_config(both, "c").rope_theta, 50000.0);
}

TEST(HfConfigRope, DisagreeingBasesAreRefusedNamingBoth) {
  const std::string text =
      replaced(kTransformers5, "\"rope_parameters\"", "\"rope_theta\": 10000, \"rope_parameters\"");
  const std::string error = error_of(text);
  EXPECT_NE(error.find("hf/config.json: rope_theta 10000.0 and rope_parameters.rope_theta 50000.0 differ"),
            std::string::npos)
      << error;
  const std::string scaling =
      replaced(kTransformers5, "\"rope_parameters\"",
               R"("rope_scaling": {"rope_type": "default", "rope_theta": 500000}, "rope_parameters")");
  EXPECT_NE(error_of(scaling).find("rope_parameters.rope_theta 50000.0 and rope_scaling.rope_theta 500000.0 differ"),
            std::string::npos)
      << error_of(scaling);
}

// Each (text to replace in the 4.x or 5.x config, replacement, what the error must say).
struct Refusal {
  bool v5;
  std::string from, to, expected;
};

TEST(HfConfigFields, SettingsThisTrainerCannotReproduceAreRefused) {
  const std::string rope5 = R"("rope_parameters": {"rope_theta": 50000.0, "rope_type": "default"})";
  const std::vector<Refusal> refusals = {
      {true, rope5, R"("rope_parameters": {"rope_theta": 50000.0, "rope_type": "linear", "factor": 2.0})",
       "rope_parameters.rope_type \"linear\" is not supported (only \"default\")"},
      {true, rope5, R"("rope_parameters": {"rope_type": "yarn", "factor": 4.0})", "rope_parameters.rope_type \"yarn\""},
      {true, rope5, R"("rope_parameters": {"rope_theta": 50000.0, "rope_type": "default", "factor": 2.0})",
       "rope_parameters.factor 2.0 is not supported"},
      {true, rope5, R"("rope_parameters": {"rope_theta": 50000.0, "partial_rotary_factor": 0.5})",
       "rope_parameters.partial_rotary_factor 0.5 is not supported"},
      {true, rope5, R"("rope_parameters": {"rope_type": "default", "mrope_section": [2, 3]})",
       "rope_parameters.mrope_section [2, 3] is not supported"},
      {true, rope5, R"("rope_parameters": 50000)", "\"rope_parameters\" must be an object or null, got an integer"},
      {false, "\"rope_scaling\": null", R"("rope_scaling": {"type": "dynamic", "factor": 2.0})",
       "rope_scaling.type \"dynamic\" is not supported"},
      {false, "\"rope_scaling\": null",
       R"("rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 8192, "rope_type": "llama3"})",
       "rope_scaling.rope_type \"llama3\" is not supported"},
      {false, "\"rope_scaling\": null", R"("rope_scaling": {"type": "longrope", "rope_type": "default"})",
       "rope_scaling.type \"longrope\""},
      {false, "\"rope_scaling\": null", "\"partial_rotary_factor\": 0.5",
       "partial_rotary_factor 0.5 is not supported"},
      {false, "\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true", "tie_word_embeddings true"},
      {false, "\"attention_bias\": false", "\"attention_bias\": true", "attention_bias true"},
      {false, "\"mlp_bias\": false", "\"mlp_bias\": true", "mlp_bias true"},
      {false, "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act \"gelu\" is not supported"},
      {false, "\"head_dim\": 16", "\"head_dim\": 32", "head_dim 32 differs"},
      {false, "\"model_type\": \"llama\"", "\"model_type\": \"mistral\"", "model_type \"mistral\""},
      {false, "\"attention_dropout\": 0.0", "\"attention_dropout\": 0.1", "attention_dropout 0.1 is not supported"},
      {false, "\"pretraining_tp\": 1", "\"pretraining_tp\": 0", "pretraining_tp 0 must be positive"},
      {false, "\"use_cache\": true", R"("quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": true})",
       "quantization_config {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true} is not supported"},
  };
  for (const Refusal& r : refusals) {
    const std::string error = error_of(replaced(r.v5 ? kTransformers5 : kTransformers4, r.from, r.to));
    EXPECT_EQ(error.rfind("hf/config.json: ", 0), 0u) << r.to << " gave: " << error;
    EXPECT_NE(error.find(r.expected), std::string::npos) << r.to << " gave: " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(HfConfigFields, PretrainingTpOnlySlicesTheSameMatmuls) {
  const std::string text = replaced(kTransformers4, "\"pretraining_tp\": 1", "\"pretraining_tp\": 2");
  EXPECT_EQ(parse_hf_config(text, "c").intermediate_size, 128);
}

TEST(HfConfigFields, ToJsonWritesTheBaseForBothVersionsAndReadsBack) {
  HfLlamaConfig c;
  c.hidden_size = 96;
  c.intermediate_size = 256;
  c.num_hidden_layers = 5;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 3;
  c.vocab_size = 1000;
  c.max_position_embeddings = 512;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 50000.0;
  c.initializer_range = 0.01;
  const std::string text = to_json(c);
  EXPECT_NE(text.find("  \"rope_parameters\": {\n    \"rope_theta\": 50000.0,\n    \"rope_type\": \"default\"\n  },"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n  \"rope_theta\": 50000.0,"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  \"rope_scaling\": null,"), std::string::npos) << text;
  const HfLlamaConfig r = parse_hf_config(text, "config.json");
  EXPECT_EQ(r.rope_theta, 50000.0);
  EXPECT_EQ(r.hidden_size, c.hidden_size);
  EXPECT_EQ(r.intermediate_size, c.intermediate_size);
  EXPECT_EQ(r.num_hidden_layers, c.num_hidden_layers);
  EXPECT_EQ(r.num_attention_heads, c.num_attention_heads);
  EXPECT_EQ(r.num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(r.vocab_size, c.vocab_size);
  EXPECT_EQ(r.max_position_embeddings, c.max_position_embeddings);
  EXPECT_EQ(r.rms_norm_eps, c.rms_norm_eps);
  EXPECT_EQ(r.initializer_range, c.initializer_range);
  // Each version's own reading of the file: 4.x the top level alone, 5.x rope_parameters alone.
  EXPECT_EQ(parse_hf_config(replaced(text, "\"rope_theta\": 50000.0,\n    \"rope_type\"", "\"rope_type\""), "c")
                .rope_theta,
            50000.0);
  EXPECT_EQ(parse_hf_config(replaced(text, "\n  \"rope_theta\": 50000.0,", ""), "c").rope_theta, 50000.0);
}

}  // namespace
