// Global gradient-norm clipping (see grad_clip.h).
#include "optim/grad_clip.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "ops/elementwise.h"

namespace prores {

double sum_of_squares(const Tensor& grads) { return ops::sum_squares(grads); }

double sum_of_squares(std::span<const float> grads) {
  const auto n = static_cast<int64_t>(grads.size());
  return sum_of_squares(Tensor(const_cast<float*>(grads.data()), DType::F32, Device::CPU, {n}));
}

double global_grad_norm(std::span<const float> grads) { return std::sqrt(sum_of_squares(grads)); }

double clip_coefficient(double norm, double max_norm) {
  PRORES_CHECK(!std::isnan(max_norm), "--clip-grad must be a number, got ", max_norm);
  PRORES_CHECK(!(norm < 0.0), "clip_coefficient: gradient norm must be >= 0, got ", norm);
  if (max_norm <= 0.0) return 1.0;
  const double coef = max_norm / (norm + 1e-6);
  return std::isnan(coef) ? coef : std::min(coef, 1.0);
}

}  // namespace prores
