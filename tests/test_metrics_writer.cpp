// Metrics JSON Lines: exact encoding of small records, null for non-finite numbers, doubles that read
// back bit for bit, key escaping, directory creation and append mode across writers.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "train/metrics_writer.h"
#include "test_util.h"

namespace prores::train {
namespace {

using test::TempDir;

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A minimal reader for the flat objects the writer produces: {"key":value,...} where a value is a
// number, null or an array of those. Returns (key, raw value text) pairs; fails the test on bad syntax.
std::vector<std::pair<std::string, std::string>> parse_flat_object(const std::string& s) {
  std::vector<std::pair<std::string, std::string>> fields;
  size_t i = 0;
  auto expect = [&](char c) {
    EXPECT_LT(i, s.size());
    EXPECT_EQ(s[i], c) << "at " << i << " in " << s;
    ++i;
  };
  expect('{');
  while (i < s.size() && s[i] != '}') {
    if (!fields.empty()) expect(',');
    expect('"');
    std::string key;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') {
        const char e = s[++i];
        if (e == 'u') {
          key += static_cast<char>(std::strtol(s.substr(i + 1, 4).c_str(), nullptr, 16));
          i += 4;
        } else {
          key += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        }
      } else {
        key += s[i];
      }
      ++i;
    }
    expect('"');
    expect(':');
    const size_t start = i;
    if (i < s.size() && s[i] == '[') {
      while (i < s.size() && s[i] != ']') ++i;
      expect(']');
    } else {
      while (i < s.size() && s[i] != ',' && s[i] != '}') ++i;
    }
    fields.emplace_back(key, s.substr(start, i - start));
  }
  expect('}');
  EXPECT_EQ(i, s.size()) << s;
  return fields;
}

// Parses a JSON number token exactly as written (null → NaN).
double number(const std::string& token) {
  if (token == "null") return std::numeric_limits<double>::quiet_NaN();
  char* end = nullptr;
  const double v = std::strtod(token.c_str(), &end);
  EXPECT_EQ(end, token.c_str() + token.size()) << "not a number: " << token;
  return v;
}

TEST(MetricsRecord, ExactJsonForASmallRecord) {
  MetricsRecord r;
  r.add("iter", 10).add("loss", 3.2).add("lr", 0.0003).add("grad_norm", 1.1).add("tokens_per_sec", 5000.0);
  r.add("mfu", 0.41).add("alpha", std::vector<double>{0.1, 0.05});
  EXPECT_EQ(r.to_json(),
            R"({"iter":10,"loss":3.2,"lr":0.0003,"grad_norm":1.1,"tokens_per_sec":5000,"mfu":0.41,)"
            R"("alpha":[0.1,0.05]})");
  EXPECT_EQ(r.size(), 7u);
}

TEST(MetricsRecord, DoublesArePlainDecimalsInTheUsualRange) {
  MetricsRecord r;
  r.add("a", 1e-8).add("b", 1.5e-7).add("c", 1e20).add("d", 1e21).add("e", -0.0).add("f", -2.5e-300);
  r.add("g", 1.0 / 3.0).add("h", 123456.75);
  EXPECT_EQ(r.to_json(), R"({"a":1e-08,"b":0.00000015,"c":100000000000000000000,"d":1e+21,"e":-0,)"
                         R"("f":-2.5e-300,"g":0.3333333333333333,"h":123456.75})");
}

TEST(MetricsRecord, IntegersOfEveryWidthAndEmptyValues) {
  MetricsRecord r;
  r.add("a", int64_t{-9007199254740993}).add("b", size_t{7}).add("c", short{-3}).add("d", std::vector<double>{});
  EXPECT_EQ(r.to_json(), R"({"a":-9007199254740993,"b":7,"c":-3,"d":[]})");
  EXPECT_EQ(MetricsRecord().to_json(), "{}");
}

TEST(MetricsRecord, NonFiniteNumbersAreNull) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  MetricsRecord r;
  r.add("val_loss", nan).add("val_ppl", inf).add("x", -inf).add("alpha", std::vector<double>{nan, 0.5, inf});
  EXPECT_EQ(r.to_json(), R"({"val_loss":null,"val_ppl":null,"x":null,"alpha":[null,0.5,null]})");
}

