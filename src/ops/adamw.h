// The AdamW update on device tensors, for optimizers whose state lives on a GPU. The host optimizer (with
// the same formula, computed in double and stored fp32) is prores::AdamW in optim/, which the CPU path
// uses; this entry point exists so that train/ can run the update where the parameters live without optim
// depending on ops.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace prores::ops {

struct AdamWUpdate {
  double lr = 0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0;  // 0 for a segment without decay
  int64_t step = 1;         // the step count after this step's increment (t >= 1)
  double grad_scale = 1;    // the clip coefficient, applied to the gradients as they are read
};

// One AdamW step over equally long f32 CUDA tensors:
//   g = fp32(grad · grad_scale);  p = p·(1 − lr·wd);  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//   p = p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
// params, exp_avg (m), exp_avg_sq (v) (=) in place; grads read. Host tensors are refused (use prores::AdamW).
void adamw_step(const Tensor& params, const Tensor& grads, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const AdamWUpdate& update);

}  // namespace prores::ops
