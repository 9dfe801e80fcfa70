// Data-parallel gradient synchronisation: the flat gradient buffer is cut into buckets (contiguous
// ranges, in the order backward finishes them) whose all-reduce starts as soon as the last unit of the
// bucket is ready, while backward goes on with earlier layers (Megatron's overlapped grad reduce).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "parallel/communicator.h"

namespace prores {

// A unit of readiness: a contiguous range of the flat buffer whose gradients become final together
// (one block's parameters, or the embedding).
struct GradUnit {
  int64_t offset = 0, count = 0;
};

class DataParallelReducer {
 public:
  // units in the order backward completes them (contiguous, each adjacent to the previous one, moving
  // towards the start of the buffer); consecutive units are grouped into buckets of at least
  // bucket_elements elements. grads: the flat gradient buffer.
  DataParallelReducer(const Tensor& grads, std::vector<GradUnit> units, int64_t bucket_elements, Communicator& dp);
  // Marks unit i ready (in order); starts the bucket's all-reduce when its last unit is ready.
  void unit_ready(int64_t unit);
  // Waits for every bucket (starting any not yet started): grads (=) sum over DP ranks.
  void finish();
  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    int64_t offset = 0, count = 0, last_unit = 0;
    std::unique_ptr<CommRequest> request;
  };
  Tensor grads_;
  Communicator& dp_;
  std::vector<Bucket> buckets_;
  int64_t next_bucket_ = 0;
};

}  // namespace prores
