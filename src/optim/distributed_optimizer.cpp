// AdamW over the whole flat buffer or this DP rank's ZeRO-1 shard (see distributed_optimizer.h).
#include "optim/distributed_optimizer.h"

#include <algorithm>

#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/memory.h"
#include "optim/grad_clip.h"

namespace prores {

namespace {

// S: the elements of one DP shard (the whole buffer unless sharded).
int64_t shard_size(int64_t P, const Communicator& dp, bool sharded) {
  return sharded ? (P + dp.size() - 1) / dp.size() : P;
}

int64_t range_begin(int64_t P, const Communicator& dp, bool sharded) {
  return sharded ? std::min(P, dp.rank() * shard_size(P, dp, true)) : 0;
}

int64_t range_count(int64_t P, const Communicator& dp, bool sharded) {
  return std::min(shard_size(P, dp, sharded), P - range_begin(P, dp, sharded));
}

// Throws unless the parameters tile [0, P) exactly.
void check_tiling(std::span<const OptimizerParam> layout, int64_t P) {
  std::vector<OptimizerParam> sorted(layout.begin(), layout.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const OptimizerParam& a, const OptimizerParam& b) { return a.offset < b.offset; });
  int64_t covered = 0;
  for (const OptimizerParam& p : sorted) {
    PRORES_CHECK(p.count >= 0 && p.offset == covered, "DistributedOptimizer: parameter [", p.offset, ", ",
                 p.offset + p.count, ") does not continue the tiling at element ", covered);
    covered += p.count;
  }
  PRORES_CHECK(covered == P, "DistributedOptimizer: parameters cover [0, ", covered, ") of ", P, " elements");
}

}  // namespace

DistributedOptimizer::DistributedOptimizer(const AdamWConfig& config, const Tensor& params, const Tensor& grads,
                                           std::span<const OptimizerParam> layout, Communicator& dp, bool sharded)
    : params_(params),
      grads_(grads),
      dp_(dp),
      sharded_(sharded),
      begin_(range_begin(params.numel(), dp, sharded)),
      count_(range_count(params.numel(), dp, sharded)),
      adamw_(config, count_, params.device),
      buffers_(params.device, params.device == Device::CPU ? DeviceMemory{} : ops::device_memory(params.device)) {
  const int64_t P = params.numel();
  PRORES_CHECK(params.dtype == DType::F32 && grads.dtype == DType::F32 && grads.numel() == P &&
                   grads.device == params.device && params.ndim == 1 && grads.ndim == 1,
               "DistributedOptimizer: params and grads must be flat f32 tensors of one size on one device, got ",
               params.shape_string(), " ", dtype_name(params.dtype), " and ", grads.shape_string(), " ",
               dtype_name(grads.dtype));
  check_tiling(layout, P);
  // Each parameter's elements within the optimizer's range, relative to its start: the AdamW decay
  // segments, and the ranges the gradient norm counts, adjacent ones merged.
  std::vector<AdamW::Segment> segments;
  for (const OptimizerParam& p : layout) {
    const int64_t b = std::max(p.offset, begin_) - begin_;
    const int64_t e = std::min(p.offset + p.count, begin_ + count_) - begin_;
    if (b >= e) continue;
    segments.push_back({b, e - b, p.decay});
    if (!p.in_norm) continue;
    if (!norm_ranges_.empty() && norm_ranges_.back().first + norm_ranges_.back().second == b)
      norm_ranges_.back().second += e - b;
    else
      norm_ranges_.emplace_back(b, e - b);
  }
  adamw_.set_segments(segments);
  if (!sharded_) return;
  const int64_t S = shard_size(P, dp, true);
  buffers_.reserve(&full_, DType::F32, {S * dp.size()});
  buffers_.allocate();  // zero-filled: the padding past P stays 0
  shard_ = full_.slice_rows(dp.rank() * S, S);
}

DistributedOptimizer::~DistributedOptimizer() = default;

void DistributedOptimizer::reduce_gradients() {
  if (!sharded_) return;
  ops::copy(full_.slice_rows(0, grads_.numel()), grads_);
  dp_.reduce_scatter(shard_, full_);
}

double DistributedOptimizer::grad_sum_of_squares() const {
  const Tensor local = sharded_ ? shard_ : grads_;  // this rank's range starts at its element 0
  double sum = 0;
  for (const auto& [b, n] : norm_ranges_) sum += sum_of_squares(local.slice_rows(b, n));
  return sum;
}

void DistributedOptimizer::step(double lr, double grad_scale) {
  const Tensor params = params_.slice_rows(begin_, count_);
  const Tensor grads = (sharded_ ? shard_ : grads_).slice_rows(0, count_);
  adamw_.step(params, grads, lr, grad_scale);
  if (!sharded_) return;
  ops::copy(shard_.slice_rows(0, count_), params);
  dp_.all_gather(full_, shard_);
  ops::copy(params_, full_.slice_rows(0, params_.numel()));
}

}  // namespace prores
