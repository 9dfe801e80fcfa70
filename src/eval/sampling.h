// Choosing the next token from a row of logits: greedy, or sampling with temperature, top-k and top-p
// (nucleus), as transformers' generate applies them (temperature, then top-k, then top-p).
#pragma once
#include <cstdint>
#include <random>
#include <span>

namespace prores::eval {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy (the first argmax); > 0: sample from softmax(logits / temperature)
  int64_t top_k = 0;       // keep the k most likely tokens (0: all)
  double top_p = 1.0;      // then the smallest most-likely set whose probability reaches top_p (1: all)
  uint64_t seed = 0;       // the generator's std::mt19937_64 seed

  void validate() const;  // throws prores::Error naming --temperature, --top-k or --top-p
};

// The next token from logits (V), the model's row for the last position, restricted to ids [0, V).
int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng);

}  // namespace prores::eval
