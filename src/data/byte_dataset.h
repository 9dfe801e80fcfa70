// Token datasets that hand out fixed-length training samples, and the byte-level one: a text file whose
// raw bytes are the tokens (vocabulary 256), split contiguously into train/valid/test like Megatron's
// --split. Later datasets (SentencePiece, Megatron indexed) implement the same TokenDataset interface.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace prores::data {

enum class Split { Train = 0, Valid = 1, Test = 2 };

// "train", "valid" or "test".
const char* split_name(Split split);

// Parses Megatron's --split value "969,30,1": exactly three finite non-negative numbers separated by
// commas (whitespace around them is allowed) with a positive train part. Returns them unnormalized.
// Throws prores::Error naming --split and the value otherwise.
std::array<double, 3> parse_split(const std::string& text);

// Throws prores::Error naming --split unless weights are finite, non-negative, with a positive train part.
void validate_split(const std::array<double, 3>& weights);

// Splits n items into three contiguous half-open ranges proportional to weights: boundary i is
// round(n · (w_0 + … + w_i) / Σw), so the ranges are ordered, disjoint and cover [0, n) exactly.
std::array<std::array<int64_t, 2>, 3> split_ranges(int64_t n, const std::array<double, 3>& weights);

// The identity permutation of [0, n) shuffled by Fisher–Yates with std::mt19937_64(seed) and an
// unbiased bounded draw written out here, so the order is the same with every standard library.
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed);

// A source of next-token-prediction samples: sample i of a split is T = seq_length() input tokens and
// the T tokens that follow each of them.
class TokenDataset {
 public:
  virtual ~TokenDataset() = default;

  virtual int64_t seq_length() const = 0;
  virtual int64_t vocab_size() const = 0;

  // Samples in one pass (one epoch) over the split; may be 0 for a split with weight 0.
  virtual int64_t num_samples(Split split) const = 0;

  // tokens (T) (=) window[0:T], targets (T) (=) window[1:T+1] of the sample drawn at global counter
  // index >= 0 (consumed samples so far; epoch = index / num_samples). Thread-safe.
  virtual void get_sample(Split split, int64_t index, int32_t* tokens, int32_t* targets) const = 0;
};

// Byte-level dataset over a whole file held in memory (files are a few MB).
// A window is T + 1 consecutive bytes starting at range.begin + k·T, k = 0 .. (range size − 1) / T − 1,
// so consecutive windows share one byte (the last target of one is the first token of the next).
// Train windows are visited in the order shuffled_order(n, seed + epoch), a fresh order every epoch;
// valid and test windows are visited in file order, and their index wraps around modulo n.
class ByteDataset final : public TokenDataset {
 public:
  // Reads the file at path (--data-path). Throws prores::Error naming --data-path when the file cannot
  // be read or is too small for one training sample (and one validation sample when the valid weight is
  // positive); naming --split or --seq-length when those are invalid.
  static ByteDataset from_text_file(const std::string& path, std::array<double, 3> split_weights,
                                    int64_t seq_length, uint64_t seed);

  // The same over bytes already in memory; name stands for the path in error messages.
  static ByteDataset from_bytes(std::vector<uint8_t> bytes, std::array<double, 3> split_weights,
                                int64_t seq_length, uint64_t seed, const std::string& name = "<memory>");

  ByteDataset(ByteDataset&&) noexcept;
  ByteDataset& operator=(ByteDataset&&) noexcept;
  ~ByteDataset() override;

  int64_t seq_length() const override { return seq_length_; }
  int64_t vocab_size() const override { return 256; }
  int64_t num_samples(Split split) const override;
  void get_sample(Split split, int64_t index, int32_t* tokens, int32_t* targets) const override;

  // Byte offset of the first token of the window drawn at global counter index (see get_sample).
  int64_t window_start(Split split, int64_t index) const;

  // Half-open byte range [begin, end) of a split within the file.
  std::array<int64_t, 2> range(Split split) const;

  int64_t num_bytes() const { return static_cast<int64_t>(bytes_.size()); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  struct EpochCache;

  ByteDataset(std::vector<uint8_t> bytes, const std::array<double, 3>& split_weights, int64_t seq_length,
              uint64_t seed, const std::string& name);

  std::vector<uint8_t> bytes_;
  int64_t seq_length_ = 0;
  uint64_t seed_ = 0;
  std::array<std::array<int64_t, 2>, 3> ranges_{};
  std::array<int64_t, 3> num_samples_{};
  std::unique_ptr<EpochCache> cache_;  // the train order of the most recently used epoch
};

}  // namespace prores::data
