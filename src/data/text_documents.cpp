// Plain-text and JSON-lines document reading (see text_documents.h). The JSON reader is a small
// recursive-descent checker (RFC 8259 grammar, nesting limited to kMaxDepth) that decodes only the one
// string it is asked for.
#include "data/text_documents.h"

#include <filesystem>
#include <iterator>

#include "core/check.h"

namespace prores::data {

namespace {

constexpr int kMaxDepth = 256;

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos; }

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A cursor over one JSON text; every parse_* returns false after setting error.
class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  bool field(std::string_view key, std::string* value) {
    skip_ws();
    if (!expect('{')) return false;
    bool found = false;
    skip_ws();
    if (peek() == '}') {
      ++i_;
    } else {
      for (;;) {
        std::string name;
        skip_ws();
        if (peek() != '"') return fail("expected a string key");
        if (!parse_string(&name)) return false;
        skip_ws();
        if (!expect(':')) return false;
        skip_ws();
        if (name == key) {
          if (peek() != '"') return fail("the value of \"" + std::string(key) + "\" is not a string");
          value->clear();
          if (!parse_string(value)) return false;
          found = true;
        } else if (!parse_value(1)) {
          return false;
        }
        skip_ws();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        if (!expect('}')) return false;
        break;
      }
    }
    skip_ws();
    if (i_ != s_.size()) return fail("unexpected text after the object");
    if (!found) return fail("no \"" + std::string(key) + "\" key");
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool at_end() const { return i_ >= s_.size(); }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool fail(const std::string& what) {
    error_ = what + " at column " + std::to_string(i_ + 1);
    return false;
  }
  bool expect(char c) {
    if (at_end() || s_[i_] != c) return fail(std::string("expected '") + c + "'");
    ++i_;
    return true;
  }

  bool parse_value(int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than " + std::to_string(kMaxDepth));
    switch (peek()) {
      case '"': return parse_string(nullptr);
      case '{': return parse_container(depth, '}');
      case '[': return parse_container(depth, ']');
      case 't': return parse_literal("true");
      case 'f': return parse_literal("false");
      case 'n': return parse_literal("null");
      default: return parse_number();
    }
  }

  // An object ('}') or array (']') whose opening bracket is at i_.
  bool parse_container(int depth, char close) {
    ++i_;
    skip_ws();
    if (peek() == close) {
      ++i_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (close == '}') {
        if (peek() != '"') return fail("expected a string key");
        if (!parse_string(nullptr)) return false;
        skip_ws();
        if (!expect(':')) return false;
        skip_ws();
      }
      if (!parse_value(depth + 1)) return false;
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      return expect(close);
    }
  }

  bool parse_literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return fail("invalid literal");
    i_ += word.size();
    return true;
  }

