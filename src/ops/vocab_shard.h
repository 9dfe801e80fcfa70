// Local compute pieces of the vocab-parallel embedding and cross-entropy (Megatron's tensor parallelism):
// the vocabulary of V ids is split into TP equal contiguous shards and a shard holds rows
// [vocab_start, vocab_start + Vs) of the embedding table and of the LM head, Vs = V / TP. Ids are global;
// an id outside the shard contributes nothing on this shard, and checking ids against [0, V) is the
// caller's job. parallel/vocab_parallel.h composes these with the TP all-reduces; the full logits (N, V)
// are never formed.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace prores::ops {

// Throws "<op>: <what> id <id> at position <n> is outside [0, V) with V = <V>" for the first position n of
// ids (N) i32 whose id lies outside [0, V); returns otherwise. On CUDA ids the check runs on the device and
// the host waits for its result.
void check_ids(const char* op, const char* what, const Tensor& ids, int64_t V);

// out (N, C) (=) wte_shard[tokens[n] - vocab_start] for ids in the shard, a zero row for every other id;
// tokens (N) i32; wte_shard (Vs, C). Summing out over the shards gives the unsharded embedding
// (tests/unsharded_ops/).
void embedding_shard_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte_shard,
                             int64_t vocab_start);

// dwte_shard (Vs, C) (+=) scatter-add of the dout (N, C) rows whose ids tokens (N) fall in the shard;
// other rows are ignored. Race-free and deterministic.
void embedding_shard_backward(const Tensor& dwte_shard, const Tensor& dout, const Tensor& tokens,
                              int64_t vocab_start);

// The cross-entropy of a shard reads its logits (N, Vs) twice: once in the forward (the statistics) and
// once in the backward (the gradient). Logits and dlogits are f32, f64 or bf16; the per-row statistics are
// f64 for f64 logits and f32 otherwise, and the arithmetic is in the statistics' type.

// One pass over the shard's logits (N, Vs), Vs >= 1: row_max (N) (=) max of each row; row_sumexp (N) (=)
// sum over the row of exp(logits[n, v] - row_max[n]), accumulated in double; target_logit (N) (=) the
// logit of targets[n] (N) i32 when it is in the shard, else 0. With a single shard these are the
// whole-vocabulary values; with several, the max over the vocabulary is the max of the shards' row_max
// (all-reduce Max), and after cross_entropy_shard_rebase the sums over the shards of row_sumexp and
// target_logit are the whole-vocabulary values (all-reduce Sum).
void cross_entropy_shard_stats(const Tensor& row_max, const Tensor& row_sumexp, const Tensor& target_logit,
                               const Tensor& logits, const Tensor& targets, int64_t vocab_start);

// row_sumexp (N) (*=) exp(shard_max - row_max): a shard's sum of exponentials taken relative to its own max
// shard_max (N) becomes relative to the whole-vocabulary max row_max (N) (>= shard_max).
void cross_entropy_shard_rebase(const Tensor& row_sumexp, const Tensor& shard_max, const Tensor& row_max);

// losses (N) (=) log(row_sumexp) + row_max - target_logit, from the whole-vocabulary values (N) each.
void cross_entropy_shard_loss(const Tensor& losses, const Tensor& row_max, const Tensor& row_sumexp,
                              const Tensor& target_logit);

// dlogits (N, Vs) (=) dloss * (exp(logits - row_max) / row_sumexp - onehot(targets)) on the shard;
// logits (N, Vs), targets (N) i32, row_max and row_sumexp (N) the whole-vocabulary values. One pass over
// the logits; dlogits may alias logits.
void cross_entropy_shard_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                                  int64_t vocab_start, const Tensor& row_max, const Tensor& row_sumexp,
                                  double dloss);

}  // namespace prores::ops
