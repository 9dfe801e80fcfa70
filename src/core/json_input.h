// JSON input read with nlohmann-json under the project's policy for files it does not control
// (safetensors headers, Hugging Face config.json, JSON-lines data): nesting bounded, a repeated key
// refused or last-wins, and every failure one line "invalid JSON at byte N: what".
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace prores {

// What a repeated key of an object means: an error (the default, as the safetensors reference
// implementation has it) or that the last occurrence wins, in the first one's place (Python's json, for
// JSON-lines data).
enum class RepeatedKeys { Reject, LastWins };

// Parses one JSON document (RFC 8259, as nlohmann-json reads it: strings valid UTF-8, surrounding whitespace
// only) into *out, objects in file order. Also refused: nesting deeper than 64 levels and, under
// RepeatedKeys::Reject, a repeated key. On failure returns false with *error = "invalid JSON at byte N:
// what" (N the 0-based offset nlohmann-json reports; "invalid JSON: what" for the two refusals above, where
// it reports none); `what` uses this project's wording for the common cases ("unterminated string",
// "unpaired high surrogate", "unexpected text after the JSON value", "not valid UTF-8", ...).
bool try_parse_json(std::string_view text, nlohmann::ordered_json* out, std::string* error,
                    RepeatedKeys repeated = RepeatedKeys::Reject);

// The same, throwing prores::Error "<where>: invalid JSON at byte N: what".
nlohmann::ordered_json parse_json(std::string_view text, const std::string& where,
                                  RepeatedKeys repeated = RepeatedKeys::Reject);

// Whether v is an integer that fits int64 (nlohmann-json holds non-negative integers as uint64, and
// integers past uint64 as doubles).
bool json_is_int64(const nlohmann::ordered_json& v);

// "null", "a boolean", "an integer" (json_is_int64), "a number" (any other number), "a string", "an array"
// or "an object", for error messages.
const char* json_kind_name(const nlohmann::ordered_json& v);

// The member named key of object, or nullptr (also when object is not an object).
const nlohmann::ordered_json* json_member(const nlohmann::ordered_json& object, std::string_view key);

}  // namespace prores
