// Vocab-parallel embedding and cross-entropy (parallel/vocab_parallel.h) on any number of ranks (ctest runs 1,
// 2 and 4) against the single-device ops on the full problem: every rank draws the same random problem from a
// fixed seed, takes its vocabulary shard, and compares embedding outputs, dwte shards, losses and dlogits
// shards with unsharded::embedding / unsharded::cross_entropy (tests/unsharded_ops/) computed on every rank
// (embedding exact; cross-entropy f64 1e-12, f32 1e-5 relative). The TP group is the world, and pairs of ranks
// split from it. Checks use EXPECT between collectives so that a failing rank still joins every later
// collective; main() all-reduces the failure flag.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "mpi_test_main.h"
#include "parallel/communicator.h"
#include "parallel/vocab_parallel.h"
#include "test_util.h"
#include "unsharded_ops/cross_entropy.h"
#include "unsharded_ops/embedding.h"

namespace prores {
namespace {

Communicator* g_world = nullptr;  // set by main() before the tests run

template <typename T>
Tensor view(std::vector<T>& v, std::initializer_list<int64_t> dims) {
  return Tensor(v.data(), dtype_of<T>(), Device::CPU, dims);
}

// Embedding forward and backward on tp's shard of a (V, C) table against the full-table ops.
template <typename T>
void check_embedding(Communicator& tp, int64_t N, int64_t C, int64_t V) {
  const int64_t Vs = V / tp.size(), vocab_start = tp.rank() * Vs;
  auto wte = test::random_buffer<T>(V * C, 101).data;
  auto dout = test::random_buffer<T>(N * C, 102).data;
  auto dwte = test::random_buffer<T>(V * C, 103).data;  // prior contents check (+=)
  auto tokens = test::random_ids(N, V, 104).data;
  tokens[1] = tokens[N - 1];  // a repeated id accumulates twice
  std::vector<T> wte_shard(wte.begin() + vocab_start * C, wte.begin() + (vocab_start + Vs) * C);
  std::vector<T> dwte_shard(dwte.begin() + vocab_start * C, dwte.begin() + (vocab_start + Vs) * C);

  std::vector<T> expected_out(static_cast<size_t>(N * C));
  unsharded::embedding_forward(view(expected_out, {N, C}), view(tokens, {N}), view(wte, {V, C}));
  unsharded::embedding_backward(view(dwte, {V, C}), view(dout, {N, C}), view(tokens, {N}));

  std::vector<T> out(static_cast<size_t>(N * C), T(5));
  vocab_parallel_embedding_forward(view(out, {N, C}), view(tokens, {N}), view(wte_shard, {Vs, C}), vocab_start,
                                   tp);
  vocab_parallel_embedding_backward(view(dwte_shard, {Vs, C}), view(dout, {N, C}), view(tokens, {N}),
                                    vocab_start);
  EXPECT_EQ(out, expected_out) << dtype_name(dtype_of<T>()) << " TP rank " << tp.rank() << "/" << tp.size();
  // Sequence parallelism: this rank's N/TP rows of the same sum, reduce-scattered.
  if (N % tp.size() == 0) {
    const int64_t rows = N / tp.size();
    std::vector<T> partial(static_cast<size_t>(N * C)), scattered(static_cast<size_t>(rows * C), T(5));
    vocab_parallel_embedding_forward(view(scattered, {rows, C}), view(tokens, {N}), view(wte_shard, {Vs, C}),
                                     vocab_start, tp, view(partial, {N, C}));
    const std::vector<T> expected_rows(expected_out.begin() + tp.rank() * rows * C,
                                       expected_out.begin() + (tp.rank() + 1) * rows * C);
    EXPECT_EQ(scattered, expected_rows) << dtype_name(dtype_of<T>()) << " sequence-parallel, TP rank " << tp.rank();
  }
  const std::vector<T> expected_dwte(dwte.begin() + vocab_start * C, dwte.begin() + (vocab_start + Vs) * C);
  EXPECT_EQ(dwte_shard, expected_dwte) << dtype_name(dtype_of<T>()) << " TP rank " << tp.rank();
}

// Cross-entropy forward and backward on tp's columns of random (N, V) logits against the full-logits ops,
// with the scratch either one (4, N) buffer (a single Sum all-reduce) or four separate vectors.
template <typename T>
void check_cross_entropy(Communicator& tp, int64_t N, int64_t V, double std, double tol, bool one_buffer) {
  const int64_t Vs = V / tp.size(), vocab_start = tp.rank() * Vs;
  const double dloss = 0.3;
  auto logits = test::random_buffer<T>(N * V, 201, std).data;
  auto targets = test::random_ids(N, V, 202).data;
  std::vector<T> expected_losses(static_cast<size_t>(N)), expected_dlogits(static_cast<size_t>(N * V));
  unsharded::cross_entropy_forward(view(expected_losses, {N}), view(logits, {N, V}), view(targets, {N}));
  unsharded::cross_entropy_backward(view(expected_dlogits, {N, V}), view(logits, {N, V}), view(targets, {N}), dloss);

  auto shard = test::columns(logits, N, V, vocab_start, Vs).data;
  std::vector<T> buffer(static_cast<size_t>(4 * N)), row_max(N), row_sumexp(N), target_logit(N), shard_max(N);
  const VocabParallelCrossEntropy scratch =
      one_buffer ? VocabParallelCrossEntropy::from_buffer(view(buffer, {4, N}))
                 : VocabParallelCrossEntropy{view(row_max, {N}), view(row_sumexp, {N}), view(target_logit, {N}),
                                             view(shard_max, {N})};
  std::vector<T> losses(static_cast<size_t>(N), T(-1));
  vocab_parallel_cross_entropy_forward(view(losses, {N}), view(shard, {N, Vs}), view(targets, {N}), vocab_start,
                                       scratch, tp);
  // In place: the gradient overwrites the logits shard.
  vocab_parallel_cross_entropy_backward(view(shard, {N, Vs}), view(shard, {N, Vs}), view(targets, {N}),
                                        vocab_start, scratch, dloss);

  const auto expected_shard = test::columns(expected_dlogits, N, V, vocab_start, Vs).data;
  EXPECT_LE(test::max_symmetric_rel_diff(losses, expected_losses), tol)
      << dtype_name(dtype_of<T>()) << " losses, TP rank " << tp.rank() << "/" << tp.size();
  EXPECT_LE(test::max_symmetric_rel_diff(shard, expected_shard), tol)
      << dtype_name(dtype_of<T>()) << " dlogits, TP rank " << tp.rank() << "/" << tp.size();
  const T* max = scratch.row_max.as<T>();
  for (int64_t n = 0; n < N; ++n) {
    EXPECT_EQ(max[n], *std::max_element(logits.begin() + n * V, logits.begin() + (n + 1) * V)) << "row " << n;
  }
}

// Every check on one TP group: the small problem of the brief and a wider one whose shard maxima differ.
void check_all(Communicator& tp) {
  for (bool one_buffer : {true, false}) {
    check_cross_entropy<double>(tp, 10, 12, 1.0, 1e-12, one_buffer);
    check_cross_entropy<float>(tp, 10, 12, 1.0, 1e-5, one_buffer);
  }
  check_cross_entropy<double>(tp, 33, 96, 4.0, 1e-12, true);
  check_cross_entropy<float>(tp, 33, 96, 4.0, 1e-5, true);
  check_embedding<double>(tp, 10, 6, 12);
  check_embedding<float>(tp, 10, 6, 12);
  check_embedding<float>(tp, 37, 20, 96);
  check_embedding<float>(tp, 16, 20, 96);  // tokens divisible by every TP size: the sequence-parallel split too
}

TEST(VocabParallel, WorldAsTensorParallelGroup) { check_all(*g_world); }

TEST(VocabParallel, PairsSplitFromTheWorld) {
  if (g_world->size() % 2 != 0) GTEST_SKIP() << "needs an even number of ranks";
  auto tp = g_world->split(g_world->rank() / 2, g_world->rank());
  ASSERT_EQ(tp->size(), 2);
  check_all(*tp);
}

TEST(VocabParallel, SingleProcessCommunicatorMatchesOps) {
  auto tp = make_single_process_communicator();
  check_all(*tp);
}

// Bad ids and a shard that is not the rank's throw on every rank alike, before any communication.
TEST(VocabParallel, ArgumentErrors) {
  Communicator& tp = *g_world;
  const int64_t N = 4, C = 3, Vs = 3, V = Vs * tp.size(), vocab_start = tp.rank() * Vs;
  std::vector<double> wte_shard(Vs * C, 1.0), out(N * C), logits(N * Vs, 0.5), losses(N), buffer(4 * N);
  std::vector<int32_t> ids{0, 1, 2, 0}, bad_ids{0, static_cast<int32_t>(V), 1, 0}, negative{0, -1, 0, 0};
  const auto scratch = VocabParallelCrossEntropy::from_buffer(view(buffer, {4, N}));
  EXPECT_THROW(vocab_parallel_embedding_forward(view(out, {N, C}), view(bad_ids, {N}), view(wte_shard, {Vs, C}),
                                                vocab_start, tp),
               Error);
  EXPECT_THROW(vocab_parallel_embedding_forward(view(out, {N, C}), view(negative, {N}), view(wte_shard, {Vs, C}),
                                                vocab_start, tp),
               Error);
  EXPECT_THROW(vocab_parallel_embedding_forward(view(out, {N, C}), view(ids, {N}), view(wte_shard, {Vs, C}),
                                                vocab_start + 1, tp),
               Error);
  EXPECT_THROW(vocab_parallel_cross_entropy_forward(view(losses, {N}), view(logits, {N, Vs}), view(bad_ids, {N}),
                                                    vocab_start, scratch, tp),
               Error);
  EXPECT_THROW(vocab_parallel_cross_entropy_forward(view(losses, {N}), view(logits, {N, Vs}), view(ids, {N}),
                                                    vocab_start + Vs, scratch, tp),
               Error);
  EXPECT_THROW(VocabParallelCrossEntropy::from_buffer(view(buffer, {3, 4})), Error);
  try {
    vocab_parallel_cross_entropy_forward(view(losses, {N}), view(logits, {N, Vs}), view(bad_ids, {N}),
                                         vocab_start, scratch, tp);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside [0, V)"), std::string::npos) << e.what();
  }
  tp.barrier();
}

}  // namespace
}  // namespace prores

int main(int argc, char** argv) {
  return prores::test::run_mpi_tests(argc, argv, "test_mpi_vocab_parallel",
                                     [](prores::Communicator& world) { prores::g_world = &world; });
}
