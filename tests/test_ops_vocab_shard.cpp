// Tests for the vocabulary-shard ops (ops/vocab_shard.h), single process: double-precision finite-difference
// gradient checks of the shard ops (one full shard, and a split vocabulary whose shards are combined here as
// the TP all-reduces would combine them), reassembled shards against unsharded::embedding / unsharded::cross_entropy
// (bitwise for the embedding, 1e-12 / 1e-6 relative for f64 / f32 cross-entropy), zero rows and gradients for
// ids outside the shard, a shard's sum rebased to a larger max, bf16 logits against their f32 widening,
// aliasing, and errors on bad arguments.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "ops/vocab_shard.h"
#include "test_util.h"
#include "unsharded_ops/cross_entropy.h"
#include "unsharded_ops/embedding.h"

namespace prores {
namespace {

using test::expect_error;

using test::Buffer;
using test::expect_gradient_matches;
using test::columns;
using test::max_symmetric_rel_diff;
using test::random_buffer;
using test::random_ids;

// The vocab-parallel cross-entropy of logits (N, V) over TP shards, run in one process: each shard's pieces
// are combined as vocab_parallel_cross_entropy_forward combines them (max over the shards, each shard's sum
// rebased to it, then sums in rank order).
template <typename T>
struct ShardedCrossEntropy {
  std::vector<T> losses;   // (N)
  std::vector<T> dlogits;  // (N, V), the shards' gradients reassembled
};

template <typename T>
ShardedCrossEntropy<T> sharded_cross_entropy(const std::vector<T>& logits, Buffer<int32_t>& targets, int64_t N,
                                             int64_t V, int64_t TP, double dloss) {
  const int64_t Vs = V / TP;
  std::vector<Buffer<T>> shards, shard_max(TP, Buffer<T>(N)), shard_sumexp(TP, Buffer<T>(N)),
      shard_target(TP, Buffer<T>(N));
  for (int64_t r = 0; r < TP; ++r) shards.push_back(columns(logits, N, V, r * Vs, Vs));
  Buffer<T> row_max(N), row_sumexp(N), target_logit(N);
  row_max.data.assign(N, -std::numeric_limits<T>::infinity());
  for (int64_t r = 0; r < TP; ++r) {
    ops::cross_entropy_shard_stats(shard_max[r].tensor({N}), shard_sumexp[r].tensor({N}),
                                   shard_target[r].tensor({N}), shards[r].tensor({N, Vs}), targets.tensor({N}),
                                   r * Vs);
    for (int64_t n = 0; n < N; ++n) row_max.data[n] = std::max(row_max.data[n], shard_max[r].data[n]);
  }
  for (int64_t r = 0; r < TP; ++r) {
    ops::cross_entropy_shard_rebase(shard_sumexp[r].tensor({N}), shard_max[r].tensor({N}), row_max.tensor({N}));
    for (int64_t n = 0; n < N; ++n) {
      row_sumexp.data[n] += shard_sumexp[r].data[n];
      target_logit.data[n] += shard_target[r].data[n];
    }
  }
  Buffer<T> losses(N);
  ops::cross_entropy_shard_loss(losses.tensor({N}), row_max.tensor({N}), row_sumexp.tensor({N}),
                                target_logit.tensor({N}));
  ShardedCrossEntropy<T> result{losses.data, std::vector<T>(N * V)};
  for (int64_t r = 0; r < TP; ++r) {
    Buffer<T> dshard(N * Vs);
    ops::cross_entropy_shard_backward(dshard.tensor({N, Vs}), shards[r].tensor({N, Vs}), targets.tensor({N}),
                                      r * Vs, row_max.tensor({N}), row_sumexp.tensor({N}), dloss);
    for (int64_t n = 0; n < N; ++n) {
      std::copy_n(dshard.data.begin() + n * Vs, Vs, result.dlogits.begin() + n * V + r * Vs);
    }
  }
  return result;
}

// Sharded cross-entropy against unsharded::cross_entropy on the full logits, for every TP dividing V.
template <typename T>
void expect_sharded_cross_entropy_matches(int64_t N, int64_t V, double std, double tol) {
  auto logits = random_buffer<T>(N * V, 31, std);
  auto targets = random_ids(N, V, 32);
  const double dloss = 0.37;
  Buffer<T> losses(N), dlogits(N * V);
  unsharded::cross_entropy_forward(losses.tensor({N}), logits.tensor({N, V}), targets.tensor({N}));
  unsharded::cross_entropy_backward(dlogits.tensor({N, V}), logits.tensor({N, V}), targets.tensor({N}), dloss);
  for (int64_t TP : {1, 2, 3, 4}) {
    if (V % TP != 0) continue;
    const auto sharded = sharded_cross_entropy(logits.data, targets, N, V, TP, dloss);
    EXPECT_LE(max_symmetric_rel_diff(sharded.losses, losses.data), tol) << "TP " << TP;
    EXPECT_LE(max_symmetric_rel_diff(sharded.dlogits, dlogits.data), tol) << "TP " << TP;
  }
}

// Sharded embedding against unsharded::embedding on the full table: the forward rows summed over the shards
// and the backward's shard slices equal the single-device results bitwise.
template <typename T>
void expect_sharded_embedding_matches(int64_t N, int64_t C, int64_t V, int64_t TP) {
  const int64_t Vs = V / TP;
  auto wte = random_buffer<T>(V * C, 41);
  auto dout = random_buffer<T>(N * C, 42);
  auto tokens = random_ids(N, V, 43);
  tokens.data[0] = tokens.data[N - 1];  // a repeated id accumulates twice
  Buffer<T> out(N * C);
  unsharded::embedding_forward(out.tensor({N, C}), tokens.tensor({N}), wte.tensor({V, C}));
  auto dwte = random_buffer<T>(V * C, 44);  // prior contents check (+=)
  const auto dwte_prior = dwte.data;
  unsharded::embedding_backward(dwte.tensor({V, C}), dout.tensor({N, C}), tokens.tensor({N}));

  std::vector<T> summed(N * C, T(0));
  for (int64_t r = 0; r < TP; ++r) {
    Buffer<T> wte_shard(Vs * C), out_shard(N * C);
    std::copy_n(wte.data.begin() + r * Vs * C, Vs * C, wte_shard.data.begin());
    out_shard.data.assign(N * C, T(7));  // (=): stale contents must not survive
    ops::embedding_shard_forward(out_shard.tensor({N, C}), tokens.tensor({N}), wte_shard.tensor({Vs, C}), r * Vs);
    for (int64_t i = 0; i < N * C; ++i) summed[i] += out_shard.data[i];

    Buffer<T> dwte_shard(Vs * C);
    std::copy_n(dwte_prior.begin() + r * Vs * C, Vs * C, dwte_shard.data.begin());
    ops::embedding_shard_backward(dwte_shard.tensor({Vs, C}), dout.tensor({N, C}), tokens.tensor({N}), r * Vs);
    EXPECT_EQ(std::memcmp(dwte_shard.data.data(), dwte.data.data() + r * Vs * C, Vs * C * sizeof(T)), 0)
        << "dwte shard " << r << " of " << TP;
  }
  EXPECT_EQ(std::memcmp(summed.data(), out.data.data(), N * C * sizeof(T)), 0) << "TP " << TP;
}

// -------------------------------------------------------------------------------------------- Embedding

TEST(EmbeddingShard, ShardsReproduceEmbeddingBitwise) {
  for (int64_t TP : {1, 2, 3, 4}) {
    expect_sharded_embedding_matches<double>(10, 6, 12, TP);
    expect_sharded_embedding_matches<float>(10, 6, 12, TP);
  }
  // Large enough for the threaded paths.
  expect_sharded_embedding_matches<float>(128, 520, 96, 4);
  expect_sharded_embedding_matches<double>(128, 520, 96, 4);
}

TEST(EmbeddingShard, OutOfShardIdsGiveZeroRowsAndNoGradient) {
  const int64_t N = 5, C = 4, Vs = 3, vocab_start = 3;
  auto wte_shard = random_buffer<double>(Vs * C, 51);
  auto dout = random_buffer<double>(N * C, 52);
  Buffer<int32_t> tokens(N);
  tokens.data = {0, 4, 2, 6, 5};  // ids 4 and 5 are rows 1 and 2 of the shard [3, 6)
  Buffer<double> out(N * C);
  out.data.assign(N * C, 9.0);
  ops::embedding_shard_forward(out.tensor({N, C}), tokens.tensor({N}), wte_shard.tensor({Vs, C}), vocab_start);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_EQ(out.data[0 * C + c], 0.0);
    EXPECT_EQ(out.data[1 * C + c], wte_shard.data[1 * C + c]);
    EXPECT_EQ(out.data[2 * C + c], 0.0);
    EXPECT_EQ(out.data[3 * C + c], 0.0);
    EXPECT_EQ(out.data[4 * C + c], wte_shard.data[2 * C + c]);
  }
  Buffer<double> dwte(Vs * C);
  ops::embedding_shard_backward(dwte.tensor({Vs, C}), dout.tensor({N, C}), tokens.tensor({N}), vocab_start);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_EQ(dwte.data[0 * C + c], 0.0);
    EXPECT_EQ(dwte.data[1 * C + c], dout.data[1 * C + c]);
    EXPECT_EQ(dwte.data[2 * C + c], dout.data[4 * C + c]);
  }
}

