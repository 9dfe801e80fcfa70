// Tests of bf16 matmul precision on the CPU: cpu::gemm_bf16 (oneDNN's bf16 matmul, or the reference GEMM
// on rounded operands) against a double-precision product of the bf16-rounded operands, with leading
// dimensions, inside a parallel region and in the degenerate cases; the linear layer against the same
// oracle; attention in bf16 against f32; and the f64 refusals.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "core/bf16.h"
#include "ops/attention.h"
#include "ops/cpu/gemm.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "test_util.h"

namespace prores {
namespace {

using test::Buffer;
using test::expect_error;
using test::fill_normal;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr auto kBf16 = ops::MatmulPrecision::Bf16;

// Products of bf16 operands are exact in fp32, so only the fp32 accumulation differs from the double
// oracle: |error| <= K eps32 sum_k |a b| in the worst case, far less in practice.
constexpr double kAccumulationRtol = 1e-5;

// The expected C (M,N; leading dimension ldc) of alpha op(A) op(B) + beta C with A and B rounded to bf16,
// in double, and the error scale of each element: |alpha| sum_k |a b| + |beta c|.
struct Expected {
  std::vector<double> value, scale;
};

Expected bf16_product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const std::vector<float>& A,
                      int64_t lda, const std::vector<float>& B, int64_t ldb, double beta, const std::vector<float>& C,
                      int64_t ldc) {
  Expected e{std::vector<double>(static_cast<size_t>(M * N)), std::vector<double>(static_cast<size_t>(M * N))};
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0, abs_acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = round_to_bf16(ta ? A[k * lda + i] : A[i * lda + k]);
        const double b = round_to_bf16(tb ? B[j * ldb + k] : B[k * ldb + j]);
        acc += a * b;
        abs_acc += std::abs(a * b);
      }
      const double c = beta == 0 ? 0.0 : beta * static_cast<double>(C[i * ldc + j]);
      e.value[i * N + j] = alpha * acc + c;
      e.scale[i * N + j] = std::abs(alpha) * abs_acc + std::abs(c) + 1e-30;
    }
  }
  return e;
}

void expect_matches(const std::vector<float>& C, int64_t ldc, const Expected& e, int64_t M, int64_t N,
                    const char* what) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      ASSERT_NEAR(C[i * ldc + j], e.value[i * N + j], kAccumulationRtol * e.scale[i * N + j])
          << what << " at (" << i << ", " << j << ")";
    }
  }
}

// One cpu::gemm_bf16 call with padded leading dimensions; beta = 0 starts C as NaN.
void check_gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "ta " << ta << " tb " << tb << " M " << M << " N " << N << " K " << K
                                    << " alpha " << alpha << " beta " << beta);
  const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
  std::vector<float> A(static_cast<size_t>((ta ? K : M) * lda)), B(static_cast<size_t>((tb ? N : K) * ldb)),
      C(static_cast<size_t>(M * ldc));
  fill_normal(A, seed);
  fill_normal(B, seed + 1);
  fill_normal(C, seed + 2);
  if (beta == 0) std::fill(C.begin(), C.end(), kNaN);
  const Expected e = bf16_product(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  ops::cpu::gemm_bf16(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  expect_matches(C, ldc, e, M, N, "gemm_bf16");
}

TEST(GemmBf16, MatchesTheProductOfRoundedOperands) {
  uint64_t seed = 40;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        check_gemm_bf16(ta, tb, 37, 53, 29, 0.75f, beta, seed += 3);
        check_gemm_bf16(ta, tb, 70, 130, 300, 1.0f, beta, seed += 3);
      }
}

