// Tests of the GEMM, linear and attention ops: GEMM against a naive triple loop (also inside an OpenMP
// parallel region), double-precision finite-difference gradients, f32 vs f64 agreement, the causal
// structure of the attention probabilities, and shape validation.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/attention.h"
#include "ops/cpu/gemm.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/rope.h"
#include "test_util.h"

namespace prores {
namespace {

using test::AttnShape;
using test::Buffer;
using test::expect_error;
using test::expect_gradient_matches;
using test::fill_normal;
using test::host_tensor;
using test::HostRopeTable;
using test::random_buffer;
using test::stored_as;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// C (M,N) = alpha op(A) op(B) + beta C in double, element by element (leading dimensions as in gemm).
template <typename T>
std::vector<double> naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                               const std::vector<T>& A, int64_t lda, const std::vector<T>& B, int64_t ldb,
                               double beta, const std::vector<T>& C, int64_t ldc) {
  std::vector<double> out(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = ta ? A[k * lda + i] : A[i * lda + k];
        const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      out[i * N + j] = alpha * acc + (beta == 0 ? 0.0 : beta * static_cast<double>(C[i * ldc + j]));
    }
  }
  return out;
}

template <typename T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-13;
}

// Checks C[i * ldc + j] against the (M, N) reference, relative to the reference's largest magnitude.
template <typename T>
void expect_matrix_near(const std::vector<T>& C, int64_t ldc, const std::vector<double>& ref, int64_t M,
                        int64_t N, const char* what) {
  double scale = 0;
  for (double r : ref) scale = std::max(scale, std::abs(r));
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      ASSERT_NEAR(C[i * ldc + j], ref[i * N + j], tolerance<T>() * scale)
          << what << " at (" << i << ", " << j << ")";
    }
  }
}

// One Tensor-level gemm call of the given sizes against the naive loop; beta = 0 starts C as NaN.
template <typename T>
void check_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double beta, uint64_t seed) {
  Buffer<T> A(M * K), B(K * N), C(M * N);
  fill_normal(A.data, seed);
  fill_normal(B.data, seed + 1);
  fill_normal(C.data, seed + 2);
  if (beta == 0) std::fill(C.data.begin(), C.data.end(), static_cast<T>(kNaN));
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  const auto ref = naive_gemm(ta, tb, M, N, K, 0.75, A.data, lda, B.data, ldb, beta, C.data, N);
  ops::gemm(ta, tb, M, N, K, 0.75, A.tensor({ta ? K : M, lda}), B.tensor({tb ? N : K, ldb}), beta,
            C.tensor({M, N}));
  expect_matrix_near(C.data, N, ref, M, N, "gemm");
}

template <typename T>
void check_all_gemm_variants(int64_t M, int64_t N, int64_t K) {
  uint64_t seed = 10;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (double beta : {0.0, 1.0}) {
        SCOPED_TRACE(::testing::Message() << "ta " << ta << " tb " << tb << " beta " << beta);
        check_gemm<T>(ta, tb, M, N, K, beta, seed += 3);
      }
    }
  }
}

TEST(Gemm, MatchesNaiveF32) { check_all_gemm_variants<float>(37, 53, 29); }
TEST(Gemm, MatchesNaiveF64) { check_all_gemm_variants<double>(37, 53, 29); }
// Crosses the reference GEMM's panel sizes (256 deep, 512 wide) and its 4-row blocks.
TEST(Gemm, MatchesNaiveLargeF64) { check_all_gemm_variants<double>(70, 600, 300); }

TEST(Gemm, ReferenceF32WithLeadingDimensions) {
  const int64_t M = 21, N = 530, K = 270, lda = K + 3, ldb = N + 5, ldc = N + 7;
  Buffer<float> A(M * lda), B(K * ldb), C(M * ldc);
  fill_normal(A.data, 1);
  fill_normal(B.data, 2);
  fill_normal(C.data, 3);
  const auto ref = naive_gemm(false, false, M, N, K, -1.5, A.data, lda, B.data, ldb, 0.5, C.data, ldc);
  ops::cpu::gemm_reference<float>(false, false, M, N, K, -1.5f, A.data.data(), lda, B.data.data(), ldb, 0.5f,
                                  C.data.data(), ldc);
  expect_matrix_near(C.data, ldc, ref, M, N, "gemm_reference");
}

