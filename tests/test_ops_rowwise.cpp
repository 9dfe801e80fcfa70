// Tests for the row-wise ops RMSNorm, RoPE and SwiGLU: double-precision finite-difference gradient checks,
// f32 vs f64 agreement, RMSNorm's residual-gradient form, hand-computed values, and errors on bad shapes,
// dtypes and devices.
#include <cmath>
#include <limits>
#include <string>

#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"
#include "test_util.h"

namespace prores {
namespace {

using test::Buffer;
using test::dot;
using test::expect_error;
using test::expect_gradient_matches;
using test::max_rel_diff;
using test::random_buffer;
using test::to_f32;

// ---------------------------------------------------------------------------------------------- RMSNorm

TEST(RmsNorm, GradientMatchesFiniteDifferences) {
  const int64_t N = 3, C = 8;
  const double eps = 1e-5, scale = 0.7;
  auto inp = random_buffer(N * C, 1);
  auto weight = random_buffer(C, 2, 0.3, 1.0);
  auto r = random_buffer(N * C, 3);
  Buffer<double> out(N * C), rstd(N);
  auto loss = [&] {
    ops::rmsnorm_forward(out.tensor({N, C}), rstd.tensor({N}), inp.tensor({N, C}), weight.tensor({C}), eps,
                         scale);
    return dot(out.data, r.data);
  };
  loss();
  // Prior contents check the (+=) semantics of both gradients.
  auto dinp = random_buffer(N * C, 4);
  auto dweight = random_buffer(C, 5);
  const auto dinp0 = dinp.data, dweight0 = dweight.data;
  ops::rmsnorm_backward(dinp.tensor({N, C}), dweight.tensor({C}), r.tensor({N, C}), inp.tensor({N, C}),
                        weight.tensor({C}), rstd.tensor({N}), scale);
  for (size_t i = 0; i < dinp.data.size(); ++i) dinp.data[i] -= dinp0[i];
  for (size_t i = 0; i < dweight.data.size(); ++i) dweight.data[i] -= dweight0[i];
  expect_gradient_matches(loss, inp.data, dinp.data, "rmsnorm dinp");
  expect_gradient_matches(loss, weight.data, dweight.data, "rmsnorm dweight");
}

TEST(RmsNorm, ConstantRowInPlace) {
  const int64_t C = 6;
  const double a = -1.5, eps = 1e-5, scale = 0.5;
  Buffer<double> x(2 * C), rstd(2), w(C);
  for (int64_t c = 0; c < C; ++c) {
    x.data[c] = a;
    x.data[C + c] = 0;
    w.data[c] = 1.0 + 0.1 * static_cast<double>(c);
  }
  ops::rmsnorm_forward(x.tensor({2, C}), rstd.tensor({2}), x.tensor({2, C}), w.tensor({C}), eps, scale);
  const double r = 1 / std::sqrt(a * a + eps);
  EXPECT_NEAR(rstd.data[0], r, 1e-12);
  EXPECT_NEAR(rstd.data[1], 1 / std::sqrt(eps), 1e-6);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_NEAR(x.data[c], scale * w.data[c] * a * r, 1e-12);
    EXPECT_EQ(x.data[C + c], 0.0);
  }
}

TEST(RmsNorm, Float32MatchesFloat64) {
  const int64_t N = 67, C = 600;  // large enough for the kernels to run threaded, as in the other f32 tests
  auto inp = random_buffer(N * C, 10, 2.0);
  auto w = random_buffer(C, 11, 0.2, 1.0);
  auto dout = random_buffer(N * C, 12);
  Buffer<double> out(N * C), rstd(N), dinp(N * C), dw(C);
  ops::rmsnorm_forward(out.tensor({N, C}), rstd.tensor({N}), inp.tensor({N, C}), w.tensor({C}), 1e-5, 0.7);
  ops::rmsnorm_backward(dinp.tensor({N, C}), dw.tensor({C}), dout.tensor({N, C}), inp.tensor({N, C}),
                        w.tensor({C}), rstd.tensor({N}), 0.7);
  auto inp32 = to_f32(inp), w32 = to_f32(w), dout32 = to_f32(dout);
  Buffer<float> out32(N * C), rstd32(N), dinp32(N * C), dw32(C);
  ops::rmsnorm_forward(out32.tensor({N, C}), rstd32.tensor({N}), inp32.tensor({N, C}), w32.tensor({C}), 1e-5,
                       0.7);
  ops::rmsnorm_backward(dinp32.tensor({N, C}), dw32.tensor({C}), dout32.tensor({N, C}), inp32.tensor({N, C}),
                        w32.tensor({C}), rstd32.tensor({N}), 0.7);
  EXPECT_LT(max_rel_diff(out32.data, out.data), 1e-6);
  EXPECT_LT(max_rel_diff(rstd32.data, rstd.data), 1e-6);
  EXPECT_LT(max_rel_diff(dinp32.data, dinp.data), 1e-5);
  EXPECT_LT(max_rel_diff(dw32.data, dw.data), 1e-5);
  // The dweight reduction over rows is deterministic.
  Buffer<float> dinp32b(N * C), dw32b(C);
  ops::rmsnorm_backward(dinp32b.tensor({N, C}), dw32b.tensor({C}), dout32.tensor({N, C}),
                        inp32.tensor({N, C}), w32.tensor({C}), rstd32.tensor({N}), 0.7);
  EXPECT_EQ(dw32b.data, dw32.data);
  EXPECT_EQ(dinp32b.data, dinp32.data);
}

// InputGrad::Overwrite: dinp (=) the input gradient, or with dres (=) dres + it: bitwise what accumulating
// onto zeros or onto a copy of dres gives, whatever dinp held (NaN here); dres of another shape, or without
// Overwrite, is refused.
TEST(RmsNorm, OverwriteAndResidualGradient) {
  const int64_t N = 67, C = 600;
  auto inp = to_f32(random_buffer(N * C, 20, 2.0)), w = to_f32(random_buffer(C, 21, 0.2, 1.0));
  auto dout = to_f32(random_buffer(N * C, 22)), dres = to_f32(random_buffer(N * C, 23));
  Buffer<float> out(N * C), rstd(N), dw_add(C), dw_res(C), dinp_res(N * C);
  ops::rmsnorm_forward(out.tensor({N, C}), rstd.tensor({N}), inp.tensor({N, C}), w.tensor({C}), 1e-5, 0.7);
  Buffer<float> dinp_add = dres;
  ops::rmsnorm_backward(dinp_add.tensor({N, C}), dw_add.tensor({C}), dout.tensor({N, C}), inp.tensor({N, C}),
                        w.tensor({C}), rstd.tensor({N}), 0.7);
  dinp_res.data.assign(N * C, std::numeric_limits<float>::quiet_NaN());
  ops::rmsnorm_backward(dinp_res.tensor({N, C}), dw_res.tensor({C}), dout.tensor({N, C}), inp.tensor({N, C}),
                        w.tensor({C}), rstd.tensor({N}), 0.7, ops::InputGrad::Overwrite, dres.tensor({N, C}));
  EXPECT_EQ(dinp_res.data, dinp_add.data);
  EXPECT_EQ(dw_res.data, dw_add.data);

  Buffer<float> dinp_zeros(N * C), dinp_set(N * C), dw_zeros(C), dw_set(C);
  ops::rmsnorm_backward(dinp_zeros.tensor({N, C}), dw_zeros.tensor({C}), dout.tensor({N, C}), inp.tensor({N, C}),
                        w.tensor({C}), rstd.tensor({N}), 0.7);
  dinp_set.data.assign(N * C, std::numeric_limits<float>::quiet_NaN());
  ops::rmsnorm_backward(dinp_set.tensor({N, C}), dw_set.tensor({C}), dout.tensor({N, C}), inp.tensor({N, C}),
                        w.tensor({C}), rstd.tensor({N}), 0.7, ops::InputGrad::Overwrite);
  EXPECT_EQ(dinp_set.data, dinp_zeros.data);
  EXPECT_EQ(dw_set.data, dw_zeros.data);

  auto backward_with = [&](ops::InputGrad write, const Tensor& d) {
    ops::rmsnorm_backward(dinp_res.tensor({N, C}), dw_res.tensor({C}), dout.tensor({N, C}), inp.tensor({N, C}),
                          w.tensor({C}), rstd.tensor({N}), 0.7, write, d);
  };
  expect_error([&] { backward_with(ops::InputGrad::Overwrite, dres.tensor({C, N})); }, {"rmsnorm_backward", "dres"});
  expect_error([&] { backward_with(ops::InputGrad::Accumulate, dres.tensor({N, C})); },
               {"rmsnorm_backward", "dres", "Overwrite"});
}

TEST(RmsNorm, BadArgumentsThrow) {
  Buffer<double> x(12), out(12), rstd(3), w(4), w5(5);
  Buffer<float> wf(4);
  expect_error(
      [&] {
        ops::rmsnorm_forward(out.tensor({3, 4}), rstd.tensor({3}), x.tensor({3, 4}), w5.tensor({5}), 1e-5, 1);
      },
      {"rmsnorm_forward", "(3, 4)", "(5)"});
  expect_error(
      [&] {
        ops::rmsnorm_forward(out.tensor({4, 3}), rstd.tensor({3}), x.tensor({3, 4}), w.tensor({4}), 1e-5, 1);
      },
      {"rmsnorm_forward"});
  expect_error(
      [&] {
        ops::rmsnorm_forward(out.tensor({3, 4}), rstd.tensor({3}), x.tensor({3, 4}), wf.tensor({4}), 1e-5, 1);
      },
      {"f32", "f64"});
  expect_error(
      [&] {
        ops::rmsnorm_backward(out.tensor({3, 4}), w.tensor({4}), x.tensor({12}), x.tensor({3, 4}),
                              w.tensor({4}), rstd.tensor({3}), 1);
      },
      {"rmsnorm_backward"});
  Tensor gpu = x.tensor({3, 4});
  gpu.device = Device::CUDA;
  Tensor gpu_out = out.tensor({3, 4}), gpu_rstd = rstd.tensor({3}), gpu_w = w.tensor({4});
  gpu_out.device = gpu_rstd.device = gpu_w.device = Device::CUDA;
  expect_error([&] { ops::rmsnorm_forward(gpu_out, rstd.tensor({3}), gpu, gpu_w, 1e-5, 1); }, {"device"});
  expect_error([&] { ops::rmsnorm_forward(gpu_out, gpu_rstd, gpu, gpu_w, 1e-5, 1); }, {"CUDA"});
}

// ------------------------------------------------------------------------------------------------- RoPE

TEST(Rope, TableValuesAndIdentityAtPositionZero) {
  const int64_t T = 5, HS = 8;
  const double base = 100;
  Buffer<double> cos(T * HS / 2), sin(T * HS / 2);
  ops::rope_table(cos.tensor({T, HS / 2}), sin.tensor({T, HS / 2}), base);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < HS / 2; ++i) {
      const double angle = static_cast<double>(t) * std::pow(base, -2.0 * static_cast<double>(i) / HS);
      EXPECT_NEAR(cos.data[t * HS / 2 + i], std::cos(angle), 1e-15);
      EXPECT_NEAR(sin.data[t * HS / 2 + i], std::sin(angle), 1e-15);
    }
  }
  EXPECT_NEAR(sin.data[2 * HS / 2 + 1], std::sin(2 / std::sqrt(10.0)),
              1e-15);  // t = 2, i = 1: 2 * 100^(-1/4)

  // (B, H, T, HS) = (1, 1, T, HS): position 0 is untouched, position 1 rotates pair (0, 4) by 1 radian.
  auto x = random_buffer(T * HS, 20);
  const auto x0 = x.data;
  ops::rope_forward(x.tensor({1, 1, T, HS}), cos.tensor({T, HS / 2}), sin.tensor({T, HS / 2}));
  for (int64_t j = 0; j < HS; ++j) EXPECT_EQ(x.data[j], x0[j]);
  EXPECT_NEAR(x.data[HS + 0], x0[HS + 0] * std::cos(1.0) - x0[HS + 4] * std::sin(1.0), 1e-14);
  EXPECT_NEAR(x.data[HS + 4], x0[HS + 4] * std::cos(1.0) + x0[HS + 0] * std::sin(1.0), 1e-14);
  // The backward of a rotation is its inverse.
  ops::rope_backward(x.tensor({1, 1, T, HS}), cos.tensor({T, HS / 2}), sin.tensor({T, HS / 2}));
  for (int64_t j = 0; j < T * HS; ++j) EXPECT_NEAR(x.data[j], x0[j], 1e-14);
}

