// Text generation from a loaded checkpoint on one rank: the prompt's forward fills each block's key/value cache
// (prefill), then each new token is one forward of one position over the cache (incremental decoding). Built on
// a model without a cache, every token recomputes the whole prefix instead: the reference the cached decoder is
// tested against and the baseline of its benchmark. Also scores a prompt's own tokens (echo with logprobs).
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eval/sampling.h"
#include "train/train_step.h"

namespace prores::eval {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // at least one token; prompt + new tokens fit in context_length()
  int64_t max_new_tokens = 32;  // >= 0 (0: score the prompt only)
  SamplingOptions sampling;
  bool stop_at_eos = true;      // end after generating eos_id (kept in tokens)
  int32_t eos_id = -1;          // -1: none
  // -1: no log-probabilities; k >= 0: each new token's log-probability and the k most likely tokens at its
  // position with theirs (top_logprobs, most likely first).
  int64_t logprobs = -1;
  bool echo = false;  // with logprobs >= 0: also for prompt[1..] (prompt[0] has no prediction)
  // Checked after each new token with all new tokens so far; true ends generation (e.g. a stop string).
  std::function<bool(std::span<const int32_t> generated)> should_stop;
};

struct TokenLogprob {
  int32_t token = 0;
  double logprob = 0;                              // log p(token | the tokens before it)
  std::vector<std::pair<int32_t, double>> top;     // the most likely tokens there and their log-probabilities
};

struct GenerationResult {
  std::vector<int32_t> tokens;               // the new tokens
  std::vector<TokenLogprob> prompt_logprobs; // with echo: prompt.size() - 1 entries, for prompt[1..]
  std::vector<TokenLogprob> token_logprobs;  // with logprobs >= 0: one per new token
  std::string finish_reason;                 // "stop" (EOS or should_stop) or "length"
};

class Generator {
 public:
  // step: one rank's whole model (TP = PP = 1) on the CPU, micro-batch 1, built with StepUse::Generate (a key/value
  // cache) or StepUse::Evaluate (recomputing the prefix), its weights loaded and its α set. vocab_size: the
  // tokens generation may choose (the tokenizer's, at most the model's padded vocabulary).
  Generator(train::TrainStep& step, int64_t vocab_size);
  // Throws prores::Error (naming the field) for an empty prompt, ids outside the vocabulary, or a prompt longer
  // than context_length(); generation stops with "length" when the context is full. Not thread-safe.
  GenerationResult generate(const GenerationRequest& request);
  int64_t context_length() const;  // the model's sequence length T
  bool uses_kv_cache() const;

 private:
  void forward_window(std::span<const int32_t> tokens, int64_t start);
  TokenLogprob logprob_at(int64_t row, int32_t token, int64_t top) const;
  std::span<const float> logits_row(int64_t row) const;

  train::TrainStep& step_;
  int64_t vocab_size_;
  std::vector<int32_t> targets_;
  std::vector<float> logits_;  // host copy of the last forward's logits (n, V)
  int64_t vocab_padded_ = 0;
  bool kv_cache_ = false;
};

}  // namespace prores::eval