// Each thread of a parallel loop runs its own GEMMs with leading dimensions (as attention does).
template <typename T>
void check_gemm_in_parallel_region() {
  const int64_t M = 37, N = 53, K = 29, lda = 40, ldc = 64, jobs = 8;
  std::vector<std::vector<T>> A(jobs, std::vector<T>(M * lda)), B(jobs, std::vector<T>(N * K));
  std::vector<std::vector<T>> C(jobs, std::vector<T>(M * ldc, T(1)));
  for (int64_t j = 0; j < jobs; ++j) {
    fill_normal(A[j], 100 + j);
    fill_normal(B[j], 200 + j);
  }
  int threads = 0;
#pragma omp parallel for schedule(static, 1)
  for (int64_t j = 0; j < jobs; ++j) {
    if (j == 0) threads = omp_get_num_threads();
    ops::cpu::gemm<T>(j % 2 == 1, true, M, N, K, T(1), A[j].data(), j % 2 == 1 ? M : lda, B[j].data(), K,
                      T(1), C[j].data(), ldc);
  }
  EXPECT_GE(threads, 1);
  for (int64_t j = 0; j < jobs; ++j) {
    const bool ta = j % 2 == 1;
    const auto ref = naive_gemm(ta, true, M, N, K, 1.0, A[j], ta ? M : lda, B[j], K, 1.0,
                                std::vector<T>(M * ldc, T(1)), ldc);
    expect_matrix_near(C[j], ldc, ref, M, N, "gemm in parallel region");
  }
}

TEST(Gemm, InsideParallelRegionF32) { check_gemm_in_parallel_region<float>(); }
TEST(Gemm, InsideParallelRegionF64) { check_gemm_in_parallel_region<double>(); }

