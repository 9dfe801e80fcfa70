// Uniformly random token ids for the benchmarks: a TokenDataset whose sample i is always the same draw.
#pragma once
#include <cstdint>
#include <random>

#include "data/byte_dataset.h"

namespace prores::bench {

class RandomTokens final : public data::TokenDataset {
 public:
  RandomTokens(int64_t seq_length, int64_t vocab_size) : T_(seq_length), V_(vocab_size) {}
  int64_t seq_length() const override { return T_; }
  int64_t vocab_size() const override { return V_; }
  int64_t num_samples(data::Split) const override { return int64_t{1} << 40; }
  void get_sample(data::Split, int64_t index, int32_t* tokens, int32_t* targets) const override {
    std::mt19937_64 rng(static_cast<uint64_t>(index));
    for (int64_t t = 0; t < T_; ++t) {
      tokens[t] = static_cast<int32_t>(rng() % static_cast<uint64_t>(V_));
      targets[t] = static_cast<int32_t>(rng() % static_cast<uint64_t>(V_));
    }
  }

 private:
  int64_t T_, V_;
};

}  // namespace prores::bench
