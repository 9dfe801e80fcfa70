// The JSON reader/writer of core/json.h: a recursive-descent parser over a validated UTF-8 buffer.
#include "core/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include "core/check.h"

namespace prores {

// Byte offset of the first invalid UTF-8 sequence in s (overlong forms, surrogates and code points past
// U+10FFFF are invalid), or s.size() when s is valid.
size_t first_invalid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
    if (n == 0 || i + n > s.size()) return i;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n;
  }
  return s.size();
}

namespace {

constexpr int kMaxJsonDepth = 64;

void append_utf8(std::string& out, uint32_t cp) {
  static constexpr unsigned char kLead[] = {0, 0x00, 0xC0, 0xE0, 0xF0};
  const int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  out += static_cast<char>(kLead[n] | (cp >> (6 * (n - 1))));
  for (int k = n - 2; k >= 0; --k) out += static_cast<char>(0x80 | ((cp >> (6 * k)) & 0x3F));
}

// Recursive-descent parser over a UTF-8-validated buffer; depth-limited so hostile input cannot
// exhaust the stack.
// A syntax error at byte pos: what try_parse_json reports and parse_json throws.
struct SyntaxError {
  size_t pos;
  std::string what;
};

class JsonParser {
 public:
  JsonParser(std::string_view text, RepeatedKeys repeated) : s_(text), repeated_(repeated) {}

  JsonValue document() {
    pos_ = first_invalid_utf8(s_);
    if (pos_ != s_.size()) fail("not valid UTF-8");
    pos_ = 0;
    skip_ws();
    JsonValue v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw SyntaxError{pos_, what}; }
  bool at_end() const { return pos_ >= s_.size(); }
  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    if (at_end() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  void literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) fail("invalid literal");
    pos_ += word.size();
  }

  JsonValue value(int depth) {
    if (depth > kMaxJsonDepth) fail("nesting deeper than 64 levels");
    if (at_end()) fail("unexpected end of input");
    JsonValue v;
    switch (s_[pos_]) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"': v.kind = JsonValue::Kind::String, v.string = string(); break;
      case 't': literal("true"), v.kind = JsonValue::Kind::Bool, v.boolean = true; break;
      case 'f': literal("false"), v.kind = JsonValue::Kind::Bool; break;
      case 'n': literal("null"); break;
      default: number(v);
    }
    return v;
  }

  void object(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::Object;
    ++pos_;
    skip_ws();
    if (eat('}')) return;
    std::set<std::string> keys;
    while (true) {
      skip_ws();
      if (at_end() || s_[pos_] != '"') fail("expected a string key");
      std::string key = string();
      const bool repeated = !keys.insert(key).second;
      if (repeated && repeated_ == RepeatedKeys::Reject) fail("repeated key " + json_quote(key));
      skip_ws();
      expect(':');
      skip_ws();
      JsonValue child = value(depth + 1);
      if (repeated) {
        for (auto& member : v.members)
          if (member.first == key) member.second = std::move(child);
      } else {
        v.members.emplace_back(std::move(key), std::move(child));
      }
      skip_ws();
      if (eat('}')) return;
      expect(',');
    }
  }

  void array(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::Array;
    ++pos_;
    skip_ws();
    if (eat(']')) return;
    while (true) {
      skip_ws();
      v.items.push_back(value(depth + 1));
      skip_ws();
      if (eat(']')) return;
      expect(',');
    }
  }

  uint32_t hex4() {
    uint32_t cp = 0;
    const char* first = s_.data() + pos_;
    if (s_.size() - pos_ < 4 || std::from_chars(first, first + 4, cp, 16).ptr != first + 4) fail("bad \\u escape");
    pos_ += 4;
    return cp;
  }

  std::string string() {
    ++pos_;  // the opening quote
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("unescaped control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) fail("unterminated escape");
      static constexpr std::string_view kEscaped = "\"\\/bfnrt", kMeaning = "\"\\/\b\f\n\r\t";
      const size_t simple = kEscaped.find(s_[pos_++]);
      if (simple != std::string_view::npos) {
        out += kMeaning[simple];
        continue;
      }
      if (s_[pos_ - 1] != 'u') --pos_, fail("invalid escape");
      uint32_t cp = hex4();
      if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (!eat('\\') || !eat('u')) fail("unpaired high surrogate");
        const uint32_t low = hex4();
        if (low < 0xDC00 || low > 0xDFFF) fail("unpaired high surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      }
      append_utf8(out, cp);
    }
  }

  // RFC 8259 grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  void number(JsonValue& v) {
    const size_t start = pos_;
    const auto digits = [&] {
      const size_t from = pos_;
      while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    eat('-');
    if (at_end() || s_[pos_] < '0' || s_[pos_] > '9') fail("unexpected character");
    if (s_[pos_] == '0') ++pos_;
    else digits();
    bool integral = true;
    if (eat('.')) {
      integral = false;
      if (digits() == 0) fail("digits expected after '.'");
    }
    if (eat('e') || eat('E')) {
      integral = false;
      if (!eat('+')) eat('-');
      if (digits() == 0) fail("digits expected in exponent");
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (integral) {
      const auto r = std::from_chars(first, last, v.integer);
      if (r.ec == std::errc() && r.ptr == last) {
        v.kind = JsonValue::Kind::Int;
        return;
      }
    }
    const auto r = std::from_chars(first, last, v.number);
    if (r.ec != std::errc() || r.ptr != last || !std::isfinite(v.number)) fail("number out of range");
    v.kind = JsonValue::Kind::Double;
  }

  std::string_view s_;
  RepeatedKeys repeated_;
  size_t pos_ = 0;
};

}  // namespace

const JsonValue* JsonValue::find(std::string_view key) const {
  for (const auto& [k, v] : members) {
    if (k == key) return &v;
  }
  return nullptr;
}

const char* JsonValue::kind_name() const {
  static constexpr const char* kNames[] = {"null",     "a boolean", "an integer", "a number",
                                           "a string", "an array",  "an object"};
  return kNames[static_cast<int>(kind)];
}

bool try_parse_json(std::string_view text, JsonValue* out, std::string* error, RepeatedKeys repeated) {
  try {
    *out = JsonParser(text, repeated).document();
    return true;
  } catch (const SyntaxError& e) {
    *error = "invalid JSON at byte " + std::to_string(e.pos) + ": " + e.what;
    return false;
  }
}

JsonValue parse_json(std::string_view text, const std::string& where, RepeatedKeys repeated) {
  JsonValue v;
  std::string error;
  PRORES_CHECK(try_parse_json(text, &v, &error, repeated), where, ": ", error);
  return v;
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const char* escaped = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\t' ? "\\t" : nullptr;
    if (escaped) {
      out += escaped;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace prores
