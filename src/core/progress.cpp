// Progress lines (progress.h).
#include "core/progress.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <utility>

namespace prores {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string printed(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

std::string two_units(long long major, const char* major_unit, long long minor, const char* minor_unit) {
  char text[64];
  std::snprintf(text, sizeof text, "%lld%s%02lld%s", major, major_unit, minor, minor_unit);
  return text;
}

// A rate of units per second: one decimal below 100, whole numbers above.
std::string format_rate(double per_second) { return printed(per_second < 100 ? "%.1f" : "%.0f", per_second); }

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (std::round(seconds * 10) < 100) return printed("%.1fs", seconds);
  const long long s = std::llround(seconds);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return two_units(s / 60, "m", s % 60, "s");
  if (s < 86400) return two_units(s / 3600, "h", s % 3600 / 60, "m");
  return two_units(s / 86400, "d", s % 86400 / 3600, "h");
}

std::string format_bytes(double bytes) {
  if (bytes < 1000) return printed("%.0f B", bytes);
  const char* units[] = {"kB", "MB", "GB", "TB"};
  int unit = 0;
  for (bytes /= 1000; bytes >= 999.95 && unit < 3; bytes /= 1000) ++unit;
  return printed("%.1f ", bytes) + units[unit];
}

Progress::Progress(std::string label, int64_t total, std::string unit, ProgressOptions options)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), options_(std::move(options)) {
  start_ = last_line_ = now();
}

double Progress::now() const { return options_.clock ? options_.clock() : steady_seconds(); }

double Progress::fraction() const {
  if (total_ > 0) return static_cast<double>(done_) / static_cast<double>(total_);
  if (options_.total_bytes > 0) return static_cast<double>(bytes_) / static_cast<double>(options_.total_bytes);
  return -1;
}

std::string Progress::counts(double elapsed) const {
  const bool running = !finished_;  // the final line gives the counts without totals or share
  const auto share = [&] { return printed(" (%.1f%%)", 100 * fraction()); };
  std::string text = std::to_string(done_);
  if (running && total_ > 0) text.append("/").append(std::to_string(total_));
  text.append(" ").append(unit_);
  if (running && total_ > 0) text.append(share());
  if (bytes_ > 0) {
    text.append(", ").append(format_bytes(static_cast<double>(bytes_)));
    if (running && total_ == 0 && options_.total_bytes > 0)
      text.append(" of ").append(format_bytes(static_cast<double>(options_.total_bytes))).append(share());
  }
  if (elapsed > 0) {
    const double rate = (bytes_ > 0 ? static_cast<double>(bytes_) : static_cast<double>(done_)) / elapsed;
    text.append(", ").append(bytes_ > 0 ? format_bytes(rate) : format_rate(rate) + " " + unit_).append("/s");
  }
  return text;
}

void Progress::advance(int64_t n, int64_t bytes) {
  done_ += n;
  bytes_ += bytes;
  if (!options_.enabled || finished_) return;
  const double t = now();
  if (t - last_line_ < options_.min_interval_s) return;
  last_line_ = t;
  const double elapsed = t - start_, share = fraction();
  std::string line = label_ + ": " + counts(elapsed) + " | elapsed " + format_duration(elapsed);
  if (share > 0) line += " | ETA " + format_duration(elapsed * (1 - share) / share);
  *options_.out << line << std::endl;
}

void Progress::note(std::string_view message) {
  if (options_.enabled) *options_.out << label_ << ": " << message << std::endl;
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!options_.enabled) return;
  const double elapsed = now() - start_;
  std::string line = label_ + ": done";
  if (done_ > 0 || bytes_ > 0) line += ", " + counts(elapsed);
  *options_.out << line << " | elapsed " << format_duration(elapsed) << std::endl;
}

}  // namespace prores
