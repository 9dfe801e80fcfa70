// Hugging Face format pieces: safetensors round trips (F32, BF16 rounding), the exact bytes of a tiny file
// built from the published format, the reader's rejections and a corruption fuzz, JSON input (core/json_input.h),
// config.json round trip and errors, and the tensor list against our ParamTable. Files read and written by the
// reference implementation: test_interop_safetensors.cpp.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "core/check.h"
#include "core/json_input.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/param_table.h"
#include "safetensors_samples.h"

namespace prores::io {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "prores_safetensors_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static void write_bytes(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
  static std::string read_bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // A file from a header (padded here) and a data buffer, as the published format lays it out.
  static std::string file_bytes(std::string header, const std::string& data) {
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int k = 0; k < 8; ++k) out[k] = static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * k));
    return out + header + data;
  }
  // Expects reading `bytes` to throw prores::Error naming the file and containing `what`.
  void expect_rejected(const std::string& bytes, const std::string& what) {
    const std::string p = path("bad.safetensors");
    write_bytes(p, bytes);
    try {
      read_safetensors(p);
      ADD_FAILURE() << "accepted a file that should fail with: " << what;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripF32IsBitExact) {
  const auto ts = sample_tensors();
  const std::string p = path("model.safetensors");
  write_safetensors(p, ts, {{"step", "12"}});
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  std::map<std::string, std::string> meta;
  const auto back = read_safetensors(p, &meta);
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"format", "pt"}, {"step", "12"}}));
  ASSERT_EQ(back.size(), ts.size());
  for (const auto& t : ts) {
    const SafeTensor& r = back.at(t.name);
    EXPECT_EQ(r.name, t.name);
    EXPECT_EQ(r.shape, t.shape) << t.name;
    expect_same_bits(r.data, t.data, t.name);
  }
}

TEST_F(SafetensorsTest, RoundTripBf16RoundsToNearestEven) {
  const float one = 1.f, ulp = std::ldexp(1.f, -7);
  const std::vector<float> x = {one + ulp / 2,                  // tie, 1.0 is even: down
                                one + 3 * ulp / 2,              // tie, 1 + 2ulp is even: up
                                one + ulp / 2 + std::ldexp(1.f, -20),  // just above the tie: up
                                -(one + ulp / 4),               // below the tie: down (in magnitude)
                                std::numeric_limits<float>::max(),     // past bf16's max: inf
                                std::numeric_limits<float>::quiet_NaN(), 3.f, -0.f};
  const std::vector<float> want = {one, one + 2 * ulp, one + ulp, -one, std::numeric_limits<float>::infinity()};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(bf16_to_float(float_to_bf16(x[i])), want[i]) << i;
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(x[5]))));
  EXPECT_EQ(float_to_bf16(1.f), 0x3F80);

  const std::string p = path("bf16.safetensors");
  write_safetensors(p, {{"x", {2, 4}, x}}, {}, SafeDtype::BF16);
  const std::string bytes = read_bytes(p);
  EXPECT_NE(bytes.find("\"dtype\":\"BF16\""), std::string::npos);
  const auto back = read_safetensors(p).at("x");
  EXPECT_EQ(back.shape, (std::vector<int64_t>{2, 4}));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(back.data[i]), std::bit_cast<uint32_t>(bf16_to_float(float_to_bf16(x[i])))) << i;
  }
  const size_t header_len = static_cast<uint8_t>(bytes[0]) + 256u * static_cast<uint8_t>(bytes[1]);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + header_len + 2 * x.size());
}

TEST_F(SafetensorsTest, HeaderBytesMatchThePublishedFormat) {
  const std::string p = path("tiny.safetensors");
  write_safetensors(p, {{"x", {2}, {1.f, -2.f}}}, {});
  const std::string header = R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 85u);  // padded with 3 spaces to 88 = 0x58
  const std::string want = std::string("\x58\0\0\0\0\0\0\0", 8) + header + "   " +
                           std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  EXPECT_EQ(read_bytes(p), want);
}

