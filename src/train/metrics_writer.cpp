// JSON encoding of metrics records (nlohmann-json, doubles JavaScript-style) and the appending metrics.jsonl
// writer.
#include "train/metrics_writer.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "core/check.h"

namespace prores::train {

namespace {

using Json = nlohmann::ordered_json;

// v with the fewest digits that read back to the same double, or null when it is not finite. Like
// JavaScript's Number#toString: plain decimals for 1e-7 <= |v| < 1e21 (0.0003, 5000), an exponent
// otherwise (1e-08, 1e+21). nlohmann-json's own form (5000.0, 1.5e-07) reads back the same but is not
// what metrics.jsonl has always held.
std::string number_text(double v) {
  if (!std::isfinite(v)) return "null";
  const double magnitude = std::fabs(v);
  const bool plain = magnitude == 0 || (magnitude >= 1e-7 && magnitude < 1e21);
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, v,
                                    plain ? std::chars_format::fixed : std::chars_format::scientific);
  PRORES_CHECK(result.ec == std::errc(), "metrics: cannot format ", v);
  return std::string(buf, result.ptr);
}

// A number or null as nlohmann-json writes it, except doubles (number_text).
std::string value_text(const Json& v) { return v.is_number_float() ? number_text(v.get<double>()) : v.dump(); }

}  // namespace

MetricsRecord& MetricsRecord::add(std::string key, double value) { return add_value(std::move(key), value); }

MetricsRecord& MetricsRecord::add(std::string key, std::vector<double> values) {
  return add_value(std::move(key), std::move(values));
}

MetricsRecord& MetricsRecord::add_value(std::string key, Json value) {
  PRORES_CHECK(!fields_.contains(key), "metrics: key '", key, "' added twice to one record");
  fields_.emplace(std::move(key), std::move(value));
  return *this;
}

std::string MetricsRecord::to_json() const {
  std::string out = "{";
  for (const auto& [key, value] : fields_.items()) {
    out += out.size() > 1 ? "," : "";
    out += Json(key).dump(-1, ' ', false, Json::error_handler_t::replace) + ":";
    if (!value.is_array()) {
      out += value_text(value);
      continue;
    }
    out += '[';
    for (size_t j = 0; j < value.size(); ++j) {
      if (j > 0) out += ',';
      out += value_text(value[j]);
    }
    out += ']';
  }
  return out + "}";
}

MetricsWriter::MetricsWriter(const std::string& log_dir) {
  PRORES_CHECK(!log_dir.empty(), "--log-dir: empty directory name");
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  PRORES_CHECK(!ec && std::filesystem::is_directory(log_dir), "--log-dir: cannot create directory '",
               log_dir, "'", ec ? ": " + ec.message() : std::string());
  path_ = (std::filesystem::path(log_dir) / "metrics.jsonl").string();
  out_.open(path_, std::ios::out | std::ios::app | std::ios::binary);
  PRORES_CHECK(out_.is_open(), "--log-dir: cannot open '", path_, "' for appending");
}

void MetricsWriter::write(const MetricsRecord& record) {
  out_ << record.to_json() << '\n';
  out_.flush();
  PRORES_CHECK(out_.good(), "metrics: failed writing '", path_, "'");
}

}  // namespace prores::train