  bool digits() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }

  bool parse_number() {
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
    } else if (!digits()) {
      return fail("invalid value");
    }
    if (peek() == '.') {
      ++i_;
      if (!digits()) return fail("invalid number");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!digits()) return fail("invalid number");
    }
    return true;
  }

  bool parse_hex4(uint32_t* cp) {
    if (s_.size() - i_ < 4) return fail("truncated \\u escape");
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      uint32_t d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return fail("invalid \\u escape");
      *cp = *cp * 16 + d;
    }
    return true;
  }

  // A \uXXXX escape (i_ just past the 'u'), a surrogate pair when it starts one.
  bool parse_unicode(std::string* out) {
    uint32_t cp = 0;
    if (!parse_hex4(&cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("unpaired low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (s_.substr(i_, 2) != "\\u") return fail("unpaired high surrogate");
      i_ += 2;
      uint32_t low = 0;
      if (!parse_hex4(&low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return fail("unpaired high surrogate");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (out) append_utf8(cp, *out);
    return true;
  }

  // A string whose opening quote is at i_, decoded into *out unless out is null.
  bool parse_string(std::string* out) {
    ++i_;
    for (;;) {
      const size_t run = i_;
      while (i_ < s_.size() && s_[i_] != '"' && s_[i_] != '\\' && static_cast<unsigned char>(s_[i_]) >= 0x20) ++i_;
      if (out) out->append(s_.data() + run, i_ - run);
      if (at_end()) return fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        --i_;
        return fail("control character in a string");
      }
      if (at_end()) return fail("unterminated string");
      const char e = s_[i_++];
      char decoded;
      switch (e) {
        case '"': decoded = '"'; break;
        case '\\': decoded = '\\'; break;
        case '/': decoded = '/'; break;
        case 'b': decoded = '\b'; break;
        case 'f': decoded = '\f'; break;
        case 'n': decoded = '\n'; break;
        case 'r': decoded = '\r'; break;
        case 't': decoded = '\t'; break;
        case 'u':
          if (!parse_unicode(out)) return false;
          continue;
        default: return fail(std::string("invalid escape \\") + e);
      }
      if (out) *out += decoded;
    }
  }

  std::string_view s_;
  size_t i_ = 0;
  std::string error_;
};

}  // namespace

bool is_json_lines(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".jsonl" || ext == ".json";
}

bool json_string_field(std::string_view json, std::string_view key, std::string* value, std::string* error) {
  JsonParser parser(json);
  if (parser.field(key, value)) return true;
  *error = parser.error();
  return false;
}

DocumentReader::DocumentReader(std::vector<std::string> paths, DocumentFormat format)
    : paths_(std::move(paths)), format_(std::move(format)) {
  PRORES_CHECK(!paths_.empty(), "--input: no input files");
  for (const std::string& p : paths_) {
    std::ifstream probe(p, std::ios::binary);
    PRORES_CHECK(probe.good() && !std::filesystem::is_directory(p), "--input: cannot read '", p, "'");
  }
}

bool DocumentReader::next(std::vector<std::string>& docs, size_t max_bytes) {
  docs.clear();
  size_t bytes = 0;
  std::string doc;
  while (file_ < paths_.size() && (docs.empty() || bytes < max_bytes)) {
    if (!open_) {
      in_ = std::ifstream(paths_[file_], std::ios::binary);
      PRORES_CHECK(in_.good(), "--input: cannot read '", paths_[file_], "'");
      open_ = true;
      line_ = 0;
    }
    if (next_in_file(doc)) {
      bytes += doc.size();
      docs.push_back(std::move(doc));
      doc = std::string();
    } else {
      PRORES_CHECK(!in_.bad(), "--input: error reading '", paths_[file_], "'");
      in_.close();
      open_ = false;
      ++file_;
    }
  }
  return !docs.empty();
}

bool DocumentReader::next_in_file(std::string& doc) {
  if (is_json_lines(paths_[file_])) return next_json_line(doc);
  if (!format_.document_per_file) return next_text_block(doc);
  if (line_ > 0) return false;
  line_ = 1;
  doc.assign(std::istreambuf_iterator<char>(in_), std::istreambuf_iterator<char>());
  bytes_read_ += doc.size();
  if (!doc.empty()) return true;
  ++skipped_;
  return false;
}

bool DocumentReader::next_text_block(std::string& doc) {
  doc.clear();
  while (std::getline(in_, buffer_)) {
    ++line_;
    bytes_read_ += buffer_.size() + (in_.eof() ? 0 : 1);
    if (is_blank(buffer_)) {
      if (!doc.empty()) return true;
      continue;
    }
    if (buffer_.back() == '\r') buffer_.pop_back();
    if (!doc.empty()) doc += '\n';
    doc += buffer_;
  }
  return !doc.empty();
}

bool DocumentReader::next_json_line(std::string& doc) {
  while (std::getline(in_, buffer_)) {
    ++line_;
    bytes_read_ += buffer_.size() + (in_.eof() ? 0 : 1);
    if (is_blank(buffer_)) continue;
    std::string error;
    PRORES_CHECK(json_string_field(buffer_, format_.json_key, &doc, &error), "--input: '", paths_[file_], "' line ",
                 line_, ": ", error);
    if (!doc.empty()) return true;
    ++skipped_;
  }
  return false;
}

}  // namespace prores::data
