// How text becomes token ids for evaluation, generation and serving: the run's SentencePiece model, or, for a
// byte-level run (no --tokenizer-model), the UTF-8 bytes themselves as ids 0..255.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"

namespace prores::eval {

class TextCodec {
 public:
  // The byte-level codec (ids 0..255, no special tokens).
  static TextCodec bytes();
  // A SentencePiece model (throws prores::Error naming --tokenizer-model and the path).
  static TextCodec sentencepiece(const std::string& model_path);
  // The SentencePiece model at model_path, or bytes() for an empty path.
  static TextCodec for_tokenizer(const std::string& model_path);

  // Thread-safe (both codecs are stateless after construction).
  std::vector<int32_t> encode(std::string_view text) const;
  // Throws prores::Error naming the id when one is outside [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids) const;
  // Ids 0 .. vocab_size() - 1 are tokens (the model's padded vocabulary may be larger).
  int64_t vocab_size() const;
  int32_t eos_id() const;  // -1 when there is none
  int32_t bos_id() const;  // -1 when there is none
  // The token lm-evaluation-harness puts before an empty context or a rolling window: BOS, else EOS (-1: none).
  int32_t prefix_id() const { return bos_id() >= 0 ? bos_id() : eos_id(); }
  bool is_bytes() const { return tokenizer_ == nullptr; }
  const std::string& model_path() const;

 private:
  std::shared_ptr<const data::Tokenizer> tokenizer_;  // null: bytes
};

}  // namespace prores::eval