TEST_F(SafetensorsTest, ReadsHandBuiltF16Bf16FileInAnyKeyOrder) {
  // f16 {1, -2, 65504, 2^-24}, bf16 {1, -0.5}, in reverse buffer order, with whitespace and escapes.
  const std::string data = std::string("\x80\x3f\x00\xbf", 4) + std::string("\x00\x3c\x00\xc0\xff\x7b\x01\x00", 8);
  const std::string header = "{ \"b\\u00e9\" : {\"shape\": [2,2], \"dtype\": \"F16\", \"data_offsets\": [4, 12]},\n"
                             "  \"__metadata__\": {\"k\": \"v\\\"\"}, \"a\": {\"dtype\":\"BF16\",\"shape\":[2],"
                             "\"data_offsets\":[0,4]}}";
  const std::string p = path("hand.safetensors");
  write_bytes(p, file_bytes(header, data));
  std::map<std::string, std::string> meta;
  const auto t = read_safetensors(p, &meta);
  EXPECT_EQ(meta.at("k"), "v\"");
  EXPECT_EQ(t.at("a").data, (std::vector<float>{1.f, -0.5f}));
  EXPECT_EQ(t.at("b\xc3\xa9").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t.at("b\xc3\xa9").data, (std::vector<float>{1.f, -2.f, 65504.f, std::ldexp(1.f, -24)}));
}

TEST_F(SafetensorsTest, F16WideningCoversSpecialValues) {
  EXPECT_EQ(f16_to_float(0x3C00), 1.f);
  EXPECT_EQ(f16_to_float(0x0400), std::ldexp(1.f, -14));  // smallest normal
  EXPECT_EQ(f16_to_float(0x03FF), std::ldexp(1023.f, -24));  // largest subnormal
  EXPECT_EQ(std::bit_cast<uint32_t>(f16_to_float(0x8000)), 0x80000000u);
  EXPECT_EQ(f16_to_float(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_float(0x7E00)));
}

TEST_F(SafetensorsTest, RejectsMalformedFiles) {
  const std::string ok_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data(8, '\1');
  const std::string valid = file_bytes(ok_header, data);
  const auto tensor = [](const std::string& name, const std::string& dtype, const std::string& shape,
                         const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
  };
  expect_rejected(valid.substr(0, 5), "truncated");
  expect_rejected(std::string("\xff\0\0\0\0\0\0\0", 8) + "{}", "runs past the end of the file");
  expect_rejected(valid.substr(0, valid.size() - 1), "run past the end of the data buffer");
  expect_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", data), "invalid JSON");
  expect_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],}})", data), "invalid JSON");
  expect_rejected(file_bytes("[]", ""), "must be a JSON object");
  expect_rejected(file_bytes("{\"\xff\":1}", ""), "not valid UTF-8");
  expect_rejected(file_bytes(std::string(200, '[') + std::string(200, ']'), ""), "nesting");
  expect_rejected(file_bytes("{" + tensor("w", "F32", "[2]", "[0,8]") + "," + tensor("w", "F32", "[2]", "[0,8]") + "}",
                             data), "repeated key");
  expect_rejected(file_bytes("{" + tensor("w", "F32", "[2]", "[0,16]") + "}", data), "past the end of the data buffer");
  expect_rejected(file_bytes("{" + tensor("w", "F32", "[3]", "[0,8]") + "}", data), "shape holds 3 elements");
  expect_rejected(file_bytes("{" + tensor("w", "F16", "[2]", "[0,8]") + "}", data), "tensor \"w\"");
  expect_rejected(file_bytes("{" + tensor("w", "I32", "[2]", "[0,8]") + "}", data), "\"I32\" is not supported");
  expect_rejected(file_bytes("{" + tensor("w", "F32", "[-2]", "[0,8]") + "}", data), "non-negative");
  expect_rejected(file_bytes("{" + tensor("w", "F32", "[2]", "[8,0]") + "}", data), "run backwards");
  expect_rejected(file_bytes("{" + tensor("a", "F32", "[2]", "[0,8]") + "," + tensor("b", "F32", "[1]", "[4,8]") + "}",
                             data), "tensor \"b\" [4, 8) overlaps tensor \"a\"");
  expect_rejected(file_bytes("{" + tensor("a", "F32", "[1]", "[4,8]") + "}", data), "belong to no tensor");
  expect_rejected(file_bytes("{" + tensor("a", "F32", "[1]", "[0,4]") + "}", data), "after the last tensor");
  expect_rejected(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", data), "unknown field");
  expect_rejected(file_bytes(R"({"__metadata__":{"a":1}})", ""), "must be a string");
  expect_rejected(file_bytes("{" + tensor("w", "F32", "[4294967296,4294967296]", "[0,8]") + "}", data),
                  "too many elements");
  EXPECT_THROW(read_safetensors(path("missing.safetensors")), Error);
}

