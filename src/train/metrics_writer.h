// Training metrics as JSON Lines: one object per logged iteration or evaluation, appended to
// <log-dir>/metrics.jsonl (docs/design.md, Contracts), e.g.
//   {"iter":10,"loss":3.2,"lr":0.0003,"grad_norm":1.1,"tokens_per_sec":5000,"mfu":0.41,"alpha":[0.1,0.05]}
#pragma once
#include <concepts>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace prores::train {

// An ordered list of (key, value) pairs, held as a nlohmann::ordered_json object; a value is an integer, a
// double or a list of doubles.
class MetricsRecord {
 public:
  // Appends a field; keys keep insertion order. Throws prores::Error on a repeated key.
  MetricsRecord& add(std::string key, double value);
  MetricsRecord& add(std::string key, std::vector<double> values);
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  MetricsRecord& add(std::string key, I value) {
    return add_value(std::move(key), static_cast<int64_t>(value));
  }
  MetricsRecord& add(std::string key, bool value) = delete;  // also catches string literals

  size_t size() const { return fields_.size(); }

  // One JSON object without a newline: keys in insertion order, integers exact, doubles in the
  // shortest form that reads back to the same value, written as JavaScript writes numbers (5000, 0.0003,
  // 1e-08), NaN and ±inf as null (JSON has no such numbers).
  std::string to_json() const;

 private:
  MetricsRecord& add_value(std::string key, nlohmann::ordered_json value);

  nlohmann::ordered_json fields_ = nlohmann::ordered_json::object();
};

// Appends records to <log_dir>/metrics.jsonl, one line each, flushed after every line.
class MetricsWriter {
 public:
  // Creates log_dir (and its parents) when missing and opens the file for appending, so a resumed run
  // keeps the earlier lines. Throws prores::Error naming --log-dir and the path on failure.
  explicit MetricsWriter(const std::string& log_dir);

  void write(const MetricsRecord& record);

  // The metrics.jsonl path.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace prores::train