TEST(MetricsRecord, DoublesReadBackExactly) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-300, 300);
  std::vector<double> values = {0.0, -0.0, 1.0 / 3.0, 1e-8, 6.02214076e23, std::numeric_limits<double>::min(),
                                std::numeric_limits<double>::max(), std::numeric_limits<double>::denorm_min()};
  for (int k = 0; k < 200; ++k) values.push_back(std::ldexp(mantissa(rng), exponent(rng)));
  MetricsRecord r;
  r.add("first", values[2]).add("all", values);
  const auto fields = parse_flat_object(r.to_json());
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(number(fields[0].second), values[2]);
  const std::string list = fields[1].second.substr(1, fields[1].second.size() - 2);
  size_t pos = 0;
  for (size_t k = 0; k < values.size(); ++k) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const double back = number(list.substr(pos, comma - pos));
    EXPECT_EQ(std::signbit(back), std::signbit(values[k]));
    EXPECT_EQ(back, values[k]) << list.substr(pos, comma - pos);
    pos = comma + 1;
  }
}

TEST(MetricsRecord, KeysAreEscaped) {
  MetricsRecord r;
  r.add("a\"b\\c\nd\x01", 1);
  EXPECT_EQ(r.to_json(), "{\"a\\\"b\\\\c\\nd\\u0001\":1}");
  const auto fields = parse_flat_object(r.to_json());
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(fields[0].first, "a\"b\\c\nd\x01");
}

TEST(MetricsRecord, RepeatedKeyThrows) {
  MetricsRecord r;
  r.add("loss", 1.0);
  EXPECT_THROW(r.add("loss", 2.0), prores::Error);
}

TEST(MetricsWriter, CreatesDirectoryAndAppendsFlushedLines) {
  TempDir dir;
  const std::string log_dir = dir.file("runs/a/b");
  {
    MetricsWriter w(log_dir);
    EXPECT_EQ(w.path(), log_dir + "/metrics.jsonl");
    w.write(MetricsRecord().add("iter", 10).add("loss", 3.5).add("alpha", std::vector<double>{0.1, 0.05}));
    // Flushed: visible to a reader while the writer is still open.
    EXPECT_EQ(read_lines(w.path()), std::vector<std::string>{R"({"iter":10,"loss":3.5,"alpha":[0.1,0.05]})"});
    w.write(MetricsRecord().add("iter", 10).add("val_loss", 3.25).add("val_ppl", std::exp(3.25)));
  }
  EXPECT_TRUE(std::filesystem::is_directory(log_dir));
  {
    MetricsWriter again(log_dir);  // a resumed run keeps the earlier lines
    again.write(MetricsRecord().add("iter", 20).add("loss", std::numeric_limits<double>::quiet_NaN()));
  }
  const auto lines = read_lines(log_dir + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], R"({"iter":10,"loss":3.5,"alpha":[0.1,0.05]})");
  EXPECT_EQ(lines[2], R"({"iter":20,"loss":null})");
  const auto eval = parse_flat_object(lines[1]);
  ASSERT_EQ(eval.size(), 3u);
  EXPECT_EQ(eval[1].first, "val_loss");
  EXPECT_EQ(eval[2].first, "val_ppl");
  EXPECT_EQ(number(eval[2].second), std::exp(3.25));
}

TEST(MetricsWriter, UncreatableDirectoryNamesLogDir) {
  TempDir dir;
  const std::string file = dir.file("plain_file");
  std::ofstream(file) << "x";
  for (const std::string& bad : {file, file + "/sub"}) {
    try {
      MetricsWriter w(bad);
      ADD_FAILURE() << "expected prores::Error for " << bad;
    } catch (const prores::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("--log-dir"), std::string::npos) << msg;
      EXPECT_NE(msg.find(bad), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(MetricsWriter(""), prores::Error);
}

}  // namespace
}  // namespace prores::train
