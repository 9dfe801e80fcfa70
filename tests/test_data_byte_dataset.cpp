// Byte-level dataset: exact contiguous splits, the one-token shift between tokens and targets, the
// seeded per-epoch permutation of training windows, sequential validation windows, and the errors
// (each naming its command-line option).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "core/check.h"
#include "data/byte_dataset.h"
#include "test_util.h"

namespace prores::data {
namespace {

using test::TempDir;

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// n bytes of varied text-like content (every window is distinguishable by its bytes).
std::vector<uint8_t> make_bytes(int64_t n) {
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) bytes[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 131 + i / 7) % 251);
  return bytes;
}

// Runs f, expects prores::Error, and expects every needle in its message.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected prores::Error containing " << needles.front();
  } catch (const prores::Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& needle : needles) EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

// Window starts of indices [first, first + count) of a split.
std::vector<int64_t> starts(const ByteDataset& ds, Split split, int64_t first, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t i = first; i < first + count; ++i) out.push_back(ds.window_start(split, i));
  return out;
}

TEST(ByteDataset, SplitsCoverTheFileExactlyWithoutOverlap) {
  const std::vector<std::array<double, 3>> splits = {
      {969, 30, 1}, {1, 0, 0}, {98, 2, 0}, {1, 1, 1}, {0.5, 0.25, 0.25}, {7, 0, 3}};
  for (const int64_t n : {1000, 4099, 100003}) {
    for (const auto& w : splits) {
      const auto ds = ByteDataset::from_bytes(make_bytes(n), w, 8, 1);
      const double total = w[0] + w[1] + w[2];
      int64_t expected_begin = 0;
      for (Split s : {Split::Train, Split::Valid, Split::Test}) {
        const auto r = ds.range(s);
        EXPECT_EQ(r[0], expected_begin) << split_name(s);
        EXPECT_LE(r[0], r[1]);
        EXPECT_NEAR(static_cast<double>(r[1] - r[0]), n * w[static_cast<int>(s)] / total, 1.0);
        EXPECT_EQ(ds.num_samples(s), r[1] - r[0] > 8 ? (r[1] - r[0] - 1) / 8 : 0);
        expected_begin = r[1];
      }
      EXPECT_EQ(expected_begin, n);
    }
  }
}

TEST(ByteDataset, SplitRangesHelperIsExactForSmallCounts) {
  for (int64_t n = 0; n < 50; ++n) {
    const auto r = split_ranges(n, {969, 30, 1});
    EXPECT_EQ(r[0][0], 0);
    EXPECT_EQ(r[0][1], r[1][0]);
    EXPECT_EQ(r[1][1], r[2][0]);
    EXPECT_EQ(r[2][1], n);
  }
}

TEST(ByteDataset, TargetsAreTokensShiftedByOne) {
  const auto bytes = make_bytes(5000);
  const auto ds = ByteDataset::from_bytes(bytes, {90, 10, 0}, 16, 3);
  std::vector<int32_t> tokens(16), targets(16);
  for (Split s : {Split::Train, Split::Valid}) {
    for (int64_t i = 0; i < ds.num_samples(s) + 3; ++i) {
      ds.get_sample(s, i, tokens.data(), targets.data());
      const int64_t start = ds.window_start(s, i);
      const auto r = ds.range(s);
      ASSERT_GE(start, r[0]);
      ASSERT_LE(start + 17, r[1]) << "window leaves the " << split_name(s) << " range";
      for (int t = 0; t < 16; ++t) {
        EXPECT_EQ(tokens[t], bytes[start + t]);
        EXPECT_EQ(targets[t], bytes[start + t + 1]);
        if (t + 1 < 16) {
          EXPECT_EQ(targets[t], tokens[t + 1]);
        }
      }
    }
  }
}

