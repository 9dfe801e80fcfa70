// The text side of `prores serve`: the run's TextCodec as the HTTP endpoints see it. Like a Hugging Face
// tokenizer behind vLLM, it knows the special tokens by their text ("<s>", "</s>", ...): text that contains one
// tokenizes to its id, and /detokenize and the logprobs' token texts write it back, so that lm-eval's remote
// tokenizer (which finds the EOS id by tokenizing the EOS text) and tokenize(detokenize(ids)) == ids work.
// Every string it returns is valid UTF-8 (JSON needs it): a byte sequence that is not becomes U+FFFD.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eval/text_codec.h"

namespace prores::serve {

// One special token of a SentencePiece model.
struct SpecialToken {
  std::string role;  // "bos", "eos", "pad" or "unk"
  int32_t id = -1;
  std::string text;  // its piece, e.g. "</s>"
};

class ServedTokenizer {
 public:
  // Reads the special tokens' pieces from codec's SentencePiece model (none for the byte-level codec). codec
  // must outlive this. Thread-safe after construction.
  explicit ServedTokenizer(const eval::TextCodec& codec);

  // text → ids: each special token's text becomes its id, the text between them codec.encode's ids (so text
  // without special tokens is exactly codec.encode(text)). With add_bos, the BOS id first (when there is one).
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const;
  // ids → text, special tokens written as their text (the inverse of encode for /detokenize).
  std::string detokenize(std::span<const int32_t> ids) const;
  // ids → the completion's text: codec.decode, so special tokens drop out (as vLLM's skip_special_tokens).
  std::string text(std::span<const int32_t> ids) const;
  // One token's text in logprobs' tokens and top_logprobs: a special token's text, else text({id}).
  std::string token_text(int32_t id) const;
  // Whether id is a token (0 <= id < vocab_size()).
  bool is_token(int64_t id) const { return id >= 0 && id < codec_.vocab_size(); }

  const eval::TextCodec& codec() const { return codec_; }
  const std::vector<SpecialToken>& special_tokens() const { return specials_; }
  const SpecialToken* special(std::string_view role) const;  // nullptr when the model has none

 private:
  const SpecialToken* special_with_id(int32_t id) const;

  const eval::TextCodec& codec_;
  std::vector<SpecialToken> specials_;
};

// text with every byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD.
std::string valid_utf8(std::string_view text);

}  // namespace prores::serve