TEST(EmbeddingShard, GradientMatchesFiniteDifferences) {
  const int64_t N = 7, C = 5, Vs = 4, vocab_start = 4;
  auto wte_shard = random_buffer<double>(Vs * C, 61);
  auto r = random_buffer<double>(N * C, 62);
  Buffer<int32_t> tokens(N);
  tokens.data = {5, 0, 7, 5, 11, 4, 6};  // in-shard ids (5 twice), ids below and above the shard
  Buffer<double> out(N * C);
  auto loss = [&] {
    ops::embedding_shard_forward(out.tensor({N, C}), tokens.tensor({N}), wte_shard.tensor({Vs, C}), vocab_start);
    double s = 0;
    for (int64_t i = 0; i < N * C; ++i) s += out.data[i] * r.data[i];
    return s;
  };
  auto dwte = random_buffer<double>(Vs * C, 63);
  const auto prior = dwte.data;
  ops::embedding_shard_backward(dwte.tensor({Vs, C}), r.tensor({N, C}), tokens.tensor({N}), vocab_start);
  for (size_t i = 0; i < dwte.data.size(); ++i) dwte.data[i] -= prior[i];
  expect_gradient_matches(loss, wte_shard.data, dwte.data, "embedding shard dwte");
}

// ---------------------------------------------------------------------------------------- Cross-entropy

