// Generator (generator.h): prefill and incremental decoding over Model::set_window, with the logits of each
// forward copied to the host for sampling and log-probabilities.
#include "eval/generator.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/bf16.h"
#include "core/check.h"
#include "ops/memory.h"

namespace prores::eval {

Generator::Generator(train::TrainStep& step, int64_t vocab_size) : step_(step) {
  const Model& m = step.model();
  PRORES_CHECK(m.micro_batch() == 1 && m.shard().tp_size == 1 && m.shard().first_stage && m.shard().last_stage,
               "generation needs the whole model on one rank with micro-batch 1");
  vocab_padded_ = m.config().vocab_size;
  vocab_size_ = std::min(vocab_size, vocab_padded_);
  kv_cache_ = m.has_kv_cache();
}

int64_t Generator::context_length() const { return step_.model().config().seq_length; }
bool Generator::uses_kv_cache() const { return kv_cache_; }

void Generator::forward_window(std::span<const int32_t> tokens, int64_t start) {
  Model& m = step_.model();
  const int64_t n = static_cast<int64_t>(tokens.size());
  m.set_window(start, n);
  targets_.assign(tokens.size(), 0);  // the loss is not read; any valid id
  m.forward(0, tokens.data(), targets_.data());
  const Tensor logits = m.logits(0);  // (n, V)
  logits_.resize(static_cast<size_t>(logits.numel()));
  if (logits.dtype == DType::F32) {
    ops::copy_to_host(logits_.data(), logits);
  } else {
    std::vector<uint16_t> bits(logits_.size());
    ops::copy_to_host(bits.data(), logits);
    std::transform(bits.begin(), bits.end(), logits_.begin(), bf16_to_float);
  }
}

std::span<const float> Generator::logits_row(int64_t row) const {
  return std::span<const float>(logits_).subspan(static_cast<size_t>(row * vocab_padded_),
                                                 static_cast<size_t>(vocab_padded_));
}

// log softmax over the model's whole (padded) vocabulary, as the loss and transformers compute it; the
// alternatives come from the tokenizer's ids only.
TokenLogprob Generator::logprob_at(int64_t row, int32_t token, int64_t top) const {
  const std::span<const float> z = logits_row(row);
  const double max = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (const float x : z) sum += std::exp(static_cast<double>(x) - max);
  const double lse = max + std::log(sum);
  TokenLogprob result{token, static_cast<double>(z[static_cast<size_t>(token)]) - lse, {}};
  if (top > 0) {
    std::vector<int32_t> ids(static_cast<size_t>(vocab_size_));
    std::iota(ids.begin(), ids.end(), 0);
    const int64_t k = std::min(top, vocab_size_);
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                      [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
    for (int64_t i = 0; i < k; ++i) result.top.emplace_back(ids[i], static_cast<double>(z[ids[i]]) - lse);
  }
  return result;
}

GenerationResult Generator::generate(const GenerationRequest& request) {
  const int64_t T = context_length(), n = static_cast<int64_t>(request.prompt.size());
  PRORES_CHECK(n >= 1, "prompt: needs at least one token");
  PRORES_CHECK(n <= T, "prompt: ", n, " tokens do not fit the model's context of ", T, " tokens");
  PRORES_CHECK(request.max_new_tokens >= 0, "max_tokens must be >= 0, got ", request.max_new_tokens);
  PRORES_CHECK(request.logprobs >= -1, "logprobs must be >= 0, got ", request.logprobs);
  for (const int32_t id : request.prompt)
    PRORES_CHECK(id >= 0 && id < vocab_size_, "prompt: token id ", id, " is outside the vocabulary [0, ", vocab_size_,
                 ")");
  request.sampling.validate();
  const bool cached = kv_cache_;
  std::mt19937_64 rng(request.sampling.seed);
  GenerationResult result;
  std::vector<int32_t> sequence = request.prompt;
  forward_window(sequence, 0);
  if (request.echo && request.logprobs >= 0)
    for (int64_t i = 1; i < n; ++i)
      result.prompt_logprobs.push_back(logprob_at(i - 1, request.prompt[static_cast<size_t>(i)], request.logprobs));
  int64_t last_row = n - 1;
  result.finish_reason = "length";
  // A new token needs the logits of the position before it; feeding it back needs a position < T.
  while (static_cast<int64_t>(result.tokens.size()) < request.max_new_tokens) {
    const int32_t token = sample_token(logits_row(last_row).first(static_cast<size_t>(vocab_size_)), request.sampling, rng);
    if (request.logprobs >= 0) result.token_logprobs.push_back(logprob_at(last_row, token, request.logprobs));
    result.tokens.push_back(token);
    sequence.push_back(token);
    if ((request.stop_at_eos && token == request.eos_id) || (request.should_stop && request.should_stop(result.tokens))) {
      result.finish_reason = "stop";
      break;
    }
    const int64_t position = static_cast<int64_t>(sequence.size()) - 1;
    if (static_cast<int64_t>(result.tokens.size()) == request.max_new_tokens || position >= T) break;
    if (cached) {
      forward_window(std::span<const int32_t>(&sequence.back(), 1), position);
      last_row = 0;
    } else {
      forward_window(sequence, 0);
      last_row = position;
    }
  }
  return result;
}

}  // namespace prores::eval
