// Forward-only windows of the model (Model::set_window): a forward over the first n positions gives the
// full-length forward's numbers for them, a key/value cache decodes position by position (or chunk by chunk) to
// the same logits as one forward over the whole sequence, in every norm placement; target log-probabilities and
// greedy flags are those of the logits; and the cached attention op against the plain one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "model/model.h"
#include "ops/attention.h"
#include "test_util.h"

namespace prores {
namespace {

ModelConfig decoding_config(NormPlacement placement, bool lns) {
  ModelConfig c;
  c.num_layers = 3;
  c.hidden_size = 16;
  c.ffn_hidden_size = 24;
  c.num_attention_heads = 4;
  c.num_query_groups = 2;
  c.seq_length = 12;
  c.vocab_size = 19;
  c.norm_placement = placement;
  c.layernorm_scaling = lns;
  c.init_method_std = 0.3;
  return c;
}

std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& t : ids) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return ids;
}

// The logits (B·n, V) of a forward over `tokens` at window [start, start + n).
std::vector<double> forward_logits(Model& m, const std::vector<int32_t>& tokens, int64_t start, int64_t n) {
  m.set_window(start, n);
  const std::vector<int32_t> targets(tokens.size(), 0);
  m.forward(0, tokens.data(), targets.data());
  const Tensor logits = m.logits(0);
  return std::vector<double>(logits.as<double>(), logits.as<double>() + logits.numel());
}

void set_scales(Model& m) {
  std::vector<double> scales;
  for (int64_t l = 0; l < m.config().num_layers; ++l) scales.push_back(0.3 + 0.2 * static_cast<double>(l));
  m.set_residual_scales(scales);
}

struct PlacementCase {
  NormPlacement placement;
  bool lns;
};

class ModelDecoding : public ::testing::TestWithParam<PlacementCase> {};

TEST_P(ModelDecoding, ShortWindowGivesTheFullForwardsFirstPositions) {
  const ModelConfig c = decoding_config(GetParam().placement, GetParam().lns);
  const int64_t B = 2, T = c.seq_length, V = c.vocab_size, n = 7;
  Model m(c, B, DType::F64, {}, nullptr, 1, ModelExecution{.gradients = false});
  m.init_weights(3);
  set_scales(m);
  const std::vector<int32_t> full_tokens = random_ids(static_cast<size_t>(B * T), V, 5);
  const std::vector<double> full = forward_logits(m, full_tokens, 0, T);
  std::vector<int32_t> tokens;
  for (int64_t b = 0; b < B; ++b)
    tokens.insert(tokens.end(), full_tokens.begin() + b * T, full_tokens.begin() + b * T + n);
  const std::vector<double> part = forward_logits(m, tokens, 0, n);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t v = 0; v < V; ++v)
        ASSERT_NEAR(part[static_cast<size_t>((b * n + t) * V + v)], full[static_cast<size_t>((b * T + t) * V + v)], 1e-12)
            << "row " << b << " position " << t;
  // Back to the whole length: the same numbers as before the short window.
  EXPECT_EQ(forward_logits(m, full_tokens, 0, T), full);
}

TEST_P(ModelDecoding, KeyValueCacheDecodesToTheFullForwardsLogits) {
  const ModelConfig c = decoding_config(GetParam().placement, GetParam().lns);
  const int64_t B = 2, T = c.seq_length, V = c.vocab_size;
  Model full_model(c, B, DType::F64, {}, nullptr, 1, ModelExecution{.gradients = false});
  Model cached(c, B, DType::F64, {}, nullptr, 1, ModelExecution{.gradients = false, .kv_cache = true});
  full_model.init_weights(7);
  cached.init_weights(7);
  set_scales(full_model);
  set_scales(cached);
  const std::vector<int32_t> tokens = random_ids(static_cast<size_t>(B * T), V, 9);
  const std::vector<double> full = forward_logits(full_model, tokens, 0, T);
  // A prefill of 4 positions, one chunk of 3, then one position at a time.
  std::vector<std::pair<int64_t, int64_t>> windows = {{0, 4}, {4, 3}};
  for (int64_t p = 7; p < T; ++p) windows.emplace_back(p, 1);
  for (const auto& [start, n] : windows) {
    std::vector<int32_t> chunk;
    for (int64_t b = 0; b < B; ++b)
      chunk.insert(chunk.end(), tokens.begin() + b * T + start, tokens.begin() + b * T + start + n);
    const std::vector<double> logits = forward_logits(cached, chunk, start, n);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t v = 0; v < V; ++v)
          ASSERT_NEAR(logits[static_cast<size_t>((b * n + t) * V + v)],
                      full[static_cast<size_t>((b * T + start + t) * V + v)], 1e-11)
              << "row " << b << " position " << start + t;
  }
}

INSTANTIATE_TEST_SUITE_P(Placements, ModelDecoding,
                         ::testing::Values(PlacementCase{NormPlacement::Pre, false}, PlacementCase{NormPlacement::Pre, true},
                                           PlacementCase{NormPlacement::Post, false},
                                           PlacementCase{NormPlacement::Sandwich, false},
                                           PlacementCase{NormPlacement::DeepNorm, false}));