TEST(CrossEntropyShard, FullShardGradientMatchesFiniteDifferences) {
  const int64_t N = 4, V = 9;
  const double dloss = 0.6;
  auto logits = random_buffer<double>(N * V, 71, 2.0);
  auto targets = random_ids(N, V, 72);
  Buffer<double> row_max(N), row_sumexp(N), target_logit(N), losses(N), dlogits(N * V);
  auto forward = [&] {
    ops::cross_entropy_shard_stats(row_max.tensor({N}), row_sumexp.tensor({N}), target_logit.tensor({N}),
                                   logits.tensor({N, V}), targets.tensor({N}), 0);
    ops::cross_entropy_shard_loss(losses.tensor({N}), row_max.tensor({N}), row_sumexp.tensor({N}),
                                  target_logit.tensor({N}));
    double s = 0;
    for (double l : losses.data) s += dloss * l;
    return s;
  };
  forward();
  ops::cross_entropy_shard_backward(dlogits.tensor({N, V}), logits.tensor({N, V}), targets.tensor({N}), 0,
                                    row_max.tensor({N}), row_sumexp.tensor({N}), dloss);
  expect_gradient_matches(forward, logits.data, dlogits.data, "cross-entropy full shard dlogits");
}

TEST(CrossEntropyShard, SplitVocabularyGradientMatchesFiniteDifferences) {
  const int64_t N = 5, V = 12, TP = 3;
  const double dloss = 1.3;
  auto logits = random_buffer<double>(N * V, 81, 2.0);
  auto targets = random_ids(N, V, 82);
  auto loss = [&] {
    double s = 0;
    for (double l : sharded_cross_entropy(logits.data, targets, N, V, TP, dloss).losses) s += dloss * l;
    return s;
  };
  auto dlogits = sharded_cross_entropy(logits.data, targets, N, V, TP, dloss).dlogits;
  expect_gradient_matches(loss, logits.data, dlogits, "cross-entropy split vocabulary dlogits");
}

