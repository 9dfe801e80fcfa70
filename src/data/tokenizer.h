// SentencePiece tokenizer (Megatron-LM's --tokenizer-model for GPTSentencePieceTokenizer), training of
// new models with SentencePieceTrainer, and Megatron's padded vocabulary size.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"

namespace prores::data {

class Tokenizer {
 public:
  // Loads a SentencePiece .model file. Throws prores::Error naming --tokenizer-model and the path.
  static Tokenizer load(const std::string& model_path);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // encode / decode are const and may be called from several threads at once (SentencePiece's
  // processor is thread-safe: google/sentencepiece#207).
  std::vector<int32_t> encode(std::string_view text) const;
  // ids (=) the tokens of text; the allocation-reusing form of encode().
  void encode(std::string_view text, std::vector<int32_t>& ids) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  const std::string& model_path() const;
  // Number of pieces (ids are 0 .. vocab_size() - 1), before Megatron's padding.
  int64_t vocab_size() const;
  // Special ids of the model; -1 when the model has none.
  int32_t eos_id() const;
  int32_t bos_id() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The knobs of train_tokenizer beyond vocabulary size and model type.
struct TokenizerTrainingOptions {
  // Lines SentencePiece keeps for training (a uniform reservoir sample over all input lines).
  int64_t input_sentence_size = 2'000'000;
  // Fraction of characters covered by the vocabulary; rarer characters fall back to bytes.
  double character_coverage = 0.9995;
  // Trainer threads; 0: every core.
  int num_threads = 0;
  // Field of JSON-lines inputs that holds the text.
  std::string json_key = "text";
  // Where the reading progress and the phase lines go; off unless the caller turns it on.
  ProgressOptions progress{.enabled = false};
};

// Trains a SentencePiece model on the lines of inputs (plain text, or the json_key field of *.jsonl /
// *.json files) and writes model_prefix.model / model_prefix.vocab (creating the directory).
// model_type: "bpe" or "unigram". Settings of a pretraining tokenizer (as Llama's): byte fallback, digits
// split, no normalization and whitespace kept as is (so decode(encode(text)) == text), unk 0, bos 1,
// eos 2, no pad. Throws prores::Error naming the option (--vocab-size, --model-type, --input) or with
// SentencePiece's message.
void train_tokenizer(const std::vector<std::string>& inputs, int64_t vocab_size, const std::string& model_prefix,
                     const std::string& model_type = "bpe", const TokenizerTrainingOptions& options = {});

// Megatron's _vocab_size_with_padding: vocab rounded up to a multiple of divisible_by · tp
// (--make-vocab-size-divisible-by, default 128, times --tensor-model-parallel-size), so every
// tensor-parallel shard of the embedding and LM head has the same, aligned width.
int64_t padded_vocab_size(int64_t vocab, int64_t divisible_by = 128, int64_t tp = 1);

}  // namespace prores::data
