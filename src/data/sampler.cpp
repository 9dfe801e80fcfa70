// Data-parallel sample positions: argument checks and the contiguous per-rank slice of each global batch.
#include "data/sampler.h"

#include "core/check.h"

namespace prores::data {

DistributedSampler::DistributedSampler(int64_t global_batch, int64_t micro_batch, int64_t dp_rank,
                                       int64_t dp_size)
    : global_batch_(global_batch), micro_batch_(micro_batch), dp_rank_(dp_rank), dp_size_(dp_size) {
  PRORES_CHECK(global_batch > 0, "--global-batch-size: must be positive, got ", global_batch);
  PRORES_CHECK(micro_batch > 0, "--micro-batch-size: must be positive, got ", micro_batch);
  PRORES_CHECK(dp_size > 0 && dp_rank >= 0 && dp_rank < dp_size, "data-parallel rank ", dp_rank,
               " is outside a data-parallel size of ", dp_size);
  PRORES_CHECK(global_batch % (micro_batch * dp_size) == 0, "--global-batch-size ", global_batch,
               " must be a multiple of --micro-batch-size ", micro_batch, " times the data-parallel size ",
               dp_size);
}

void DistributedSampler::micro_batch_indices(int64_t consumed_samples, int64_t micro, int64_t* out) const {
  PRORES_CHECK(consumed_samples >= 0, "sampler: negative consumed samples ", consumed_samples);
  PRORES_CHECK(micro >= 0 && micro < num_micro_batches(), "sampler: micro-batch ", micro, " outside [0, ",
               num_micro_batches(), ")");
  const int64_t first = consumed_samples + dp_rank_ * local_batch() + micro * micro_batch_;
  for (int64_t j = 0; j < micro_batch_; ++j) out[j] = first + j;
}

}  // namespace prores::data
