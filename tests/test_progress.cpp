// Progress lines (core/progress.h): durations and byte counts for people, the progress line's format with
// known and unknown totals on a fake clock, the interval between lines, the final line, and a disabled
// Progress (a rank that does not report) printing nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <regex>
#include <sstream>
#include <string>

#include "core/progress.h"

namespace prores {
namespace {

TEST(FormatDuration, PicksTwoUnitsForPeople) {
  EXPECT_EQ(format_duration(0), "0.0s");
  EXPECT_EQ(format_duration(4.2), "4.2s");
  EXPECT_EQ(format_duration(9.94), "9.9s");
  EXPECT_EQ(format_duration(9.96), "10s");
  EXPECT_EQ(format_duration(42), "42s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  EXPECT_EQ(format_duration(3 * 3600 + 59 * 60 + 59), "3h59m");
  EXPECT_EQ(format_duration(2 * 86400 + 3 * 3600 + 1800), "2d03h");
  EXPECT_EQ(format_duration(400 * 86400.0), "400d00h");
}

TEST(FormatDuration, UnknownIsAQuestionMark) {
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "?");
  EXPECT_EQ(format_duration(std::nan("")), "?");
}

TEST(FormatBytes, DecimalUnitsWithOneDecimal) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(41'000), "41.0 kB");
  EXPECT_EQ(format_bytes(999'999), "1.0 MB");
  EXPECT_EQ(format_bytes(4.1e6), "4.1 MB");
  EXPECT_EQ(format_bytes(1.25e9), "1.2 GB");
  EXPECT_EQ(format_bytes(3e12), "3.0 TB");
  EXPECT_EQ(format_bytes(5e15), "5000.0 TB");
}

// A Progress writing to a string, on a clock the test sets.
struct FakeClockProgress {
  std::ostringstream out;
  double now = 0;
  ProgressOptions options(double interval = 0) {
    return {.out = &out, .min_interval_s = interval, .clock = [this] { return now; }};
  }
  std::string take() {
    std::string text = out.str();
    out.str("");
    return text;
  }
};

TEST(Progress, LineWithKnownTotalShowsShareRateAndEta) {
  FakeClockProgress f;
  Progress p("convert", 500, "tensors", f.options());
  f.now = 10;
  p.advance(120, 41'000'000);
  EXPECT_EQ(f.take(), "convert: 120/500 tensors (24.0%), 41.0 MB, 4.1 MB/s | elapsed 10s | ETA 32s\n");
  f.now = 50;
  p.advance(380, 164'000'000);
  EXPECT_EQ(f.take(), "convert: 500/500 tensors (100.0%), 205.0 MB, 4.1 MB/s | elapsed 50s | ETA 0.0s\n");
  p.finish();
  EXPECT_EQ(f.take(), "convert: done, 500 tensors, 205.0 MB, 4.1 MB/s | elapsed 50s\n");
}

TEST(Progress, RateInUnitsWithoutBytes) {
  FakeClockProgress f;
  Progress p("eval piqa", 3000, "requests", f.options());
  f.now = 185;
  p.advance(1200);
  EXPECT_EQ(f.take(), "eval piqa: 1200/3000 requests (40.0%), 6.5 requests/s | elapsed 3m05s | ETA 4m38s\n");
  f.now = 200;
  p.advance(800);
  EXPECT_EQ(f.take(), "eval piqa: 2000/3000 requests (66.7%), 10.0 requests/s | elapsed 3m20s | ETA 1m40s\n");
  f.now = 200.4;
  p.advance(20);
  EXPECT_EQ(f.take(), "eval piqa: 2020/3000 requests (67.3%), 10.1 requests/s | elapsed 3m20s | ETA 1m37s\n");
  f.now = 20'000;
  p.advance(1);
  EXPECT_EQ(f.take(), "eval piqa: 2021/3000 requests (67.4%), 0.1 requests/s | elapsed 5h33m | ETA 2h41m\n");
  p.advance(100'000);  // past the total: the ETA is unknown
  EXPECT_EQ(f.take(), "eval piqa: 102021/3000 requests (3400.7%), 5.1 requests/s | elapsed 5h33m | ETA ?\n");
}

TEST(Progress, UnknownTotalHasNoShareNorEta) {
  FakeClockProgress f;
  Progress p("scan", 0, "files", f.options());
  f.now = 10;
  p.advance(7);
  EXPECT_EQ(f.take(), "scan: 7 files, 0.7 files/s | elapsed 10s\n");
  f.now = 11;
  p.advance(3, 2'000);
  EXPECT_EQ(f.take(), "scan: 10 files, 2.0 kB, 182 B/s | elapsed 11s\n");
}

TEST(Progress, ByteTotalGivesTheShareWhenTheUnitTotalIsUnknown) {
  FakeClockProgress f;
  ProgressOptions options = f.options();
  options.total_bytes = 205'000'000;
  Progress p("preprocess", 0, "documents", options);
  f.now = 10;
  p.advance(52'000, 41'000'000);
  EXPECT_EQ(f.take(), "preprocess: 52000 documents, 41.0 MB of 205.0 MB (20.0%), 4.1 MB/s | elapsed 10s | ETA 40s\n");
  f.now = 50;
  p.advance(208'000, 164'000'000);
  p.finish();
  EXPECT_EQ(f.take(),
            "preprocess: 260000 documents, 205.0 MB of 205.0 MB (100.0%), 4.1 MB/s | elapsed 50s | ETA 0.0s\n"
            "preprocess: done, 260000 documents, 205.0 MB, 4.1 MB/s | elapsed 50s\n");
}

TEST(Progress, AtMostOneLinePerInterval) {
  FakeClockProgress f;
  Progress p("preprocess", 100, "documents", f.options(5));
  for (const double t : {1.0, 4.9, 5.0, 6.0, 9.9, 10.0, 30.0}) {
    f.now = t;
    p.advance(1);
  }
  // Lines at 5 (5 s after the start), 10 (5 s after the last line) and 30.
  const std::string lines = f.take();
  EXPECT_EQ(lines,
            "preprocess: 3/100 documents (3.0%), 0.6 documents/s | elapsed 5.0s | ETA 2m42s\n"
            "preprocess: 6/100 documents (6.0%), 0.6 documents/s | elapsed 10s | ETA 2m37s\n"
            "preprocess: 7/100 documents (7.0%), 0.2 documents/s | elapsed 30s | ETA 6m39s\n");
  EXPECT_EQ(p.done(), 7);
}

TEST(Progress, NoteAndFinishOfAPhaseWithoutCounts) {
  FakeClockProgress f;
  Progress p("train-tokenizer", 0, "documents", f.options());
  p.note("training");
  f.now = 4.2;
  p.finish();
  p.finish();  // once only
  p.advance(5);  // nothing after the final line
  EXPECT_EQ(f.take(), "train-tokenizer: training\ntrain-tokenizer: done | elapsed 4.2s\n");
}

TEST(Progress, DisabledPrintsNothingButCounts) {
  FakeClockProgress f;
  ProgressOptions options = f.options();
  options.enabled = false;
  Progress p("eval piqa", 10, "requests", options);
  f.now = 1;
  p.advance(4);
  p.note("hidden");
  p.finish();
  EXPECT_EQ(f.take(), "");
  EXPECT_EQ(p.done(), 4);
}

TEST(Progress, SteadyClockByDefault) {
  std::ostringstream out;
  Progress p("import-hf", 2, "tensors written", {.out = &out, .min_interval_s = 0});
  p.advance(1, 4'000);
  p.finish();
  const std::string rate = "(, [0-9.]+ [kMGT]?B/s)?";  // absent when no time has passed on the clock
  const std::regex expected("import-hf: 1/2 tensors written \\(50\\.0%\\), 4\\.0 kB" + rate +
                            " \\| elapsed [0-9.]+s \\| ETA [0-9.]+s\n"
                            "import-hf: done, 1 tensors written, 4\\.0 kB" + rate + " \\| elapsed [0-9.]+s\n");
  EXPECT_TRUE(std::regex_match(out.str(), expected)) << out.str();
}

}  // namespace
}  // namespace prores