TEST(Gemm, BackendName) {
  const std::string backend = ops::cpu_gemm_backend();
  EXPECT_TRUE(backend == "onednn" || backend == "reference") << backend;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(Linear, GradientMatchesFiniteDifferences) {
  const int64_t B = 2, T = 3, IC = 5, OC = 4;
  Buffer<double> inp(B * T * IC), w(OC * IC), out(B * T * OC), R(B * T * OC);
  fill_normal(inp.data, 1);
  fill_normal(w.data, 2);
  fill_normal(R.data, 3);
  auto loss = [&] {
    ops::linear_forward(out.tensor({B, T, OC}), inp.tensor({B, T, IC}), w.tensor({OC, IC}));
    return dot(out.data, R.data);
  };
  Buffer<double> dinp(B * T * IC), dw(OC * IC);
  ops::linear_backward(dinp.tensor({B, T, IC}), dw.tensor({OC, IC}), R.tensor({B, T, OC}),
                       inp.tensor({B, T, IC}), w.tensor({OC, IC}));
  expect_gradient_matches(loss, inp.data, dinp.data, "dinp");
  expect_gradient_matches(loss, w.data, dw.data, "dweight");
  // (+=): a second backward, with dinp skipped as an undefined Tensor, doubles dweight.
  const std::vector<double> dw_once = dw.data;
  ops::linear_backward(Tensor(), dw.tensor({OC, IC}), R.tensor({B, T, OC}), inp.tensor({B, T, IC}),
                       w.tensor({OC, IC}));
  for (size_t i = 0; i < dw.data.size(); ++i) EXPECT_NEAR(dw.data[i], 2 * dw_once[i], 1e-13);
}

// InputGrad::Overwrite gives dinp bitwise what accumulating into zeros gives, whatever dinp held (NaN here),
// in f32, f64 and with bf16 matmuls; dweight still accumulates.
template <typename T>
void check_linear_overwrite(ops::MatmulPrecision precision) {
  const int64_t N = 67, IC = 33, OC = 29;
  Buffer<T> inp(N * IC), w(OC * IC), dout(N * OC), dw_add(OC * IC), dinp_add(N * IC), dinp_set(N * IC);
  fill_normal(inp.data, 11);
  fill_normal(w.data, 12);
  fill_normal(dout.data, 13);
  fill_normal(dw_add.data, 14);
  Buffer<T> dw_set = dw_add;
  dinp_set.data.assign(N * IC, std::numeric_limits<T>::quiet_NaN());
  ops::linear_backward(dinp_add.tensor({N, IC}), dw_add.tensor({OC, IC}), dout.tensor({N, OC}), inp.tensor({N, IC}),
                       w.tensor({OC, IC}), precision);
  ops::linear_backward(dinp_set.tensor({N, IC}), dw_set.tensor({OC, IC}), dout.tensor({N, OC}), inp.tensor({N, IC}),
                       w.tensor({OC, IC}), precision, ops::InputGrad::Overwrite);
  EXPECT_EQ(dinp_set.data, dinp_add.data);
  EXPECT_EQ(dw_set.data, dw_add.data);
}

TEST(Linear, OverwriteIgnoresWhatDinpHeld) {
  check_linear_overwrite<float>(ops::MatmulPrecision::Fp32);
  check_linear_overwrite<double>(ops::MatmulPrecision::Fp32);
  check_linear_overwrite<float>(ops::MatmulPrecision::Bf16);
}

// linear_forward_residual gives bitwise the product written out and then axpby'd onto the residual (the
// unfused residual add it replaces), whatever out held (NaN here), and equals the sum in double within
// rounding; in f32, f64, with bf16 matmuls and with a bf16 input next to f32 out and residual.
template <typename T, typename TIn = T>
void check_linear_residual(ops::MatmulPrecision precision) {
  const int64_t N = 67, IC = 33, OC = 29;
  const double alpha = 0.37, beta = 1.25;
  Buffer<T> w(OC * IC), residual(N * OC), product(N * OC), fused(N * OC);
  fill_normal(w.data, 21);
  fill_normal(residual.data, 22);
  std::vector<float> inp_values(static_cast<size_t>(N * IC));
  fill_normal(inp_values, 23);
  std::vector<TIn> inp = stored_as<TIn>(inp_values);
  fused.data.assign(N * OC, std::numeric_limits<T>::quiet_NaN());
  ops::linear_forward(product.tensor({N, OC}), host_tensor(inp, {N, IC}), w.tensor({OC, IC}), precision);
  Buffer<T> unfused = product;
  ops::axpby(unfused.tensor({N, OC}), beta, residual.tensor({N, OC}), alpha, product.tensor({N, OC}));
  ops::linear_forward_residual(fused.tensor({N, OC}), host_tensor(inp, {N, IC}), w.tensor({OC, IC}), alpha,
                               residual.tensor({N, OC}), beta, precision);
  EXPECT_EQ(fused.data, unfused.data);
  const double tol = std::is_same_v<T, double> ? 1e-12 : 1e-5;
  for (int64_t i = 0; i < N * OC; ++i) {
    const double want = beta * residual.data[i] + alpha * static_cast<double>(product.data[i]);
    EXPECT_NEAR(fused.data[i], want, tol * (std::abs(want) + 1)) << i;
  }
}

TEST(Linear, ResidualFormIsTheProductThenAxpby) {
  check_linear_residual<float>(ops::MatmulPrecision::Fp32);
  check_linear_residual<double>(ops::MatmulPrecision::Fp32);
  check_linear_residual<float>(ops::MatmulPrecision::Bf16);
  check_linear_residual<float, uint16_t>(ops::MatmulPrecision::Bf16);
}

TEST(Linear, BadResidualFormThrows) {
  const int64_t N = 4, IC = 3, OC = 5;
  Buffer<float> inp(N * IC), w(OC * IC), out(N * OC), residual(N * OC), wide(N * (OC + 1));
  Buffer<double> residual64(N * OC);
  Buffer<uint16_t> out16(N * OC), residual16(N * OC);
  const auto call = [&](const Tensor& o, const Tensor& r) {
    ops::linear_forward_residual(o, inp.tensor({N, IC}), w.tensor({OC, IC}), 1.0, r, 1.0);
  };
  expect_error([&] { call(out.tensor({N, OC}), Tensor()); }, {"linear_forward_residual", "residual"});
  expect_error([&] { call(out.tensor({N, OC}), wide.tensor({N, OC + 1})); }, {"residual has shape"});
  expect_error([&] { call(out.tensor({N, OC}), residual64.tensor({N, OC})); }, {"dtype mismatch"});
  expect_error([&] { call(out16.tensor({N, OC}), residual16.tensor({N, OC})); }, {"f32 or f64", "bf16"});
  expect_error([&] { call(out.tensor({N, OC}), out.tensor({N, OC})); }, {"out and residual overlap"});
  const Tensor shifted(out.data.data() + 1, DType::F32, Device::CPU, {N - 1, OC});
  expect_error(
      [&] {
        ops::linear_forward_residual(shifted, inp.tensor({N, IC}).slice_rows(0, N - 1), w.tensor({OC, IC}), 1.0,
                                     Tensor(out.data.data(), DType::F32, Device::CPU, {N - 1, OC}), 1.0);
      },
      {"overlap"});
}

// Owned tensors of one attention problem in T.
template <typename T>
struct AttnBuffers {
  AttnShape s;
  Buffer<T> q, k, v, att, y, out, dout, dq, dk, dv, datt, dy;
  explicit AttnBuffers(AttnShape s_)
      : s(s_),
        q(s.B * s.NH * s.T * s.HS),
        k(s.B * s.KV * s.T * s.HS),
        v(k.data.size()),
        att(s.B * s.NH * s.T * s.T),
        y(q.data.size()),
        out(q.data.size()),
        dout(q.data.size()),
        dq(q.data.size()),
        dk(k.data.size()),
        dv(k.data.size()),
        datt(att.data.size()),
        dy(q.data.size()) {}
  Tensor heads(Buffer<T>& b) { return b.tensor({s.B, s.NH, s.T, s.HS}); }
  Tensor groups(Buffer<T>& b) { return b.tensor({s.B, s.KV, s.T, s.HS}); }
  Tensor scores(Buffer<T>& b) { return b.tensor({s.B, s.NH, s.T, s.T}); }
  Tensor tokens(Buffer<T>& b) { return b.tensor({s.B, s.T, s.NH * s.HS}); }
  void forward() {
    ops::attention_forward(tokens(out), scores(att), heads(y), heads(q), groups(k), groups(v));
  }
  // Backward with every output and scratch buffer starting as NaN, to check (=) semantics.
  void backward() {
    for (auto* b : {&dq, &dk, &dv, &datt, &dy})
      std::fill(b->data.begin(), b->data.end(), static_cast<T>(kNaN));
    ops::attention_backward(heads(dq), groups(dk), groups(dv), scores(datt), heads(dy), tokens(dout),
                            scores(att), heads(q), groups(k), groups(v));
  }
  void randomize(uint64_t seed) {
    fill_normal(q.data, seed);
    fill_normal(k.data, seed + 1);
    fill_normal(v.data, seed + 2);
    fill_normal(dout.data, seed + 3);
  }
};

void check_attention_gradients(AttnShape s) {
  AttnBuffers<double> a(s);
  a.randomize(7);
  auto loss = [&] {
    a.forward();
    return dot(a.out.data, a.dout.data);
  };
  loss();
  a.backward();
  // The loss sums ~B T NH HS terms of O(1), so round-off in the differences is ~1e-9: atol 1e-7 leaves
  // margin for tiny gradients (e.g. the last key, seen only by the last query).
  const double h = 1e-5, rtol = 1e-5, atol = 1e-7;
  expect_gradient_matches(loss, a.q.data, a.dq.data, "dq", h, rtol, atol);
  expect_gradient_matches(loss, a.k.data, a.dk.data, "dk", h, rtol, atol);
  expect_gradient_matches(loss, a.v.data, a.dv.data, "dv", h, rtol, atol);
}

TEST(Attention, GradientMatchesFiniteDifferencesGQA) { check_attention_gradients({2, 5, 4, 2, 4}); }
// T = 70 crosses the kernel's 64-row blocks; NH = 2 heads share one group.
TEST(Attention, GradientMatchesFiniteDifferencesLongT) { check_attention_gradients({1, 70, 2, 1, 3}); }

TEST(SplitHeads, GradientMatchesFiniteDifferences) {
  const AttnShape s{2, 5, 4, 2, 4};
  AttnBuffers<double> a(s);
  const int64_t W = (s.NH + 2 * s.KV) * s.HS;
  Buffer<double> qkv(s.B * s.T * W), dqkv(qkv.data.size()), rq(a.q.data.size()), rk(a.k.data.size()),
      rv(a.v.data.size());
  fill_normal(qkv.data, 1);
  fill_normal(rq.data, 2);
  fill_normal(rk.data, 3);
  fill_normal(rv.data, 4);
  auto loss = [&] {
    ops::split_heads_forward(a.heads(a.q), a.groups(a.k), a.groups(a.v), qkv.tensor({s.B, s.T, W}));
    return dot(a.q.data, rq.data) + dot(a.k.data, rk.data) + dot(a.v.data, rv.data);
  };
  std::fill(dqkv.data.begin(), dqkv.data.end(), kNaN);
  ops::split_heads_backward(dqkv.tensor({s.B, s.T, W}), a.heads(rq), a.groups(rk), a.groups(rv));
  expect_gradient_matches(loss, qkv.data, dqkv.data, "dqkv");
  // Head h of token t sits at qkv[b, t, h * HS : (h + 1) * HS].
  loss();
  EXPECT_EQ(a.q.data[((1 * s.NH + 3) * s.T + 2) * s.HS + 1], qkv.data[(1 * s.T + 2) * W + 3 * s.HS + 1]);
}

// split_heads with RoPE tables against split_heads, then rope_forward on q and k: bit for bit. Its backward
// against rope_backward on copies of dq and dk, then split_heads_backward: bit for bit, and dq, dk are
// left as they were. T is float, double or uint16_t (bf16 bits next to an f32 table).
template <typename T>
void check_split_heads_with_rope(AttnShape s) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype_of<T>()) << " " << s);
  using S = compute_type<T>;
  const int64_t W = s.qkv_width(), nq = s.q_numel(), nk = s.kv_numel();
  const HostRopeTable<S> rope(s, 100.0);
  const auto values = [](int64_t n, uint64_t seed) { return stored_as<T>(random_buffer<float>(n, seed).data); };
  const auto heads = [&](std::vector<T>& b) { return host_tensor(b, {s.B, s.NH, s.T, s.HS}); };
  const auto groups = [&](std::vector<T>& b) { return host_tensor(b, {s.B, s.KV, s.T, s.HS}); };
  const auto tokens = [&](std::vector<T>& b) { return host_tensor(b, {s.B, s.T, W}); };

  std::vector<T> qkv = values(s.B * s.T * W, 1), q(nq), k(nk), v(nk), q_ref(nq), k_ref(nk), v_ref(nk);
  ops::split_heads_forward(heads(q), groups(k), groups(v), tokens(qkv), rope.cos, rope.sin);
  ops::split_heads_forward(heads(q_ref), groups(k_ref), groups(v_ref), tokens(qkv));
  const std::vector<T> q_unrotated = q_ref;
  ops::rope_forward(heads(q_ref), rope.cos, rope.sin);
  ops::rope_forward(groups(k_ref), rope.cos, rope.sin);
  EXPECT_EQ(q, q_ref);
  EXPECT_EQ(k, k_ref);
  EXPECT_EQ(v, v_ref);
  EXPECT_NE(q, q_unrotated) << "nothing was rotated";

  std::vector<T> dq = values(nq, 2), dk = values(nk, 3), dv = values(nk, 4), dqkv(qkv.size()),
                 dqkv_ref(qkv.size());
  const std::vector<T> dq_in = dq, dk_in = dk;
  ops::split_heads_backward(tokens(dqkv), heads(dq), groups(dk), groups(dv), rope.cos, rope.sin);
  EXPECT_EQ(dq, dq_in);
  EXPECT_EQ(dk, dk_in);
  ops::rope_backward(heads(dq), rope.cos, rope.sin);
  ops::rope_backward(groups(dk), rope.cos, rope.sin);
  ops::split_heads_backward(tokens(dqkv_ref), heads(dq), groups(dk), groups(dv));
  EXPECT_EQ(dqkv, dqkv_ref);
}

