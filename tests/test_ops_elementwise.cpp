// Tests for the unsharded cross-entropy and embedding (the test references of tests/unsharded_ops/) and the
// elementwise ops: double-precision finite-difference gradient checks, f32 vs f64 agreement, hand-computed
// values, and errors on bad shapes, dtypes, devices and out-of-range ids. RMSNorm, RoPE and SwiGLU:
// test_ops_rowwise.cpp.
#include <omp.h>

#include <cmath>
#include <limits>
#include <string>

#include "ops/cpu/elementwise.h"
#include "ops/cpu/fast_exp.h"
#include "ops/elementwise.h"
#include "test_util.h"
#include "unsharded_ops/cross_entropy.h"
#include "unsharded_ops/embedding.h"

namespace prores {
namespace {

using test::expect_error;

using test::Buffer;
using test::expect_gradient_matches;
using test::dot;
using test::max_rel_diff;
using test::random_buffer;
using test::to_f32;

// ---------------------------------------------------------------------------------------- Cross-entropy

TEST(CrossEntropy, GradientMatchesFiniteDifferences) {
  const int64_t N = 4, V = 7;
  const double dloss = 0.3;
  auto logits = random_buffer(N * V, 40, 2.0);
  Buffer<int32_t> targets(N);
  targets.data = {3, 0, 6, 3};
  Buffer<double> losses(N), dlogits(N * V);
  auto loss = [&] {
    unsharded::cross_entropy_forward(losses.tensor({N}), logits.tensor({N, V}), targets.tensor({N}));
    double s = 0;
    for (double l : losses.data) s += dloss * l;
    return s;
  };
  unsharded::cross_entropy_backward(dlogits.tensor({N, V}), logits.tensor({N, V}), targets.tensor({N}), dloss);
  expect_gradient_matches(loss, logits.data, dlogits.data, "cross-entropy dlogits");
  // In place (dlogits aliasing logits) gives the same numbers.
  Buffer<double> inplace = logits;
  unsharded::cross_entropy_backward(inplace.tensor({N, V}), inplace.tensor({N, V}), targets.tensor({N}), dloss);
  for (size_t i = 0; i < inplace.data.size(); ++i) EXPECT_NEAR(inplace.data[i], dlogits.data[i], 1e-15);
}

TEST(CrossEntropy, UniformLogitsAndLargeOffsets) {
  const int64_t N = 2, V = 11;
  Buffer<double> logits(N * V), losses(N), dlogits(N * V);
  Buffer<int32_t> targets(N);
  targets.data = {0, 10};
  for (int64_t v = 0; v < V; ++v) {
    logits.data[v] = 0.25;
    logits.data[V + v] = 1000.0;  // would overflow exp without subtracting the row max
  }
  unsharded::cross_entropy_forward(losses.tensor({N}), logits.tensor({N, V}), targets.tensor({N}));
  EXPECT_NEAR(losses.data[0], std::log(11.0), 1e-14);
  EXPECT_NEAR(losses.data[1], std::log(11.0), 1e-12);
  unsharded::cross_entropy_backward(dlogits.tensor({N, V}), logits.tensor({N, V}), targets.tensor({N}), 1.0);
  EXPECT_NEAR(dlogits.data[0], 1.0 / 11 - 1, 1e-15);
  EXPECT_NEAR(dlogits.data[1], 1.0 / 11, 1e-15);
  EXPECT_NEAR(dlogits.data[V + 10], 1.0 / 11 - 1, 1e-15);

  Buffer<float> logits32(N * V), losses32(N);
  for (auto& l : logits32.data) l = 88.0f;
  unsharded::cross_entropy_forward(losses32.tensor({N}), logits32.tensor({N, V}), targets.tensor({N}));
  EXPECT_NEAR(losses32.data[0], std::log(11.0), 1e-6);
}

TEST(CrossEntropy, Float32MatchesFloat64) {
  const int64_t N = 40, V = 1000;
  auto logits = random_buffer(N * V, 41, 3.0);
  Buffer<int32_t> targets(N);
  for (int64_t n = 0; n < N; ++n) targets.data[n] = static_cast<int32_t>((n * 379) % V);
  Buffer<double> losses(N), dlogits(N * V);
  unsharded::cross_entropy_forward(losses.tensor({N}), logits.tensor({N, V}), targets.tensor({N}));
  unsharded::cross_entropy_backward(dlogits.tensor({N, V}), logits.tensor({N, V}), targets.tensor({N}), 0.5);
  auto logits32 = to_f32(logits);
  Buffer<float> losses32(N), dlogits32(N * V);
  unsharded::cross_entropy_forward(losses32.tensor({N}), logits32.tensor({N, V}), targets.tensor({N}));
  unsharded::cross_entropy_backward(dlogits32.tensor({N, V}), logits32.tensor({N, V}), targets.tensor({N}), 0.5);
  EXPECT_LT(max_rel_diff(losses32.data, losses.data), 1e-6);
  EXPECT_LT(max_rel_diff(dlogits32.data, dlogits.data), 1e-6);
}

TEST(CrossEntropy, BadArgumentsThrow) {
  Buffer<double> logits(12), losses(3), dlogits(12);
  Buffer<int32_t> targets(3);
  targets.data = {0, 2, 3};
  expect_error(
      [&] {
        unsharded::cross_entropy_forward(losses.tensor({3}), logits.tensor({4, 3}), targets.tensor({3}));
      },
      {"cross_entropy_forward", "(4, 3)"});
  expect_error(
      [&] {
        unsharded::cross_entropy_backward(dlogits.tensor({4, 3}), logits.tensor({3, 4}), targets.tensor({3}), 1.0);
      },
      {"cross_entropy_backward", "(4, 3)", "(3, 4)"});
  Tensor as_f32 = targets.tensor({3});
  as_f32.dtype = DType::F32;
  expect_error(
      [&] {
        unsharded::cross_entropy_forward(losses.tensor({3}), logits.tensor({3, 4}), as_f32);
      },
      {"i32"});

  // Out-of-range targets throw naming the id and V, and nothing is written.
  for (int32_t bad : {4, -1}) {
    targets.data = {0, bad, 3};
    const std::string id = std::to_string(bad);
    losses.data.assign(3, 7.0);
    dlogits.data.assign(12, 7.0);
    expect_error(
        [&] {
          unsharded::cross_entropy_forward(losses.tensor({3}), logits.tensor({3, 4}), targets.tensor({3}));
        },
        {id.c_str(), "V = 4"});
    expect_error(
        [&] {
          unsharded::cross_entropy_backward(dlogits.tensor({3, 4}), logits.tensor({3, 4}), targets.tensor({3}),
                                            1.0);
        },
        {id.c_str(), "V = 4"});
    for (double l : losses.data) EXPECT_EQ(l, 7.0);
    for (double d : dlogits.data) EXPECT_EQ(d, 7.0);
  }
}

// -------------------------------------------------------------------------------------------- Embedding

TEST(Embedding, ForwardGathersRows) {
  const int64_t V = 5, C = 3, N = 4;
  auto wte = random_buffer(V * C, 50);
  Buffer<int32_t> tokens(N);
  tokens.data = {4, 0, 4, 2};
  Buffer<double> out(N * C);
  unsharded::embedding_forward(out.tensor({N, C}), tokens.tensor({N}), wte.tensor({V, C}));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(out.data[n * C + c], wte.data[tokens.data[n] * C + c]);
  }
  auto wte32 = to_f32(wte);
  Buffer<float> out32(N * C);
  unsharded::embedding_forward(out32.tensor({N, C}), tokens.tensor({N}), wte32.tensor({V, C}));
  EXPECT_LT(max_rel_diff(out32.data, out.data), 1e-7);
}

TEST(Embedding, GradientMatchesFiniteDifferencesWithRepeatedIds) {
  const int64_t V = 6, C = 40, N = 7;
  auto wte = random_buffer(V * C, 51);
  auto r = random_buffer(N * C, 52);
  Buffer<int32_t> tokens(N);
  tokens.data = {3, 1, 3, 0, 3, 5, 1};  // id 2 and 4 unused: their gradient stays at the prior value
  Buffer<double> out(N * C);
  auto loss = [&] {
    unsharded::embedding_forward(out.tensor({N, C}), tokens.tensor({N}), wte.tensor({V, C}));
    return dot(out.data, r.data);
  };
  auto dwte = random_buffer(V * C, 53);
  const auto prior = dwte.data;
  unsharded::embedding_backward(dwte.tensor({V, C}), r.tensor({N, C}), tokens.tensor({N}));
  for (size_t i = 0; i < dwte.data.size(); ++i) dwte.data[i] -= prior[i];
  expect_gradient_matches(loss, wte.data, dwte.data, "embedding dwte");

  auto r32 = to_f32(r);
  Buffer<float> dwte32(V * C);
  unsharded::embedding_backward(dwte32.tensor({V, C}), r32.tensor({N, C}), tokens.tensor({N}));
  EXPECT_LT(max_rel_diff(dwte32.data, dwte.data), 1e-6);
}

TEST(Embedding, ThreadedBackwardMatchesSerialReference) {
  const int64_t V = 50, C = 200, N = 300;
  auto dout = random_buffer(N * C, 54);
  Buffer<int32_t> tokens(N);
  for (int64_t n = 0; n < N; ++n) tokens.data[n] = static_cast<int32_t>((n * n + 7 * n) % V);
  auto dwte = random_buffer(V * C, 55);
  auto expected = dwte;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) expected.data[tokens.data[n] * C + c] += dout.data[n * C + c];
  }
  unsharded::embedding_backward(dwte.tensor({V, C}), dout.tensor({N, C}), tokens.tensor({N}));
  EXPECT_EQ(dwte.data, expected.data);  // same per-element summation order as the serial loop
}

