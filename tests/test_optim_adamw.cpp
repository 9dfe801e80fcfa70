// AdamW against a double-precision reference of torch.optim.AdamW's formula (two segments, weight decay
// on and off), segment validation, config validation, and global-norm gradient clipping.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "test_util.h"

namespace prores {
namespace {

using test::expect_error;

// A host moment tensor (AdamW on the CPU) as a span.
std::span<const float> host(const Tensor& moment) {
  return {moment.as<float>(), static_cast<size_t>(moment.numel())};
}

// torch.optim.AdamW (foreach=False) for one tensor, entirely in double.
struct ReferenceAdamW {
  AdamWConfig config;
  std::vector<double> p, m, v;
  std::vector<bool> decay;
  int64_t t = 0;

  void step(const std::vector<double>& g, double lr) {
    ++t;
    const double bc1 = 1.0 - std::pow(config.beta1, static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(config.beta2, static_cast<double>(t));
    for (size_t i = 0; i < p.size(); ++i) {
      if (decay[i]) p[i] *= 1.0 - lr * config.weight_decay;
      m[i] = config.beta1 * m[i] + (1.0 - config.beta1) * g[i];
      v[i] = config.beta2 * v[i] + (1.0 - config.beta2) * g[i] * g[i];
      const double denom = std::sqrt(v[i]) / std::sqrt(bc2) + config.eps;
      p[i] -= (lr / bc1) * (m[i] / denom);
    }
  }
};

// Runs 5 steps of AdamW and the reference on the same random data; segments: decay on [0, 6000),
// none on [6000, n), passed out of order.
void run_against_reference(double weight_decay) {
  const int64_t n = 10007;
  const int64_t split = 6000;
  AdamWConfig config;
  config.weight_decay = weight_decay;
  AdamW opt(config, n);
  opt.set_segments({{split, n - split, false}, {0, split, true}});

  std::vector<float> params(n);
  test::fill_normal(params, 1);
  ReferenceAdamW ref{config, std::vector<double>(params.begin(), params.end()),
                     std::vector<double>(n, 0.0), std::vector<double>(n, 0.0),
                     std::vector<bool>(n, false)};
  for (int64_t i = 0; i < split; ++i) ref.decay[i] = true;

  for (int s = 0; s < 5; ++s) {
    std::vector<float> grads(n);
    test::fill_normal(grads, 100 + s, 0.1 * (s + 1));
    const double lr = 0.01 * (s + 1);
    opt.step(params.data(), grads.data(), lr);
    ref.step(std::vector<double>(grads.begin(), grads.end()), lr);
    ASSERT_EQ(opt.step_count(), s + 1);
  }
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(params[i], ref.p[i], 1e-6 * (1.0 + std::abs(ref.p[i]))) << "param " << i;
    // Moments may cancel to small values: their fp32 rounding is relative to the gradients' scale.
    ASSERT_NEAR(host(opt.exp_avg())[i], ref.m[i], 1e-6 * std::abs(ref.m[i]) + 1e-8) << "exp_avg " << i;
    ASSERT_NEAR(host(opt.exp_avg_sq())[i], ref.v[i], 1e-6 * std::abs(ref.v[i]) + 1e-10) << "exp_avg_sq " << i;
  }
}

TEST(AdamW, MatchesReferenceWithWeightDecay) { run_against_reference(0.1); }

TEST(AdamW, MatchesReferenceWithoutWeightDecay) { run_against_reference(0.0); }

TEST(AdamW, FirstStepByHand) {
  // t = 1: m/bc1 = g and sqrt(v)/sqrt(bc2) = |g|, so p = p·(1 − lr·wd) − lr·g / (|g| + eps).
  AdamW opt(AdamWConfig{}, 2);
  opt.set_segments({{0, 1, true}, {1, 1, false}});
  std::vector<float> p = {1.0f, 1.0f};
  const std::vector<float> g = {0.5f, -0.25f};
  opt.step(p, g, 0.1);
  EXPECT_FLOAT_EQ(p[0], static_cast<float>(0.99 - 0.1 * 0.5 / (0.5 + 1e-8)));
  EXPECT_FLOAT_EQ(p[1], static_cast<float>(1.0 + 0.1 * 0.25 / (0.25 + 1e-8)));
  EXPECT_FLOAT_EQ(host(opt.exp_avg())[0], 0.05f);
  EXPECT_FLOAT_EQ(host(opt.exp_avg_sq())[1], 0.05f * 0.0625f);
}

TEST(AdamW, ZeroGradientStillDecays) {
  AdamW opt(AdamWConfig{}, 3);
  std::vector<float> p = {2.0f, -4.0f, 0.5f};
  const std::vector<float> g(3, 0.0f);
  opt.step(p, g, 0.5);
  EXPECT_FLOAT_EQ(p[0], 2.0f * 0.95f);
  EXPECT_FLOAT_EQ(p[1], -4.0f * 0.95f);
  EXPECT_FLOAT_EQ(p[2], 0.5f * 0.95f);
}

TEST(AdamW, BitwiseIdenticalForAnyThreadCount) {
  const int64_t n = 50001;
  std::vector<float> p0(n), g(n);
  test::fill_normal(p0, 7);
  test::fill_normal(g, 8);
  std::vector<std::vector<float>> results;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    AdamW opt(AdamWConfig{}, n);
    opt.set_segments({{0, 100, false}, {100, 30000, true}, {30100, n - 30100, false}});
    std::vector<float> p = p0;
    for (int s = 0; s < 3; ++s) opt.step(p.data(), g.data(), 1e-3);
    results.push_back(p);
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(results[0], results[1]);
}

TEST(AdamW, SegmentsAreNormalized) {
  AdamW opt(AdamWConfig{}, 10);
  ASSERT_EQ(opt.segments().size(), 1u);
  opt.set_segments({{4, 2, true}, {0, 4, true}, {6, 0, false}, {6, 4, false}});
  ASSERT_EQ(opt.segments().size(), 2u);
  EXPECT_EQ(opt.segments()[0].offset, 0);
  EXPECT_EQ(opt.segments()[0].count, 6);
  EXPECT_TRUE(opt.segments()[0].decay);
  EXPECT_EQ(opt.segments()[1].offset, 6);
  EXPECT_EQ(opt.segments()[1].count, 4);
  EXPECT_FALSE(opt.segments()[1].decay);
}

TEST(AdamW, InvalidSegmentsThrow) {
  AdamW opt(AdamWConfig{}, 10);
  expect_error([&] { opt.set_segments({{0, 4, true}, {5, 5, false}}); }, {"gap"});
  expect_error([&] { opt.set_segments({{0, 6, true}, {5, 5, false}}); }, {"overlap"});
  expect_error([&] { opt.set_segments({{0, 4, true}, {4, 7, false}}); }, {"past num_params"});
  expect_error([&] { opt.set_segments({{0, 4, true}}); }, {"cover [0, 4)"});
  expect_error([&] { opt.set_segments({{0, -1, true}, {0, 10, true}}); }, {">= 0"});
  expect_error([&] { opt.set_segments({}); }, {"cover [0, 0)"});
}

TEST(AdamW, InvalidConfigThrowsNamingTheOption) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto make = [](double b1, double b2, double eps, double wd) {
    return [=] { AdamW(AdamWConfig{b1, b2, eps, wd}, 1); };
  };
  expect_error(make(1.0, 0.95, 1e-8, 0.1), {"--adam-beta1"});
  expect_error(make(-0.1, 0.95, 1e-8, 0.1), {"--adam-beta1"});
  expect_error(make(nan, 0.95, 1e-8, 0.1), {"--adam-beta1"});
  expect_error(make(0.9, 1.5, 1e-8, 0.1), {"--adam-beta2"});
  expect_error(make(0.9, 0.95, 0.0, 0.1), {"--adam-eps"});
  expect_error(make(0.9, 0.95, INFINITY, 0.1), {"--adam-eps"});
  expect_error(make(0.9, 0.95, 1e-8, -0.1), {"--weight-decay"});
  expect_error(make(0.9, 0.95, 1e-8, nan), {"--weight-decay"});
  EXPECT_NO_THROW(make(0.0, 0.0, 1e-8, 0.0)());
}

TEST(AdamW, InvalidStepArgumentsThrow) {
  AdamW opt(AdamWConfig{}, 4);
  std::vector<float> p(4, 1.0f), g(3, 1.0f);
  expect_error([&] { opt.step(p, g, 1e-3); }, {"grads has 3 elements"});
  g.resize(4);
  expect_error([&] { opt.step(p, g, -1.0); }, {"lr"});
  expect_error([&] { opt.set_step_count(-1); }, {"step count"});
  opt.set_step_count(41);
  opt.step(p, g, 1e-3);
  EXPECT_EQ(opt.step_count(), 42);
}

TEST(GradClip, SumOfSquaresMatchesDoubleAndIsThreadCountInvariant) {
  const int64_t n = 300001;  // several reduction chunks plus a ragged tail
  std::vector<float> g(n);
  test::fill_normal(g, 3);
  double expected = 0.0;
  for (float x : g) expected += static_cast<double>(x) * x;
  std::vector<double> results;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 5}) {
    omp_set_num_threads(threads);
    results.push_back(sum_of_squares(g));
  }
  omp_set_num_threads(saved);
  EXPECT_NEAR(results[0], expected, 1e-10 * expected);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
  EXPECT_DOUBLE_EQ(global_grad_norm(g), std::sqrt(results[0]));
  EXPECT_EQ(global_grad_norm(std::span<const float>()), 0.0);
}

