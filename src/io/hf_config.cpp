// LlamaForCausalLM config.json writer/reader and tensor list (see hf_config.h), with nlohmann-json
// (core/json_input.h). docs/checkpoints.md lists what is read and what is refused.
#include "io/hf_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

#include "core/check.h"
#include "core/json_input.h"

namespace prores::io {

namespace {

using Json = nlohmann::ordered_json;

// Reads fields of one config object, each error naming the file and the field.
class FieldReader {
 public:
  FieldReader(const Json& root, const std::string& where) : root_(root), where_(where) {}

  const Json* get(const char* key) const {
    const Json* v = json_member(root_, key);
    return v && !v->is_null() ? v : nullptr;
  }
  int64_t required_int(const char* key) const {
    const Json* v = get(key);
    PRORES_CHECK(v != nullptr, where_, ": required field \"", key, "\" is missing");
    return as_int(*v, key);
  }
  int64_t as_int(const Json& v, std::string_view key) const {
    PRORES_CHECK(json_is_int64(v), where_, ": field \"", key, "\" must be an integer, got ", json_kind_name(v));
    return v.get<int64_t>();
  }
  double as_number(const Json& v, std::string_view key) const {
    PRORES_CHECK(v.is_number(), where_, ": field \"", key, "\" must be a number, got ", json_kind_name(v));
    return v.get<double>();
  }
  double number(const char* key, double fallback) const {
    const Json* v = get(key);
    return v ? as_number(*v, key) : fallback;
  }
  bool boolean(const char* key, bool fallback) const {
    const Json* v = get(key);
    if (!v) return fallback;
    PRORES_CHECK(v->is_boolean(), where_, ": field \"", key, "\" must be true or false, got ", json_kind_name(*v));
    return v->get<bool>();
  }
  const std::string* string(const char* key) const {
    const Json* v = get(key);
    if (!v) return nullptr;
    PRORES_CHECK(v->is_string(), where_, ": field \"", key, "\" must be a string, got ", json_kind_name(*v));
    return &v->get_ref<const std::string&>();
  }
  // An int, or a list of ints (its first element is kept); absent, null or [] give nothing.
  std::optional<int64_t> token_id(const char* key) const {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_array()) return as_int(*v, key);
    if (v->empty()) return std::nullopt;
    return as_int(v->front(), key);
  }

 private:
  const Json& root_;
  const std::string& where_;
};

// x as nlohmann-json writes a double, which for the values of a config is Python's json: the shortest
// digits that read back to x, ".0" when integral (10000.0), an exponent below 1e-4 (1e-05).
std::string number_text(double x) { return Json(x).dump(); }

// v as compact JSON in Python's style, for error messages: {"rope_type": "llama3", "factor": 8.0}.
std::string compact_json(const Json& v) {
  if (!v.is_array() && !v.is_object()) return v.dump();
  std::string out;
  for (const auto& [key, value] : v.items()) {
    out += out.empty() ? "" : ", ";
    if (v.is_object()) out += Json(key).dump() + ": ";
    out += compact_json(value);
  }
  return v.is_array() ? "[" + out + "]" : "{" + out + "}";
}

// The RoPE base. transformers 4.x reads the top-level rope_theta and a rope_scaling dict; 5.x reads
// rope_parameters (and takes rope_scaling, then the top-level rope_theta, as its defaults). Every base
// given must be the same; none gives LlamaConfig's 10000. Either dict may hold only rope_type (or the
// older "type") "default", rope_theta and partial_rotary_factor 1: anything else changes the rotation.
double rope_theta_of(const FieldReader& f, const std::string& where, double fallback) {
  std::vector<std::pair<std::string, double>> given;
  if (const Json* v = f.get("rope_theta")) given.emplace_back("rope_theta", f.as_number(*v, "rope_theta"));
  for (const char* dict : {"rope_parameters", "rope_scaling"}) {
    const Json* params = f.get(dict);
    if (!params) continue;
    PRORES_CHECK(params->is_object(), where, ": field \"", dict, "\" must be an object or null, got ",
                 json_kind_name(*params));
    for (const char* type_key : {"rope_type", "type"}) {
      const Json* type = json_member(*params, type_key);
      PRORES_CHECK(!type || type->is_null() || *type == "default", where, ": ", dict, ".", type_key, " ",
                   compact_json(*type), " is not supported (only \"default\")");
    }
    for (const auto& [key, value] : params->items()) {
      const std::string name = std::string(dict) + "." + key;
      if (value.is_null() || key == "rope_type" || key == "type") continue;
      if (key == "rope_theta") {
        given.emplace_back(name, f.as_number(value, name));
      } else {
        PRORES_CHECK(key == "partial_rotary_factor" && f.as_number(value, name) == 1.0, where, ": ", name, " ",
                     compact_json(value), " is not supported (rope_type \"default\" with rope_theta only)");
      }
    }
  }
  for (const auto& [name, theta] : given)
    PRORES_CHECK(theta == given.front().second, where, ": ", given.front().first, " ",
                 number_text(given.front().second), " and ", name, " ", number_text(theta), " differ");
  return given.empty() ? fallback : given.front().second;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PRORES_CHECK(in.good(), "cannot open '", path, "'");
  std::ostringstream text;
  text << in.rdbuf();
  PRORES_CHECK(!in.bad(), "cannot read '", path, "'");
  return text.str();
}

}  // namespace