TEST(CrossEntropyShard, ShardsReproduceCrossEntropy) {
  expect_sharded_cross_entropy_matches<double>(10, 12, 1.0, 1e-12);
  expect_sharded_cross_entropy_matches<float>(10, 12, 1.0, 1e-6);
  // Large enough for the threaded paths; wide logits make the shards' maxima differ.
  expect_sharded_cross_entropy_matches<double>(130, 1200, 4.0, 1e-12);
  expect_sharded_cross_entropy_matches<float>(130, 1200, 4.0, 1e-6);
}

TEST(CrossEntropyShard, TargetOutsideShardRebaseAndAliasing) {
  const int64_t N = 3, Vs = 4, vocab_start = 8;
  const double dloss = 0.5;
  auto logits = random_buffer<double>(N * Vs, 91);
  Buffer<int32_t> targets(N);
  targets.data = {1, 9, 15};  // only row 1's target (local column 1) is in the shard [8, 12)
  Buffer<double> shard_max(N), row_sumexp(N), target_logit(N);
  ops::cross_entropy_shard_stats(shard_max.tensor({N}), row_sumexp.tensor({N}), target_logit.tensor({N}),
                                 logits.tensor({N, Vs}), targets.tensor({N}), vocab_start);
  EXPECT_EQ(target_logit.data[0], 0.0);
  EXPECT_EQ(target_logit.data[1], logits.data[1 * Vs + 1]);
  EXPECT_EQ(target_logit.data[2], 0.0);
  // Whole-vocabulary maxima from other shards, above this shard's.
  Buffer<double> row_max(N);
  row_max.data = {3.0, 2.5, 4.0};
  for (int64_t n = 0; n < N; ++n) {
    EXPECT_EQ(shard_max.data[n], *std::max_element(logits.data.begin() + n * Vs, logits.data.begin() + (n + 1) * Vs));
    double s = 0;
    for (int64_t v = 0; v < Vs; ++v) s += std::exp(logits.data[n * Vs + v] - shard_max.data[n]);
    EXPECT_NEAR(row_sumexp.data[n], s, 1e-15 * s);
  }
  ops::cross_entropy_shard_rebase(row_sumexp.tensor({N}), shard_max.tensor({N}), row_max.tensor({N}));
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t v = 0; v < Vs; ++v) s += std::exp(logits.data[n * Vs + v] - row_max.data[n]);
    EXPECT_NEAR(row_sumexp.data[n], s, 1e-15 * s) << "rebased row " << n;
  }
  // Whole-vocabulary sums larger than the shard's own, as after the all-reduce.
  for (auto& s : row_sumexp.data) s += 2.0;
  Buffer<double> dlogits(N * Vs);
  ops::cross_entropy_shard_backward(dlogits.tensor({N, Vs}), logits.tensor({N, Vs}), targets.tensor({N}),
                                    vocab_start, row_max.tensor({N}), row_sumexp.tensor({N}), dloss);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t v = 0; v < Vs; ++v) {
      const double p = std::exp(logits.data[n * Vs + v] - row_max.data[n]) / row_sumexp.data[n];
      const double expected = dloss * (p - (n == 1 && v == 1 ? 1.0 : 0.0));
      EXPECT_NEAR(dlogits.data[n * Vs + v], expected, 1e-15);
    }
  }
  // dlogits may alias logits.
  ops::cross_entropy_shard_backward(logits.tensor({N, Vs}), logits.tensor({N, Vs}), targets.tensor({N}),
                                    vocab_start, row_max.tensor({N}), row_sumexp.tensor({N}), dloss);
  EXPECT_EQ(logits.data, dlogits.data);
}

