// Learning-rate schedules (see lr_schedule.h for the formulas and how they map to Megatron-LM's).
#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

#include "core/check.h"

namespace prores {

LrSchedule::LrSchedule(LrConfig config) : config_(std::move(config)) {
  const LrConfig& c = config_;
  PRORES_CHECK(std::isfinite(c.lr) && c.lr > 0.0, "--lr must be a positive finite number, got ", c.lr);
  PRORES_CHECK(std::isfinite(c.min_lr) && c.min_lr >= 0.0,
               "--min-lr must be a finite number >= 0, got ", c.min_lr);
  PRORES_CHECK(c.min_lr <= c.lr, "--min-lr (", c.min_lr, ") must not exceed --lr (", c.lr, ")");
  PRORES_CHECK(c.warmup_iters >= 0, "--lr-warmup-iters must be >= 0, got ", c.warmup_iters);
  PRORES_CHECK(c.decay_iters >= 0, "--lr-decay-iters must be >= 0, got ", c.decay_iters);
  PRORES_CHECK(c.warmup_iters <= c.decay_iters, "--lr-warmup-iters (", c.warmup_iters,
               ") must not exceed --lr-decay-iters (", c.decay_iters, ")");
  if (c.decay_style == "constant") {
    style_ = Style::Constant;
  } else if (c.decay_style == "linear") {
    style_ = Style::Linear;
  } else if (c.decay_style == "cosine") {
    style_ = Style::Cosine;
  } else if (c.decay_style == "wsd") {
    style_ = Style::Wsd;
  } else {
    PRORES_FAIL("--lr-decay-style: unknown value '", c.decay_style,
                "' (expected constant, linear, cosine or wsd)");
  }
  PRORES_CHECK(style_ == Style::Constant || c.decay_iters > 0,
               "--lr-decay-iters must be > 0 for --lr-decay-style ", c.decay_style);
  if (style_ != Style::Wsd) return;
  PRORES_CHECK(c.wsd_decay_style == "linear" || c.wsd_decay_style == "cosine",
               "--lr-wsd-decay-style: unknown value '", c.wsd_decay_style,
               "' (expected linear or cosine)");
  wsd_cosine_ = c.wsd_decay_style == "cosine";
  PRORES_CHECK(c.wsd_decay_iters >= 0, "--lr-wsd-decay-iters must be >= 0, got ", c.wsd_decay_iters);
  if (config_.wsd_decay_iters == 0) {
    const int64_t tenth = std::llround(0.1 * static_cast<double>(c.decay_iters));
    config_.wsd_decay_iters = std::min(std::max<int64_t>(1, tenth), c.decay_iters - c.warmup_iters);
  }
  PRORES_CHECK(c.wsd_decay_iters <= c.decay_iters - c.warmup_iters, "--lr-wsd-decay-iters (",
               c.wsd_decay_iters, ") must not exceed --lr-decay-iters (", c.decay_iters,
               ") minus --lr-warmup-iters (", c.warmup_iters, ")");
}

double LrSchedule::decay_coefficient(double ratio, bool cosine) {
  return cosine ? 0.5 * (1.0 + std::cos(std::numbers::pi * ratio)) : 1.0 - ratio;
}

double LrSchedule::lr_at(int64_t iter) const {
  const LrConfig& c = config_;
  PRORES_CHECK(iter >= 0, "LrSchedule::lr_at: iteration must be >= 0, got ", iter);
  if (iter < c.warmup_iters) {
    return c.lr * static_cast<double>(iter + 1) / static_cast<double>(c.warmup_iters);
  }
  if (style_ == Style::Constant) return c.lr;
  if (iter >= c.decay_iters) return c.min_lr;
  double coefficient = 1.0;
  if (style_ == Style::Wsd) {
    const int64_t start = c.decay_iters - c.wsd_decay_iters;
    if (iter > start) {
      coefficient = decay_coefficient(
          static_cast<double>(iter - start) / static_cast<double>(c.wsd_decay_iters), wsd_cosine_);
    }
  } else {
    const double ratio = static_cast<double>(iter - c.warmup_iters) /
                         static_cast<double>(c.decay_iters - c.warmup_iters);
    coefficient = decay_coefficient(ratio, style_ == Style::Cosine);
  }
  return c.min_lr + (c.lr - c.min_lr) * coefficient;
}

}  // namespace prores
