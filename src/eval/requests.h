// Log-likelihood requests as token sequences, formed by lm-evaluation-harness's rules (docs/eval.md): the
// context's trailing whitespace moves to the continuation; the continuation's tokens are those of the whole
// after the context's; an empty context becomes the prefix token; sequences longer than the model keep their
// last max_length + 1 tokens; rolling log-likelihood splits a text into disjoint windows of max_length.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "eval/text_codec.h"

namespace prores::eval {

// The model reads tokens[0 .. size - 2] and is scored on predicting the last `continuation` tokens.
struct TokenRequest {
  std::vector<int32_t> tokens;
  int64_t continuation = 0;
  bool truncated = false;  // the context lost tokens on the left to fit max_length
};

// lm-eval's loglikelihood request (context, continuation) for a model of max_length positions.
TokenRequest make_request(const TextCodec& codec, std::string_view context, std::string_view continuation,
                          int64_t max_length);

// lm-eval's loglikelihood_rolling of text: windows of at most max_length predictions, the first conditioned on
// the prefix token, each later one on the max_length - (its predictions) tokens before it.
std::vector<TokenRequest> rolling_requests(const TextCodec& codec, std::string_view text, int64_t max_length);

}  // namespace prores::eval