TEST(Rope, GradientMatchesFiniteDifferences) {
  const int64_t B = 2, H = 2, T = 5, HS = 8;
  Buffer<double> cos(T * HS / 2), sin(T * HS / 2);
  ops::rope_table(cos.tensor({T, HS / 2}), sin.tensor({T, HS / 2}), 50.0);
  auto x = random_buffer(B * H * T * HS, 21);
  auto r = random_buffer(B * H * T * HS, 22);
  Buffer<double> y(B * H * T * HS);
  auto loss = [&] {
    y.data = x.data;
    ops::rope_forward(y.tensor({B, H, T, HS}), cos.tensor({T, HS / 2}), sin.tensor({T, HS / 2}));
    return dot(y.data, r.data);
  };
  Buffer<double> dx = r;
  ops::rope_backward(dx.tensor({B, H, T, HS}), cos.tensor({T, HS / 2}), sin.tensor({T, HS / 2}));
  expect_gradient_matches(loss, x.data, dx.data, "rope dx");
}

TEST(Rope, Float32MatchesFloat64) {
  const int64_t B = 2, H = 8, T = 128, HS = 16;
  Buffer<double> cos(T * HS / 2), sin(T * HS / 2);
  Buffer<float> cos32(T * HS / 2), sin32(T * HS / 2);
  ops::rope_table(cos.tensor({T, HS / 2}), sin.tensor({T, HS / 2}), 10000.0);
  ops::rope_table(cos32.tensor({T, HS / 2}), sin32.tensor({T, HS / 2}), 10000.0);
  auto x = random_buffer(B * H * T * HS, 23);
  auto x32 = to_f32(x);
  ops::rope_forward(x.tensor({B, H, T, HS}), cos.tensor({T, HS / 2}), sin.tensor({T, HS / 2}));
  ops::rope_forward(x32.tensor({B, H, T, HS}), cos32.tensor({T, HS / 2}), sin32.tensor({T, HS / 2}));
  EXPECT_LT(max_rel_diff(x32.data, x.data), 1e-6);
}