TEST(ByteDataset, TrainEpochVisitsEveryWindowOnce) {
  const auto ds = ByteDataset::from_bytes(make_bytes(20000), {969, 30, 1}, 32, 1234);
  const int64_t n = ds.num_samples(Split::Train);
  ASSERT_GT(n, 100);
  std::vector<int64_t> expected(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) expected[static_cast<size_t>(k)] = ds.range(Split::Train)[0] + k * 32;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    auto got = starts(ds, Split::Train, epoch * n, n);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected) << "epoch " << epoch;
  }
}

TEST(ByteDataset, TrainOrderIsSeededAndReshuffledEachEpoch) {
  const auto bytes = make_bytes(20000);
  const auto a = ByteDataset::from_bytes(bytes, {969, 30, 1}, 32, 7);
  const auto b = ByteDataset::from_bytes(bytes, {969, 30, 1}, 32, 7);
  const auto c = ByteDataset::from_bytes(bytes, {969, 30, 1}, 32, 8);
  const int64_t n = a.num_samples(Split::Train);
  const auto epoch0 = starts(a, Split::Train, 0, n);
  const auto epoch1 = starts(a, Split::Train, n, n);
  EXPECT_EQ(epoch0, starts(b, Split::Train, 0, n));
  EXPECT_EQ(epoch1, starts(b, Split::Train, n, n));
  EXPECT_NE(epoch0, starts(c, Split::Train, 0, n));
  EXPECT_NE(epoch0, epoch1);
  std::vector<int64_t> file_order = epoch0;
  std::sort(file_order.begin(), file_order.end());
  EXPECT_NE(epoch0, file_order) << "the train order is not shuffled";
  // Random access in any order gives the same answers (the epoch cache is invisible).
  EXPECT_EQ(a.window_start(Split::Train, 5), epoch0[5]);
  EXPECT_EQ(a.window_start(Split::Train, n + 5), epoch1[5]);
  EXPECT_EQ(a.window_start(Split::Train, 5), epoch0[5]);
}

TEST(ByteDataset, ConcurrentReadersAcrossEpochsAgree) {
  const auto ds = ByteDataset::from_bytes(make_bytes(20000), {969, 30, 1}, 32, 9);
  const int64_t total = 3 * ds.num_samples(Split::Train);
  const auto expected = starts(ds, Split::Train, 0, total);
  std::vector<std::vector<int64_t>> got(4, std::vector<int64_t>(static_cast<size_t>(total)));
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      // Readers start at different offsets and odd ones walk backwards, so epochs interleave.
      for (int64_t k = 0; k < total; ++k) {
        const int64_t step = (k + w * total / 4) % total;
        const int64_t i = w % 2 == 0 ? step : total - 1 - step;
        got[w][static_cast<size_t>(i)] = ds.window_start(Split::Train, i);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) EXPECT_EQ(g, expected);
}

TEST(ByteDataset, ShuffledOrderIsAPermutation) {
  for (const int64_t n : {0, 1, 2, 17, 1000}) {
    auto order = shuffled_order(n, 42);
    EXPECT_EQ(order, shuffled_order(n, 42));
    std::sort(order.begin(), order.end());
    std::vector<int64_t> identity(static_cast<size_t>(n));
    std::iota(identity.begin(), identity.end(), int64_t{0});
    EXPECT_EQ(order, identity);
  }
}

TEST(ByteDataset, ValidWindowsAreSequentialAndWrap) {
  const auto ds = ByteDataset::from_bytes(make_bytes(10000), {80, 20, 0}, 10, 5);
  const int64_t n = ds.num_samples(Split::Valid);
  const int64_t begin = ds.range(Split::Valid)[0];
  ASSERT_GT(n, 0);
  for (int64_t i = 0; i < 2 * n; ++i) EXPECT_EQ(ds.window_start(Split::Valid, i), begin + (i % n) * 10);
  EXPECT_EQ(ds.num_samples(Split::Test), 0);
  std::vector<int32_t> tokens(10), targets(10);
  expect_error([&] { ds.get_sample(Split::Test, 0, tokens.data(), targets.data()); }, {"test", "--split"});
}

