// GPT sampling over indexed datasets, blending and the data-parallel sampler, on synthetic datasets
// written with IndexedDatasetWriter whose token values are unique, so every position is recognizable:
// samples are T + 1 consecutive tokens of the epoch's shuffled documents, an epoch tiles its tokens once,
// everything is seeded, splits are disjoint, blends follow their weights, and the sampler's position is
// fully described by consumed_samples whatever the data-parallel size.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/check.h"
#include "data/blended_dataset.h"
#include "data/gpt_dataset.h"
#include "data/indexed_dataset.h"
#include "data/sampler.h"
#include "test_util.h"

namespace prores::data {
namespace {

using test::expect_error;

using test::TempDir;

constexpr int64_t kVocab = 65536;
constexpr std::array<double, 3> kSplit{80, 10, 10};
constexpr Split kSplits[] = {Split::Train, Split::Valid, Split::Test};

// Writes num_docs documents of varying lengths (0 to ~70 tokens; some split into several sequences, one
// of them empty) whose tokens are first_value, first_value + 1, … across the whole dataset, and returns
// every document's tokens.
std::vector<std::vector<int32_t>> write_dataset(const std::string& prefix, int64_t num_docs,
                                                int32_t first_value = 1) {
  std::vector<std::vector<int32_t>> docs;
  IndexedDatasetWriter writer(prefix, TokenDType::U16);
  int32_t value = first_value;
  for (int64_t d = 0; d < num_docs; ++d) {
    const int64_t length = d == 5 ? 0 : 1 + (d * 37 + d * d * 11) % 70;
    std::vector<int32_t> doc(static_cast<size_t>(length));
    for (auto& t : doc) t = value++;
    const int64_t pieces = d % 3 == 0 ? 3 : 1;  // several sequences per document, some empty
    for (int64_t p = 0; p < pieces; ++p) {
      const int64_t begin = length * p / pieces, end = length * (p + 1) / pieces;
      writer.add_sequence(doc.data() + begin, end - begin);
    }
    writer.end_document();
    docs.push_back(std::move(doc));
  }
  writer.finish();
  return docs;
}

std::vector<int32_t> window(const GptDataset& ds, Split split, int64_t index) {
  std::vector<int32_t> w(static_cast<size_t>(ds.seq_length()) + 1);
  ds.get_window(split, index, w.data());
  return w;
}

std::vector<int32_t> sample(const TokenDataset& ds, Split split, int64_t index) {
  const auto t = static_cast<size_t>(ds.seq_length());
  std::vector<int32_t> tokens(t), targets(t);
  ds.get_sample(split, index, tokens.data(), targets.data());
  tokens.insert(tokens.end(), targets.begin(), targets.end());
  return tokens;
}

class GptDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docs = write_dataset(dir.file("corpus"), 120);
    ds = GptDataset::open(dir.file("corpus"), kVocab, kSplit, kT, 1234);
  }
  static constexpr int64_t kT = 16;
  TempDir dir;
  std::vector<std::vector<int32_t>> docs;
  std::shared_ptr<GptDataset> ds;
};

TEST_F(GptDatasetTest, SamplesAreConsecutiveTokensOfTheEpochsShuffledDocuments) {
  for (Split split : kSplits) {
    const int64_t n = ds->num_samples(split);
    const auto [first, last] = ds->document_range(split);
    ASSERT_GT(n, 0) << split_name(split);
    std::vector<std::vector<int64_t>> orders;
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      std::vector<int64_t> order = ds->document_order(split, epoch);
      std::vector<int64_t> sorted = order;
      std::sort(sorted.begin(), sorted.end());
      std::vector<int64_t> expected(static_cast<size_t>(last - first));
      std::iota(expected.begin(), expected.end(), first);
      ASSERT_EQ(sorted, expected) << "epoch order is not a permutation of the split's documents";
      std::vector<int32_t> stream;
      for (int64_t d : order) stream.insert(stream.end(), docs[d].begin(), docs[d].end());
      ASSERT_EQ(static_cast<int64_t>(stream.size()), ds->num_tokens(split));
      EXPECT_EQ(n, (ds->num_tokens(split) - 1) / kT);
      for (int64_t i = epoch * n; i < (epoch + 1) * n; ++i) {
        const GptSamplePosition pos = ds->locate(split, i);
        EXPECT_EQ(pos.epoch, epoch);
        const std::vector<int32_t> expected_window(stream.begin() + pos.token_offset,
                                                   stream.begin() + pos.token_offset + kT + 1);
        ASSERT_EQ(window(*ds, split, i), expected_window) << split_name(split) << " index " << i;
        const std::vector<int32_t> st = sample(*ds, split, i);
        ASSERT_TRUE(std::equal(st.begin(), st.begin() + kT, expected_window.begin()));
        ASSERT_TRUE(std::equal(st.begin() + kT, st.end(), expected_window.begin() + 1));
      }
      orders.push_back(std::move(order));
    }
    EXPECT_NE(orders[0], orders[1]) << "documents are reshuffled every epoch";
  }
}

