// Vocab-parallel embedding and cross-entropy: the shard kernels of ops/vocab_shard.h composed with the TP
// all-reduces. Ids are checked against the full vocabulary here, on every rank before any communication,
// so a bad id fails on all ranks alike instead of silently giving a zero row.
#include "parallel/vocab_parallel.h"

#include "ops/elementwise.h"
#include "ops/memory.h"
#include "ops/vocab_shard.h"

namespace prores {

namespace {

// Throws unless ids (N) i32 all lie in [0, V); name is the argument ("tokens"), what one id is called in
// the message ("token").
void check_global_ids(const char* op, const char* name, const char* what, const Tensor& ids, int64_t V) {
  PRORES_CHECK(ids.ndim == 1 && ids.dtype == DType::I32, op, ": ", name, " must be (N) i32, got ",
               dtype_name(ids.dtype), " ", ids.shape_string());
  ops::check_ids(op, what, ids, V);
}

// Throws unless this rank's shard of Vs rows starts at vocab_start = tp.rank()·Vs.
void check_shard(const char* op, int64_t Vs, int64_t vocab_start, const Communicator& tp) {
  PRORES_CHECK(vocab_start == tp.rank() * Vs, op, ": TP rank ", tp.rank(), " of ", tp.size(), " with ", Vs,
               " vocabulary rows per shard must start at ", tp.rank() * Vs, ", got vocab_start ", vocab_start);
}

}  // namespace

void vocab_parallel_embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte_shard,
                                      int64_t vocab_start, Communicator& tp, const Tensor& partial) {
  constexpr const char* op = "vocab_parallel_embedding_forward";
  PRORES_CHECK(wte_shard.ndim == 2, op, ": wte_shard must be (Vs, C), got ", wte_shard.shape_string());
  const int64_t Vs = wte_shard.shape[0];
  check_shard(op, Vs, vocab_start, tp);
  check_global_ids(op, "tokens", "token", tokens, Vs * tp.size());
  if (!partial.defined()) {
    ops::embedding_shard_forward(out, tokens, wte_shard, vocab_start);
    return tp.all_reduce(out, ReduceOp::Sum);
  }
  ops::embedding_shard_forward(partial, tokens, wte_shard, vocab_start);
  tp.reduce_scatter(out, partial);
}

void vocab_parallel_embedding_backward(const Tensor& dwte_shard, const Tensor& dout, const Tensor& tokens,
                                       int64_t vocab_start) {
  ops::embedding_shard_backward(dwte_shard, dout, tokens, vocab_start);
}

VocabParallelCrossEntropy VocabParallelCrossEntropy::from_buffer(const Tensor& buffer) {
  PRORES_CHECK(buffer.ndim == 2 && buffer.shape[0] == 4,
               "VocabParallelCrossEntropy::from_buffer: expected a (4, N) buffer, got ", buffer.shape_string());
  const int64_t N = buffer.shape[1];
  auto row = [&](int64_t i) { return buffer.slice_rows(i, 1).view({N}); };
  return {row(0), row(1), row(2), row(3)};
}

void vocab_parallel_cross_entropy_forward(const Tensor& losses, const Tensor& logits_shard, const Tensor& targets,
                                          int64_t vocab_start, const VocabParallelCrossEntropy& scratch,
                                          Communicator& tp) {
  constexpr const char* op = "vocab_parallel_cross_entropy_forward";
  PRORES_CHECK(logits_shard.ndim == 2, op, ": logits_shard must be (N, Vs), got ", logits_shard.shape_string());
  const int64_t Vs = logits_shard.shape[1];
  check_shard(op, Vs, vocab_start, tp);
  check_global_ids(op, "targets", "target", targets, Vs * tp.size());
  ops::cross_entropy_shard_stats(scratch.row_max, scratch.row_sumexp, scratch.target_logit, logits_shard, targets,
                                 vocab_start);
  if (tp.size() > 1) {
    ops::copy(scratch.shard_max, scratch.row_max);
    tp.all_reduce(scratch.row_max, ReduceOp::Max);
    ops::cross_entropy_shard_rebase(scratch.row_sumexp, scratch.shard_max, scratch.row_max);
    const bool adjacent = static_cast<const char*>(scratch.row_sumexp.data) + scratch.row_sumexp.nbytes() ==
                          static_cast<const char*>(scratch.target_logit.data);
    if (adjacent) {
      const Tensor both(scratch.row_sumexp.data, scratch.row_sumexp.dtype, scratch.row_sumexp.device,
                        {2 * scratch.row_sumexp.shape[0]});
      tp.all_reduce(both, ReduceOp::Sum);
    } else {
      tp.all_reduce(scratch.row_sumexp, ReduceOp::Sum);
      tp.all_reduce(scratch.target_logit, ReduceOp::Sum);
    }
  }
  ops::cross_entropy_shard_loss(losses, scratch.row_max, scratch.row_sumexp, scratch.target_logit);
}

void vocab_parallel_cross_entropy_backward(const Tensor& dlogits_shard, const Tensor& logits_shard,
                                           const Tensor& targets, int64_t vocab_start,
                                           const VocabParallelCrossEntropy& scratch, double dloss) {
  ops::cross_entropy_shard_backward(dlogits_shard, logits_shard, targets, vocab_start, scratch.row_max,
                                    scratch.row_sumexp, dloss);
}

}  // namespace prores
