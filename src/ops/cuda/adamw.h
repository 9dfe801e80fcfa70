// CUDA AdamW step over flat fp32 device buffers: the update of prores::AdamW::step (optim/adamw.h) for one
// segment of parameters, same formula and order of operations (in double, stored as fp32), so that the
// optimizer can run on the GPU without optim depending on ops. Pointers are device memory; plain C++
// declarations (no CUDA headers). Runs asynchronously on the current device and the legacy default stream.
#pragma once
#include <cstdint>

namespace prores::ops::cuda {

// One AdamW step at step count `step` (>= 1: the count after this step's increment, t) over n elements,
// one thread per element, computing in double and storing fp32:
//   g = fp32(grad · grad_scale);  p = p·(1 − lr·weight_decay);
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//   p = p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps).
// params, exp_avg (m), exp_avg_sq (v) (n) updated in place (=); grads (n) read, left unscaled. Pass
// weight_decay = 0 for a segment without decay. Bias corrections are computed on the host with std::pow, as
// on the CPU.
void adamw_step(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n, double lr,
                double beta1, double beta2, double eps, double weight_decay, int64_t step, double grad_scale);

}  // namespace prores::ops::cuda
