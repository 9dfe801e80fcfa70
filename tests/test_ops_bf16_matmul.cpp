// Tests of bf16 matmul precision on the CPU: cpu::gemm_bf16 (oneDNN's bf16 matmul, or the reference GEMM
// on rounded operands) against a double-precision product of the bf16-rounded operands, with f32 or bf16
// operands and results, leading dimensions, inside a parallel region and in the degenerate cases; the linear
// layer (its bf16-matmul family, activations in either dtype, the weight f32 or rounded once) against the same
// oracle; the f32 -> bf16 rounding op; attention in bf16 against f32; and the f64 refusals.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "core/bf16.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/cpu/gemm.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "test_util.h"

namespace prores {
namespace {

using test::Buffer;
using test::expect_error;
using test::fill_normal;
using test::host_tensor;
using test::stored_as;
using test::widened;

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

// C (f32, or bf16 bits widened) against e within the fp32 accumulation error, plus half a bf16 unit in the
// last place of the value when C was rounded to bf16.
template <typename TC>
void expect_matches(const std::vector<TC>& C, int64_t ldc, const Expected& e, int64_t M, int64_t N,
                    const char* what) {
  const double rounding = std::is_same_v<TC, uint16_t> ? std::ldexp(1.0, -8) : 0.0;  // bf16 unit roundoff
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      const double want = e.value[i * N + j];
      const double tolerance = kAccumulationRtol * e.scale[i * N + j] + rounding * std::abs(want);
      ASSERT_NEAR(load_element(C[i * ldc + j]), want, tolerance)
          << what << " at (" << i << ", " << j << ")";
    }
  }
}

// One cpu::gemm_bf16 call with padded leading dimensions on TA, TB operands and a TC result (uint16_t: bf16
// bits); beta = 0 starts C as NaN.
template <typename TA, typename TB, typename TC>
void check_gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "ta " << ta << " tb " << tb << " M " << M << " N " << N << " K " << K
                                    << " alpha " << alpha << " beta " << beta << " bf16 A, B, C "
                                    << (std::is_same_v<TA, uint16_t>) << (std::is_same_v<TB, uint16_t>)
                                    << (std::is_same_v<TC, uint16_t>));
  const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
  std::vector<float> A(static_cast<size_t>((ta ? K : M) * lda)), B(static_cast<size_t>((tb ? N : K) * ldb)),
      C(static_cast<size_t>(M * ldc));
  fill_normal(A, seed);
  fill_normal(B, seed + 1);
  fill_normal(C, seed + 2);
  if (beta == 0) std::fill(C.begin(), C.end(), kNaN);
  std::vector<TA> a = stored_as<TA>(A);
  std::vector<TB> b = stored_as<TB>(B);
  std::vector<TC> c = stored_as<TC>(C);
  const Expected e = bf16_product(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, widened(c), ldc);
  ops::cpu::gemm_bf16(ta, tb, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  expect_matches(c, ldc, e, M, N, "gemm_bf16");
}

template <typename TA, typename TB, typename TC>
void check_all_gemm_bf16_variants() {
  uint64_t seed = 40;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        check_gemm_bf16<TA, TB, TC>(ta, tb, 37, 53, 29, 0.75f, beta, seed += 3);
        check_gemm_bf16<TA, TB, TC>(ta, tb, 70, 130, 300, 1.0f, beta, seed += 3);
      }
}

TEST(GemmBf16, MatchesTheProductOfRoundedOperands) { check_all_gemm_bf16_variants<float, float, float>(); }

