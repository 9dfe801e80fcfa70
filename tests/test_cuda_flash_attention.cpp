// CUDA flash attention (ops/cuda/flash_attention.h) against the double-precision CPU reference of causal
// grouped-query attention (attention_reference.h) on the same random f32 inputs: out, lse, dq, dk
// and dv within bf16-operand accuracy (relative Frobenius error below 2e-2, lse within 2e-2), at partial
// tiles, grouped queries, both head sizes and a single token. Every output and the delta scratch are
// poisoned with NaN before the GPU runs, so an element the kernels forget to write fails. Also: the forward
// and backward are bitwise deterministic; with bf16 q, k, v, dout (and out) the kernels give the f32 path's
// results rounded to bf16 (the staged tiles are the same); and unsupported dims throw. Every
// test skips with "no CUDA device" when the machine has no GPU, and when the build has no CUDA path (the
// bodies are then not compiled).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "attention_reference.h"
#include "cuda_test_util.h"
#include "test_util.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/flash_attention.h"
#endif

namespace prores {
namespace {

#if defined(PRORES_WITH_CUDA)

using ops::cuda::AttentionDims;
using test::Counts;
using test::counts;
using test::DeviceBuffer;
using test::expect_absolute_error_below;
using test::expect_relative_error_below;
using test::first_nonfinite;
using test::Inputs;
using test::kLseTol;
using test::kRelTol;
using test::Outputs;
using test::random_inputs;
using test::reference;

// Device copies of the inputs and NaN-poisoned outputs (and delta scratch) of one case.
struct DeviceCase {
  explicit DeviceCase(const Inputs& in, const AttentionDims& d)
      : dims(d),
        q(in.q),
        k(in.k),
        v(in.v),
        dout(in.dout),
        out(counts(d).q),
        lse(counts(d).rows),
        delta(counts(d).rows),
        dq(counts(d).q),
        dk(counts(d).kv),
        dv(counts(d).kv) {}
  void forward() {
    out.poison();
    lse.poison();
    ops::cuda::flash_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), dims);
  }
  void backward() {
    for (auto* b : {&delta, &dq, &dk, &dv}) b->poison();
    ops::cuda::flash_attention_backward(dq.data(), dk.data(), dv.data(), delta.data(), dout.data(), out.data(),
                                        lse.data(), q.data(), k.data(), v.data(), dims);
  }
  Outputs<float> download() const {
    return {out.download(), lse.download(), dq.download(), dk.download(), dv.download()};
  }

  AttentionDims dims;
  DeviceBuffer<float> q, k, v, dout, out, lse, delta, dq, dk, dv;
};

// Forward and backward on the GPU against the double reference on the same inputs.
void check_against_reference(const AttentionDims& d, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "B " << d.B << " T " << d.T << " NH " << d.NH << " KV " << d.KV << " HS "
                                    << d.HS);
  ASSERT_TRUE(ops::cuda::flash_attention_supports(d));
  const Inputs in = random_inputs(d, seed);
  DeviceCase gpu(in, d);
  gpu.forward();
  gpu.backward();
  const Outputs<float> got = gpu.download();
  const Outputs<double> want = reference(in, d);
  expect_relative_error_below(got.out, want.out, kRelTol, "out");
  expect_absolute_error_below(got.lse, want.lse, kLseTol, "lse");
  expect_relative_error_below(got.dq, want.dq, kRelTol, "dq");
  expect_relative_error_below(got.dk, want.dk, kRelTol, "dk");
  expect_relative_error_below(got.dv, want.dv, kRelTol, "dv");
}

// a and b hold the same bits, and every element is written and finite.
void expect_bitwise_equal(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(first_nonfinite(a), -1) << what << ": not written, or not finite";
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what << " differs between runs";
}

// Every element of got within rel of want (the f32 path's lse or delta).
void expect_close_to(const std::vector<float>& got, const std::vector<float>& want, double rel,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_EQ(first_nonfinite(got), -1) << what << ": not written, or not finite";
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_LE(std::abs(double(got[i]) - want[i]), rel * (std::abs(double(want[i])) + 1.0)) << what << "[" << i << "]";
}

#endif  // PRORES_WITH_CUDA

TEST(CudaFlashAttention, PartialTilesAndGroupedQueriesMatchReference) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_against_reference({.B = 2, .T = 77, .NH = 4, .KV = 2, .HS = 64}, 100);
#endif
}

TEST(CudaFlashAttention, HeadSize128MatchesReference) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_against_reference({.B = 1, .T = 130, .NH = 2, .KV = 1, .HS = 128}, 200);
#endif
}

TEST(CudaFlashAttention, WholeTilesOneHeadPerGroupMatchReference) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_against_reference({.B = 2, .T = 256, .NH = 8, .KV = 8, .HS = 64}, 300);
#endif
}

TEST(CudaFlashAttention, OneTokenMatchesReference) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_against_reference({.B = 1, .T = 1, .NH = 4, .KV = 4, .HS = 64}, 400);
#endif
}

// Two forwards give the same bits, and so do two backwards from the first forward's out and lse.
TEST(CudaFlashAttention, ForwardAndBackwardAreBitwiseDeterministic) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  const AttentionDims d{.B = 2, .T = 300, .NH = 4, .KV = 2, .HS = 64};
  DeviceCase gpu(random_inputs(d, 500), d);
  gpu.forward();
  const std::vector<float> out = gpu.out.download(), lse = gpu.lse.download();
  gpu.forward();
  expect_bitwise_equal(gpu.out.download(), out, "out");
  expect_bitwise_equal(gpu.lse.download(), lse, "lse");
  gpu.backward();
  const Outputs<float> first = gpu.download();
  const std::vector<float> delta = gpu.delta.download();
  gpu.backward();
  const Outputs<float> second = gpu.download();
  expect_bitwise_equal(second.dq, first.dq, "dq");
  expect_bitwise_equal(second.dk, first.dk, "dk");
  expect_bitwise_equal(second.dv, first.dv, "dv");
  expect_bitwise_equal(gpu.delta.download(), delta, "delta");
