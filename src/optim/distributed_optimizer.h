// DistributedOptimizer: AdamW over a model's flat parameter buffer on one data-parallel rank, either over
// the whole buffer (every DP rank updates every parameter; the caller has all-reduced the gradients) or,
// under ZeRO-1 (--use-distributed-optimizer), over this rank's shard: the flat gradients, padded to DP equal
// shards of S = ⌈P / DP⌉ elements, are reduce-scattered over the DP group so that each rank holds the sum
// of its shard; it updates elements [begin(), begin() + count()) of the parameters with moments of that
// size only, then all-gathers the updated shards into every rank's parameters. Also the local part of the
// global gradient norm (each parameter counted once). Tensors live on the parameters' device; the
// communicator carries that device's tensors. Everything is allocated at construction.
#pragma once
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "core/arena.h"
#include "core/tensor.h"
#include "optim/adamw.h"
#include "parallel/communicator.h"

namespace prores {

// One parameter's elements [offset, offset + count) of the flat buffers: whether AdamW decays it, and
// whether this rank counts it in the global gradient norm (false where another rank holding the same
// values counts it, e.g. a TP-replicated norm on a TP rank other than 0).
struct OptimizerParam {
  int64_t offset = 0;
  int64_t count = 0;
  bool decay = true;
  bool in_norm = true;
};

class DistributedOptimizer {
 public:
  // params, grads: the model's flat f32 buffers (P elements each, one device; views that must outlive this
  // object). layout: every parameter, in any order, tiling [0, P). dp: the data-parallel group, carrying
  // tensors of params' device. sharded: ZeRO-1 over dp (otherwise dp is not used). Validates config.
  DistributedOptimizer(const AdamWConfig& config, const Tensor& params, const Tensor& grads,
                       std::span<const OptimizerParam> layout, Communicator& dp, bool sharded);
  ~DistributedOptimizer();
  DistributedOptimizer(const DistributedOptimizer&) = delete;
  DistributedOptimizer& operator=(const DistributedOptimizer&) = delete;

  bool sharded() const { return sharded_; }
  // This rank's optimizer range of the flat buffers: [begin(), begin() + count()); count() is
  // adamw().num_params(). The whole buffer unless sharded.
  int64_t begin() const { return begin_; }
  int64_t count() const { return count_; }
  AdamW& adamw() { return adamw_; }
  const AdamW& adamw() const { return adamw_; }

  // Sharded: the gradients (copied into the padded buffer) reduce-scattered over dp, so that this rank's
  // shard holds the DP sum of its range (the model's gradients are left as they were). Unsharded: nothing.
  void reduce_gradients();
  // Σ g² (ops::sum_squares, fp64) over this rank's range of the (reduced) gradients, counting only the
  // parameters with in_norm. The global norm is the square root of its sum over the ranks that hold distinct
  // gradients: every rank of the layout when sharded, the model-parallel group otherwise.
  double grad_sum_of_squares() const;
  // One AdamW step over this rank's range at learning rate lr, the gradients scaled by grad_scale (the clip
  // coefficient) as they are read; sharded: then the updated shards all-gathered into params on every DP rank.
  void step(double lr, double grad_scale);

 private:
  Tensor params_, grads_;
  Communicator& dp_;
  bool sharded_;
  int64_t begin_ = 0, count_ = 0;
  AdamW adamw_;
  std::vector<std::pair<int64_t, int64_t>> norm_ranges_;  // (begin, count) relative to begin(), merged
  // Sharded: the flat gradients padded to DP shards (S·DP), reduce-scattered in place into this rank's shard
  // (S), whose first count() elements then take the updated parameters, all-gathered in place. The padding
  // past P stays 0.
  Arena buffers_;
  Tensor full_, shard_;
};

}  // namespace prores
