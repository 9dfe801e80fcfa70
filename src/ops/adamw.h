// The AdamW update on f32 tensors of one device, reproducing torch.optim.AdamW (foreach=False): the one
// entry point of the optimizer's arithmetic (prores::AdamW in optim/ keeps the step count, the moments and
// the decay segments, and calls it). CPU tensors take the OpenMP kernel of ops/cpu/adamw.h, CUDA tensors the
// kernel of ops/cuda/adamw.h; both compute in double and store fp32, in the same order of operations.
// Plain C++17 declarations (the kernel headers include this one for AdamWSegment and AdamWUpdate).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace prores::ops {

// Elements [offset, offset + count) of the flat tensors; weight decay applies to them iff decay.
struct AdamWSegment {
  int64_t offset = 0;
  int64_t count = 0;
  bool decay = true;
};

// One step's scalars.
struct AdamWUpdate {
  double lr = 0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0;  // applied to the segments with decay
  int64_t step = 1;         // the step count after this step's increment (t >= 1)
  double grad_scale = 1;    // the clip coefficient, applied to the gradients as they are read
};

// One AdamW step over the segments of equally long f32 tensors on one device; for every element of a
// segment, computing in double and storing fp32 (wd = weight_decay for a decayed segment, else 0):
//   g = fp32(grad · grad_scale);  p = p·(1 − lr·wd);  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//   p = p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
// The update reads the moments as stored (fp32), like torch's in-place tensor ops. params, exp_avg (m),
// exp_avg_sq (v) (=) in place; grads read, left unscaled; elements outside the segments untouched. Segments
// must lie within the tensors and not overlap. Deterministic for any thread count.
void adamw_step(const Tensor& params, const Tensor& grads, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const std::vector<AdamWSegment>& segments, const AdamWUpdate& update);

}  // namespace prores::ops
