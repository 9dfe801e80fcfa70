// CUDA kernels for the vocabulary-shard pieces of the vocab-parallel embedding and cross-entropy
// (ops/vocab_shard.h), mirroring ops/cpu/vocab_shard.h, templated on float / double (the cross-entropy also
// on bf16 logits), plus the id range check on the device (which the unsharded references of the tests,
// tests/unsharded_ops/, run first; with one shard at id 0 these kernels reproduce those references).
// A shard holds the vocabulary rows [vocab_start, vocab_start + Vs); ids are global, and an id outside the
// shard contributes nothing here. Pointers are device memory; plain C++ declarations (no CUDA headers).
// Everything runs on the current device and the legacy default stream, asynchronously unless said
// otherwise; launch errors throw.
#pragma once
#include <cstdint>

#include "core/bf16.h"

namespace prores::ops::cuda {

// Throws prores::Error "<op>: <what> id <id> at position <n> is outside [0, V) with V = <V>" (the CPU
// kernels' message) for the first position n of ids (n_ids) whose id lies outside [0, V); returns
// otherwise. Synchronous: waits for the device to report the first bad position (an atomic minimum, so
// the reported position does not depend on the schedule).
void check_ids(const char* op, const char* what, const int32_t* ids, int64_t n_ids, int64_t V);

// out (N, C) (=) wte_shard[tokens[n] - vocab_start] for ids in the shard, 0 for every other id;
// tokens (N); wte_shard (Vs, C). One block per row.
template <typename T>
void embedding_shard_forward(T* out, const int32_t* tokens, const T* wte_shard, int64_t N, int64_t C,
                             int64_t Vs, int64_t vocab_start);

// dwte_shard (Vs, C) (+=) scatter-add of the dout (N, C) rows whose ids fall in the shard; Vs < 2^32 - 1.
// Deterministic, without atomics, and bitwise equal to the CPU kernel: the positions are radix-sorted by
// shard row (a stable sort, so each row's positions stay in increasing order; ids outside the shard sort
// last and are skipped), then one block per distinct row adds its dout rows in position order, one thread
// per column, exactly the additions of the CPU loop. Uses O(N) stream-ordered scratch; a row's work is
// proportional to its number of occurrences (a very frequent id makes one long block).
template <typename T>
void embedding_shard_backward(T* dwte_shard, const T* dout, const int32_t* tokens, int64_t N, int64_t C,
                              int64_t Vs, int64_t vocab_start);

// The cross-entropy pieces take logits and dlogits stored as T (float, double, or uint16_t for bf16 bits)
// and per-row statistics in S = compute_type<T> (float for bf16), the type they compute in.

// One pass over the shard's logits (N, Vs), Vs >= 1, one block per row: row_max (N) (=) the row's max;
// row_sumexp (N) (=) sum_v exp(logits[n, v] - row_max[n]), each exponential in S, the sum in double;
// target_logit (N) (=) logits[n, targets[n] - vocab_start] when the target is in the shard, else 0. Each
// thread keeps an online max and a sum relative to it (rescaled in double when its max grows); the block
// then rescales the threads' sums to the row max and adds them in a fixed order.
template <typename T>
void cross_entropy_shard_stats(compute_type<T>* row_max, compute_type<T>* row_sumexp,
                               compute_type<T>* target_logit, const T* logits, const int32_t* targets, int64_t N,
                               int64_t Vs, int64_t vocab_start);

// row_sumexp (N) (*=) exp(shard_max - row_max), evaluated in double.
template <typename S>
void cross_entropy_shard_rebase(S* row_sumexp, const S* shard_max, const S* row_max, int64_t N);

// losses (N) (=) log(row_sumexp) + row_max - target_logit, evaluated in double; all three inputs (N) are
// the whole-vocabulary values.
template <typename S>
void cross_entropy_shard_loss(S* losses, const S* row_max, const S* row_sumexp, const S* target_logit,
                              int64_t N);

// dlogits (N, Vs) (=) dloss * (exp(logits - row_max) / row_sumexp - onehot(targets)) on the shard, with
// row_max and row_sumexp (N) the whole-vocabulary values, each element computed in S and stored once;
// dlogits may alias logits. One block per row.
template <typename T>
void cross_entropy_shard_backward(T* dlogits, const T* logits, const int32_t* targets,
                                  const compute_type<T>* row_max, const compute_type<T>* row_sumexp, int64_t N,
                                  int64_t Vs, int64_t vocab_start, double dloss);

}  // namespace prores::ops::cuda