// bf16 logits give the statistics and losses of their f32 widening (f32 arithmetic, one rounding apart at
// most) and a gradient that is the f32 gradient rounded to bf16; in place too. A split vocabulary with the
// target in the second shard, wide enough for the threaded paths.
TEST(CrossEntropyShard, Bf16LogitsAreTheirF32WideningRounded) {
  const int64_t N = 67, Vs = 700, vocab_start = Vs;
  const double dloss = 0.013;
  std::vector<uint16_t> logits = test::stored_as<uint16_t>(random_buffer<float>(N * Vs, 95, 4.0).data);
  std::vector<float> wide = test::widened(logits);
  Buffer<int32_t> targets = random_ids(N, 2 * Vs, 96);
  Buffer<float> max16(N), sum16(N), tgt16(N), max32(N), sum32(N), tgt32(N), loss16(N), loss32(N);
  ops::cross_entropy_shard_stats(max16.tensor({N}), sum16.tensor({N}), tgt16.tensor({N}),
                                 test::host_tensor(logits, {N, Vs}), targets.tensor({N}), vocab_start);
  ops::cross_entropy_shard_stats(max32.tensor({N}), sum32.tensor({N}), tgt32.tensor({N}),
                                 test::host_tensor(wide, {N, Vs}), targets.tensor({N}), vocab_start);
  EXPECT_EQ(max16.data, max32.data);
  EXPECT_EQ(tgt16.data, tgt32.data);
  EXPECT_LE(max_symmetric_rel_diff(sum16.data, sum32.data), 1e-6);
  ops::cross_entropy_shard_loss(loss16.tensor({N}), max16.tensor({N}), sum16.tensor({N}), tgt16.tensor({N}));
  ops::cross_entropy_shard_loss(loss32.tensor({N}), max32.tensor({N}), sum32.tensor({N}), tgt32.tensor({N}));
  EXPECT_LE(max_symmetric_rel_diff(loss16.data, loss32.data), 1e-6);

  std::vector<uint16_t> dlogits(static_cast<size_t>(N * Vs));
  std::vector<float> dwide(static_cast<size_t>(N * Vs));
  ops::cross_entropy_shard_backward(test::host_tensor(dlogits, {N, Vs}), test::host_tensor(logits, {N, Vs}),
                                    targets.tensor({N}), vocab_start, max32.tensor({N}), sum32.tensor({N}), dloss);
  ops::cross_entropy_shard_backward(test::host_tensor(dwide, {N, Vs}), test::host_tensor(wide, {N, Vs}),
                                    targets.tensor({N}), vocab_start, max32.tensor({N}), sum32.tensor({N}), dloss);
  test::expect_bf16_rounding_of(dlogits, dwide, "bf16 dlogits");
  ops::cross_entropy_shard_backward(test::host_tensor(logits, {N, Vs}), test::host_tensor(logits, {N, Vs}),
                                    targets.tensor({N}), vocab_start, max32.tensor({N}), sum32.tensor({N}), dloss);
  EXPECT_EQ(logits, dlogits) << "in place";
}

TEST(CrossEntropyShard, LossFromStatistics) {
  Buffer<double> losses(2), row_max(2), row_sumexp(2), target_logit(2);
  row_max.data = {1.0, -2.0};
  row_sumexp.data = {std::exp(1.0), 1.0};
  target_logit.data = {0.5, -2.0};
  ops::cross_entropy_shard_loss(losses.tensor({2}), row_max.tensor({2}), row_sumexp.tensor({2}),
                                target_logit.tensor({2}));
  EXPECT_NEAR(losses.data[0], 1.0 + 1.0 - 0.5, 1e-15);
  EXPECT_EQ(losses.data[1], 0.0);
}

