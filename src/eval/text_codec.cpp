// TextCodec (text_codec.h): SentencePiece through data::Tokenizer, or raw bytes.
#include "eval/text_codec.h"

#include "core/check.h"

namespace prores::eval {

TextCodec TextCodec::bytes() { return TextCodec(); }

TextCodec TextCodec::sentencepiece(const std::string& model_path) {
  TextCodec codec;
  codec.tokenizer_ = std::make_shared<const data::Tokenizer>(data::Tokenizer::load(model_path));
  return codec;
}

TextCodec TextCodec::for_tokenizer(const std::string& model_path) {
  return model_path.empty() ? bytes() : sentencepiece(model_path);
}

std::vector<int32_t> TextCodec::encode(std::string_view text) const {
  if (tokenizer_) return tokenizer_->encode(text);
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string TextCodec::decode(std::span<const int32_t> ids) const {
  for (const int32_t id : ids)
    PRORES_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the tokenizer's vocabulary [0, ",
                 vocab_size(), ")");
  if (tokenizer_) return tokenizer_->decode(std::vector<int32_t>(ids.begin(), ids.end()));
  return std::string(ids.begin(), ids.end());
}

int64_t TextCodec::vocab_size() const { return tokenizer_ ? tokenizer_->vocab_size() : 256; }
int32_t TextCodec::eos_id() const { return tokenizer_ ? tokenizer_->eos_id() : -1; }
int32_t TextCodec::bos_id() const { return tokenizer_ ? tokenizer_->bos_id() : -1; }

const std::string& TextCodec::model_path() const {
  static const std::string none;
  return tokenizer_ ? tokenizer_->model_path() : none;
}

}  // namespace prores::eval
