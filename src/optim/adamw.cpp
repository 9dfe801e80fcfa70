// AdamW step over flat fp32 buffers (see adamw.h for the exact formula and its torch counterpart).
#include "optim/adamw.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace prores {

namespace {

// Checks that a beta is a finite number in [0, 1).
void check_beta(double beta, const char* option) {
  PRORES_CHECK(std::isfinite(beta) && beta >= 0.0 && beta < 1.0, option, " must be in [0, 1), got ",
               beta);
}

}  // namespace

void validate(const AdamWConfig& config) {
  check_beta(config.beta1, "--adam-beta1");
  check_beta(config.beta2, "--adam-beta2");
  PRORES_CHECK(std::isfinite(config.eps) && config.eps > 0.0,
               "--adam-eps must be a positive finite number, got ", config.eps);
  PRORES_CHECK(std::isfinite(config.weight_decay) && config.weight_decay >= 0.0,
               "--weight-decay must be a finite number >= 0, got ", config.weight_decay);
}

AdamW::AdamW(AdamWConfig config, int64_t num_params) : config_(config), num_params_(num_params) {
  validate(config_);
  PRORES_CHECK(num_params >= 0, "AdamW: num_params must be >= 0, got ", num_params);
  exp_avg_.assign(static_cast<size_t>(num_params), 0.0f);
  exp_avg_sq_.assign(static_cast<size_t>(num_params), 0.0f);
  if (num_params > 0) segments_.push_back({0, num_params, true});
}

void AdamW::set_segments(std::vector<Segment> segments) {
  for (const Segment& s : segments) {
    PRORES_CHECK(s.offset >= 0 && s.count >= 0, "AdamW segment [offset ", s.offset, ", count ",
                 s.count, "]: offset and count must be >= 0");
  }
  std::erase_if(segments, [](const Segment& s) { return s.count == 0; });
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.offset < b.offset; });
  std::vector<Segment> merged;
  int64_t covered = 0;
  for (const Segment& s : segments) {
    PRORES_CHECK(s.offset <= covered, "AdamW segments leave a gap: elements [", covered, ", ",
                 s.offset, ") are not covered");
    PRORES_CHECK(s.offset == covered, "AdamW segments overlap at element ", s.offset,
                 " (already covered up to ", covered, ")");
    PRORES_CHECK(s.count <= num_params_ - s.offset, "AdamW segment [", s.offset, ", ",
                 s.offset + s.count, ") runs past num_params ", num_params_);
    if (!merged.empty() && merged.back().decay == s.decay) {
      merged.back().count += s.count;
    } else {
      merged.push_back(s);
    }
    covered = s.offset + s.count;
  }
  PRORES_CHECK(covered == num_params_, "AdamW segments cover [0, ", covered, ") but num_params is ",
               num_params_);
  segments_ = std::move(merged);
}

void AdamW::set_step_count(int64_t t) {
  PRORES_CHECK(t >= 0, "AdamW step count must be >= 0, got ", t);
  step_count_ = t;
}

void AdamW::step(std::span<float> params, std::span<const float> grads, double lr, double grad_scale) {
  PRORES_CHECK(static_cast<int64_t>(params.size()) == num_params_, "AdamW::step: params has ",
               params.size(), " elements, expected ", num_params_);
  PRORES_CHECK(static_cast<int64_t>(grads.size()) == num_params_, "AdamW::step: grads has ",
               grads.size(), " elements, expected ", num_params_);
  step(params.data(), grads.data(), lr, grad_scale);
}

void AdamW::step(float* params, const float* grads, double lr, double grad_scale) {
  PRORES_CHECK(std::isfinite(lr) && lr >= 0.0, "AdamW::step: lr must be finite and >= 0, got ", lr);
  PRORES_CHECK(num_params_ == 0 || (params != nullptr && grads != nullptr),
               "AdamW::step: null params or grads");
  ++step_count_;
  const double b1 = config_.beta1;
  const double b2 = config_.beta2;
  const double eps = config_.eps;
  const double t = static_cast<double>(step_count_);
  const double step_size = lr / (1.0 - std::pow(b1, t));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
  const double decayed = 1.0 - lr * config_.weight_decay;
  float* m = exp_avg_.data();
  float* v = exp_avg_sq_.data();
  const std::vector<Segment>& segments = segments_;
#pragma omp parallel
  for (const Segment& s : segments) {
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

}  // namespace prores