TEST_F(SafetensorsTest, RandomCorruptionsThrowOrReadConsistently) {
  const std::string p = path("fuzz.safetensors");
  write_safetensors(p, sample_tensors(), {{"k", "v"}});
  const std::string valid = read_bytes(p);
  const uint64_t header_end = 8 + static_cast<uint8_t>(valid[0]) + 256u * static_cast<uint8_t>(valid[1]);
  std::mt19937 rng(1234);
  int rejected = 0;
  const int trials = 3000;
  for (int trial = 0; trial < trials; ++trial) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      const size_t at = trial % 10 == 0 ? rng() % 8 : 8 + rng() % (header_end - 8);  // length or header
      bytes[at] = static_cast<char>(rng() % 3 == 0 ? "{}[]\":,0\\"[rng() % 9] : rng() % 256);
    }
    if (trial % 7 == 0) bytes.resize(rng() % bytes.size());
    write_bytes(p, bytes);
    try {
      for (const auto& [name, t] : read_safetensors(p)) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        ASSERT_EQ(static_cast<size_t>(n), t.data.size()) << name;
      }
    } catch (const Error& e) {
      ASSERT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, trials * 3 / 4);
}

TEST_F(SafetensorsTest, WriterRejectsBadTensorsAndLeavesNoFile) {
  const std::string p = path("w.safetensors");
  EXPECT_THROW(write_safetensors(p, {{"a", {2}, {1.f}}}, {}), Error);
  EXPECT_THROW(write_safetensors(p, {{"a", {1}, {1.f}}, {"a", {1}, {2.f}}}, {}), Error);
  EXPECT_THROW(write_safetensors(p, {{"__metadata__", {1}, {1.f}}}, {}), Error);
  EXPECT_THROW(write_safetensors(p, {{"", {1}, {1.f}}}, {}), Error);
  EXPECT_THROW(write_safetensors(p, {{"a", {-1}, {}}}, {}), Error);
  EXPECT_THROW(write_safetensors(p, {{"a\xff", {1}, {1.f}}}, {}), Error);  // names and metadata must be UTF-8
  EXPECT_THROW(write_safetensors(p, {{"a", {1}, {1.f}}}, {{"k", "\xc0\xaf"}}), Error);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  write_safetensors(p, {{"a", {1}, {1.f}}}, {});
  write_safetensors(p, {{"b", {1}, {2.f}}}, {{"format", "np"}});  // replaces the old file
  std::map<std::string, std::string> meta;
  const auto back = read_safetensors(p, &meta);
  EXPECT_EQ(back.count("a"), 0u);
  EXPECT_EQ(back.at("b").data, std::vector<float>{2.f});
  EXPECT_EQ(meta.at("format"), "np");
}