TEST(SplitHeads, WithRopeIsSplitThenRope) {
  check_split_heads_with_rope<float>({2, 5, 4, 2, 8});
  check_split_heads_with_rope<double>({2, 5, 4, 2, 8});
  check_split_heads_with_rope<uint16_t>({2, 5, 4, 2, 8});
  check_split_heads_with_rope<float>({1, 3, 3, 1, 2});
  check_split_heads_with_rope<uint16_t>({3, 9, 6, 3, 6});
}

TEST(SplitHeads, BadRopeTablesThrow) {
  const AttnShape s{1, 4, 2, 1, 4};
  const int64_t W = (s.NH + 2 * s.KV) * s.HS;
  std::vector<float> q(s.NH * s.T * s.HS), k(s.KV * s.T * s.HS), v(k.size()), qkv(s.T * W), cos(s.T * 2),
      sin(s.T * 2), long_table(s.T * 4);
  std::vector<double> cos64(cos.size());
  const auto split = [&](const Tensor& c, const Tensor& sn) {
    ops::split_heads_forward(host_tensor(q, {1, s.NH, s.T, s.HS}), host_tensor(k, {1, s.KV, s.T, s.HS}),
                             host_tensor(v, {1, s.KV, s.T, s.HS}), host_tensor(qkv, {1, s.T, W}), c, sn);
  };
  expect_error([&] { split(host_tensor(cos, {s.T, 2}), Tensor()); }, {"split_heads_forward", "rope_sin"});
  expect_error([&] { split(host_tensor(cos, {s.T, 2}), host_tensor(long_table, {s.T, 4})); },
               {"split_heads_forward", "rope_sin", "(4, 4)", "(4, 2)"});
  expect_error([&] { split(host_tensor(cos64, {s.T, 2}), host_tensor(sin, {s.T, 2})); },
               {"split_heads_forward", "rope_cos", "f64"});
  std::vector<float> q3(s.NH * s.T * 3), k3(s.KV * s.T * 3), v3(k3.size()), qkv3(s.T * 12), table3(s.T);
  expect_error(
      [&] {
        ops::split_heads_backward(host_tensor(qkv3, {1, s.T, 12}), host_tensor(q3, {1, s.NH, s.T, 3}),
                                  host_tensor(k3, {1, s.KV, s.T, 3}), host_tensor(v3, {1, s.KV, s.T, 3}),
                                  host_tensor(table3, {s.T, 1}), host_tensor(table3, {s.T, 1}));
      },
      {"split_heads_backward", "even head size", "3"});
}

