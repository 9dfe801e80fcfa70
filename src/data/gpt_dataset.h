// Megatron-style GPT sampling over one indexed dataset (Megatron-Core's GPTDataset): documents are split
// into train/valid/test by --split, each split's documents are shuffled afresh every epoch, their tokens
// are concatenated, cut into samples of seq_length + 1 tokens (consecutive samples share one token,
// samples run across document boundaries), and the samples of each epoch are visited in a shuffled order.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/byte_dataset.h"
#include "data/indexed_dataset.h"

namespace prores::data {

// Where the sample drawn at a global counter index lies: epoch = index / num_samples, sample = the
// position of its window within that epoch's token stream (the window starts at token sample · T).
struct GptSamplePosition {
  int64_t epoch = 0;
  int64_t sample = 0;
  int64_t token_offset = 0;  // sample · seq_length, into the epoch's concatenated shuffled documents
};

// Epoch e of a split (Megatron's document, sample and shuffle indices, one epoch at a time):
//   document order  = the split's documents permuted by shuffled_order(n_docs, seed(seed, split, e, 0));
//   token stream    = those documents' tokens back to back (a document's sequences in file order);
//   sample k        = stream tokens [k·T, k·T + T + 1), k = 0 .. (tokens − 1) / T − 1, so the next
//                     sample starts at the last token of the previous one and leftover tokens are dropped;
//   sample order    = shuffled_order(num_samples, seed(seed, split, e, 1)).
// Index i is sample order[i mod n] of epoch i / n. Everything derives from the seed given at
// construction; an epoch's indices are built on first use (O(documents + samples) memory per split).
class GptDataset final : public TokenDataset {
 public:
  // data: an opened indexed dataset (shared, e.g. between several blends); vocab_size: the model's
  // vocabulary (every token drawn is checked to be below it). Throws prores::Error naming --seq-length,
  // --vocab-size or --split when those are invalid, and naming --data-path and the prefix when the
  // dataset is too small for one training sample (and one validation sample when the valid weight is
  // positive).
  GptDataset(std::shared_ptr<const IndexedDataset> data, int64_t vocab_size,
             const std::array<double, 3>& split_weights, int64_t seq_length, uint64_t seed);

  // Opens PREFIX.bin / PREFIX.idx (ids checked against vocab_size) and builds the dataset over it.
  static std::shared_ptr<GptDataset> open(const std::string& prefix, int64_t vocab_size,
                                          const std::array<double, 3>& split_weights, int64_t seq_length,
                                          uint64_t seed);

  ~GptDataset() override;
  GptDataset(const GptDataset&) = delete;
  GptDataset& operator=(const GptDataset&) = delete;

  int64_t seq_length() const override { return seq_length_; }
  int64_t vocab_size() const override { return vocab_size_; }
  int64_t num_samples(Split split) const override;
  void get_sample(Split split, int64_t index, int32_t* tokens, int32_t* targets) const override;

  // window (T + 1) (=) the tokens of the sample drawn at global counter index (tokens and targets of
  // get_sample are window[0:T] and window[1:T+1]). Thread-safe.
  void get_window(Split split, int64_t index, int32_t* window) const;

  // The epoch, in-epoch sample and token offset of the sample drawn at global counter index.
  GptSamplePosition locate(Split split, int64_t index) const;

  // Half-open range [begin, end) of the split's documents (indices into the document index).
  std::array<int64_t, 2> document_range(Split split) const;

  // Tokens of one epoch of the split (the sum of its documents' lengths).
  int64_t num_tokens(Split split) const;

  // The split's documents in the order of the given epoch (document ids, not positions in the split).
  std::vector<int64_t> document_order(Split split, int64_t epoch) const;

  // out[0, count) (=) tokens [offset, offset + count) of document d, read across its sequences.
  void read_document(int64_t document, int64_t offset, int64_t count, int32_t* out) const;

  // Tokens of document d (all its sequences).
  int64_t document_length(int64_t document) const;

  const IndexedDataset& indexed() const { return *data_; }

 private:
  struct Epoch;
  struct SplitState;

  std::shared_ptr<const Epoch> epoch_of(Split split, int64_t epoch) const;
  std::shared_ptr<const Epoch> build_epoch(Split split, int64_t epoch) const;
  void check_index(Split split, int64_t index) const;

  std::shared_ptr<const IndexedDataset> data_;
  int64_t vocab_size_ = 0;
  int64_t seq_length_ = 0;
  uint64_t seed_ = 0;
  std::vector<int64_t> sequence_start_;  // token offset of each sequence in the file, plus the total
  std::array<std::array<int64_t, 2>, 3> documents_{};
  std::array<int64_t, 3> num_tokens_{};
  std::array<int64_t, 3> num_samples_{};
  std::array<std::unique_ptr<SplitState>, 3> state_;  // the most recently used epoch of each split
};

}  // namespace prores::data
