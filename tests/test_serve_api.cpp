// Unit tests of `prores serve`'s JSON contract without HTTP or a model (src/serve/completions_api.h,
// served_tokenizer.h) on the byte-level codec: UTF-8 repair, the request fields' defaults and forms, the field
// each refusal names, and the response's shape from hand-made generation results.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "serve/api_error.h"
#include "serve/completions_api.h"
#include "serve/served_tokenizer.h"

namespace prores::serve {
namespace {

TEST(ServeValidUtf8, KeepsWellFormedTextAndReplacesEachBadByte) {
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(valid_utf8("a\xFF"), "a" + r);
  EXPECT_EQ(valid_utf8("\xC3"), r);                          // cut short
  EXPECT_EQ(valid_utf8("\xC0\xAF"), r + r);                  // overlong '/'
  EXPECT_EQ(valid_utf8("\xE0\x80\xAF"), r + r + r);          // overlong, three bytes
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), r + r + r);          // a UTF-16 surrogate
  EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80"), r + r + r + r);  // past U+10FFFF
  EXPECT_EQ(valid_utf8("\xE2\x82x"), r + r + "x");
}

class ServeApi : public ::testing::Test {
 protected:
  eval::TextCodec codec = eval::TextCodec::bytes();
  ServedTokenizer tokenizer{codec};
  CompletionRequest parse(const std::string& body) { return parse_completion_request(body, tokenizer, 32, 77); }
  // The param of the ApiError parsing body throws (the test fails when it does not throw).
  std::string refused(const std::string& body) {
    try {
      parse(body);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      return e.param();
    }
    ADD_FAILURE() << "accepted: " << body;
    return "";
  }
};

TEST_F(ServeApi, DefaultsAsOpenAi) {
  const CompletionRequest r = parse(R"({"prompt": "hi", "model": "anything", "user": "u", "n": 1, "stream": false})");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].ids, (std::vector<int32_t>{'h', 'i'}));
  EXPECT_EQ(r.prompts[0].text, "hi");
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_EQ(r.sampling.temperature, 1.0);
  EXPECT_EQ(r.sampling.top_p, 1.0);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_EQ(r.sampling.seed, 77u);
  EXPECT_EQ(r.logprobs, -1);
  EXPECT_FALSE(r.echo);
  EXPECT_TRUE(r.stop.empty());
  // null is the default too.
  const CompletionRequest n = parse(R"({"prompt": "hi", "max_tokens": null, "logprobs": null, "stop": null})");
  EXPECT_EQ(n.max_tokens, 16);
  EXPECT_EQ(n.logprobs, -1);
}

TEST_F(ServeApi, FieldsAndPromptForms) {
  CompletionRequest r = parse(R"({"prompt": [104, 105], "max_tokens": 0, "temperature": 0, "top_p": 0.5,
                                  "top_k": -1, "seed": -3, "stop": "x", "logprobs": 20, "echo": true})");
  EXPECT_EQ(r.prompts[0].ids, (std::vector<int32_t>{104, 105}));
  EXPECT_EQ(r.prompts[0].text, "hi");
  EXPECT_EQ(r.max_tokens, 0);
  EXPECT_EQ(r.sampling.temperature, 0.0);
  EXPECT_EQ(r.sampling.top_p, 0.5);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_EQ(r.sampling.seed, static_cast<uint64_t>(-3));
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.logprobs, 20);
  EXPECT_TRUE(r.echo);
  r = parse(R"({"prompt": ["a", "bc"], "stop": ["\n", "zz"], "max_tokens": 32})");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1].ids, (std::vector<int32_t>{'b', 'c'}));
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "zz"}));
  r = parse(R"({"prompt": [[1], [2, 3]]})");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1].ids, (std::vector<int32_t>{2, 3}));
  r = parse(R"({"prompt": [[1], [2, 3]], "prompt": "last wins"})");
  EXPECT_EQ(r.prompts[0].text, "last wins");
}