// The rounding is real: on random operands the result is measurably off the f32 product, by about the
// bf16 unit roundoff (2^-9) relative to the terms, never more than a few times that.
TEST(GemmBf16, DiffersFromF32ByTheOperandRounding) {
  const int64_t M = 64, N = 64, K = 256;
  Buffer<float> A(M * K), B(K * N), C32(M * N), C16(M * N);
  fill_normal(A.data, 1);
  fill_normal(B.data, 2);
  ops::gemm(false, false, M, N, K, 1.0, A.tensor({M, K}), B.tensor({K, N}), 0.0, C32.tensor({M, N}));
  ops::gemm(false, false, M, N, K, 1.0, A.tensor({M, K}), B.tensor({K, N}), 0.0, C16.tensor({M, N}), kBf16);
  double worst = 0;
  for (int64_t i = 0; i < M * N; ++i) worst = std::max(worst, std::abs(double(C16.data[i]) - C32.data[i]));
  // Each sum has K = 256 terms |a b| ~ 0.64 on average: the rounding error of the sum is ~ sqrt(K) 2^-9 0.64.
  EXPECT_GT(worst, 1e-3);
  EXPECT_LT(worst, 0.5);
}

// Each thread of a parallel loop runs its own bf16 GEMMs, as the CPU attention does.
TEST(GemmBf16, InsideParallelRegion) {
  const int64_t M = 37, N = 53, K = 29, jobs = 6;
  std::vector<std::vector<float>> A(jobs, std::vector<float>(M * K)), B(jobs, std::vector<float>(K * N)),
      C(jobs, std::vector<float>(M * N, kNaN));
  for (int64_t j = 0; j < jobs; ++j) {
    fill_normal(A[j], 100 + j);
    fill_normal(B[j], 200 + j);
  }
#pragma omp parallel for schedule(static, 1)
  for (int64_t j = 0; j < jobs; ++j)
    ops::cpu::gemm_bf16(false, false, M, N, K, 1.0f, A[j].data(), K, B[j].data(), N, 0.0f, C[j].data(), N);
  for (int64_t j = 0; j < jobs; ++j)
    expect_matches(C[j], N, bf16_product(false, false, M, N, K, 1.0, A[j], K, B[j], N, 0.0, C[j], N), M, N,
                   "gemm_bf16 in a parallel region");
}

