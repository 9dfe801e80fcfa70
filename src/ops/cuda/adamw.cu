// CUDA AdamW step (ops/cuda/adamw.h): host-side bias corrections, then a grid-stride elementwise update.
#include "ops/cuda/adamw.h"

#include <cmath>

#include "core/check.h"
#include "ops/cuda/kernel_util.cuh"

namespace prores::ops::cuda {

namespace {

// factor = 1 − lr·weight_decay; step_size = lr / (1 − β1^t); bc2_sqrt = √(1 − β2^t).
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

void adamw_step(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n, double lr,
                double beta1, double beta2, double eps, double weight_decay, int64_t step, double grad_scale) {
  PRORES_CHECK(n >= 0 && step >= 1, "cuda::adamw_step: expected n >= 0 and step >= 1, got n = ", n,
               ", step = ", step);
  if (n == 0) return;
  const double t = static_cast<double>(step);
  const double step_size = lr / (1.0 - std::pow(beta1, t));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
  const double factor = 1.0 - lr * weight_decay;
  adamw_kernel<<<detail::grid_for(n), detail::kThreads>>>(params, grads, exp_avg, exp_avg_sq, n, beta1, beta2,
                                                          eps, factor, step_size, bc2_sqrt, grad_scale);
  detail::check_launch();
}

}  // namespace prores::ops::cuda
