// LR schedules: hand-computed values at warmup boundaries, mid-decay, the end and past the end for each
// style, and config validation whose errors name the Megatron option.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "core/check.h"
#include "optim/lr_schedule.h"

namespace prores {
namespace {

constexpr double kTol = 1e-15;

// lr 1e-3, min_lr 1e-4, 10 warmup iterations, decay ending at iteration 110.
LrConfig base(const std::string& style) {
  LrConfig c;
  c.lr = 1e-3;
  c.min_lr = 1e-4;
  c.warmup_iters = 10;
  c.decay_iters = 110;
  c.decay_style = style;
  return c;
}

// Expects constructing a schedule from c to throw prores::Error whose message contains needle.
void expect_invalid(const LrConfig& c, const std::string& needle) {
  try {
    LrSchedule s(c);
    ADD_FAILURE() << "expected prores::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LrSchedule, WarmupStartsAtLrOverWarmupAndReachesLr) {
  for (const char* style : {"constant", "linear", "cosine", "wsd"}) {
    LrSchedule s(base(style));
    EXPECT_NEAR(s.lr_at(0), 1e-4, kTol) << style;
    EXPECT_NEAR(s.lr_at(4), 5e-4, kTol) << style;
    EXPECT_NEAR(s.lr_at(9), 1e-3, kTol) << style;
    EXPECT_NEAR(s.lr_at(10), 1e-3, kTol) << style;
  }
}

TEST(LrSchedule, Constant) {
  LrSchedule s(base("constant"));
  EXPECT_NEAR(s.lr_at(60), 1e-3, kTol);
  EXPECT_NEAR(s.lr_at(110), 1e-3, kTol);
  EXPECT_NEAR(s.lr_at(100000), 1e-3, kTol);
}

TEST(LrSchedule, Linear) {
  LrSchedule s(base("linear"));
  EXPECT_NEAR(s.lr_at(60), 5.5e-4, kTol);    // ratio 1/2
  EXPECT_NEAR(s.lr_at(85), 3.25e-4, kTol);   // ratio 3/4: 1e-4 + 9e-4 / 4
  EXPECT_NEAR(s.lr_at(109), 1.09e-4, kTol);  // ratio 99/100
  EXPECT_NEAR(s.lr_at(110), 1e-4, kTol);
  EXPECT_NEAR(s.lr_at(5000), 1e-4, kTol);
}

TEST(LrSchedule, Cosine) {
  LrSchedule s(base("cosine"));
  EXPECT_NEAR(s.lr_at(35), 8.681980515339464e-4, kTol);   // 1e-4 + 9e-4·½(1 + cos(π/4))
  EXPECT_NEAR(s.lr_at(60), 5.5e-4, kTol);                  // cos(π/2) = 0
  EXPECT_NEAR(s.lr_at(109), 1.0022204783542078e-4, kTol);  // 1e-4 + 9e-4·½(1 + cos(0.99π))
  EXPECT_NEAR(s.lr_at(110), 1e-4, kTol);
  EXPECT_NEAR(s.lr_at(111), 1e-4, kTol);
}

TEST(LrSchedule, NoWarmupStartsAtLr) {
  LrConfig c = base("cosine");
  c.warmup_iters = 0;
  c.decay_iters = 100;
  LrSchedule s(c);
  EXPECT_NEAR(s.lr_at(0), 1e-3, kTol);
  EXPECT_NEAR(s.lr_at(50), 5.5e-4, kTol);
  EXPECT_NEAR(s.lr_at(100), 1e-4, kTol);
}

TEST(LrSchedule, WsdDefaultsToLinearOverLastTenPercent) {
  LrConfig c = base("wsd");
  c.min_lr = 0;
  LrSchedule s(c);
  EXPECT_EQ(s.config().wsd_decay_iters, 11);  // decay starts after iteration 99
  EXPECT_NEAR(s.lr_at(50), 1e-3, kTol);
  EXPECT_NEAR(s.lr_at(99), 1e-3, kTol);
  EXPECT_NEAR(s.lr_at(100), 1e-3 * 10 / 11, kTol);
  EXPECT_NEAR(s.lr_at(105), 1e-3 * 5 / 11, kTol);
  EXPECT_NEAR(s.lr_at(110), 0.0, kTol);
  EXPECT_NEAR(s.lr_at(200), 0.0, kTol);
}

TEST(LrSchedule, WsdExplicitCosineDecay) {
  LrConfig c = base("wsd");
  c.wsd_decay_iters = 20;
  c.wsd_decay_style = "cosine";
  LrSchedule s(c);
  EXPECT_NEAR(s.lr_at(90), 1e-3, kTol);
  EXPECT_NEAR(s.lr_at(95), 8.681980515339464e-4, kTol);  // ratio 1/4
  EXPECT_NEAR(s.lr_at(100), 5.5e-4, kTol);               // ratio 1/2
  EXPECT_NEAR(s.lr_at(110), 1e-4, kTol);
}

TEST(LrSchedule, WsdProResRecipe) {
  // 2000 warmup, 20000 iterations, linear decay to 0 over the last 2000.
  LrConfig c{3e-4, 0.0, 2000, "wsd", 20000};
  LrSchedule s(c);
  EXPECT_EQ(s.config().wsd_decay_iters, 2000);
  EXPECT_NEAR(s.lr_at(0), 1.5e-7, kTol);
  EXPECT_NEAR(s.lr_at(1999), 3e-4, kTol);
  EXPECT_NEAR(s.lr_at(18000), 3e-4, kTol);
  EXPECT_NEAR(s.lr_at(19000), 1.5e-4, kTol);
  EXPECT_NEAR(s.lr_at(20000), 0.0, kTol);
}

TEST(LrSchedule, WsdDefaultLengthRoundingAndCap) {
  LrConfig c{1.0, 0.0, 0, "wsd", 25};
  EXPECT_EQ(LrSchedule(c).config().wsd_decay_iters, 3);  // round(2.5)
  c.decay_iters = 4;
  EXPECT_EQ(LrSchedule(c).config().wsd_decay_iters, 1);  // at least one iteration
  c.warmup_iters = 4;
  LrSchedule all_warmup(c);                               // capped to decay_iters − warmup_iters
  EXPECT_EQ(all_warmup.config().wsd_decay_iters, 0);
  EXPECT_NEAR(all_warmup.lr_at(3), 1.0, kTol);
  EXPECT_NEAR(all_warmup.lr_at(4), 0.0, kTol);
}

TEST(LrSchedule, InvalidConfigsNameTheOption) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double lr : {0.0, -1e-3, nan, inf}) {
    LrConfig c = base("cosine");
    c.lr = lr;
    expect_invalid(c, "--lr must be a positive finite number, got ");
  }
  LrConfig c = base("cosine");
  c.min_lr = -1e-5;
  expect_invalid(c, "--min-lr");
  c.min_lr = 2e-3;
  expect_invalid(c, "--min-lr");
  c = base("cosine");
  c.warmup_iters = 111;
  expect_invalid(c, "--lr-warmup-iters");
  c = base("linear");
  c.warmup_iters = 0;
  c.decay_iters = 0;
  expect_invalid(c, "--lr-decay-iters");
  c = base("step");
  expect_invalid(c, "--lr-decay-style: unknown value 'step' (expected constant, linear, cosine or wsd)");
  c = base("wsd");
  c.wsd_decay_style = "exp";
  expect_invalid(c, "--lr-wsd-decay-style: unknown value 'exp'");
  c = base("wsd");
  c.wsd_decay_iters = 101;
  expect_invalid(c, "--lr-wsd-decay-iters");
  c.wsd_decay_iters = -1;
  expect_invalid(c, "--lr-wsd-decay-iters");
  EXPECT_THROW(LrSchedule(base("cosine")).lr_at(-1), Error);
}

}  // namespace
}  // namespace prores