// Largest |a - b| relative to the largest |b|.
template <typename T>
double max_rel_diff(const std::vector<T>& a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

TEST(Attention, F32MatchesF64) {
  const AttnShape s{2, 150, 4, 2, 16};
  AttnBuffers<float> f(s);
  AttnBuffers<double> d(s);
  d.randomize(21);
  f.randomize(21);
  f.forward();
  d.forward();
  f.backward();
  d.backward();
  EXPECT_LT(max_rel_diff(f.out.data, d.out.data), 1e-5);
  EXPECT_LT(max_rel_diff(f.att.data, d.att.data), 1e-5);
  EXPECT_LT(max_rel_diff(f.dq.data, d.dq.data), 1e-5);
  EXPECT_LT(max_rel_diff(f.dk.data, d.dk.data), 1e-5);
  EXPECT_LT(max_rel_diff(f.dv.data, d.dv.data), 1e-5);
}

template <typename T>
void check_causal_probabilities() {
  const AttnShape s{2, 130, 4, 1, 8};
  AttnBuffers<T> a(s);
  a.randomize(5);
  std::fill(a.att.data.begin(), a.att.data.end(), static_cast<T>(kNaN));
  a.forward();
  for (int64_t row = 0; row < s.B * s.NH * s.T; ++row) {
    const int64_t i = row % s.T;
    const T* p = a.att.data.data() + row * s.T;
    double sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
      ASSERT_GE(p[j], T(0));
      sum += p[j];
    }
    for (int64_t j = i + 1; j < s.T; ++j) ASSERT_EQ(p[j], T(0)) << "row " << row << " col " << j;
    ASSERT_NEAR(sum, 1.0, 10 * tolerance<T>()) << "row " << row;
  }
}

