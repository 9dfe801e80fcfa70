// Progress a person can read in the log of a long command (preprocess, convert, export, scoring): at most one
// line per interval with the count done, the share of the total, a rate, the elapsed time and an ETA, then a
// final line with the total elapsed time. Whole lines only (no carriage-return animation: the output goes to
// log files), to std::cerr unless told otherwise, and only where enabled (under MPI, the one rank that reports).
#pragma once
#include <cstdint>
#include <functional>
#include <iostream>
#include <ostream>
#include <string>
#include <string_view>

namespace prores {

// A duration for people: "4.2s" below 10 s, then "42s", "3m05s", "1h02m", "2d03h" (the smaller unit truncated).
// "?" for a negative or non-finite value (an ETA not known yet).
std::string format_duration(double seconds);

// A byte count in decimal units with one decimal: "512 B", "41.0 kB", "4.1 MB", "1.2 GB", "3.0 TB".
std::string format_bytes(double bytes);

struct ProgressOptions {
  std::ostream* out = &std::cerr;
  double min_interval_s = 5;      // the least time between two progress lines (0: a line every advance)
  bool enabled = true;            // false: prints nothing (e.g. every rank but the reporting one)
  int64_t total_bytes = 0;        // > 0: the share done and the ETA come from bytes when the unit total is unknown
  std::function<double()> clock = {};  // seconds from any origin; empty: std::chrono::steady_clock
};

class Progress {
 public:
  // total: the units expected (0: unknown); unit: their plural name ("documents", "tensors").
  Progress(std::string label, int64_t total, std::string unit, ProgressOptions options = {});

  // Counts n more units (and `bytes` more bytes, which then give the rate); prints a line such as
  //   convert: 120/500 tensors (24.0%), 41.0 MB, 4.1 MB/s | elapsed 10s | ETA 32s
  //   preprocess: 52000 documents, 41.0 MB of 205.0 MB (20.0%), 4.1 MB/s | elapsed 10s | ETA 40s
  //   scan: 7 files, 0.7 files/s | elapsed 10s
  // when min_interval_s has passed since the last line (or the start).
  void advance(int64_t n, int64_t bytes = 0);
  // Prints `label: message` now (a phase starting, a file being written).
  void note(std::string_view message);
  // Prints the final line, e.g. "preprocess: done, 500000 documents, 205.0 MB, 4.1 MB/s | elapsed 50s" (once).
  void finish();

  int64_t done() const { return done_; }

 private:
  double now() const;
  // "120/500 tensors (24.0%), 41.0 MB, 4.1 MB/s": the counts, the share when a total is known and the rate (on
  // the final line, the counts without totals or share).
  std::string counts(double elapsed) const;
  // The share done in [0, 1], or a negative value when no total is known.
  double fraction() const;

  std::string label_, unit_;
  int64_t total_, done_ = 0, bytes_ = 0;
  ProgressOptions options_;
  double start_, last_line_;
  bool finished_ = false;
};

}  // namespace prores