TEST_F(ServeApi, RefusalsNameTheField) {
  EXPECT_EQ(refused("{"), "");
  EXPECT_EQ(refused("[]"), "");
  EXPECT_EQ(refused(R"({"max_tokens": 3})"), "prompt");
  EXPECT_EQ(refused(R"({"prompt": [[1], [256]]})"), "prompt");
  EXPECT_EQ(refused(R"({"prompt": [[1], "a"]})"), "prompt");
  EXPECT_EQ(refused(R"({"prompt": "a", "max_tokens": 33})"), "max_tokens");
  EXPECT_EQ(refused(R"({"prompt": "a", "max_tokens": true})"), "max_tokens");
  EXPECT_EQ(refused(R"({"prompt": "a", "temperature": -0.5})"), "temperature");
  EXPECT_EQ(refused(R"({"prompt": "a", "top_p": -1})"), "top_p");
  EXPECT_EQ(refused(R"({"prompt": "a", "seed": 1.5})"), "seed");
  EXPECT_EQ(refused(R"({"prompt": "a", "stop": ["a", 1]})"), "stop");
  EXPECT_EQ(refused(R"({"prompt": "a", "logprobs": 21})"), "logprobs");
  EXPECT_EQ(refused(R"({"prompt": "a", "n": 3})"), "n");
  EXPECT_EQ(refused(R"({"prompt": "a", "best_of": 2})"), "best_of");
  EXPECT_EQ(refused(R"({"prompt": "a", "suffix": "b"})"), "suffix");
  EXPECT_EQ(refused(R"({"prompt": "a", "stream": true})"), "stream");
  EXPECT_EQ(refused(R"({"prompt": "a", "frequency_penalty": 1})"), "frequency_penalty");
  EXPECT_EQ(refused(R"({"prompt": "a", "logit_bias": {"5": 1}})"), "logit_bias");
  // The context bounds the prompt: 32 tokens are accepted, 33 refused.
  EXPECT_EQ(parse("{\"prompt\": \"" + std::string(32, 'a') + "\"}").prompts[0].ids.size(), 32u);
  EXPECT_EQ(refused("{\"prompt\": \"" + std::string(33, 'a') + "\"}"), "prompt");
}

TEST_F(ServeApi, ResponseShape) {
  const CompletionRequest request = parse(R"({"prompt": [[104, 105], [97]], "logprobs": 2, "echo": true})");
  std::vector<Completion> completions(2);
  completions[0].result.tokens = {33};
  completions[0].result.prompt_logprobs = {{105, -1.5, {{105, -1.5}, {255, -2.0}}}};
  // Two tokens with the same text (bytes 254 and 255 are both U+FFFD): the larger log-probability stays.
  completions[0].result.token_logprobs = {{33, -0.25, {{254, -3.0}, {255, -2.5}}}};
  completions[0].text = "!";
  completions[0].finish_reason = "length";
  completions[1].finish_reason = "stop";
  const Json r = completion_response(request, completions, tokenizer, "cmpl-x", 123, "m");
  EXPECT_EQ(r["id"], "cmpl-x");
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["created"], 123);
  EXPECT_EQ(r["model"], "m");
  ASSERT_EQ(r["choices"].size(), 2u);
  const Json& c = r["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["text"], "hi!");
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_EQ(c["logprobs"]["tokens"], Json::array({"h", "i", "!"}));
  EXPECT_EQ(c["logprobs"]["token_logprobs"], Json::array({nullptr, -1.5, -0.25}));
  EXPECT_TRUE(c["logprobs"]["top_logprobs"][0].is_null());
  EXPECT_EQ(c["logprobs"]["top_logprobs"][1], Json({{"i", -1.5}, {"\xEF\xBF\xBD", -2.0}}));
  EXPECT_EQ(c["logprobs"]["top_logprobs"][2], Json({{"\xEF\xBF\xBD", -2.5}}));
  EXPECT_EQ(r["choices"][1]["text"], "a");
  EXPECT_EQ(r["choices"][1]["logprobs"]["tokens"], Json::array({"a"}));
  EXPECT_EQ(r["usage"], Json({{"prompt_tokens", 3}, {"completion_tokens", 1}, {"total_tokens", 4}}));
}

TEST_F(ServeApi, TokenizerBodies) {
  EXPECT_EQ(tokenize_response(R"({"prompt": "ab"})", tokenizer, 32),
            Json({{"count", 2}, {"max_model_len", 32}, {"tokens", {97, 98}}}));
  EXPECT_EQ(detokenize_response(R"({"tokens": [97, 98]})", tokenizer), Json({{"prompt", "ab"}}));
  const Json info = tokenizer_info(tokenizer, 32);
  EXPECT_TRUE(info.contains("eos_token") && info["eos_token"].is_null());
  EXPECT_EQ(models_response("m", 5, 32)["data"][0]["id"], "m");
  const Json error = error_body(400, "bad", "prompt");
  EXPECT_EQ(error, Json({{"error", {{"message", "bad"}, {"type", "invalid_request_error"}, {"param", "prompt"},
                                    {"code", 400}}}}));
  EXPECT_TRUE(error_body(500, "oops")["error"]["param"].is_null());
  EXPECT_EQ(error_body(500, "oops")["error"]["type"], "server_error");
}

}  // namespace
}  // namespace prores::serve