TEST(ModelDecoding, TargetLogProbsAreTheLogSoftmaxOfTheTargets) {
  const ModelConfig c = decoding_config(NormPlacement::Pre, false);
  const int64_t B = 2, n = 5, V = c.vocab_size;
  Model m(c, B, DType::F64, {}, nullptr, 1, ModelExecution{.gradients = false});
  m.init_weights(11);
  m.set_window(0, n);
  const std::vector<int32_t> tokens = random_ids(static_cast<size_t>(B * n), V, 12);
  std::vector<int32_t> targets = random_ids(static_cast<size_t>(B * n), V, 13);
  m.forward(0, tokens.data(), targets.data());
  const double* z = m.logits(0).as<double>();
  // Make one target the row's argmax, so that both flag values are checked.
  targets[0] = static_cast<int32_t>(std::max_element(z, z + V) - z);
  m.forward(0, tokens.data(), targets.data());
  std::vector<double> log_probs(static_cast<size_t>(B * n));
  std::vector<uint8_t> greedy(static_cast<size_t>(B * n));
  m.target_log_probs(0, log_probs.data(), greedy.data());
  for (int64_t r = 0; r < B * n; ++r) {
    const double* row = z + r * V;
    const double max = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - max);
    EXPECT_NEAR(log_probs[static_cast<size_t>(r)], row[targets[static_cast<size_t>(r)]] - max - std::log(sum), 1e-12);
    EXPECT_EQ(greedy[static_cast<size_t>(r)] != 0, row[targets[static_cast<size_t>(r)]] == max) << "row " << r;
  }
  EXPECT_EQ(greedy[0], 1);
}

TEST(ModelDecoding, WindowsOutsideTheModelOrWithoutACacheAreRefused) {
  const ModelConfig c = decoding_config(NormPlacement::Pre, false);
  Model m(c, 1, DType::F64);
  test::expect_error([&] { m.set_window(0, 13); }, {"outside the sequence length 12"});
  test::expect_error([&] { m.set_window(3, 2); }, {"needs a key/value cache"});
  m.init_weights(1);
  m.set_window(0, 4);
  const std::vector<int32_t> ids(4, 1);
  m.forward(0, ids.data(), ids.data());
  test::expect_error([&] { m.backward(0, 1.0); }, {"backward after a forward over 4 positions"});
}

// cached_attention_forward over a cache holding the whole sequence: start 0 is attention_forward bitwise; a later
// window gives the same rows as the full attention.
TEST(CachedAttention, MatchesPlainAttention) {
  const int64_t B = 2, NH = 4, KV = 2, T = 70, HS = 8, start = 66, n = T - start;
  std::mt19937_64 rng(21);
  std::normal_distribution<double> dist;
  auto filled = [&](std::vector<double>& v, size_t size) {
    v.resize(size);
    for (double& x : v) x = dist(rng);
  };
  std::vector<double> q, k, v;
  filled(q, B * NH * T * HS);
  filled(k, B * KV * T * HS);
  filled(v, B * KV * T * HS);
  std::vector<double> out(B * T * NH * HS), att(B * NH * T * T), y(B * NH * T * HS);
  const auto t4 = [](std::vector<double>& d, int64_t a, int64_t b, int64_t c, int64_t e) {
    return Tensor(d.data(), DType::F64, Device::CPU, {a, b, c, e});
  };
  const Tensor Q = t4(q, B, NH, T, HS), K = t4(k, B, KV, T, HS), Vt = t4(v, B, KV, T, HS);
  ops::attention_forward(Tensor(out.data(), DType::F64, Device::CPU, {B, T, NH * HS}), t4(att, B, NH, T, T),
                         t4(y, B, NH, T, HS), Q, K, Vt);
  std::vector<double> cached_out(out.size()), cached_att(att.size());
  ops::cached_attention_forward(Tensor(cached_out.data(), DType::F64, Device::CPU, {B, T, NH * HS}),
                                t4(cached_att, B, NH, T, T), Q, K, Vt, 0);
  EXPECT_EQ(cached_out, out);
  // The last n positions: queries of those positions only, the keys and values of all T in the cache.
  std::vector<double> q_tail;
  for (int64_t bh = 0; bh < B * NH; ++bh)
    q_tail.insert(q_tail.end(), q.begin() + (bh * T + start) * HS, q.begin() + (bh * T + T) * HS);
  std::vector<double> tail_out(B * n * NH * HS), tail_att(B * NH * n * T);
  ops::cached_attention_forward(Tensor(tail_out.data(), DType::F64, Device::CPU, {B, n, NH * HS}),
                                t4(tail_att, B, NH, n, T), t4(q_tail, B, NH, n, HS), K, Vt, start);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < NH * HS; ++j)
        ASSERT_NEAR(tail_out[static_cast<size_t>((b * n + t) * NH * HS + j)],
                    out[static_cast<size_t>((b * T + start + t) * NH * HS + j)], 1e-13);
  test::expect_error(
      [&] { ops::cached_attention_forward(Tensor(tail_out.data(), DType::F64, Device::CPU, {B, n, NH * HS}),
                                          t4(tail_att, B, NH, n, T + 1), t4(q_tail, B, NH, n, HS), K, Vt, start + 1); },
      {"do not fit the cache of 70"});
}

TEST(CachedAttention, CacheWriteCopiesRowsIntoTheirPositions) {
  const int64_t B = 2, KV = 3, Tc = 6, HS = 2, n = 2, start = 3;
  std::vector<float> cache(B * KV * Tc * HS, -1.0f), rows(B * KV * n * HS);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i);
  ops::kv_cache_write(Tensor(cache.data(), DType::F32, Device::CPU, {B, KV, Tc, HS}),
                      Tensor(rows.data(), DType::F32, Device::CPU, {B, KV, n, HS}), start);
  for (int64_t g = 0; g < B * KV; ++g)
    for (int64_t t = 0; t < Tc; ++t)
      for (int64_t h = 0; h < HS; ++h) {
        const float expected = t >= start && t < start + n ? rows[static_cast<size_t>((g * n + t - start) * HS + h)] : -1.0f;
        EXPECT_EQ(cache[static_cast<size_t>((g * Tc + t) * HS + h)], expected);
      }
}

}  // namespace
}  // namespace prores