void check_hf_config(const HfLlamaConfig& c, const std::string& where) {
  const std::pair<const char*, int64_t> sizes[] = {
      {"hidden_size", c.hidden_size},         {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads}, {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.max_position_embeddings}};
  for (const auto& [name, value] : sizes) PRORES_CHECK(value > 0, where, ": ", name, " must be positive, got ", value);
  PRORES_CHECK(c.hidden_size % c.num_attention_heads == 0, where, ": num_attention_heads ", c.num_attention_heads,
               " does not divide hidden_size ", c.hidden_size);
  PRORES_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, where, ": num_key_value_heads ",
               c.num_key_value_heads, " does not divide num_attention_heads ", c.num_attention_heads);
  PRORES_CHECK(c.rms_norm_eps > 0, where, ": rms_norm_eps must be positive, got ", c.rms_norm_eps);
  PRORES_CHECK(c.rope_theta > 0, where, ": rope_theta must be positive, got ", c.rope_theta);
}

std::string to_json(const HfLlamaConfig& c) {
  check_hf_config(c, "config.json");
  for (const auto& [name, x] : {std::pair{"initializer_range", c.initializer_range},
                                std::pair{"rms_norm_eps", c.rms_norm_eps}, std::pair{"rope_theta", c.rope_theta}})
    PRORES_CHECK(std::isfinite(x), "config.json: ", name, " ", x, " has no JSON representation");
  // nlohmann::json keeps keys sorted, as transformers' json.dumps(sort_keys=True) writes them.
  nlohmann::json j = {{"architectures", nlohmann::json::array({"LlamaForCausalLM"})},
                      {"attention_bias", false},
                      {"attention_dropout", 0.0},
                      {"head_dim", c.hidden_size / c.num_attention_heads},
                      {"hidden_act", "silu"},
                      {"hidden_size", c.hidden_size},
                      {"initializer_range", c.initializer_range},
                      {"intermediate_size", c.intermediate_size},
                      {"max_position_embeddings", c.max_position_embeddings},
                      {"mlp_bias", false},
                      {"model_type", "llama"},
                      {"num_attention_heads", c.num_attention_heads},
                      {"num_hidden_layers", c.num_hidden_layers},
                      {"num_key_value_heads", c.num_key_value_heads},
                      {"pretraining_tp", 1},
                      {"rms_norm_eps", c.rms_norm_eps},
                      {"rope_parameters", {{"rope_theta", c.rope_theta}, {"rope_type", "default"}}},
                      {"rope_scaling", nullptr},
                      {"rope_theta", c.rope_theta},
                      {"tie_word_embeddings", c.tie_word_embeddings},
                      {"torch_dtype", c.torch_dtype},
                      {"use_cache", true},
                      {"vocab_size", c.vocab_size}};
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_id) j["eos_token_id"] = *c.eos_token_id;
  if (c.pad_token_id) j["pad_token_id"] = *c.pad_token_id;
  return j.dump(2, ' ', true) + "\n";  // indent 2, non-ASCII escaped: json.dumps(indent=2) + "\n"
}

