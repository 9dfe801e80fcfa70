// CUDA AdamW step (ops/cuda/adamw.h): host-side bias corrections, then a grid-stride elementwise update per
// segment.
#include "ops/cuda/adamw.h"

#include <cmath>

#include "core/check.h"
#include "ops/cuda/kernel_util.cuh"

namespace prores::ops::cuda {

namespace {

// factor = 1 − lr·weight_decay (1 without decay); step_size = lr / (1 − β1^t); bc2_sqrt = √(1 − β2^t).
__global__ void adamw_kernel(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n,
                             double beta1, double beta2, double eps, double factor, double step_size,
                             double bc2_sqrt, double grad_scale) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double g = static_cast<float>(grads[i] * grad_scale);
    const double p = static_cast<double>(params[i]) * factor;
    // The update reads the moments as stored (fp32), like the CPU step and torch's in-place tensor ops.
    const float m = static_cast<float>(beta1 * exp_avg[i] + (1.0 - beta1) * g);
    const float v = static_cast<float>(beta2 * exp_avg_sq[i] + (1.0 - beta2) * g * g);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const double denom = sqrt(static_cast<double>(v)) / bc2_sqrt + eps;
    params[i] = static_cast<float>(p - step_size * (static_cast<double>(m) / denom));
  }
}

}  // namespace

void adamw_step(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, const AdamWSegment* segments,
                int64_t num_segments, const AdamWUpdate& u) {
  PRORES_CHECK(num_segments >= 0 && u.step >= 1,
               "cuda::adamw_step: expected num_segments >= 0 and step >= 1, got ", num_segments,
               " and step = ", u.step);
  const double t = static_cast<double>(u.step);
  const double step_size = u.lr / (1.0 - std::pow(u.beta1, t));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(u.beta2, t));
  const double decayed = 1.0 - u.lr * u.weight_decay;
  for (int64_t k = 0; k < num_segments; ++k) {
    const AdamWSegment& s = segments[k];
    if (s.count == 0) continue;
    const int64_t o = s.offset;
    adamw_kernel<<<detail::grid_for(s.count), detail::kThreads>>>(
        params + o, grads + o, exp_avg + o, exp_avg_sq + o, s.count, u.beta1, u.beta2, u.eps,
        s.decay ? decayed : 1.0, step_size, bc2_sqrt, u.grad_scale);
    detail::check_launch();
  }
}

}  // namespace prores::ops::cuda