#endif
}

#if defined(PRORES_WITH_CUDA)
// On inputs bf16 holds exactly, the bf16 path (its tiles staged by cp.async) stages the same tiles as the f32
// path (loaded and rounded by the threads) and rounds the same f32 results once: out, dq, dk, dv are the f32
// path's rounded to nearest even, and lse and delta are the f32 path's. The f32 backward is given the bf16
// forward's out, as the bf16 backward sees it, so that delta agrees. A second bf16 forward and backward give
// the same bits.
void check_bf16_against_f32(const AttentionDims& d, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "B " << d.B << " T " << d.T << " NH " << d.NH << " KV " << d.KV << " HS "
                                    << d.HS);
  using test::stored_as;
  using test::widened;
  Inputs in = random_inputs(d, seed);
  for (auto* x : {&in.q, &in.k, &in.v, &in.dout}) *x = widened(stored_as<uint16_t>(*x));
  DeviceCase f32(in, d);
  const Counts n = counts(d);
  DeviceBuffer<uint16_t> q(stored_as<uint16_t>(in.q)), k(stored_as<uint16_t>(in.k)), v(stored_as<uint16_t>(in.v)),
      dout(stored_as<uint16_t>(in.dout)), out(n.q), dq(n.q), dk(n.kv), dv(n.kv);
  DeviceBuffer<float> lse(n.rows), delta(n.rows);
  for (auto* b : {&out, &dq, &dk, &dv}) b->poison();
  for (auto* b : {&lse, &delta}) b->poison();
  f32.forward();
  ops::cuda::flash_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), d);
  const std::vector<uint16_t> out16 = out.download();
  test::expect_bf16_rounding_of(out16, f32.out.download(), "out");
  expect_close_to(lse.download(), f32.lse.download(), 1e-6, "lse");
  f32.out.upload(widened(out16));
  f32.backward();
  ops::cuda::flash_attention_backward(dq.data(), dk.data(), dv.data(), delta.data(), dout.data(), out.data(),
                                      lse.data(), q.data(), k.data(), v.data(), d);
  expect_close_to(delta.download(), f32.delta.download(), 1e-6, "delta");
  test::expect_bf16_rounding_of(dq.download(), f32.dq.download(), "dq");
  test::expect_bf16_rounding_of(dk.download(), f32.dk.download(), "dk");
  test::expect_bf16_rounding_of(dv.download(), f32.dv.download(), "dv");
  const std::vector<uint16_t> dq16 = dq.download(), dk16 = dk.download(), dv16 = dv.download();
  for (auto* b : {&out, &dq, &dk, &dv}) b->poison();
  ops::cuda::flash_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), d);
  ops::cuda::flash_attention_backward(dq.data(), dk.data(), dv.data(), delta.data(), dout.data(), out.data(),
                                      lse.data(), q.data(), k.data(), v.data(), d);
  EXPECT_EQ(out.download(), out16) << "out differs between runs";
  EXPECT_EQ(dq.download(), dq16) << "dq differs between runs";
  EXPECT_EQ(dk.download(), dk16) << "dk differs between runs";
  EXPECT_EQ(dv.download(), dv16) << "dv differs between runs";
}
#endif  // PRORES_WITH_CUDA

// Partial tiles with two heads per group; HS = 128 (32-query tiles in dK/dV) with four heads per group, so
// that its double-buffered q tiles cycle many times, and with one partial 32-query tile; whole tiles, one
// head per group.
TEST(CudaFlashAttention, Bf16TensorsGiveTheF32ResultsRounded) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_bf16_against_f32({.B = 2, .T = 77, .NH = 4, .KV = 2, .HS = 64}, 700);
  check_bf16_against_f32({.B = 1, .T = 200, .NH = 4, .KV = 1, .HS = 128}, 710);
  check_bf16_against_f32({.B = 1, .T = 20, .NH = 2, .KV = 1, .HS = 128}, 715);
  check_bf16_against_f32({.B = 2, .T = 256, .NH = 2, .KV = 2, .HS = 64}, 720);
#endif
}

TEST(CudaFlashAttention, UnsupportedDimsThrow) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  EXPECT_TRUE(ops::cuda::flash_attention_supports({.B = 1, .T = 8, .NH = 2, .KV = 1, .HS = 64}));
  EXPECT_TRUE(ops::cuda::flash_attention_supports({.B = 1, .T = 8, .NH = 2, .KV = 1, .HS = 128}));
  EXPECT_FALSE(ops::cuda::flash_attention_supports({.B = 1, .T = 8, .NH = 3, .KV = 2, .HS = 64}));
  EXPECT_FALSE(ops::cuda::flash_attention_supports({.B = 1, .T = 0, .NH = 2, .KV = 1, .HS = 64}));
  const AttentionDims d{.B = 1, .T = 8, .NH = 2, .KV = 1, .HS = 32};
  EXPECT_FALSE(ops::cuda::flash_attention_supports(d));
  DeviceCase gpu(random_inputs(d, 600), d);
  test::expect_error([&] { gpu.forward(); }, {"head size", "32"});
  test::expect_error([&] { gpu.backward(); }, {"head size", "32"});
#endif
}

}  // namespace
}  // namespace prores
