// JSON encoding of metrics records and the appending metrics.jsonl writer.
#include "train/metrics_writer.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "core/check.h"

namespace prores::train {

namespace {

// Appends s as a JSON string literal.
void append_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// Appends v with the fewest digits that read back to the same double, or null when it is not finite.
// Like JavaScript's Number#toString: plain decimals for 1e-7 <= |v| < 1e21 (0.0003, 5000), an exponent
// otherwise (1e-08, 1e+21).
void append_double(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  const double magnitude = std::fabs(v);
  const bool plain = magnitude == 0 || (magnitude >= 1e-7 && magnitude < 1e21);
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, v,
                                    plain ? std::chars_format::fixed : std::chars_format::scientific);
  PRORES_CHECK(result.ec == std::errc(), "metrics: cannot format ", v);
  out.append(buf, result.ptr);
}

}  // namespace

MetricsRecord& MetricsRecord::add(std::string key, double value) { return add_value(std::move(key), value); }

MetricsRecord& MetricsRecord::add(std::string key, std::vector<double> values) {
  return add_value(std::move(key), std::move(values));
}

MetricsRecord& MetricsRecord::add_value(std::string key, Value value) {
  for (const auto& field : fields_) {
    PRORES_CHECK(field.first != key, "metrics: key '", key, "' added twice to one record");
  }
  fields_.emplace_back(std::move(key), std::move(value));
  return *this;
}

std::string MetricsRecord::to_json() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i > 0) out += ',';
    append_string(out, fields_[i].first);
    out += ':';
    const Value& value = fields_[i].second;
    if (const auto* integer = std::get_if<int64_t>(&value)) {
      out += std::to_string(*integer);
    } else if (const auto* real = std::get_if<double>(&value)) {
      append_double(out, *real);
    } else {
      const auto& list = std::get<std::vector<double>>(value);
      out += '[';
      for (size_t j = 0; j < list.size(); ++j) {
        if (j > 0) out += ',';
        append_double(out, list[j]);
      }
      out += ']';
    }
  }
  out += '}';
  return out;
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
