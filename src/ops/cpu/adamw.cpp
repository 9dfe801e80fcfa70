// CPU AdamW step (ops/cpu/adamw.h): host-side bias corrections, then one OpenMP team over all segments.
#include "ops/cpu/adamw.h"

#include <cmath>

#include "core/check.h"

namespace prores::ops::cpu {

void adamw_step(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, const AdamWSegment* segments,
                int64_t num_segments, const AdamWUpdate& u) {
  PRORES_CHECK(num_segments >= 0 && u.step >= 1, "cpu::adamw_step: expected num_segments >= 0 and step >= 1, got ",
               num_segments, " and step = ", u.step);
  const double b1 = u.beta1;
  const double b2 = u.beta2;
  const double eps = u.eps;
  const double grad_scale = u.grad_scale;
  const double t = static_cast<double>(u.step);
  const double step_size = u.lr / (1.0 - std::pow(b1, t));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
  const double decayed = 1.0 - u.lr * u.weight_decay;
  float* m = exp_avg;
  float* v = exp_avg_sq;
#pragma omp parallel
  for (int64_t k = 0; k < num_segments; ++k) {
    const AdamWSegment& s = segments[k];
    const double factor = s.decay ? decayed : 1.0;
    const int64_t end = s.offset + s.count;
#pragma omp for schedule(static) nowait
    for (int64_t i = s.offset; i < end; ++i) {
      const double g = static_cast<float>(grads[i] * grad_scale);
      const double p = static_cast<double>(params[i]) * factor;
      // The update reads the moments as stored (fp32), like torch's in-place tensor ops.
      m[i] = static_cast<float>(b1 * m[i] + (1.0 - b1) * g);
      v[i] = static_cast<float>(b2 * v[i] + (1.0 - b2) * g * g);
      const double denom = std::sqrt(static_cast<double>(v[i])) / bc2_sqrt + eps;
      params[i] = static_cast<float>(p - step_size * (static_cast<double>(m[i]) / denom));
    }
  }
}

}  // namespace prores::ops::cpu
