// A small JSON reader/writer (RFC 8259) for the formats the project reads and writes: safetensors
// headers and Hugging Face config.json. UTF-8 validated, nesting bounded, errors as prores::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace prores {

// A parsed JSON value: objects keep their members in file order (a repeated key is a parse error);
// integers without fraction or exponent that fit int64 are Int, every other number is Double.
struct JsonValue {
  enum class Kind { Null, Bool, Int, Double, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string string;
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;

  // The member named key of an object, or nullptr (also when this is not an object).
  const JsonValue* find(std::string_view key) const;
  // "null", "a boolean", "an integer", "a number", "a string", "an array" or "an object".
  const char* kind_name() const;
};

// What a repeated key of an object means: an error (the default, as the safetensors reference
// implementation has it) or that the last occurrence wins (Python's json, for JSON-lines data).
enum class RepeatedKeys { Reject, LastWins };

// Parses one JSON document (RFC 8259: surrounding whitespace allowed, nothing else after it; strings must
// be valid UTF-8; nesting deeper than 64 is refused) into *out. On a syntax error returns false with
// *error = "invalid JSON at byte N: what".
bool try_parse_json(std::string_view text, JsonValue* out, std::string* error,
                    RepeatedKeys repeated = RepeatedKeys::Reject);

// The same, throwing prores::Error "<where>: invalid JSON at byte N: what" on a syntax error.
JsonValue parse_json(std::string_view text, const std::string& where, RepeatedKeys repeated = RepeatedKeys::Reject);

// s as a JSON string literal, quotes included (", \ and control characters escaped; UTF-8 kept as is).
std::string json_quote(std::string_view s);

// Byte offset of the first invalid UTF-8 sequence in s (overlong forms, surrogates and code points past
// U+10FFFF are invalid), or s.size() when s is valid.
size_t first_invalid_utf8(std::string_view s);

}  // namespace prores