TEST_F(GptDatasetTest, EachEpochVisitsEverySampleOnceAndTilesItsTokens) {
  const int64_t n = ds->num_samples(Split::Train);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    std::vector<int64_t> visited;
    std::map<int64_t, std::vector<int32_t>> by_position;  // in-epoch sample → window
    for (int64_t i = epoch * n; i < (epoch + 1) * n; ++i) {
      const GptSamplePosition pos = ds->locate(Split::Train, i);
      EXPECT_EQ(pos.token_offset, pos.sample * kT);
      visited.push_back(pos.sample);
      by_position[pos.sample] = window(*ds, Split::Train, i);
    }
    std::vector<int64_t> order = visited;
    std::sort(order.begin(), order.end());
    std::vector<int64_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(order, all) << "every sample of the epoch exactly once";
    EXPECT_FALSE(std::is_sorted(visited.begin(), visited.end())) << "samples are visited shuffled";
    // Inputs of all samples are distinct tokens; sample k + 1 starts with the last target of sample k.
    std::set<int32_t> inputs;
    for (const auto& [k, w] : by_position) {
      inputs.insert(w.begin(), w.end() - 1);
      if (k + 1 < n) {
        EXPECT_EQ(w.back(), by_position.at(k + 1).front());
      }
    }
    EXPECT_EQ(static_cast<int64_t>(inputs.size()), n * kT);
    EXPECT_GT(ds->num_tokens(Split::Train) - n * kT, 0);
    EXPECT_LE(ds->num_tokens(Split::Train) - n * kT, kT) << "at most the last T tokens are dropped";
  }
}

TEST_F(GptDatasetTest, SamplesCrossDocumentBoundaries) {
  std::map<int32_t, std::pair<int64_t, int64_t>> where;  // token value → (document, position)
  for (size_t d = 0; d < docs.size(); ++d) {
    for (size_t p = 0; p < docs[d].size(); ++p) where[docs[d][p]] = {static_cast<int64_t>(d), p};
  }
  int64_t crossings = 0;
  for (int64_t i = 0; i < ds->num_samples(Split::Train); ++i) {
    const std::vector<int32_t> w = window(*ds, Split::Train, i);
    for (size_t t = 1; t < w.size(); ++t) {
      if (w[t] == w[t - 1] + 1 && where[w[t]].first == where[w[t - 1]].first) continue;
      const auto [prev_doc, prev_pos] = where[w[t - 1]];
      EXPECT_EQ(prev_pos + 1, static_cast<int64_t>(docs[prev_doc].size())) << "left a document early";
      EXPECT_EQ(where[w[t]].second, 0) << "entered a document in the middle";
      ++crossings;
    }
  }
  EXPECT_GT(crossings, 0);
}

TEST_F(GptDatasetTest, SameSeedSameSamplesOtherSeedOthers) {
  auto same = GptDataset::open(dir.file("corpus"), kVocab, kSplit, kT, 1234);
  auto other = GptDataset::open(dir.file("corpus"), kVocab, kSplit, kT, 1235);
  const int64_t n = ds->num_samples(Split::Train);
  int64_t differ = 0;
  for (int64_t i = 3 * n - 1; i >= 0; --i) {  // backwards: results do not depend on the access order
    EXPECT_EQ(window(*same, Split::Train, i), window(*ds, Split::Train, i)) << i;
    differ += window(*other, Split::Train, i) != window(*ds, Split::Train, i);
  }
  EXPECT_GT(differ, n);
  EXPECT_NE(ds->document_order(Split::Train, 0), other->document_order(Split::Train, 0));
}

