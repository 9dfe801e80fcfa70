// Weighted blending of token datasets (Megatron's BlendedDataset): the --data-path blend "0.7 A 0.3 B" is
// parsed into weights and prefixes, every global sample index is assigned to one dataset by Megatron's
// greedy rule (helpers.cpp build_blending_indices: the dataset whose running count lags its weight the
// most), and each dataset is read with its own running counter.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/byte_dataset.h"

namespace prores::data {

// One entry of a --data-path blend.
struct BlendEntry {
  double weight = 1;
  std::string prefix;
};

// Parses Megatron's --data-path: either one prefix (weight 1) or whitespace-separated pairs
// "WEIGHT PREFIX WEIGHT PREFIX …". Weights are returned unnormalized. Throws prores::Error naming
// --data-path and the offending token for an empty value, an odd number of tokens, a weight that is not a
// finite number, a negative weight, or weights that are all zero.
std::vector<BlendEntry> parse_blend(const std::string& text);

// The dataset and that dataset's own sample counter chosen for one global sample index.
struct BlendDraw {
  int64_t dataset = 0;
  int64_t sample = 0;
};

// Samples drawn from several datasets in proportion to normalized weights w_i. Global index s goes to
// the dataset i with w_i > 0 that maximizes w_i · max(s, 1) − c_i(s) (c_i(s): draws of i before s; ties
// go to the lowest i) and reads that dataset's sample c_i(s) of the same split. c_i(s) stays close to
// w_i · s: within one draw for two datasets, within two for more (measured on random weights).
// Zero weights are never drawn (Megatron's rule would draw one on an exact tie when it comes first).
// The assignment depends on the index only, never on the split.
// Memory: the counts at every 4096th index (found lazily, once) plus one cached block of 4096 draws.
class BlendedDataset final : public TokenDataset {
 public:
  // Throws prores::Error naming --data-path when the lists differ in length or are empty, a weight is
  // negative or not finite, all weights are zero, a dataset is null, or the datasets disagree on
  // seq_length or vocab_size.
  BlendedDataset(std::vector<std::shared_ptr<const TokenDataset>> datasets,
                 const std::vector<double>& weights);
  ~BlendedDataset() override;
  BlendedDataset(const BlendedDataset&) = delete;
  BlendedDataset& operator=(const BlendedDataset&) = delete;

  int64_t seq_length() const override { return datasets_.front()->seq_length(); }
  int64_t vocab_size() const override { return datasets_.front()->vocab_size(); }

  // Draws before the first dataset with a positive weight is expected to start its second epoch:
  // ⌊min_i num_samples_i(split) / w_i⌋ over w_i > 0 (0 when one of them has no samples in the split).
  int64_t num_samples(Split split) const override;

  // The sample of dataset draw(index).dataset at that dataset's counter draw(index).sample. Thread-safe.
  void get_sample(Split split, int64_t index, int32_t* tokens, int32_t* targets) const override;

  // Which dataset, and which of its samples, global index >= 0 reads. Thread-safe.
  BlendDraw draw(int64_t index) const;

  int64_t num_datasets() const { return static_cast<int64_t>(datasets_.size()); }
  const TokenDataset& dataset(int64_t i) const { return *datasets_.at(static_cast<size_t>(i)); }
  // Normalized weights (summing to 1).
  const std::vector<double>& weights() const { return weights_; }

 private:
  struct Cache;

  std::vector<std::shared_ptr<const TokenDataset>> datasets_;
  std::vector<double> weights_;
  std::unique_ptr<Cache> cache_;
};

// Opens every prefix of a --data-path blend as a GptDataset (all with the same split, sequence length,
// vocabulary and seed, as Megatron does) and returns it alone for a single prefix, or their blend.
std::shared_ptr<const TokenDataset> open_gpt_blend(const std::string& data_path, int64_t vocab_size,
                                                   const std::array<double, 3>& split_weights,
                                                   int64_t seq_length, uint64_t seed);

}  // namespace prores::data