TEST(JsonInput, ParsesAndRefuses) {
  const nlohmann::ordered_json v =
      parse_json(R"( {"s": "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "i": -12, "big": 92233720368547758070,
                     "d": 1.5e-3, "z": 0, "t": true, "f": false, "n": null, "a": [1, [2], {}]} )",
                 "test");
  EXPECT_EQ(v.at("s"), "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v.at("i").get<int64_t>(), -12);
  EXPECT_FALSE(json_is_int64(v.at("big")));
  EXPECT_STREQ(json_kind_name(v.at("big")), "a number");
  EXPECT_DOUBLE_EQ(v.at("d").get<double>(), 1.5e-3);
  EXPECT_TRUE(json_is_int64(v.at("z")));
  EXPECT_STREQ(json_kind_name(v.at("z")), "an integer");
  EXPECT_TRUE(v.at("t").get<bool>());
  EXPECT_STREQ(json_kind_name(v.at("f")), "a boolean");
  EXPECT_TRUE(v.at("n").is_null());
  EXPECT_EQ(v.at("a").size(), 3u);
  EXPECT_EQ(json_member(v, "missing"), nullptr);
  EXPECT_EQ(json_member(v.at("a"), "s"), nullptr);
  for (const char* bad : {"", "{", "[1,]", "01", "1.", "-", "1e", "NaN", "\"\\ud800\"", "\"\\udc00\"", "\"\\x\"",
                          "\"a\nb\"", "tru", "{\"a\" 1}", "{1:2}", "[1] [2]", "1e999", "\"\xc0\xaf\"",
                          "\"\xed\xa0\x80\"", "{\"a\": 1, \"a\": 2}"}) {
    EXPECT_THROW(parse_json(bad, "test"), Error) << bad;
  }
  // Errors: one line naming where, the 0-based byte offset and what.
  const auto error_of = [](const std::string& text, RepeatedKeys repeated = RepeatedKeys::Reject) {
    nlohmann::ordered_json out;
    std::string error;
    EXPECT_FALSE(try_parse_json(text, &out, &error, repeated)) << text;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    return error;
  };
  EXPECT_EQ(error_of("[1,]").rfind("invalid JSON at byte 3: ", 0), 0u) << error_of("[1,]");
  EXPECT_EQ(error_of("{\"a\": \"bc"), "invalid JSON at byte 9: unterminated string");
  EXPECT_EQ(error_of("[1] [2]"), "invalid JSON at byte 4: unexpected text after the JSON value");
  EXPECT_EQ(error_of("[\"\xff\"]"), "invalid JSON at byte 2: not valid UTF-8");
  EXPECT_EQ(error_of("{\"a\": 1, \"a\": 2}"), "invalid JSON: repeated key \"a\"");
  EXPECT_EQ(error_of(std::string(65, '[') + std::string(65, ']'), RepeatedKeys::LastWins),
            "invalid JSON: nesting deeper than 64 levels");
  EXPECT_NO_THROW(parse_json(std::string(64, '[') + std::string(64, ']'), "test"));
  // Python's rule, for JSON lines: the last value in the first one's place.
  const nlohmann::ordered_json last = parse_json(R"({"a": 1, "b": 2, "a": 3})", "test", RepeatedKeys::LastWins);
  EXPECT_EQ(last.dump(), R"({"a":3,"b":2})");
  try {
    parse_json("{\"a\": tru}", "some.json");
    ADD_FAILURE() << "accepted tru";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("some.json: invalid JSON at byte ", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("invalid literal"), std::string::npos) << e.what();
  }
}

HfLlamaConfig sample_config() {
  HfLlamaConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 176;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.vocab_size = 320;
  c.max_position_embeddings = 128;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.torch_dtype = "bfloat16";
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  return c;
}