TEST_F(GptDatasetTest, SplitsUseDisjointDocuments) {
  std::array<std::set<int32_t>, 3> seen;
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(ds->document_range(kSplits[s]), split_ranges(120, kSplit)[s]);
    for (int64_t i = 0; i < ds->num_samples(kSplits[s]); ++i) {
      const std::vector<int32_t> w = window(*ds, kSplits[s], i);
      seen[s].insert(w.begin(), w.end());
    }
  }
  for (int a = 0; a < 3; ++a) {
    for (int b = a + 1; b < 3; ++b) {
      for (int32_t v : seen[a]) ASSERT_EQ(seen[b].count(v), 0u) << split_name(kSplits[a]) << " vs " << b;
    }
  }
}

TEST_F(GptDatasetTest, ConcurrentReadsMatchSerialReads) {
  const int64_t count = 3 * ds->num_samples(Split::Train);
  std::vector<std::vector<int32_t>> serial;
  for (int64_t i = 0; i < count; ++i) serial.push_back(window(*ds, Split::Train, i));
  auto fresh = GptDataset::open(dir.file("corpus"), kVocab, kSplit, kT, 1234);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = t; i < count; i += 4) mismatches[t] += window(*fresh, Split::Train, i) != serial[i];
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST_F(GptDatasetTest, Errors) {
  expect_error([&] { GptDataset::open(dir.file("corpus"), kVocab, kSplit, 100000, 1); },
               {"--data-path", dir.file("corpus"), "--seq-length 100000"});
  expect_error([&] { GptDataset::open(dir.file("corpus"), kVocab, kSplit, 0, 1); }, {"--seq-length"});
  expect_error([&] { GptDataset::open(dir.file("corpus"), kVocab, {1, -1, 0}, kT, 1); }, {"--split"});
  auto unchecked = std::make_shared<const IndexedDataset>(IndexedDataset::open(dir.file("corpus")));
  GptDataset small_vocab(unchecked, 10, kSplit, kT, 1);
  expect_error([&] { window(small_vocab, Split::Train, 0); }, {"--vocab-size 10", "token id"});
  GptDataset no_test(unchecked, kVocab, {90, 10, 0}, kT, 1);
  EXPECT_EQ(no_test.num_samples(Split::Test), 0);
  expect_error([&] { window(no_test, Split::Test, 0); }, {"test split has no samples"});
  expect_error([&] { window(no_test, Split::Train, -1); }, {"negative sample index"});
}

// A dataset whose sample i of any split is filled with id · 1'000'000 + i.
class ConstantDataset final : public TokenDataset {
 public:
  ConstantDataset(int32_t id, int64_t n) : id_(id), n_(n) {}
  int64_t seq_length() const override { return 2; }
  int64_t vocab_size() const override { return 1 << 30; }
  int64_t num_samples(Split) const override { return n_; }
  void get_sample(Split, int64_t index, int32_t* tokens, int32_t* targets) const override {
    tokens[0] = tokens[1] = targets[0] = targets[1] = static_cast<int32_t>(id_ * 1'000'000 + index);
  }

 private:
  int32_t id_;
  int64_t n_;
};

// Megatron's build_blending_indices written out plainly (zero weights never chosen): the dataset of
// each of the first `size` global indices.
std::vector<int64_t> reference_blend(const std::vector<double>& w, int64_t size) {
  std::vector<int64_t> counts(w.size(), 0), chosen;
  for (int64_t s = 0; s < size; ++s) {
    int64_t best = -1;
    for (size_t i = 0; i < w.size(); ++i) {
      const double error = w[i] * std::max<double>(s, 1) - counts[i];
      if (w[i] > 0 && (best < 0 || error > w[best] * std::max<double>(s, 1) - counts[best])) best = i;
    }
    chosen.push_back(best);
    ++counts[best];
  }
  return chosen;
}

