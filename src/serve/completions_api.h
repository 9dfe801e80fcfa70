// The JSON contract of `prores serve` without the HTTP: OpenAI's /v1/completions request parsed and checked
// into a CompletionRequest, its prompts run on the Generator, and the response built as OpenAI (and vLLM) write
// it; also the bodies of vLLM's tokenizer endpoints (/tokenize, /detokenize, /tokenizer_info) and /v1/models.
// Every refusal is an ApiError (400) naming the field. The field list and what each means: docs/serve.md.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "eval/generator.h"
#include "serve/served_tokenizer.h"

namespace prores::serve {

using Json = nlohmann::ordered_json;

// The most top_logprobs a request may ask for (`logprobs`), as vLLM's default.
inline constexpr int64_t kMaxLogprobs = 20;

// One prompt of a request: its tokens and the text echo writes for them.
struct Prompt {
  std::vector<int32_t> ids;  // 1 to context_length tokens, each in the vocabulary
  std::string text;          // the prompt string as sent, or the text of the ids sent
};

struct CompletionRequest {
  std::vector<Prompt> prompts;  // one choice each, in order
  int64_t max_tokens = 16;      // 0 .. context_length
  eval::SamplingOptions sampling;
  std::vector<std::string> stop;  // non-empty strings
  int64_t logprobs = -1;          // -1: none; 0 .. kMaxLogprobs
  bool echo = false;
};

// Parses a request body (the text as received). Throws ApiError(400) for malformed JSON, a body that is not an
// object, and for a missing, mistyped or out-of-range field (the field as param): `prompt` (a string, a list of
// strings, a list of token ids or a list of lists of token ids; none empty, every id a token, none longer than
// context_length tokens), `max_tokens` (0 .. context_length, default 16), `temperature` (>= 0, default 1; 0:
// greedy), `top_p` ((0, 1]), `top_k` (vLLM's: -1 or 0 for all, else >= 1), `seed` (any integer; default:
// default_seed), `stop` (a string or a list of strings, none empty), `logprobs` (0 .. kMaxLogprobs), `echo`
// (boolean); and for what the server does not do: `n` or `best_of` other than 1, a non-empty `suffix`, `stream`
// true, non-zero `presence_penalty` / `frequency_penalty`, a non-empty `logit_bias`. null means absent; `model`
// (a string) and other fields are ignored.
CompletionRequest parse_completion_request(std::string_view body, const ServedTokenizer& tokenizer,
                                           int64_t context_length, uint64_t default_seed);

// One prompt's outcome.
struct Completion {
  eval::GenerationResult result;
  std::string text;           // the new tokens' text, cut before the first stop string
  std::string finish_reason;  // "stop" (EOS or a stop string) or "length" (max_tokens or the context)
};

// Runs prompt on generator (not thread-safe: the caller serializes): at most max_tokens new tokens, ending at
// EOS or once the new text contains a stop string.
Completion complete(eval::Generator& generator, const CompletionRequest& request, const Prompt& prompt,
                    const ServedTokenizer& tokenizer);

// The response to request with one completion per prompt: {id, object "text_completion", created, model,
// choices [{index, text, logprobs, finish_reason}], usage {prompt_tokens, completion_tokens, total_tokens}}.
// text is the prompt's text followed by the completion's under echo. logprobs is null without `logprobs`, else
// {tokens, token_logprobs, top_logprobs} over the new tokens, under echo preceded by the prompt's tokens (the
// first with null log-probability and null top_logprobs); each top_logprobs entry maps token text → log-prob
// (of two tokens with the same text, the larger).
Json completion_response(const CompletionRequest& request, const std::vector<Completion>& completions,
                         const ServedTokenizer& tokenizer, const std::string& id, int64_t created,
                         const std::string& model);

// POST /tokenize: {"prompt": string, "add_special_tokens": bool (default true: BOS first)} →
// {"count", "max_model_len", "tokens"}.
Json tokenize_response(std::string_view body, const ServedTokenizer& tokenizer, int64_t context_length);
// POST /detokenize: {"tokens": [ids]} → {"prompt": text}, special tokens as their text.
Json detokenize_response(std::string_view body, const ServedTokenizer& tokenizer);
// GET /tokenizer_info: tokenizer_class, each of eos/bos/pad/unk as <role>_token (text or null) and
// <role>_token_id (or null), vocab_size, model_max_length.
Json tokenizer_info(const ServedTokenizer& tokenizer, int64_t context_length);
// GET /v1/models: the one model, {"object": "list", "data": [{id, object "model", created, owned_by,
// max_model_len}]}.
Json models_response(const std::string& model, int64_t created, int64_t context_length);

}  // namespace prores::serve