TEST(Embedding, BadArgumentsThrow) {
  Buffer<double> wte(15), out(12), dwte(15);
  Buffer<int32_t> tokens(4);
  tokens.data = {0, 1, 2, 3};
  expect_error(
      [&] {
        unsharded::embedding_forward(out.tensor({4, 3}), tokens.tensor({4}), wte.tensor({3, 5}));
      },
      {"embedding_forward", "(4, 3)", "(3, 5)"});
  expect_error(
      [&] {
        unsharded::embedding_backward(dwte.tensor({5, 3}), out.tensor({3, 4}), tokens.tensor({4}));
      },
      {"embedding_backward"});
  Tensor f32_tokens = tokens.tensor({4});
  f32_tokens.dtype = DType::F32;
  expect_error([&] { unsharded::embedding_forward(out.tensor({4, 3}), f32_tokens, wte.tensor({5, 3})); }, {"i32"});

  for (int32_t bad : {5, -3}) {
    tokens.data = {0, 1, bad, 3};
    const std::string id = std::to_string(bad);
    out.data.assign(12, 7.0);
    dwte.data.assign(15, 7.0);
    expect_error(
        [&] {
          unsharded::embedding_forward(out.tensor({4, 3}), tokens.tensor({4}), wte.tensor({5, 3}));
        },
        {id.c_str(), "V = 5"});
    expect_error(
        [&] {
          unsharded::embedding_backward(dwte.tensor({5, 3}), out.tensor({4, 3}), tokens.tensor({4}));
        },
        {id.c_str(), "V = 5"});
    for (double o : out.data) EXPECT_EQ(o, 7.0);
    for (double d : dwte.data) EXPECT_EQ(d, 7.0);
  }
}

