// Blending of token datasets: --data-path parsing, Megatron's greedy largest-error assignment of global
// sample indices to datasets (computed block by block, with the counts at every block start remembered),
// and the GptDataset blend used by the trainer.
#include "data/blended_dataset.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <sstream>
#include <utility>

#include "core/check.h"
#include "data/gpt_dataset.h"

namespace prores::data {

namespace {

constexpr int64_t kBlock = 4096;  // global indices per block of cached draws

// The dataset that global index s goes to, given the draws c of each dataset before s.
int64_t choose(const std::vector<double>& weights, const std::vector<int64_t>& counts, int64_t s) {
  const double scale = static_cast<double>(std::max<int64_t>(s, 1));
  int64_t best = -1;
  double best_error = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    const double error = weights[i] * scale - static_cast<double>(counts[i]);
    if (best < 0 || error > best_error) {
      best = static_cast<int64_t>(i);
      best_error = error;
    }
  }
  return best;
}

// Draws the kBlock indices of block b starting from counts (advanced in place); out (kBlock) (=) the
// draws when not null.
void run_block(const std::vector<double>& weights, int64_t b, std::vector<int64_t>& counts, BlendDraw* out) {
  for (int64_t k = 0; k < kBlock; ++k) {
    const int64_t chosen = choose(weights, counts, b * kBlock + k);
    const int64_t sample = counts[static_cast<size_t>(chosen)]++;
    if (out != nullptr) out[k] = BlendDraw{chosen, sample};
  }
}

}  // namespace

std::vector<BlendEntry> parse_blend(const std::string& text) {
  std::vector<std::string> tokens;
  std::istringstream in(text);
  for (std::string token; in >> token;) tokens.push_back(token);
  PRORES_CHECK(!tokens.empty(), "--data-path: expected a dataset prefix or WEIGHT PREFIX pairs, got '", text,
               "'");
  if (tokens.size() == 1) return {BlendEntry{1.0, tokens[0]}};
  PRORES_CHECK(tokens.size() % 2 == 0,
               "--data-path: expected WEIGHT PREFIX pairs, got an odd number of items (", tokens.size(),
               ") in '", text, "': '", tokens.back(), "' has no partner");
  std::vector<BlendEntry> entries;
  bool any_positive = false;
  for (size_t i = 0; i < tokens.size(); i += 2) {
    const std::string& item = tokens[i];
    char* end = nullptr;
    errno = 0;
    const double weight = std::strtod(item.c_str(), &end);
    PRORES_CHECK(end == item.c_str() + item.size() && errno == 0 && std::isfinite(weight), "--data-path: '",
                 item, "' is not a weight (a finite number) in '", text, "'");
    PRORES_CHECK(weight >= 0, "--data-path: weight '", item, "' of '", tokens[i + 1], "' is negative");
    any_positive = any_positive || weight > 0;
    entries.push_back(BlendEntry{weight, tokens[i + 1]});
  }
  PRORES_CHECK(any_positive, "--data-path: all weights are zero in '", text, "'");
  return entries;
}

// Counts of every dataset at each block start, and the draws of the most recently used block.
struct BlendedDataset::Cache {
  std::mutex mutex;
  std::vector<std::vector<int64_t>> block_start;  // block_start[b][i]: draws of dataset i before b·kBlock
  int64_t block = -1;
  std::vector<BlendDraw> draws;  // the draws of block `block`
};

BlendedDataset::BlendedDataset(std::vector<std::shared_ptr<const TokenDataset>> datasets,
                               const std::vector<double>& weights)
    : datasets_(std::move(datasets)), cache_(std::make_unique<Cache>()) {
  PRORES_CHECK(!datasets_.empty() && datasets_.size() == weights.size(), "--data-path: ",
               datasets_.size(), " datasets with ", weights.size(),
               " weights (need one weight per dataset, at least one)");
  double total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    PRORES_CHECK(std::isfinite(weights[i]) && weights[i] >= 0, "--data-path: weight ", weights[i],
                 " of dataset ", i, " must be finite and non-negative");
    PRORES_CHECK(datasets_[i] != nullptr, "--data-path: dataset ", i, " is missing");
    PRORES_CHECK(datasets_[i]->seq_length() == datasets_[0]->seq_length() &&
                     datasets_[i]->vocab_size() == datasets_[0]->vocab_size(),
                 "--data-path: dataset ", i, " has seq_length ", datasets_[i]->seq_length(),
                 " and vocab_size ", datasets_[i]->vocab_size(), ", dataset 0 has ",
                 datasets_[0]->seq_length(), " and ", datasets_[0]->vocab_size());
    total += weights[i];
  }
  PRORES_CHECK(total > 0 && std::isfinite(total), "--data-path: the blend weights sum to ", total);
  for (double w : weights) weights_.push_back(w / total);
  cache_->block_start.emplace_back(datasets_.size(), 0);
}

BlendedDataset::~BlendedDataset() = default;

int64_t BlendedDataset::num_samples(Split split) const {
  double limit = static_cast<double>(std::numeric_limits<int64_t>::max() / 2);
  for (size_t i = 0; i < datasets_.size(); ++i) {
    if (weights_[i] <= 0) continue;
    limit = std::min(limit, std::floor(static_cast<double>(datasets_[i]->num_samples(split)) / weights_[i]));
  }
  return static_cast<int64_t>(limit);
}

BlendDraw BlendedDataset::draw(int64_t index) const {
  PRORES_CHECK(index >= 0, "blended dataset: negative sample index ", index);
  const int64_t block = index / kBlock;
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->block != block) {
    auto& starts = cache_->block_start;
    while (static_cast<int64_t>(starts.size()) <= block) {
      std::vector<int64_t> counts = starts.back();
      run_block(weights_, static_cast<int64_t>(starts.size()) - 1, counts, nullptr);
      starts.push_back(std::move(counts));
    }
    std::vector<int64_t> counts = starts[static_cast<size_t>(block)];
    cache_->draws.resize(static_cast<size_t>(kBlock));
    run_block(weights_, block, counts, cache_->draws.data());
    cache_->block = block;
  }
  return cache_->draws[static_cast<size_t>(index % kBlock)];
}

void BlendedDataset::get_sample(Split split, int64_t index, int32_t* tokens, int32_t* targets) const {
  const BlendDraw d = draw(index);
  datasets_[static_cast<size_t>(d.dataset)]->get_sample(split, d.sample, tokens, targets);
}

std::shared_ptr<const TokenDataset> open_gpt_blend(const std::string& data_path, int64_t vocab_size,
                                                   const std::array<double, 3>& split_weights,
                                                   int64_t seq_length, uint64_t seed) {
  const std::vector<BlendEntry> entries = parse_blend(data_path);
  std::vector<std::shared_ptr<const TokenDataset>> datasets;
  std::vector<double> weights;
  for (const BlendEntry& entry : entries) {
    datasets.push_back(GptDataset::open(entry.prefix, vocab_size, split_weights, seq_length, seed));
    weights.push_back(entry.weight);
  }
  if (datasets.size() == 1) return datasets.front();
  return std::make_shared<BlendedDataset>(std::move(datasets), weights);
}

}  // namespace prores::data