TEST(GradClip, NonFiniteNormIsReturned) {
  std::vector<float> g = {1.0f, std::numeric_limits<float>::infinity(), 2.0f};
  EXPECT_TRUE(std::isinf(global_grad_norm(g)));
  g[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(global_grad_norm(g)));
}

TEST(GradClip, CoefficientFollowsTorch) {
  EXPECT_EQ(clip_coefficient(0.5, 1.0), 1.0);            // below max: no clipping
  EXPECT_EQ(clip_coefficient(0.0, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(clip_coefficient(1.0, 1.0), 1.0 / (1.0 + 1e-6));  // at max, torch still scales
  EXPECT_DOUBLE_EQ(clip_coefficient(4.0, 1.0), 1.0 / (4.0 + 1e-6));
  EXPECT_DOUBLE_EQ(clip_coefficient(10.0, 2.5), 2.5 / (10.0 + 1e-6));
  EXPECT_EQ(clip_coefficient(100.0, 0.0), 1.0);          // max 0 disables clipping
  EXPECT_EQ(clip_coefficient(100.0, -1.0), 1.0);
  EXPECT_EQ(clip_coefficient(INFINITY, 1.0), 0.0);
  EXPECT_TRUE(std::isnan(clip_coefficient(NAN, 1.0)));
  expect_error([] { clip_coefficient(1.0, NAN); }, {"--clip-grad"});
}

// The clip coefficient, applied as the step reads the gradients, gives bitwise the step on gradients
// scaled in place beforehand (what torch's clip_grad_norm_ does), and leaves the gradients as they were.
TEST(GradClip, StepScalesGradientsAsItReadsThem) {
  const int64_t n = 1001;
  std::vector<float> grads(n), params(n);
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t i = 0; i < n; ++i) { grads[i] = dist(rng); params[i] = dist(rng); }
  const double coef = clip_coefficient(global_grad_norm(grads), 1.0);
  ASSERT_LT(coef, 1.0);
  std::vector<float> scaled(grads);
  for (float& g : scaled) g = static_cast<float>(g * coef);
  EXPECT_NEAR(global_grad_norm(scaled), 1.0, 1e-6);
  AdamW fused(AdamWConfig{}, n), separate(AdamWConfig{}, n);
  std::vector<float> p_fused(params), p_separate(params);
  const std::vector<float> grads_before(grads);
  for (int s = 0; s < 3; ++s) {
    fused.step(p_fused, grads, 1e-2, coef);
    separate.step(p_separate, scaled, 1e-2);
  }
  EXPECT_EQ(p_fused, p_separate);
  EXPECT_TRUE(std::ranges::equal(host(fused.exp_avg()), host(separate.exp_avg())));
  EXPECT_TRUE(std::ranges::equal(host(fused.exp_avg_sq()), host(separate.exp_avg_sq())));
  EXPECT_EQ(grads, grads_before);
}

}  // namespace
}  // namespace prores