// ------------------------------------------------------------------------------------------ Elementwise

TEST(Elementwise, AxpbyAndAccumulate) {
  const int64_t n = 10;
  auto x = random_buffer(n, 60), y = random_buffer(n, 61), r = random_buffer(n, 62);
  Buffer<double> out(n);
  ops::axpby(out.tensor({2, 5}), 2.0, x.tensor({n}), -0.5, y.tensor({n}));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(out.data[i], 2.0 * x.data[i] - 0.5 * y.data[i], 1e-15);

  // d/dx sum(axpby(x, y) * r) = a * r, d/dy = b * r.
  auto loss = [&] {
    ops::axpby(out.tensor({n}), 1.5, x.tensor({n}), 0.25, y.tensor({n}));
    return dot(out.data, r.data);
  };
  Buffer<double> dx(n), dy(n);
  ops::accumulate(dx.tensor({n}), 1.5, r.tensor({n}));
  ops::accumulate(dy.tensor({n}), 0.25, r.tensor({n}));
  expect_gradient_matches(loss, x.data, dx.data, "axpby dx");
  expect_gradient_matches(loss, y.data, dy.data, "axpby dy");

  // out aliasing x (the residual add h = x + alpha * F) and accumulate's (+=).
  Buffer<double> h = x;
  ops::axpby(h.tensor({n}), 1.0, h.tensor({n}), 0.3, y.tensor({n}));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(h.data[i], x.data[i] + 0.3 * y.data[i], 1e-15);
  ops::accumulate(h.tensor({n}), -0.3, y.tensor({n}));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(h.data[i], x.data[i], 1e-15);

  // Large enough to run threaded; f32 agrees with f64.
  const int64_t big = 100003;
  auto bx = random_buffer(big, 63), by = random_buffer(big, 64);
  Buffer<double> bout(big);
  ops::axpby(bout.tensor({big}), 0.9, bx.tensor({big}), 1.1, by.tensor({big}));
  auto bx32 = to_f32(bx), by32 = to_f32(by);
  Buffer<float> bout32(big);
  ops::axpby(bout32.tensor({big}), 0.9, bx32.tensor({big}), 1.1, by32.tensor({big}));
  EXPECT_LT(max_rel_diff(bout32.data, bout.data), 1e-6);
}

