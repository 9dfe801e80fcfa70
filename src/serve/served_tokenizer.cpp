// ServedTokenizer (see served_tokenizer.h): special-token texts from the SentencePiece model, encoding that
// splits on them, and UTF-8 repair for JSON.
#include "serve/served_tokenizer.h"

#include <sentencepiece_processor.h>

#include <utility>

#include "core/check.h"

namespace prores::serve {

namespace {

// The length of the well-formed UTF-8 sequence at the start of s (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF), or 0 when there is none.
size_t utf8_sequence_length(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t n = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < n; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return n;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t n = utf8_sequence_length(text);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      text.remove_prefix(1);
    } else {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
    }
  }
  return out;
}

ServedTokenizer::ServedTokenizer(const eval::TextCodec& codec) : codec_(codec) {
  if (codec.is_bytes()) return;
  sentencepiece::SentencePieceProcessor processor;
  const auto status = processor.Load(codec.model_path());
  PRORES_CHECK(status.ok(), "--tokenizer-model ", codec.model_path(), ": ", status.ToString());
  const std::pair<const char*, int> roles[] = {{"bos", processor.bos_id()},
                                               {"eos", processor.eos_id()},
                                               {"pad", processor.pad_id()},
                                               {"unk", processor.unk_id()}};
  for (const auto& [role, id] : roles)
    if (id >= 0 && id < processor.GetPieceSize()) specials_.push_back({role, id, processor.IdToPiece(id)});
}

const SpecialToken* ServedTokenizer::special(std::string_view role) const {
  for (const SpecialToken& s : specials_)
    if (s.role == role) return &s;
  return nullptr;
}

const SpecialToken* ServedTokenizer::special_with_id(int32_t id) const {
  for (const SpecialToken& s : specials_)
    if (s.id == id) return &s;
  return nullptr;
}

std::vector<int32_t> ServedTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  if (add_bos && codec_.bos_id() >= 0) ids.push_back(codec_.bos_id());
  while (!text.empty()) {
    // The first special token's text in what is left (the longest of those starting there).
    size_t at = std::string_view::npos;
    const SpecialToken* hit = nullptr;
    for (const SpecialToken& s : specials_) {
      const size_t p = s.text.empty() ? std::string_view::npos : text.find(s.text);
      if (p != std::string_view::npos && (p < at || (p == at && s.text.size() > hit->text.size()))) {
        at = p;
        hit = &s;
      }
    }
    const std::vector<int32_t> plain = codec_.encode(text.substr(0, at));
    ids.insert(ids.end(), plain.begin(), plain.end());
    if (hit == nullptr) break;
    ids.push_back(hit->id);
    text.remove_prefix(at + hit->text.size());
  }
  return ids;
}

std::string ServedTokenizer::detokenize(std::span<const int32_t> ids) const {
  std::string out;
  size_t run = 0;  // start of the current run of ordinary tokens
  for (size_t i = 0; i <= ids.size(); ++i) {
    const SpecialToken* s = i < ids.size() ? special_with_id(ids[i]) : nullptr;
    if (i < ids.size() && s == nullptr) continue;
    if (i > run) out += codec_.decode(ids.subspan(run, i - run));
    if (s != nullptr) out += s->text;
    run = i + 1;
  }
  return valid_utf8(out);
}

std::string ServedTokenizer::text(std::span<const int32_t> ids) const { return valid_utf8(codec_.decode(ids)); }

std::string ServedTokenizer::token_text(int32_t id) const {
  if (const SpecialToken* s = special_with_id(id)) return s->text;
  return text(std::span<const int32_t>(&id, 1));
}

}  // namespace prores::serve