TEST(HfConfig, RoundTripsThroughJson) {
  const HfLlamaConfig c = sample_config();
  const std::string text = to_json(c);
  EXPECT_NE(text.find("\"architectures\": [\n    \"LlamaForCausalLM\"\n  ],"), std::string::npos) << text;
  EXPECT_NE(text.find("\"rms_norm_eps\": 1e-05,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"rope_theta\": 500000.0,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"model_type\": \"llama\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"head_dim\": 8,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"initializer_range\": 0.02,"), std::string::npos) << text;
  EXPECT_EQ(text.find("pad_token_id"), std::string::npos) << text;
  const HfLlamaConfig r = parse_hf_config(text, "config.json");
  EXPECT_EQ(r.hidden_size, c.hidden_size);
  EXPECT_EQ(r.intermediate_size, c.intermediate_size);
  EXPECT_EQ(r.num_hidden_layers, c.num_hidden_layers);
  EXPECT_EQ(r.num_attention_heads, c.num_attention_heads);
  EXPECT_EQ(r.num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(r.vocab_size, c.vocab_size);
  EXPECT_EQ(r.max_position_embeddings, c.max_position_embeddings);
  EXPECT_EQ(r.rms_norm_eps, c.rms_norm_eps);
  EXPECT_EQ(r.rope_theta, c.rope_theta);
  EXPECT_EQ(r.tie_word_embeddings, c.tie_word_embeddings);
  EXPECT_EQ(r.torch_dtype, c.torch_dtype);
  EXPECT_EQ(r.initializer_range, c.initializer_range);
  EXPECT_EQ(r.bos_token_id, c.bos_token_id);
  EXPECT_EQ(r.eos_token_id, c.eos_token_id);
  EXPECT_FALSE(r.pad_token_id.has_value());
}

TEST(HfConfig, ReadsATransformersConfigWithDefaults) {
  const HfLlamaConfig c = parse_hf_config(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100,
      "max_position_embeddings": 64, "rope_scaling": null, "rope_theta": 10000, "dtype": "float16",
      "eos_token_id": [7, 9], "pad_token_id": null, "transformers_version": "4.57.0"})", "cfg.json");
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.torch_dtype, "float16");
  EXPECT_EQ(c.eos_token_id, 7);
  EXPECT_FALSE(c.bos_token_id.has_value() || c.pad_token_id.has_value());
}

TEST(HfConfig, ErrorsNameTheFileAndField) {
  const std::string text = to_json(sample_config());
  const auto expect_error = [](const std::string& json, const std::string& what) {
    try {
      parse_hf_config(json, "some/dir/config.json");
      ADD_FAILURE() << "accepted, expected: " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("some/dir/config.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  const auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.substr(0, at) + to + text.substr(at + from.size());
  };
  expect_error(replace("\"vocab_size\": 320", "\"vocab\": 320"), "required field \"vocab_size\" is missing");
  expect_error(replace("\"hidden_size\": 64", "\"hidden_size\": \"64\""), "\"hidden_size\" must be an integer");
  expect_error(replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""), "hidden_act");
  expect_error(replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"llama3\"}"), "rope_scaling");
  expect_error(replace("\"head_dim\": 8", "\"head_dim\": 16"), "head_dim 16");
  expect_error(replace("\"mlp_bias\": false", "\"mlp_bias\": true"), "mlp_bias");
  expect_error(replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"), "does not divide");
  expect_error(replace("\"model_type\": \"llama\"", "\"model_type\": \"mistral\""), "model_type");
  expect_error("{\"hidden_size\": 1", "invalid JSON");
}

TEST_F(SafetensorsTest, ConfigFileRoundTrip) {
  const std::string p = path("config.json");
  write_hf_config(p, sample_config());
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(read_hf_config(p).num_key_value_heads, 2);
  EXPECT_THROW(read_hf_config(path("absent.json")), Error);
}

TEST(HfConfig, TensorListMatchesOurParamTable) {
  const HfLlamaConfig c = sample_config();
  ModelConfig m;
  m.num_layers = c.num_hidden_layers;
  m.hidden_size = c.hidden_size;
  m.ffn_hidden_size = c.intermediate_size;
  m.num_attention_heads = c.num_attention_heads;
  m.num_query_groups = c.num_key_value_heads;
  m.vocab_size = c.vocab_size;
  const ParamTable table(m);
  const auto specs = hf_llama_tensors(c);
  ASSERT_EQ(specs.size(), table.entries().size());
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(specs[i].name, table.entries()[i].name);
    EXPECT_EQ(specs[i].shape, table.entries()[i].global_shape) << specs[i].name;
  }
  HfLlamaConfig tied = c;
  tied.tie_word_embeddings = true;
  EXPECT_EQ(hf_llama_tensors(tied).size(), specs.size() - 1);
  EXPECT_EQ(hf_llama_tensors(tied).back().name, "model.norm.weight");
}

}  // namespace
}  // namespace prores::io