TEST(Elementwise, ZeroAndCopyAnyDtype) {
  Buffer<int32_t> a(5), b(5);
  a.data = {1, -2, 3, -4, 5};
  ops::copy(b.tensor({5}), a.tensor({5}));
  EXPECT_EQ(b.data, a.data);
  ops::zero(a.tensor({5}));
  for (int32_t v : a.data) EXPECT_EQ(v, 0);
  const int64_t big = (1 << 19) + 7;  // over 1 MiB of f32: the threaded path
  Buffer<float> src(big), dst(big);
  for (int64_t i = 0; i < big; ++i) src.data[i] = static_cast<float>(i);
  ops::copy(dst.tensor({big}), src.tensor({big}));
  EXPECT_EQ(dst.data, src.data);
  ops::zero(dst.tensor({big}));
  for (float v : dst.data) ASSERT_EQ(v, 0.0f);
  expect_error([&] { ops::copy(dst.tensor({big}), b.tensor({5})); }, {"copy"});
  expect_error([&] { ops::zero(Tensor()); }, {"zero"});
}

TEST(Elementwise, SumsAreDeterministicAndAccurate) {
  const int64_t n = (1 << 20) + 123;
  auto x = random_buffer(n, 70, 1.0, 0.5);
  auto x32 = to_f32(x);
  double ref_sum = 0, ref_sq = 0;
  for (float v : x32.data) {
    ref_sum += v;
    ref_sq += static_cast<double>(v) * v;
  }
  const double s = ops::sum(x32.tensor({n}));
  const double sq = ops::sum_squares(x32.tensor({n}));
  EXPECT_NEAR(s, ref_sum, 1e-9 * std::abs(ref_sum));
  EXPECT_NEAR(sq, ref_sq, 1e-12 * ref_sq);
  const int threads = omp_get_max_threads();
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    EXPECT_EQ(ops::sum(x32.tensor({n})), s) << t << " threads";
    EXPECT_EQ(ops::sum_squares(x32.tensor({n})), sq) << t << " threads";
  }
  omp_set_num_threads(threads);
  double ref_sum64 = 0;
  for (double v : x.data) ref_sum64 += v;
  EXPECT_NEAR(ops::sum(x.tensor({n})), ref_sum64, 1e-9 * std::abs(ref_sum64));
  Buffer<double> small(3);
  small.data = {1.0, -2.0, 3.0};
  EXPECT_EQ(ops::sum(small.tensor({3})), 2.0);
  EXPECT_EQ(ops::sum_squares(small.tensor({3})), 14.0);
}

TEST(Elementwise, VectorizedExpIsAccurate) {
  double worst = 0;
  for (float x = -87.0f; x < 88.5f; x += 0.0137f) {
    const double ref = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(ops::cpu::exp_vec(x) - ref) / ref);
  }
  EXPECT_LT(worst, 1.2e-7);  // within 1 ulp of float
  EXPECT_EQ(ops::cpu::exp_vec(0.0f), 1.0f);
  EXPECT_EQ(ops::cpu::exp_vec(-100.0f), 0.0f);
  EXPECT_EQ(ops::cpu::exp_vec(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(ops::cpu::exp_vec(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(ops::cpu::exp_vec(-1.5), std::exp(-1.5));
}

TEST(Elementwise, BadArgumentsThrow) {
  Buffer<double> a(6), b(5);
  Buffer<float> c(6);
  Buffer<int32_t> ids(6);
  expect_error([&] { ops::axpby(a.tensor({6}), 1, a.tensor({6}), 1, b.tensor({5})); }, {"axpby", "(5)"});
  expect_error([&] { ops::axpby(a.tensor({6}), 1, a.tensor({6}), 1, c.tensor({6})); }, {"f32"});
  expect_error([&] { ops::axpby(ids.tensor({6}), 1, ids.tensor({6}), 1, ids.tensor({6})); }, {"i32"});
  expect_error([&] { ops::accumulate(a.tensor({6}), 1, b.tensor({5})); }, {"accumulate"});
  expect_error([&] { ops::sum_squares(ids.tensor({6})); }, {"sum_squares", "i32"});
  Tensor gpu = a.tensor({6});
  gpu.device = Device::CUDA;
  expect_error([&] { ops::sum(gpu); }, {"CUDA"});
  expect_error([&] { ops::accumulate(a.tensor({6}), 1, gpu); }, {"device"});
}

}  // namespace
}  // namespace prores
