// Next-token choice (sampling.h). Sampling works in double on the kept tokens only: temperature-scaled
// softmax over the top-k, then the nucleus cut on the sorted probabilities, then one uniform draw.
#include "eval/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/check.h"

namespace prores::eval {

void SamplingOptions::validate() const {
  PRORES_CHECK(std::isfinite(temperature) && temperature >= 0, "--temperature must be >= 0, got ", temperature);
  PRORES_CHECK(top_k >= 0, "--top-k must be >= 0 (0: all tokens), got ", top_k);
  PRORES_CHECK(std::isfinite(top_p) && top_p > 0 && top_p <= 1, "--top-p must be in (0, 1], got ", top_p);
}

int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng) {
  PRORES_CHECK(!logits.empty(), "sample_token: empty logits");
  if (options.temperature == 0)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const int64_t V = static_cast<int64_t>(logits.size());
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  // Most likely first; ties by id, so that the order (and the draw) is the same on every machine.
  const auto more_likely = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const int64_t k = options.top_k > 0 ? std::min(options.top_k, V) : V;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), more_likely);
  order.resize(static_cast<size_t>(k));
  std::vector<double> p(order.size());
  const double top = logits[order[0]];
  double sum = 0;
  for (size_t i = 0; i < order.size(); ++i) sum += p[i] = std::exp((logits[order[i]] - top) / options.temperature);
  size_t kept = order.size();
  if (options.top_p < 1) {  // the smallest prefix whose probability reaches top_p (at least one token)
    double mass = 0;
    for (kept = 0; kept < order.size();) {
      mass += p[kept++] / sum;
      if (mass >= options.top_p) break;
    }
  }
  const double total = std::accumulate(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(kept), 0.0);
  double u = std::uniform_real_distribution<double>(0.0, total)(rng);
  for (size_t i = 0; i + 1 < kept; ++i) {
    if (u < p[i]) return order[i];
    u -= p[i];
  }
  return order[kept - 1];
}

}  // namespace prores::eval
