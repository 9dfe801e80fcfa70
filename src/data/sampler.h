// The data-parallel position in the sample stream (Megatron's MegatronPretrainingSampler): an iteration
// consumes the global batch [consumed, consumed + G); DP rank r takes the contiguous block
// [consumed + r·G/D, consumed + (r+1)·G/D) and splits it into micro-batches in order. The position is
// therefore fully described by consumed_samples, and a run resumed with another DP size continues with
// exactly the samples not yet seen, in the same global order.
#pragma once
#include <cstdint>

namespace prores::data {

class DistributedSampler {
 public:
  // global_batch G (--global-batch-size), micro_batch B (--micro-batch-size), this rank's DP index r of
  // D. Throws prores::Error naming the options unless G, B, D > 0, 0 <= r < D and G is a multiple of B·D.
  DistributedSampler(int64_t global_batch, int64_t micro_batch, int64_t dp_rank, int64_t dp_size);

  // out (micro_batch) (=) the global sample indices of micro-batch `micro` (0 <= micro <
  // num_micro_batches()) of this rank in the iteration that starts at consumed_samples (>= 0):
  // consumed + r·G/D + micro·B + j, j = 0 .. B − 1.
  void micro_batch_indices(int64_t consumed_samples, int64_t micro, int64_t* out) const;

  // Micro-batches per iteration on each rank: G / (B·D) (the gradient-accumulation steps).
  int64_t num_micro_batches() const { return global_batch_ / (micro_batch_ * dp_size_); }

  // Samples per iteration on each rank: G / D.
  int64_t local_batch() const { return global_batch_ / dp_size_; }

  int64_t global_batch() const { return global_batch_; }
  int64_t micro_batch() const { return micro_batch_; }
  int64_t dp_rank() const { return dp_rank_; }
  int64_t dp_size() const { return dp_size_; }

 private:
  int64_t global_batch_ = 0;
  int64_t micro_batch_ = 0;
  int64_t dp_rank_ = 0;
  int64_t dp_size_ = 0;
};

}  // namespace prores::data
