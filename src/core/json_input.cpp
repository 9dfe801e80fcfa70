// nlohmann-json parsing with bounded nesting, the repeated-key rule and one-line errors (see json_input.h).
#include "core/json_input.h"

#include <cstdint>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "core/check.h"

namespace prores {

namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxJsonDepth = 64;

// A document the parser callback refuses (nlohmann-json gives the callback no byte offset).
struct Refusal {
  std::string what;
};

// What went wrong, from nlohmann-json's message ("[json.exception.parse_error.101] parse error at line 1,
// column 4: syntax error while parsing value - unexpected ']'; expected '[', '{', or a literal") without its
// tag and position, and in this project's words where it has them.
std::string describe(const Json::exception& e) {
  std::string what = e.what();
  if (const size_t tag = what.find("] "); tag != std::string::npos) what.erase(0, tag + 2);
  if (what.rfind("parse error", 0) == 0) {
    if (const size_t colon = what.find(": "); colon != std::string::npos) what.erase(0, colon + 2);
  }
  static constexpr std::pair<const char*, const char*> kWording[] = {
      {"ill-formed UTF-8", "not valid UTF-8"},
      {"missing closing quote", "unterminated string"},
      {"must be followed by 4 hex digits", "bad \\u escape"},
      {"must be followed by U+DC00", "unpaired high surrogate"},
      {"must follow U+D800", "unpaired low surrogate"},
      {"forbidden character after backslash", "invalid escape"},
      {"control character", "unescaped control character in string"},
      {"; expected end of input", "unexpected text after the JSON value"},
      {"number overflow", "number out of range"},
  };
  for (const auto& [theirs, ours] : kWording) {
    if (what.find(theirs) != std::string::npos) return ours;
  }
  return what;
}

}  // namespace

bool try_parse_json(std::string_view text, Json* out, std::string* error, RepeatedKeys repeated) {
  using Event = Json::parse_event_t;
  const bool reject = repeated == RepeatedKeys::Reject;
  std::vector<std::set<std::string>> keys;  // under Reject, the keys of each open object so far
  const Json::parser_callback_t check = [&](int depth, Event event, Json& parsed) {
    if (event == Event::object_start || event == Event::array_start) {
      // depth counts the containers around the one starting.
      if (depth >= kMaxJsonDepth) throw Refusal{"nesting deeper than 64 levels"};
      if (event == Event::object_start && reject) keys.emplace_back();
    } else if (event == Event::key && reject) {
      if (!keys.back().insert(parsed.get_ref<const std::string&>()).second)
        throw Refusal{"repeated key " + parsed.dump()};
    } else if (event == Event::object_end && reject) {
      keys.pop_back();
    }
    return true;
  };
  try {
    *out = Json::parse(text, check);
    return true;
  } catch (const Json::parse_error& e) {
    // e.byte counts the bytes read up to and including the offending one.
    *error = "invalid JSON at byte " + std::to_string(e.byte > 0 ? e.byte - 1 : 0) + ": " + describe(e);
  } catch (const Json::exception& e) {  // out_of_range: a number past the range of double
    *error = "invalid JSON: " + describe(e);
  } catch (const Refusal& r) {
    *error = "invalid JSON: " + r.what;
  }
  return false;
}

Json parse_json(std::string_view text, const std::string& where, RepeatedKeys repeated) {
  Json v;
  std::string error;
  PRORES_CHECK(try_parse_json(text, &v, &error, repeated), where, ": ", error);
  return v;
}

bool json_is_int64(const Json& v) {
  return v.is_number_integer() &&
         (!v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

const char* json_kind_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return json_is_int64(v) ? "an integer" : "a number";
    case Json::value_t::number_float: return "a number";
    case Json::value_t::string: return "a string";
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    default: return "a value";
  }
}

const Json* json_member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

}  // namespace prores