// K = 0 and alpha = 0 leave beta C; M = 0 or N = 0 touch nothing.
TEST(GemmBf16, DegenerateSizes) {
  std::vector<float> A(12, 1.0f), B(12, 1.0f), C{1, 2, 3, 4, 5, 6};
  ops::cpu::gemm_bf16(false, false, 2, 3, 0, 1.0f, A.data(), 1, B.data(), 3, 0.5f, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3}));
  ops::cpu::gemm_bf16(false, false, 2, 3, 2, 0.0f, A.data(), 2, B.data(), 3, 2.0f, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  ops::cpu::gemm_bf16(false, false, 0, 3, 2, 1.0f, A.data(), 2, B.data(), 3, 0.0f, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

// Linear forward (=) and backward (+=) in bf16 against the oracle: out = inp W^T, dinp += dout W,
// dW += dout^T inp, each on bf16-rounded operands.
TEST(LinearBf16, MatchesTheProductOfRoundedOperands) {
  const int64_t B = 2, T = 37, IC = 29, OC = 53, N = B * T;
  Buffer<float> inp(N * IC), w(OC * IC), dout(N * OC), out(N * OC), dinp(N * IC), dw(OC * IC);
  fill_normal(inp.data, 1);
  fill_normal(w.data, 2);
  fill_normal(dout.data, 3);
  fill_normal(dinp.data, 4);
  fill_normal(dw.data, 5);
  std::fill(out.data.begin(), out.data.end(), kNaN);
  const Expected e_out = bf16_product(false, true, N, OC, IC, 1.0, inp.data, IC, w.data, IC, 0.0, out.data, OC);
  const Expected e_dinp = bf16_product(false, false, N, IC, OC, 1.0, dout.data, OC, w.data, IC, 1.0, dinp.data, IC);
  const Expected e_dw = bf16_product(true, false, OC, IC, N, 1.0, dout.data, OC, inp.data, IC, 1.0, dw.data, IC);
  ops::linear_forward(out.tensor({B, T, OC}), inp.tensor({B, T, IC}), w.tensor({OC, IC}), kBf16);
  ops::linear_backward(dinp.tensor({B, T, IC}), dw.tensor({OC, IC}), dout.tensor({B, T, OC}), inp.tensor({B, T, IC}),
                       w.tensor({OC, IC}), kBf16);
  expect_matches(out.data, OC, e_out, N, OC, "linear out");
  expect_matches(dinp.data, IC, e_dinp, N, IC, "linear dinp");
  expect_matches(dw.data, IC, e_dw, OC, IC, "linear dweight");
}

// Largest |got - want| relative to the largest |want|.
double max_diff_to_max(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return diff / scale;
}

// Attention with bf16 products stays within bf16 error of the f32 result (and is not the f32 result).
TEST(AttentionBf16, TracksF32) {
  const int64_t B = 2, T = 70, NH = 4, KV = 2, HS = 16;
  const int64_t nq = B * NH * T * HS, nk = B * KV * T * HS, natt = B * NH * T * T;
  Buffer<float> q(nq), k(nk), v(nk), dout(nq);
  fill_normal(q.data, 1);
  fill_normal(k.data, 2);
  fill_normal(v.data, 3);
  fill_normal(dout.data, 4);
  struct Result {
    Buffer<float> out, att, y, dq, dk, dv, datt, dy;
  };
  auto run = [&](ops::MatmulPrecision precision) {
    Result r{Buffer<float>(nq), Buffer<float>(natt), Buffer<float>(nq), Buffer<float>(nq),
             Buffer<float>(nk), Buffer<float>(nk), Buffer<float>(natt), Buffer<float>(nq)};
    const Tensor qt = q.tensor({B, NH, T, HS}), kt = k.tensor({B, KV, T, HS}), vt = v.tensor({B, KV, T, HS});
    ops::attention_forward(r.out.tensor({B, T, NH * HS}), r.att.tensor({B, NH, T, T}), r.y.tensor({B, NH, T, HS}),
                           qt, kt, vt, precision);
    ops::attention_backward(r.dq.tensor({B, NH, T, HS}), r.dk.tensor({B, KV, T, HS}), r.dv.tensor({B, KV, T, HS}),
                            r.datt.tensor({B, NH, T, T}), r.dy.tensor({B, NH, T, HS}), dout.tensor({B, T, NH * HS}),
                            r.att.tensor({B, NH, T, T}), qt, kt, vt, precision);
    return r;
  };
  const Result f32 = run(ops::MatmulPrecision::Fp32), bf16 = run(kBf16);
  for (const auto& [name, a, b] : {std::tuple{"out", &f32.out, &bf16.out}, std::tuple{"dq", &f32.dq, &bf16.dq},
                                   std::tuple{"dk", &f32.dk, &bf16.dk}, std::tuple{"dv", &f32.dv, &bf16.dv}}) {
    const double d = max_diff_to_max(b->data, a->data);
    EXPECT_LT(d, 3e-2) << name;
    EXPECT_GT(d, 1e-5) << name << ": bf16 products should differ from f32";
  }
}

TEST(Bf16Matmul, F64TensorsAreRefused) {
  Buffer<double> a(4), b(4), c(4);
  expect_error([&] { ops::gemm(false, false, 2, 2, 2, 1, a.tensor({2, 2}), b.tensor({2, 2}), 0, c.tensor({2, 2}), kBf16); },
               {"gemm", "bf16", "f64"});
  expect_error([&] { ops::linear_forward(c.tensor({2, 2}), a.tensor({2, 2}), b.tensor({2, 2}), kBf16); },
               {"linear_forward", "bf16", "f64"});
  expect_error([&] {
    ops::linear_backward(c.tensor({2, 2}), Tensor(), a.tensor({2, 2}), a.tensor({2, 2}), b.tensor({2, 2}), kBf16);
  }, {"linear_backward", "bf16", "f64"});
  Buffer<double> q(8), att(4);
  const Tensor h = q.tensor({1, 1, 2, 4});
  expect_error([&] { ops::attention_forward(q.tensor({1, 2, 4}), att.tensor({1, 1, 2, 2}), h, h, h, h, kBf16); },
               {"attention_forward", "bf16", "f64"});
}

}  // namespace
}  // namespace prores
