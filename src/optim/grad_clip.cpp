// Global gradient-norm clipping (see grad_clip.h).
#include "optim/grad_clip.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"

namespace prores {

namespace {

// Elements per chunk of the deterministic reduction.
constexpr int64_t kChunk = int64_t{1} << 16;

// Σ x² over [begin, end) with eight interleaved accumulators (a fixed order, so still deterministic).
double chunk_sum_of_squares(const float* x, int64_t begin, int64_t end) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    for (int k = 0; k < 8; ++k) {
      const double v = x[i + k];
      acc[k] += v * v;
    }
  }
  for (; i < end; ++i) {
    const double v = x[i];
    acc[0] += v * v;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

double sum_of_squares(std::span<const float> grads) {
  const int64_t n = static_cast<int64_t>(grads.size());
  const int64_t num_chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(num_chunks));
  const float* x = grads.data();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < num_chunks; ++c) {
    partial[static_cast<size_t>(c)] = chunk_sum_of_squares(x, c * kChunk, std::min(n, (c + 1) * kChunk));
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
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