TEST(BlendedDataset, DrawsInProportionToTheWeights) {
  // Normalized 0, 0.5, 0.25, 0.25: exact, so all errors tie at 0 every 4 draws and ties go to the lowest
  // index, which must never be the zero weight.
  const std::vector<double> raw{0, 2, 1, 1};
  std::vector<std::shared_ptr<const TokenDataset>> parts;
  for (int32_t i = 0; i < 4; ++i) parts.push_back(std::make_shared<ConstantDataset>(i + 1, 100));
  BlendedDataset blend(parts, raw);
  EXPECT_DOUBLE_EQ(blend.weights()[1], 0.5);
  EXPECT_EQ(blend.num_samples(Split::Train), 200);  // dataset 1 (0.5) runs out of 100 samples first
  std::vector<int64_t> counts(4, 0);
  for (int64_t s = 0; s < 1000; ++s) {
    const BlendDraw d = blend.draw(s);
    EXPECT_EQ(d.sample, counts[d.dataset]) << "each dataset is read with its own running counter";
    const std::vector<int32_t> got = sample(blend, Split::Valid, s);
    EXPECT_EQ(got[0], (d.dataset + 1) * 1'000'000 + d.sample);
    ++counts[d.dataset];
    for (int i = 0; i < 4; ++i) EXPECT_LE(std::abs(counts[i] - blend.weights()[i] * (s + 1)), 1.0) << s;
  }
  EXPECT_EQ(counts[0], 0);
  for (int i = 0; i < 4; ++i) EXPECT_LE(std::abs(counts[i] - blend.weights()[i] * 1000), 1.0) << i;
}

TEST(BlendedDataset, MatchesMegatronsGreedyRuleInAnyAccessOrder) {
  const std::vector<double> w{0.17, 0.41, 0.29, 0.13};
  std::vector<std::shared_ptr<const TokenDataset>> parts;
  for (int32_t i = 0; i < 4; ++i) parts.push_back(std::make_shared<ConstantDataset>(i, 10));
  BlendedDataset blend(parts, w);
  const std::vector<int64_t> reference = reference_blend(blend.weights(), 20000);
  for (int64_t s : {19999, 0, 4095, 4096, 12345, 8191, 1}) {
    EXPECT_EQ(blend.draw(s).dataset, reference[s]) << s;
  }
  std::vector<int64_t> counts(4, 0);
  for (int64_t s = 0; s < 20000; ++s) {
    ASSERT_EQ(blend.draw(s).dataset, reference[s]) << s;
    ASSERT_EQ(blend.draw(s).sample, counts[reference[s]]++) << s;
  }
}

TEST(BlendedDataset, OpensGptBlendsFromDataPath) {
  TempDir dir;
  write_dataset(dir.file("a"), 60, 1);
  write_dataset(dir.file("b"), 60, 30000);
  const std::string path = "0.7 " + dir.file("a") + " 0.3 " + dir.file("b");
  auto blend = std::dynamic_pointer_cast<const BlendedDataset>(open_gpt_blend(path, kVocab, kSplit, 8, 9));
  ASSERT_NE(blend, nullptr);
  auto a = GptDataset::open(dir.file("a"), kVocab, kSplit, 8, 9);
  auto b = GptDataset::open(dir.file("b"), kVocab, kSplit, 8, 9);
  std::array<int64_t, 2> counts{};
  for (int64_t s = 0; s < 1000; ++s) {
    const BlendDraw d = blend->draw(s);
    ++counts[d.dataset];
    EXPECT_EQ(sample(*blend, Split::Train, s), sample(d.dataset == 0 ? *a : *b, Split::Train, d.sample));
  }
  EXPECT_LE(std::abs(counts[0] - 700), 1);
  EXPECT_LE(std::abs(counts[1] - 300), 1);
  auto single = open_gpt_blend(dir.file("a"), kVocab, kSplit, 8, 9);
  EXPECT_NE(std::dynamic_pointer_cast<const GptDataset>(single), nullptr);
  EXPECT_EQ(sample(*single, Split::Valid, 3), sample(*a, Split::Valid, 3));
}

TEST(BlendedDataset, ParseBlend) {
  const auto two = parse_blend(" 0.7 A  0.3\tB ");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].weight, 0.7);
  EXPECT_EQ(two[0].prefix, "A");
  EXPECT_EQ(two[1].weight, 0.3);
  EXPECT_EQ(two[1].prefix, "B");
  const auto one = parse_blend("data/corpus_text_document");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].weight, 1.0);
  EXPECT_EQ(one[0].prefix, "data/corpus_text_document");
  EXPECT_EQ(parse_blend("0 A 2 B")[0].weight, 0.0);
  expect_error([] { parse_blend("0.7 A 0.3"); }, {"--data-path", "odd", "'0.3'"});
  expect_error([] { parse_blend("A B"); }, {"--data-path", "'A'", "not a weight"});
  expect_error([] { parse_blend("0.5 A 1x B"); }, {"--data-path", "'1x'"});
  expect_error([] { parse_blend("nan A 1 B"); }, {"--data-path", "'nan'"});
  expect_error([] { parse_blend("1 A -0.5 B"); }, {"--data-path", "'-0.5'", "negative"});
  expect_error([] { parse_blend("0 A 0 B"); }, {"--data-path", "all weights are zero"});
  expect_error([] { parse_blend("  "); }, {"--data-path"});
  std::vector<std::shared_ptr<const TokenDataset>> parts{std::make_shared<ConstantDataset>(1, 5)};
  expect_error([&] { BlendedDataset(parts, {1, 2}); }, {"--data-path"});
  expect_error([&] { BlendedDataset(parts, {0}); }, {"--data-path"});
}