// ------------------------------------------------------------------------------------------------ Errors

TEST(VocabShard, BadArgumentsThrow) {
  Buffer<double> out(12), wte(8), logits(12), vec3(3), vec4(4);
  Buffer<float> outf(12), vec3f(3);
  Buffer<int32_t> ids(3);
  Buffer<double> ids_f64(3);
  expect_error([&] { ops::embedding_shard_forward(out.tensor({3, 4}), ids.tensor({3}), wte.tensor({4, 2}), 0); },
               {"embedding_shard_forward", "(3, 4)", "(4, 2)"});
  expect_error([&] { ops::embedding_shard_forward(outf.tensor({3, 4}), ids.tensor({3}), wte.tensor({2, 4}), 0); },
               {"embedding_shard_forward", "f64", "f32"});
  expect_error(
      [&] { ops::embedding_shard_forward(out.tensor({3, 4}), ids_f64.tensor({3}), wte.tensor({2, 4}), 0); },
      {"tokens must be i32"});
  expect_error([&] { ops::embedding_shard_forward(out.tensor({3, 4}), ids.tensor({3}), wte.tensor({2, 4}), -2); },
               {"vocab_start", "-2"});
  expect_error([&] { ops::embedding_shard_backward(wte.tensor({2, 4}), out.tensor({4, 3}), ids.tensor({3}), 0); },
               {"embedding_shard_backward"});
  expect_error(
      [&] {
        ops::cross_entropy_shard_stats(vec4.tensor({4}), vec3.tensor({3}), vec3.tensor({3}), logits.tensor({3, 4}),
                                       ids.tensor({3}), 0);
      },
      {"cross_entropy_shard_stats", "(4)", "(3, 4)"});
  expect_error(
      [&] {
        ops::cross_entropy_shard_stats(vec3f.tensor({3}), vec3.tensor({3}), vec3.tensor({3}), logits.tensor({3, 4}),
                                       ids.tensor({3}), 0);
      },
      {"cross_entropy_shard_stats", "f32"});
  expect_error(
      [&] {
        ops::cross_entropy_shard_stats(vec3.tensor({3}), vec3.tensor({3}), vec3.tensor({3}), logits.tensor({3, 4}),
                                       ids_f64.tensor({3}), 0);
      },
      {"cross_entropy_shard_stats", "targets must be i32"});
  expect_error(
      [&] {
        ops::cross_entropy_shard_rebase(vec3.tensor({3}), vec4.tensor({4}), vec3.tensor({3}));
      },
      {"cross_entropy_shard_rebase", "(4)"});
  expect_error(
      [&] {
        ops::cross_entropy_shard_loss(vec3.tensor({3}), vec3.tensor({3}), vec3f.tensor({3}), vec3.tensor({3}));
      },
      {"cross_entropy_shard_loss", "f32"});
  expect_error(
      [&] {
        ops::cross_entropy_shard_backward(logits.tensor({4, 3}), logits.tensor({3, 4}), ids.tensor({3}), 0,
                                          vec3.tensor({3}), vec3.tensor({3}), 1.0);
      },
      {"cross_entropy_shard_backward", "(4, 3)"});
  Tensor gpu_logits = logits.tensor({3, 4}), gpu_max = vec3.tensor({3});
  gpu_logits.device = gpu_max.device = Device::CUDA;
  auto gpu_stats = [&](const Tensor& row_max) {
    ops::cross_entropy_shard_stats(row_max, gpu_max, gpu_max, gpu_logits, ids.tensor({3}), 0);
  };
  expect_error([&] { gpu_stats(vec3.tensor({3})); }, {"same device"});
  Tensor gpu_ids = ids.tensor({3});
  gpu_ids.device = Device::CUDA;
  expect_error(
      [&] { ops::cross_entropy_shard_stats(gpu_max, gpu_max, gpu_max, gpu_logits, gpu_ids, 0); },
      {"cross_entropy_shard_stats", "CUDA"});
}

}  // namespace
}  // namespace prores
