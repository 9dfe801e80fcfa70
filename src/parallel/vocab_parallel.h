// Vocab-parallel token embedding and cross-entropy (Megatron's VocabParallelEmbedding and
// vocab_parallel_cross_entropy): the vocabulary of V ids is split into TP equal contiguous shards, TP rank r
// holding rows [r·Vs, (r+1)·Vs), Vs = V / TP, of the embedding table and of the LM head. The embedding
// sums the shards' partial rows with one all-reduce; the cross-entropy reduces per-row statistics (max, then
// sum of exponentials and target logit) instead of gathering the logits (N, V). Each operation takes the
// TP communicator explicitly; tokens, targets, dout and dloss are the same on every TP rank.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "parallel/communicator.h"

namespace prores {

// out (N, C) (=) wte[tokens[n]] of the full table, every TP rank: the shard's rows (zero rows for ids of
// other shards), then tp.all_reduce Sum. tokens (N) i32, every id in [0, Vs·TP) (throws otherwise, before
// communicating); wte_shard (Vs, C); vocab_start = tp.rank()·Vs (checked).
// With partial (N, C), sequence parallelism: the shard's rows go to partial and tp.reduce_scatter leaves
// out (N/TP, C) (=) this rank's rows [rank·N/TP, (rank + 1)·N/TP) of the sum.
void vocab_parallel_embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte_shard,
                                      int64_t vocab_start, Communicator& tp, const Tensor& partial = Tensor());

// dwte_shard (Vs, C) (+=) scatter-add of the dout (N, C) rows whose ids tokens (N) fall in this shard. No
// communication: dout is replicated across TP (gathered beforehand under sequence parallelism). Ids are those
// checked by the forward.
void vocab_parallel_embedding_backward(const Tensor& dwte_shard, const Tensor& dout, const Tensor& tokens,
                                       int64_t vocab_start);

// Per-row statistics the cross-entropy forward leaves for its backward, each (N), caller-owned, f32 for f32
// and bf16 logits and f64 for f64; after the forward the first three hold the whole-vocabulary values,
// identical on every TP rank.
struct VocabParallelCrossEntropy {
  Tensor row_max;       // (N) max over the vocabulary of each row of logits
  Tensor row_sumexp;    // (N) sum over the vocabulary of exp(logit - row_max)
  Tensor target_logit;  // (N) logit of the row's target
  Tensor shard_max;     // (N) max over this rank's shard (used when TP > 1)

  // Views of a caller-owned buffer (4, N): rows row_max, row_sumexp, target_logit, shard_max. With
  // row_sumexp and target_logit adjacent like this the forward reduces both with a single all-reduce of
  // (2, N).
  static VocabParallelCrossEntropy from_buffer(const Tensor& buffer);
};

// losses (N) (=) -log softmax(logits[n])[targets[n]] over the full vocabulary, every TP rank.
// logits_shard (N, Vs) are this rank's columns [vocab_start, vocab_start + Vs) of the logits (f32, f64 or
// bf16); targets (N) i32, every id in [0, Vs·TP) (throws otherwise, before communicating); vocab_start =
// tp.rank()·Vs (checked). scratch (=) the whole-vocabulary statistics. One pass over the logits (the shard's
// max, sum of exponentials and target logit); with TP > 1 then an all-reduce Max of row_max, each rank's sum
// rebased from its shard's max to that, and an all-reduce Sum of row_sumexp and target_logit (one call when
// they are adjacent in memory).
void vocab_parallel_cross_entropy_forward(const Tensor& losses, const Tensor& logits_shard, const Tensor& targets,
                                          int64_t vocab_start, const VocabParallelCrossEntropy& scratch,
                                          Communicator& tp);

// dlogits_shard (N, Vs) (=) dloss * (softmax(logits) - onehot(targets)) on this rank's columns, from the
// scratch its forward filled; dlogits_shard may alias logits_shard. No communication.
void vocab_parallel_cross_entropy_backward(const Tensor& dlogits_shard, const Tensor& logits_shard,
                                           const Tensor& targets, int64_t vocab_start,
                                           const VocabParallelCrossEntropy& scratch, double dloss);

}  // namespace prores