TEST(Attention, CausalProbabilitiesF32) { check_causal_probabilities<float>(); }
TEST(Attention, CausalProbabilitiesF64) { check_causal_probabilities<double>(); }

TEST(Shapes, BadShapesThrow) {
  Buffer<float> A(6), B(6), C(4), D(9);
  Buffer<double> Cd(4);
  EXPECT_THROW(ops::gemm(false, false, 2, 2, 3, 1, A.tensor({2, 3}), B.tensor({3, 2}), 0, D.tensor({3, 3})),
               Error);
  EXPECT_THROW(ops::gemm(false, false, 2, 2, 3, 1, A.tensor({3, 2}), B.tensor({3, 2}), 0, C.tensor({2, 2})),
               Error);
  EXPECT_THROW(ops::gemm(false, false, 2, 2, 3, 1, A.tensor({2, 3}), B.tensor({3, 2}), 0, Cd.tensor({2, 2})),
               Error);
  EXPECT_THROW(ops::linear_forward(C.tensor({2, 2}), A.tensor({2, 3}), B.tensor({3, 2})), Error);
  EXPECT_THROW(ops::linear_forward(D.tensor({3, 3}), A.tensor({2, 3}), D.tensor({3, 3})), Error);

  AttnBuffers<float> a({1, 4, 4, 2, 2});
  EXPECT_THROW(ops::attention_forward(a.tokens(a.out), a.scores(a.att), a.heads(a.y), a.heads(a.q),
                                      a.heads(a.dq), a.groups(a.v)),
               Error);  // k has NH heads but v has KV groups
  Buffer<float> k3(1 * 3 * 4 * 2);
  EXPECT_THROW(ops::attention_forward(a.tokens(a.out), a.scores(a.att), a.heads(a.y), a.heads(a.q),
                                      k3.tensor({1, 3, 4, 2}), k3.tensor({1, 3, 4, 2})),
               Error);  // NH = 4 not a multiple of KV = 3
  EXPECT_THROW(ops::attention_forward(a.heads(a.out), a.scores(a.att), a.heads(a.y), a.heads(a.q),
                                      a.groups(a.k), a.groups(a.v)),
               Error);  // out must be (B, T, NH * HS)
  EXPECT_THROW(
      ops::attention_backward(a.heads(a.dq), a.groups(a.dk), a.groups(a.dv), a.heads(a.y), a.heads(a.dy),
                              a.tokens(a.dout), a.scores(a.att), a.heads(a.q), a.groups(a.k), a.groups(a.v)),
      Error);  // datt must be (B, NH, T, T)
  Buffer<float> qkv(1 * 4 * 7 * 2);
  EXPECT_THROW(ops::split_heads_forward(a.heads(a.q), a.groups(a.k), a.groups(a.v), qkv.tensor({1, 4, 14})),
               Error);  // qkv must be (B, T, (NH + 2 KV) HS) = (1, 4, 16)
  Tensor on_gpu = a.heads(a.q);
  on_gpu.device = Device::CUDA;
  EXPECT_THROW(ops::attention_forward(a.tokens(a.out), a.scores(a.att), a.heads(a.y), on_gpu, a.groups(a.k),
                                      a.groups(a.v)),
               Error);  // mixed devices
}

}  // namespace
}  // namespace prores