TEST(Rope, BadArgumentsThrow) {
  Buffer<double> cos(20), sin(20), x(2 * 5 * 8), odd(20);
  Buffer<float> sin32(20);
  expect_error(
      [&] {
        ops::rope_forward(x.tensor({2, 1, 5, 8}), cos.tensor({4, 5}), sin.tensor({4, 5}));
      },
      {"rope_forward", "(2, 1, 5, 8)", "(4, 5)"});
  expect_error(
      [&] {
        ops::rope_backward(x.tensor({10, 8}), cos.tensor({5, 4}), sin.tensor({5, 4}));
      },
      {"rope_backward"});
  expect_error(
      [&] {
        ops::rope_forward(x.tensor({2, 1, 5, 8}), cos.tensor({5, 4}), sin32.tensor({5, 4}));
      },
      {"f32"});
  expect_error([&] { ops::rope_table(cos.tensor({5, 4}), odd.tensor({4, 5}), 100.0); }, {"rope_table"});
  expect_error([&] { ops::rope_table(cos.tensor({5, 4}), sin.tensor({5, 4}), -1.0); }, {"base"});
}

// ----------------------------------------------------------------------------------------------- SwiGLU

TEST(SwiGlu, HandValues) {
  Buffer<double> inp(4), out(2);
  inp.data = {0.0, 1.0, 3.0, 2.0};  // gate (0, 1), up (3, 2)
  ops::swiglu_forward(out.tensor({1, 2}), inp.tensor({1, 4}));
  EXPECT_EQ(out.data[0], 0.0);
  EXPECT_NEAR(out.data[1], 2.0 / (1 + std::exp(-1.0)), 1e-15);
  Buffer<double> dout(2), dinp(4);
  dout.data = {1.0, 1.0};
  ops::swiglu_backward(dinp.tensor({1, 4}), dout.tensor({1, 2}), inp.tensor({1, 4}));
  EXPECT_NEAR(dinp.data[0], 1.5, 1e-15);  // silu'(0) = 1/2, times up = 3
  EXPECT_EQ(dinp.data[2], 0.0);           // silu(0)
}