HfLlamaConfig parse_hf_config(const std::string& json_text, const std::string& path_for_errors) {
  const std::string& where = path_for_errors;
  const Json root = parse_json(json_text, where);
  PRORES_CHECK(root.is_object(), where, ": config.json must hold a JSON object, got ", json_kind_name(root));
  const FieldReader f(root, where);

  HfLlamaConfig c;
  c.hidden_size = f.required_int("hidden_size");
  c.intermediate_size = f.required_int("intermediate_size");
  c.num_hidden_layers = f.required_int("num_hidden_layers");
  c.num_attention_heads = f.required_int("num_attention_heads");
  c.vocab_size = f.required_int("vocab_size");
  c.max_position_embeddings = f.required_int("max_position_embeddings");
  const Json* kv = f.get("num_key_value_heads");
  c.num_key_value_heads = kv ? f.as_int(*kv, "num_key_value_heads") : c.num_attention_heads;
  c.rms_norm_eps = f.number("rms_norm_eps", c.rms_norm_eps);
  c.rope_theta = rope_theta_of(f, where, c.rope_theta);
  c.initializer_range = f.number("initializer_range", c.initializer_range);
  const std::string* dtype = f.string("torch_dtype");
  if (!dtype) dtype = f.string("dtype");
  if (dtype) c.torch_dtype = *dtype;
  c.bos_token_id = f.token_id("bos_token_id");
  c.eos_token_id = f.token_id("eos_token_id");
  c.pad_token_id = f.token_id("pad_token_id");
  check_hf_config(c, where);

  const std::string* model_type = f.string("model_type");
  PRORES_CHECK(!model_type || *model_type == "llama", where, ": model_type \"", model_type ? *model_type : "",
               "\" is not supported (only \"llama\")");
  const std::string* act = f.string("hidden_act");
  PRORES_CHECK(!act || *act == "silu", where, ": hidden_act \"", act ? *act : "",
               "\" is not supported (only \"silu\")");
  PRORES_CHECK(!f.boolean("attention_bias", false), where, ": attention_bias true is not supported");
  PRORES_CHECK(!f.boolean("mlp_bias", false), where, ": mlp_bias true is not supported");
  PRORES_CHECK(!f.boolean("tie_word_embeddings", false), where,
               ": tie_word_embeddings true is not supported (this trainer's LM head is untied)");
  const double partial = f.number("partial_rotary_factor", 1.0);
  PRORES_CHECK(partial == 1.0, where, ": partial_rotary_factor ", number_text(partial),
               " is not supported (only 1: every dimension rotates)");
  const double dropout = f.number("attention_dropout", 0.0);
  PRORES_CHECK(dropout == 0.0, where, ": attention_dropout ", number_text(dropout),
               " is not supported (only 0: this trainer has no dropout)");
  if (const Json* tp = f.get("pretraining_tp")) {
    const int64_t slices = f.as_int(*tp, "pretraining_tp");
    PRORES_CHECK(slices >= 1, where, ": pretraining_tp ", slices, " must be positive");
  }
  const Json* quantization = f.get("quantization_config");
  PRORES_CHECK(!quantization, where, ": quantization_config ", quantization ? compact_json(*quantization) : "",
               " is not supported (only unquantized weights)");
  if (const Json* head_dim = f.get("head_dim")) {
    const int64_t hd = f.as_int(*head_dim, "head_dim");
    PRORES_CHECK(hd == c.hidden_size / c.num_attention_heads, where, ": head_dim ", hd,
                 " differs from hidden_size / num_attention_heads = ", c.hidden_size / c.num_attention_heads,
                 ", which is not supported");
  }
  return c;
}

HfLlamaConfig read_hf_config(const std::string& path) { return parse_hf_config(read_text(path), path); }

void write_hf_config(const std::string& path, const HfLlamaConfig& config) {
  const std::string text = to_json(config);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    PRORES_CHECK(out.good(), "config.json: cannot create '", tmp, "'");
    out << text;
    out.close();
    if (!out) {
      std::filesystem::remove(tmp);
      PRORES_FAIL("config.json: writing '", tmp, "' failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    PRORES_FAIL("config.json: cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

std::vector<HfTensorSpec> hf_llama_tensors(const HfLlamaConfig& c) {
  check_hf_config(c, "config.json");
  const int64_t C = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const int64_t HS = C / c.num_attention_heads, NH = c.num_attention_heads, KV = c.num_key_value_heads;
  std::vector<HfTensorSpec> out = {{"model.embed_tokens.weight", {V, C}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    out.push_back({p + "input_layernorm.weight", {C}});
    out.push_back({p + "self_attn.q_proj.weight", {NH * HS, C}});
    out.push_back({p + "self_attn.k_proj.weight", {KV * HS, C}});
    out.push_back({p + "self_attn.v_proj.weight", {KV * HS, C}});
    out.push_back({p + "self_attn.o_proj.weight", {C, NH * HS}});
    out.push_back({p + "post_attention_layernorm.weight", {C}});
    out.push_back({p + "mlp.gate_proj.weight", {F, C}});
    out.push_back({p + "mlp.up_proj.weight", {F, C}});
    out.push_back({p + "mlp.down_proj.weight", {C, F}});
  }
  out.push_back({"model.norm.weight", {C}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {V, C}});
  return out;
}

}  // namespace prores::io