// The global indices of one iteration in global order: ranks in order, each rank's micro-batches in order.
std::vector<int64_t> iteration_indices(int64_t g, int64_t b, int64_t dp, int64_t consumed) {
  std::vector<int64_t> all;
  for (int64_t r = 0; r < dp; ++r) {
    DistributedSampler sampler(g, b, r, dp);
    std::vector<int64_t> micro(static_cast<size_t>(b));
    for (int64_t m = 0; m < sampler.num_micro_batches(); ++m) {
      sampler.micro_batch_indices(consumed, m, micro.data());
      all.insert(all.end(), micro.begin(), micro.end());
    }
  }
  return all;
}

TEST(DistributedSampler, RanksTogetherCoverTheGlobalBatchExactly) {
  for (auto [g, b, dp] : std::vector<std::array<int64_t, 3>>{{8, 1, 1}, {8, 2, 2}, {24, 2, 3}, {32, 4, 4}}) {
    for (int64_t consumed : {int64_t{0}, g, 7 * g + 5}) {
      std::vector<int64_t> expected(static_cast<size_t>(g));
      std::iota(expected.begin(), expected.end(), consumed);
      EXPECT_EQ(iteration_indices(g, b, dp, consumed), expected) << g << " " << b << " " << dp;
    }
  }
  DistributedSampler rank1(16, 2, 1, 2);
  std::vector<int64_t> micro(2);
  rank1.micro_batch_indices(32, 1, micro.data());
  EXPECT_EQ(micro, (std::vector<int64_t>{42, 43}));  // [32 + 8, 32 + 16) split into micro-batches of 2
}

TEST(DistributedSampler, ResumingWithAnotherDataParallelSizeContinuesWithUnseenSamples) {
  const int64_t g = 16, b = 2, k = 3, total = 30;
  std::vector<int64_t> uninterrupted, resumed;
  for (int64_t it = 0; it < total; ++it) {
    const std::vector<int64_t> step = iteration_indices(g, b, 2, it * g);
    uninterrupted.insert(uninterrupted.end(), step.begin(), step.end());
  }
  for (int64_t it = 0; it < k; ++it) {
    const std::vector<int64_t> step = iteration_indices(g, b, 2, it * g);
    resumed.insert(resumed.end(), step.begin(), step.end());
  }
  const int64_t consumed = k * g;  // the only state a checkpoint carries
  for (int64_t it = k; it < total; ++it) {
    const std::vector<int64_t> step = iteration_indices(g, b, 4, consumed + (it - k) * g);
    const std::set<int64_t> unique(step.begin(), step.end());
    ASSERT_EQ(unique.size(), step.size());
    for (int64_t i : step) ASSERT_GE(i, consumed) << "an already consumed sample came back";
    resumed.insert(resumed.end(), step.begin(), step.end());
  }
  EXPECT_EQ(resumed, uninterrupted);
}

TEST(DistributedSampler, Errors) {
  expect_error([] { DistributedSampler(10, 2, 0, 2); }, {"--global-batch-size 10", "--micro-batch-size 2"});
  expect_error([] { DistributedSampler(8, 0, 0, 1); }, {"--micro-batch-size"});
  expect_error([] { DistributedSampler(8, 2, 2, 2); }, {"data-parallel rank 2"});
  DistributedSampler sampler(8, 2, 0, 2);
  std::vector<int64_t> out(2);
  expect_error([&] { sampler.micro_batch_indices(0, 2, out.data()); }, {"micro-batch 2"});
  expect_error([&] { sampler.micro_batch_indices(-1, 0, out.data()); }, {"negative consumed"});
}

}  // namespace
}  // namespace prores::data