// Operands already in bf16 are taken as they are; a bf16 C receives the rounded result (and, with beta != 0,
// contributes its bf16 value).
TEST(GemmBf16, TakesBf16OperandsAndResults) {
  check_all_gemm_bf16_variants<uint16_t, float, float>();
  check_all_gemm_bf16_variants<float, uint16_t, uint16_t>();
  check_all_gemm_bf16_variants<uint16_t, uint16_t, uint16_t>();
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

// Linear forward (=) and backward (+=) with bf16 matmuls against the oracle: out = inp W^T, dinp += dout W,
// dW += dout^T inp, each on bf16-rounded operands. The activations are stored as TAct (f32, or bf16: the
// bf16-matmul family is then taken without asking), the weight as TW (f32, or bf16: rounded once by
// ops::round_to_bf16, as the model does), its gradient as f32. Returns out, dinp and dW.
template <typename TAct, typename TW = float>
std::tuple<std::vector<TAct>, std::vector<TAct>, std::vector<float>> check_linear_bf16(
    ops::MatmulPrecision precision) {
  SCOPED_TRACE((std::is_same_v<TAct, uint16_t> ? "bf16 activations" : "f32 activations"));
  SCOPED_TRACE((std::is_same_v<TW, uint16_t> ? "bf16 weight" : "f32 weight"));
  const int64_t B = 2, T = 37, IC = 29, OC = 53, N = B * T;
  std::vector<float> inp(N * IC), w(OC * IC), dout(N * OC), dinp(N * IC), dw(OC * IC);
  fill_normal(inp, 1);
  fill_normal(w, 2);
  fill_normal(dout, 3);
  fill_normal(dinp, 4);
  fill_normal(dw, 5);
  std::vector<TAct> inp_s = stored_as<TAct>(inp), dout_s = stored_as<TAct>(dout), dinp_s = stored_as<TAct>(dinp),
                    out_s = stored_as<TAct>(std::vector<float>(N * OC, kNaN));
  const Expected e_out = bf16_product(false, true, N, OC, IC, 1.0, inp, IC, w, IC, 0.0, {}, OC);
  const Expected e_dinp = bf16_product(false, false, N, IC, OC, 1.0, dout, OC, w, IC, 1.0, widened(dinp_s), IC);
  const Expected e_dw = bf16_product(true, false, OC, IC, N, 1.0, dout, OC, inp, IC, 1.0, dw, IC);
  std::vector<TW> w_s(w.size());
  if constexpr (std::is_same_v<TW, uint16_t>) ops::round_to_bf16(host_tensor(w_s, {OC, IC}), host_tensor(w, {OC, IC}));
  else w_s = w;
  ops::linear_forward(host_tensor(out_s, {B, T, OC}), host_tensor(inp_s, {B, T, IC}), host_tensor(w_s, {OC, IC}),
                      precision);
  ops::linear_backward(host_tensor(dinp_s, {B, T, IC}), host_tensor(dw, {OC, IC}), host_tensor(dout_s, {B, T, OC}),
                       host_tensor(inp_s, {B, T, IC}), host_tensor(w_s, {OC, IC}), precision);
  expect_matches(out_s, OC, e_out, N, OC, "linear out");
  expect_matches(dinp_s, IC, e_dinp, N, IC, "linear dinp");
  expect_matches(dw, IC, e_dw, OC, IC, "linear dweight");
  return {out_s, dinp_s, dw};
}

TEST(LinearBf16, MatchesTheProductOfRoundedOperands) { check_linear_bf16<float>(kBf16); }
TEST(LinearBf16, Bf16ActivationsTakeBf16Matmuls) { check_linear_bf16<uint16_t>(ops::MatmulPrecision::Fp32); }

// A weight rounded once (the model's bf16 copy) gives bitwise the results of its f32 master rounded on each
// call, with activations in either dtype; without Bf16 precision a bf16 weight next to f32 tensors is refused.
TEST(LinearBf16, AWeightRoundedOnceGivesTheSameNumbers) {
  EXPECT_EQ((check_linear_bf16<float, uint16_t>(kBf16)), (check_linear_bf16<float, float>(kBf16)));
  EXPECT_EQ((check_linear_bf16<uint16_t, uint16_t>(kBf16)), (check_linear_bf16<uint16_t, float>(kBf16)));
  std::vector<float> inp(6, 1.0f), out(6);
  std::vector<uint16_t> w16(4);
  expect_error([&] {
    ops::linear_forward(host_tensor(out, {3, 2}), host_tensor(inp, {3, 2}), host_tensor(w16, {2, 2}));
  }, {"linear_forward", "dtype mismatch"});
}

// ops::round_to_bf16 is float_to_bf16 element by element (threaded sizes, ties, NaN), also of a scaled
// source, and checks its dtypes.
TEST(RoundToBf16, IsFloatToBf16PerElement) {
  std::vector<float> x(100003);
  fill_normal(x, 11);
  x[0] = 1.0f + 1.0f / 256;  // a tie: rounds to even (1.0)
  x[1] = std::numeric_limits<float>::quiet_NaN();
  x[2] = -0.0f;
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> y(x.size());
  ops::round_to_bf16(host_tensor(y, {n}), host_tensor(x, {n}));
  EXPECT_EQ(y, stored_as<uint16_t>(x));
  EXPECT_EQ(y[0], float_to_bf16(1.0f));
  // With a scale: the f32 product, rounded (axpby's arithmetic, then one rounding).
  const float scale = 0.37f;
  ops::round_to_bf16(host_tensor(y, {n}), host_tensor(x, {n}), scale);
  std::vector<float> scaled(x.size());
  std::transform(x.begin(), x.end(), scaled.begin(), [&](float v) { return scale * v; });
  EXPECT_EQ(y, stored_as<uint16_t>(scaled));
  expect_error([&] { ops::round_to_bf16(host_tensor(x, {n}), host_tensor(x, {n})); },
               {"round_to_bf16", "dst bf16", "src f32", "f32"});
}

// An output in bf16 next to f32 operands, and the other mixtures of one layer, take the bf16 family too.
TEST(LinearBf16, MixedActivationDtypes) {
  const int64_t N = 8, IC = 16, OC = 24;
  std::vector<float> inp(N * IC), w(OC * IC), dout32(N * OC), dw(OC * IC, 0.0f);
  fill_normal(inp, 7);
  fill_normal(w, 8);
  fill_normal(dout32, 9);
  std::vector<uint16_t> out16(N * OC), dinp16(N * IC, 0), dout16 = stored_as<uint16_t>(dout32);
  ops::linear_forward(host_tensor(out16, {N, OC}), host_tensor(inp, {N, IC}), host_tensor(w, {OC, IC}));
  expect_matches(out16, OC, bf16_product(false, true, N, OC, IC, 1.0, inp, IC, w, IC, 0.0, {}, OC), N, OC, "out");
  ops::linear_backward(host_tensor(dinp16, {N, IC}), host_tensor(dw, {OC, IC}), host_tensor(dout16, {N, OC}),
                       host_tensor(inp, {N, IC}), host_tensor(w, {OC, IC}));
  expect_matches(dinp16, IC, bf16_product(false, false, N, IC, OC, 1.0, dout32, OC, w, IC, 0.0, {}, IC), N, IC,
                 "dinp");
  expect_matches(dw, IC, bf16_product(true, false, OC, IC, N, 1.0, dout32, OC, inp, IC, 0.0, {}, IC), OC, IC, "dw");
  std::vector<double> w64(OC * IC);
  std::vector<uint16_t> inp16 = stored_as<uint16_t>(inp);
  expect_error([&] {
    ops::linear_forward(host_tensor(out16, {N, OC}), host_tensor(inp16, {N, IC}),
                        Tensor(w64.data(), DType::F64, Device::CPU, {OC, IC}));
  }, {"linear_forward", "dtype mismatch"});
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
  expect_error(
      [&] { ops::gemm(false, false, 2, 2, 2, 1, a.tensor({2, 2}), b.tensor({2, 2}), 0, c.tensor({2, 2}), kBf16); },
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