TEST(SwiGlu, GradientMatchesFiniteDifferences) {
  const int64_t N = 3, F = 5;
  auto inp = random_buffer(N * 2 * F, 30, 2.0);
  auto r = random_buffer(N * F, 31);
  Buffer<double> out(N * F), dinp(N * 2 * F);
  auto loss = [&] {
    ops::swiglu_forward(out.tensor({N, F}), inp.tensor({N, 2 * F}));
    return dot(out.data, r.data);
  };
  ops::swiglu_backward(dinp.tensor({N, 2 * F}), r.tensor({N, F}), inp.tensor({N, 2 * F}));
  expect_gradient_matches(loss, inp.data, dinp.data, "swiglu dinp");
}

TEST(SwiGlu, Float32MatchesFloat64) {
  const int64_t N = 17, F = 2000;
  auto inp = random_buffer(N * 2 * F, 32, 3.0);
  auto dout = random_buffer(N * F, 33);
  Buffer<double> out(N * F), dinp(N * 2 * F);
  ops::swiglu_forward(out.tensor({N, F}), inp.tensor({N, 2 * F}));
  ops::swiglu_backward(dinp.tensor({N, 2 * F}), dout.tensor({N, F}), inp.tensor({N, 2 * F}));
  auto inp32 = to_f32(inp), dout32 = to_f32(dout);
  Buffer<float> out32(N * F), dinp32(N * 2 * F);
  ops::swiglu_forward(out32.tensor({N, F}), inp32.tensor({N, 2 * F}));
  ops::swiglu_backward(dinp32.tensor({N, 2 * F}), dout32.tensor({N, F}), inp32.tensor({N, 2 * F}));
  EXPECT_LT(max_rel_diff(out32.data, out.data), 1e-6);
  EXPECT_LT(max_rel_diff(dinp32.data, dinp.data), 1e-6);
}

TEST(SwiGlu, BadArgumentsThrow) {
  Buffer<double> inp(12), out(6);
  Buffer<float> out32(6);
  expect_error(
      [&] {
        ops::swiglu_forward(out.tensor({2, 3}), inp.tensor({3, 4}));
      },
      {"swiglu_forward", "(2, 3)", "(3, 4)"});
  expect_error([&] { ops::swiglu_forward(out32.tensor({2, 3}), inp.tensor({2, 6})); }, {"f32", "f64"});
  expect_error(
      [&] {
        ops::swiglu_backward(inp.tensor({2, 6}), out.tensor({3, 2}), inp.tensor({2, 6}));
      },
      {"swiglu_backward"});
}

}  // namespace
}  // namespace prores
