// Tests of the ops that store activations in bf16 on the CPU: RMSNorm with a bf16 output, RoPE and SwiGLU on
// bf16 tensors compute in f32 and round once, so on bf16-representable inputs they give the f32 op's results
// rounded to bf16 (within one bf16 unit, for FMA contraction differences); split_heads moves the bits as they
// are; and the dtype errors.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bf16.h"
#include "ops/attention.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"
#include "test_util.h"

namespace prores {
namespace {

using test::expect_bf16_rounding_of;
using test::expect_error;
using test::fill_normal;
using test::host_tensor;
using test::random_buffer;
using test::stored_as;
using test::widened;

// n random N(0, 1) values rounded to bf16, as floats, and the same values as bf16 bits.
struct Bf16Values {
  std::vector<uint16_t> bits;
  std::vector<float> f32;
  Bf16Values(int64_t n, uint64_t seed)
      : bits(stored_as<uint16_t>(random_buffer<float>(n, seed).data)), f32(widened(bits)) {}
};

TEST(RmsNormBf16, OutputIsTheF32ResultRounded) {
  const int64_t N = 37, C = 96;
  std::vector<float> x(N * C), w(C), rstd32(N), rstd16(N), out32(N * C);
  fill_normal(x, 1);
  fill_normal(w, 2);
  std::vector<uint16_t> out16(N * C, 0xFFFF);
  ops::rmsnorm_forward(host_tensor(out32, {N, C}), host_tensor(rstd32, {N}), host_tensor(x, {N, C}),
                       host_tensor(w, {C}), 1e-5, 0.5);
  ops::rmsnorm_forward(host_tensor(out16, {N, C}), host_tensor(rstd16, {N}), host_tensor(x, {N, C}),
                       host_tensor(w, {C}), 1e-5, 0.5);
  EXPECT_EQ(rstd16, rstd32);
  expect_bf16_rounding_of(out16, out32, "rmsnorm out");
}

TEST(SwiGluBf16, ForwardAndBackwardAreTheF32ResultsRounded) {
  const int64_t N = 29, F = 70;
  Bf16Values inp(N * 2 * F, 3), dout(N * F, 4);
  std::vector<float> out32(N * F), dinp32(N * 2 * F);
  std::vector<uint16_t> out16(N * F, 0xFFFF), dinp16(N * 2 * F, 0xFFFF);
  ops::swiglu_forward(host_tensor(out32, {N, F}), host_tensor(inp.f32, {N, 2 * F}));
  ops::swiglu_forward(host_tensor(out16, {N, F}), host_tensor(inp.bits, {N, 2 * F}));
  expect_bf16_rounding_of(out16, out32, "swiglu out");
  ops::swiglu_backward(host_tensor(dinp32, {N, 2 * F}), host_tensor(dout.f32, {N, F}),
                       host_tensor(inp.f32, {N, 2 * F}));
  ops::swiglu_backward(host_tensor(dinp16, {N, 2 * F}), host_tensor(dout.bits, {N, F}),
                       host_tensor(inp.bits, {N, 2 * F}));
  expect_bf16_rounding_of(dinp16, dinp32, "swiglu dinp");
}

TEST(RopeBf16, RotationsAreTheF32ResultsRounded) {
  const int64_t B = 2, H = 3, T = 17, HS = 10, half = HS / 2;
  std::vector<float> cos(T * half), sin(T * half);
  ops::rope_table(host_tensor(cos, {T, half}), host_tensor(sin, {T, half}), 10000.0);
  Bf16Values x(B * H * T * HS, 5);
  for (auto rotate : {&ops::rope_forward, &ops::rope_backward}) {
    std::vector<float> x32 = x.f32;
    std::vector<uint16_t> x16 = x.bits;
    rotate(host_tensor(x32, {B, H, T, HS}), host_tensor(cos, {T, half}), host_tensor(sin, {T, half}));
    rotate(host_tensor(x16, {B, H, T, HS}), host_tensor(cos, {T, half}), host_tensor(sin, {T, half}));
    expect_bf16_rounding_of(x16, x32, "rope");
  }
}

// split_heads moves bf16 elements as they are: the f32 permutation of the same values, bit for bit.
TEST(SplitHeadsBf16, IsTheF32PermutationOfTheBits) {
  const int64_t B = 2, T = 5, NH = 4, KV = 2, HS = 8, W = (NH + 2 * KV) * HS;
  Bf16Values qkv(B * T * W, 6);
  std::vector<float> q32(B * NH * T * HS), k32(B * KV * T * HS), v32(k32.size()), back32(qkv.f32.size());
  std::vector<uint16_t> q16(q32.size()), k16(k32.size()), v16(k32.size()), back16(qkv.bits.size());
  ops::split_heads_forward(host_tensor(q32, {B, NH, T, HS}), host_tensor(k32, {B, KV, T, HS}),
                           host_tensor(v32, {B, KV, T, HS}), host_tensor(qkv.f32, {B, T, W}));
  ops::split_heads_forward(host_tensor(q16, {B, NH, T, HS}), host_tensor(k16, {B, KV, T, HS}),
                           host_tensor(v16, {B, KV, T, HS}), host_tensor(qkv.bits, {B, T, W}));
  EXPECT_EQ(widened(q16), q32);
  EXPECT_EQ(widened(k16), k32);
  EXPECT_EQ(widened(v16), v32);
  ops::split_heads_backward(host_tensor(back16, {B, T, W}), host_tensor(q16, {B, NH, T, HS}),
                            host_tensor(k16, {B, KV, T, HS}), host_tensor(v16, {B, KV, T, HS}));
  EXPECT_EQ(back16, qkv.bits);
}

TEST(Bf16Storage, DtypeErrors) {
  std::vector<double> x64(8), w64(4), r64(2);
  std::vector<uint16_t> out16(8), in16(16);
  std::vector<float> out32(8);
  expect_error([&] {
    ops::rmsnorm_forward(host_tensor(out16, {2, 4}), Tensor(r64.data(), DType::F64, Device::CPU, {2}),
                         Tensor(x64.data(), DType::F64, Device::CPU, {2, 4}),
                         Tensor(w64.data(), DType::F64, Device::CPU, {4}), 1e-5, 1.0);
  }, {"rmsnorm_forward", "bf16", "f64"});
  expect_error([&] { ops::swiglu_forward(host_tensor(out32, {2, 4}), host_tensor(in16, {2, 8})); },
               {"swiglu_forward", "f32", "bf16"});
}

}  // namespace
}  // namespace prores
