// Learning-rate schedules with Megatron-LM semantics (--lr, --min-lr, --lr-warmup-iters,
// --lr-decay-iters, --lr-decay-style, --lr-wsd-decay-iters, --lr-wsd-decay-style): linear warmup, then
// constant, linear, cosine or warmup-stable-decay (WSD).
#pragma once
#include <cstdint>
#include <string>

namespace prores {

struct LrConfig {
  double lr = 0;       // peak learning rate (--lr)
  double min_lr = 0;   // floor reached at decay_iters (--min-lr)
  int64_t warmup_iters = 0;                // --lr-warmup-iters
  std::string decay_style = "cosine";      // constant | linear | cosine | wsd (--lr-decay-style)
  int64_t decay_iters = 0;                 // end of the decay, usually --train-iters (--lr-decay-iters)
  int64_t wsd_decay_iters = 0;             // length of the final WSD decay; 0 means 10% of decay_iters
  std::string wsd_decay_style = "linear";  // linear | cosine (--lr-wsd-decay-style)
};

// lr_at(iter) for iter = number of optimizer steps already taken (the first step uses iter 0):
//   iter < W:           lr · (iter + 1) / W  (W = warmup_iters; Megatron uses iter / W, which makes the
//                       first step a no-op — we shift by one so it is lr / W and step W−1 reaches lr)
//   constant:           lr for every iter >= W
//   linear / cosine:    from lr at iter = W to min_lr at iter = decay_iters, with r = (iter − W) /
//                       (decay_iters − W): linear min + (lr − min)(1 − r), cosine min + (lr − min)·½(1 + cos πr)
//   wsd:                lr until S = decay_iters − wsd_decay_iters, then linear (or cosine) from lr at S
//                       to min_lr at decay_iters, with r = (iter − S) / wsd_decay_iters
//   iter >= decay_iters: min_lr (all styles but constant)
class LrSchedule {
 public:
  // Validates the config; errors name the Megatron option (e.g. "--lr must be a positive finite
  // number, got 0"). decay_iters must be > 0 unless the style is constant. For wsd, a zero
  // wsd_decay_iters resolves to max(1, round(0.1 · decay_iters)), capped at decay_iters − warmup_iters;
  // an explicit one must not exceed decay_iters − warmup_iters.
  explicit LrSchedule(LrConfig config);

  double lr_at(int64_t iter) const;

  // The config with wsd_decay_iters resolved.
  const LrConfig& config() const { return config_; }

 private:
  enum class Style { Constant, Linear, Cosine, Wsd };
  // 1 at ratio 0 down to 0 at ratio 1, linear or half-cosine.
  static double decay_coefficient(double ratio, bool cosine);

  LrConfig config_;
  Style style_;
  bool wsd_cosine_ = false;
};

}  // namespace prores
