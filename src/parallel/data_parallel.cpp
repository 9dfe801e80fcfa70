// Bucketed data-parallel all-reduce (see data_parallel.h).
#include "parallel/data_parallel.h"

#include "core/check.h"

namespace prores {

DataParallelReducer::DataParallelReducer(const Tensor& grads, std::vector<GradUnit> units, int64_t bucket_elements,
                                         Communicator& dp)
    : grads_(grads), dp_(dp) {
  PRORES_CHECK(bucket_elements >= 1, "data-parallel bucket size must be positive, got ", bucket_elements);
  for (size_t i = 0; i < units.size(); ++i) {
    const GradUnit& u = units[i];
    if (i > 0) PRORES_CHECK(u.offset + u.count == units[i - 1].offset, "gradient units are not contiguous");
    if (buckets_.empty() || buckets_.back().count >= bucket_elements) buckets_.push_back({u.offset + u.count, 0, 0, {}});
    Bucket& b = buckets_.back();
    b.offset = u.offset;
    b.count += u.count;
    b.last_unit = static_cast<int64_t>(i);
  }
}

void DataParallelReducer::unit_ready(int64_t unit) {
  while (next_bucket_ < num_buckets() && buckets_[static_cast<size_t>(next_bucket_)].last_unit <= unit) {
    Bucket& b = buckets_[static_cast<size_t>(next_bucket_++)];
    b.request = dp_.all_reduce_async(grads_.slice_rows(b.offset, b.count), ReduceOp::Sum);
  }
}

void DataParallelReducer::finish() {
  unit_ready(buckets_.empty() ? 0 : buckets_.back().last_unit);
  for (Bucket& b : buckets_) {
    b.request->wait();
    b.request.reset();
  }
  next_bucket_ = 0;
}

}  // namespace prores
