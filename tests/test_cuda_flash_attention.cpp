// CUDA flash attention (ops/cuda/flash_attention.h) against a double-precision CPU reference of causal
// grouped-query attention computed here, loop by loop, from the same random f32 inputs: out, lse, dq, dk
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

#include "cuda_test_util.h"
#include "test_util.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/flash_attention.h"
#endif

namespace prores {
namespace {

#if defined(PRORES_WITH_CUDA)

using ops::cuda::AttentionDims;
using test::DeviceBuffer;

constexpr double kRelTol = 2e-2;  // relative Frobenius error of out, dq, dk, dv (bf16 operands)
constexpr double kLseTol = 2e-2;  // absolute error of lse

// Element counts of q (and out, dout, dq), of k (and v, dk, dv) and of lse (and delta).
struct Counts {
  int64_t q, kv, rows;
};

Counts counts(const AttentionDims& d) { return {d.B * d.NH * d.T * d.HS, d.B * d.KV * d.T * d.HS, d.B * d.NH * d.T}; }

std::vector<float> random_normal(int64_t n, uint64_t seed) {
  std::vector<float> x(static_cast<size_t>(n));
  test::fill_normal(x, seed);
  return x;
}

// q (B, NH, T, HS), k, v (B, KV, T, HS), dout (B, T, NH HS): N(0, 1), one seed each.
struct Inputs {
  std::vector<float> q, k, v, dout;
};

Inputs random_inputs(const AttentionDims& d, uint64_t seed) {
  const Counts n = counts(d);
  return {random_normal(n.q, seed), random_normal(n.kv, seed + 1), random_normal(n.kv, seed + 2),
          random_normal(n.q, seed + 3)};
}

// The forward's out, lse and the backward's dq, dk, dv, in the layouts of ops/cuda/flash_attention.h.
template <typename V>
struct Outputs {
  std::vector<V> out, lse, dq, dk, dv;
};

// Causal grouped-query attention and its gradients in double, from the definitions. Per (b, h, i), with
// g = h / (NH / KV) and scale = 1 / sqrt(HS): s_j = scale q_i . k_j for j <= i, lse_i = log sum_j exp(s_j),
// p_j = exp(s_j - lse_i), out_i = sum_j p_j v_j; dp_j = dout_i . v_j, ds_j = p_j (dp_j - sum_l p_l dp_l),
// dq_i = scale sum_j ds_j k_j, dk_j (+=) scale ds_j q_i, dv_j (+=) p_j dout_i (k, v, dk, dv of group g).
Outputs<double> reference(const Inputs& in, const AttentionDims& d) {
  const Counts n = counts(d);
  Outputs<double> r{std::vector<double>(n.q), std::vector<double>(n.rows), std::vector<double>(n.q),
                    std::vector<double>(n.kv), std::vector<double>(n.kv)};
  const int64_t T = d.T, HS = d.HS;
  const double scale = 1.0 / std::sqrt(static_cast<double>(HS));
  std::vector<double> p(static_cast<size_t>(T)), dp(static_cast<size_t>(T));
  for (int64_t b = 0; b < d.B; ++b) {
    for (int64_t h = 0; h < d.NH; ++h) {
      const int64_t bh = b * d.NH + h, bg = b * d.KV + h / (d.NH / d.KV);
      for (int64_t i = 0; i < T; ++i) {
        const int64_t qi = (bh * T + i) * HS, ti = ((b * T + i) * d.NH + h) * HS;  // head-major, token rows
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= i; ++j) {
          double s = 0;
          for (int64_t e = 0; e < HS; ++e) s += static_cast<double>(in.q[qi + e]) * in.k[(bg * T + j) * HS + e];
          p[j] = s * scale;
          m = std::max(m, p[j]);
        }
        double l = 0;
        for (int64_t j = 0; j <= i; ++j) l += std::exp(p[j] - m);
        const double lse = m + std::log(l);
        r.lse[bh * T + i] = lse;
        for (int64_t j = 0; j <= i; ++j) p[j] = std::exp(p[j] - lse);
        double dot = 0;
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t kj = (bg * T + j) * HS;
          dp[j] = 0;
          for (int64_t e = 0; e < HS; ++e) {
            r.out[ti + e] += p[j] * in.v[kj + e];
            dp[j] += static_cast<double>(in.dout[ti + e]) * in.v[kj + e];
          }
          dot += p[j] * dp[j];
        }
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t kj = (bg * T + j) * HS;
          const double ds = p[j] * (dp[j] - dot);
          for (int64_t e = 0; e < HS; ++e) {
            r.dq[qi + e] += scale * ds * in.k[kj + e];
            r.dk[kj + e] += scale * ds * in.q[qi + e];
            r.dv[kj + e] += p[j] * in.dout[ti + e];
          }
        }
      }
    }
  }
  return r;
}

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

// Index of the first element of x that is not finite (NaN poison left unwritten, or an overflow), or -1.
int64_t first_nonfinite(const std::vector<float>& x) {
  const auto it = std::find_if(x.begin(), x.end(), [](float e) { return !std::isfinite(e); });
  return it == x.end() ? -1 : it - x.begin();
}

// Every element of got written and finite, and ||got - want|| / ||want|| < tol. A reference that is exactly
// zero (dq and dk at T = 1: one key takes probability 1 whatever its score) is held to the root mean square
// of got instead: the inputs are of unit scale, so tol is then an absolute bound.
void expect_relative_error_below(const std::vector<float>& got, const std::vector<double>& want, double tol,
                                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const int64_t bad = first_nonfinite(got);
  ASSERT_EQ(bad, -1) << what << "[" << bad << "] = " << got[bad] << ": not written, or not finite";
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  if (norm > 0)
    EXPECT_LT(std::sqrt(err / norm), tol) << what << ": relative Frobenius error";
  else
    EXPECT_LT(std::sqrt(err / static_cast<double>(got.size())), tol)
        << what << ": root mean square of a zero reference";
}

// Every element of got written and finite, and |got - want| < tol everywhere.
void expect_absolute_error_below(const std::vector<float>& got, const std::vector<double>& want, double tol,
                                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const int64_t bad = first_nonfinite(got);
  ASSERT_EQ(bad, -1) << what << "[" << bad << "] = " << got[bad] << ": not written, or not finite";
  size_t worst = 0;
  for (size_t i = 1; i < got.size(); ++i)
    if (std::abs(got[i] - want[i]) > std::abs(got[worst] - want[worst])) worst = i;
  EXPECT_LT(std::abs(got[worst] - want[worst]), tol)
      << what << "[" << worst << "]: cuda " << got[worst] << ", reference " << want[worst];
}

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