TEST(ByteDataset, ReadsTextFile) {
  TempDir dir;
  const auto bytes = make_bytes(3000);
  write_file(dir.file("data.txt"), bytes);
  const auto ds = ByteDataset::from_text_file(dir.file("data.txt"), {969, 30, 1}, 8, 1);
  EXPECT_EQ(ds.bytes(), bytes);
  EXPECT_EQ(ds.vocab_size(), 256);
  EXPECT_EQ(ds.seq_length(), 8);
  const auto mem = ByteDataset::from_bytes(bytes, {969, 30, 1}, 8, 1);
  EXPECT_EQ(starts(ds, Split::Train, 0, 50), starts(mem, Split::Train, 0, 50));
}

TEST(ByteDataset, UnreadablePathNamesDataPath) {
  TempDir dir;
  const std::string path = dir.file("nope.txt");
  expect_error([&] { ByteDataset::from_text_file(path, {969, 30, 1}, 8, 1); }, {"--data-path", path});
  expect_error([&] { ByteDataset::from_text_file(dir.file(""), {969, 30, 1}, 8, 1); },
               {"--data-path", "directory"});
  expect_error([&] { ByteDataset::from_text_file("", {969, 30, 1}, 8, 1); }, {"--data-path"});
}

TEST(ByteDataset, TooSmallFileNamesDataPathAndSeqLength) {
  TempDir dir;
  const std::string path = dir.file("small.txt");
  write_file(path, make_bytes(100));
  expect_error([&] { ByteDataset::from_text_file(path, {969, 30, 1}, 8, 1); },
               {"--data-path", path, "100 bytes", "too small", "--seq-length 8"});
  expect_error([&] { ByteDataset::from_text_file(path, {1, 0, 0}, 100, 1); },
               {"--data-path", "too small", "--seq-length 100"});
  write_file(path, {});
  expect_error([&] { ByteDataset::from_text_file(path, {1, 0, 0}, 4, 1); }, {"--data-path", "0 bytes"});
  // The same file is enough without a validation part, or with a bigger one.
  write_file(path, make_bytes(100));
  EXPECT_EQ(ByteDataset::from_text_file(path, {1, 0, 0}, 8, 1).num_samples(Split::Train), 12);
  EXPECT_GT(ByteDataset::from_text_file(path, {1, 1, 0}, 8, 1).num_samples(Split::Valid), 0);
}

TEST(ByteDataset, BadSeqLengthAndWeightsThrow) {
  expect_error([] { ByteDataset::from_bytes(make_bytes(1000), {1, 0, 0}, 0, 1); }, {"--seq-length", "0"});
  expect_error([] { ByteDataset::from_bytes(make_bytes(1000), {0, 1, 1}, 8, 1); }, {"--split", "0,1,1"});
  expect_error([] { ByteDataset::from_bytes(make_bytes(1000), {1, -1, 0}, 8, 1); }, {"--split", "1,-1,0"});
}

TEST(ParseSplit, AcceptsThreeNumbers) {
  EXPECT_EQ(parse_split("969,30,1"), (std::array<double, 3>{969, 30, 1}));
  EXPECT_EQ(parse_split(" 98 , 2 , 0 "), (std::array<double, 3>{98, 2, 0}));
  EXPECT_EQ(parse_split("0.9,0.05,0.05"), (std::array<double, 3>{0.9, 0.05, 0.05}));
}

TEST(ParseSplit, RejectsEverythingElseNamingTheValue) {
  for (const std::string bad : {"", "969", "98,2", "1,2,3,4", "a,b,c", "1,,2", "1,2,", "1,2,3,", "1,-1,0", "0,1,1",
                                "0,0,0", "nan,1,1", "inf,1,1", "1e400,1,1", "1;2;3", "1 2 3"}) {
    expect_error([&] { parse_split(bad); }, {"--split", "'" + bad + "'"});
  }
}

}  // namespace
}  // namespace prores::data
