// CPU<->CUDA parity tests for the GEMM, linear and attention ops (ops/gemm.h, linear.h, attention.h) through
// the public dispatch, plus the CUDA strided batched GEMM (ops/cuda/gemm.h) against per-matrix CPU GEMMs.
// Random inputs, odd sizes, every output and scratch buffer poisoned with NaN before each GPU run. f32
// within 1e-5 relative; bf16 inputs (rounded to bf16 first, so the CPU f32 reference sees the same values)
// within 2e-2. Every test skips with "no CUDA device" when the machine has no GPU, and when the build has
// no CUDA path (the bodies are then not compiled).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/rope.h"
#include "cuda_test_util.h"
#include "test_util.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cpu/gemm.h"
#include "ops/cuda/device.h"
#include "ops/cuda/gemm.h"
#endif

namespace prores {
namespace {

using test::AttnShape;
using test::expect_error;

#if defined(PRORES_WITH_CUDA)

using test::DeviceBuffer;
using test::expect_close;
using test::fill_normal;
using test::nan_of;
using test::host_tensor;
using test::HostRopeTable;
using test::stored_as;
using test::widened;

constexpr double kF32Rtol = 1e-5;
constexpr double kBf16Rtol = 2e-2;

// n random N(0, 1) floats, exactly representable in T (rounded through bf16 when T is uint16_t).
template <typename T = float>
std::vector<float> random_floats(int64_t n, uint64_t seed) {
  std::vector<float> x(static_cast<size_t>(n));
  fill_normal(x, seed);
  return widened(stored_as<T>(x));
}

// expect_close with one scale for the whole tensor: the largest |want| (at least 1e-30).
void expect_close_to_max(const std::vector<float>& got, const std::vector<float>& want, double rtol,
                         const std::string& what) {
  double max_abs = 1e-30;
  for (float w : want) max_abs = std::max(max_abs, std::abs(static_cast<double>(w)));
  expect_close(got, want, std::vector<double>(want.size(), max_abs), rtol, what);
}

// One ops::gemm call on CUDA with TA inputs and a TC output against the CPU f32 gemm on the same values,
// values that TValues represents exactly. The allowed error of C[i, j] scales with
// |alpha| sum_k |A[i, k] B[k, j]| + |beta C[i, j]|. Both sides multiply in `precision`.
template <typename TA, typename TC, typename TValues = TA>
void check_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double beta, uint64_t seed, double rtol,
                ops::MatmulPrecision precision) {
  SCOPED_TRACE(::testing::Message() << "ta " << ta << " tb " << tb << " beta " << beta << " M " << M << " N "
                                    << N << " K " << K);
  const double alpha = 0.75;
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  std::vector<float> a = random_floats<TValues>(M * K, seed), b = random_floats<TValues>(K * N, seed + 1),
                     c = random_floats<TC>(M * N, seed + 2);
  std::vector<double> scale(c.size());
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double x = ta ? a[k * lda + i] : a[i * lda + k], y = tb ? b[j * ldb + k] : b[k * ldb + j];
        s += std::abs(x * y);
      }
      scale[i * N + j] = std::abs(alpha) * s + std::abs(beta * c[i * N + j]) + 1e-30;
    }
  }
  DeviceBuffer<TA> d_a(stored_as<TA>(a)), d_b(stored_as<TA>(b));
  DeviceBuffer<TC> d_c(stored_as<TC>(c));
  if (beta == 0) d_c.poison();
  ops::gemm(ta, tb, M, N, K, alpha, d_a.tensor({ta ? K : M, lda}), d_b.tensor({tb ? N : K, ldb}), beta,
            d_c.tensor({M, N}), precision);
  ops::gemm(ta, tb, M, N, K, alpha, host_tensor(a, {ta ? K : M, lda}), host_tensor(b, {tb ? N : K, ldb}), beta,
            host_tensor(c, {M, N}), precision);
  expect_close(widened(d_c.download()), c, scale, rtol, "gemm C");
}

// All four transpose combinations with beta 0 (C poisoned) and 1 (+=), at odd sizes.
template <typename TA, typename TC, typename TValues = TA>
void check_all_gemm_variants(double rtol, ops::MatmulPrecision precision = ops::MatmulPrecision::Fp32) {
  uint64_t seed = 100;
  using Sizes = std::tuple<int64_t, int64_t, int64_t>;
  for (const auto& [M, N, K] : {Sizes{37, 53, 29}, Sizes{1, 7, 3}, Sizes{129, 70, 301}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double beta : {0.0, 1.0}) check_gemm<TA, TC, TValues>(ta, tb, M, N, K, beta, seed += 3, rtol, precision);
}

// cuda::gemm_strided_batched with padded leading dimensions and batch strides against cpu::gemm per matrix;
// C's padding (between rows and between matrices) must stay NaN.
template <typename TA>
void check_strided_batched(bool ta, bool tb, double rtol) {
  SCOPED_TRACE(::testing::Message() << "ta " << ta << " tb " << tb);
  const int64_t M = 37, N = 21, K = 19, batch = 3;
  const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
  const int64_t stride_a = (ta ? K : M) * lda + 7, stride_b = (tb ? N : K) * ldb + 1, stride_c = M * ldc + 11;
  std::vector<float> a = random_floats<TA>(batch * stride_a, 1), b = random_floats<TA>(batch * stride_b, 2);
  DeviceBuffer<TA> d_a(stored_as<TA>(a)), d_b(stored_as<TA>(b));
  DeviceBuffer<float> d_c(batch * stride_c);
  d_c.poison();
  ops::cuda::gemm_strided_batched<TA, float>(ta, tb, M, N, K, -1.5f, d_a.data(), lda, stride_a, d_b.data(), ldb,
                                             stride_b, 0.0f, d_c.data(), ldc, stride_c, batch);
  const std::vector<float> got = d_c.download();
  std::vector<float> want(got.size(), std::numeric_limits<float>::quiet_NaN());
  for (int64_t p = 0; p < batch; ++p)
    ops::cpu::gemm<float>(ta, tb, M, N, K, -1.5f, a.data() + p * stride_a, lda, b.data() + p * stride_b, ldb,
                          0.0f, want.data() + p * stride_c, ldc);
  double max_abs = 0;
  for (float w : want) max_abs = std::isnan(w) ? max_abs : std::max(max_abs, std::abs(static_cast<double>(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(got[i])) << "padding element " << i << " was written: " << got[i];
    } else {
      ASSERT_LE(std::abs(got[i] - want[i]), rtol * max_abs)
          << "element " << i << ": cuda " << got[i] << ", cpu " << want[i];
    }
  }
}

// Linear forward and backward on CUDA in T (weight gradient in TW) against the CPU f32 op on the same
// values (which TValues represents exactly). dinp and dweight start from the same random values on both
// sides ((+=)); out is poisoned. Both sides multiply in `precision`.
template <typename T, typename TW, typename TValues = T>
void check_linear(double rtol, ops::MatmulPrecision precision = ops::MatmulPrecision::Fp32) {
  const int64_t B = 2, Tn = 37, IC = 29, OC = 53, N = B * Tn;
  std::vector<float> inp = random_floats<TValues>(N * IC, 1), w = random_floats<TValues>(OC * IC, 2),
                     dout = random_floats<TValues>(N * OC, 3), dinp = random_floats<T>(N * IC, 4),
                     dw = random_floats<TW>(OC * IC, 5), out(N * OC);
  DeviceBuffer<T> d_inp(stored_as<T>(inp)), d_w(stored_as<T>(w)), d_dout(stored_as<T>(dout)),
      d_dinp(stored_as<T>(dinp)), d_out(N * OC);
  DeviceBuffer<TW> d_dw(stored_as<TW>(dw));
  d_out.poison();
  ops::linear_forward(d_out.tensor({B, Tn, OC}), d_inp.tensor({B, Tn, IC}), d_w.tensor({OC, IC}), precision);
  ops::linear_backward(d_dinp.tensor({B, Tn, IC}), d_dw.tensor({OC, IC}), d_dout.tensor({B, Tn, OC}),
                       d_inp.tensor({B, Tn, IC}), d_w.tensor({OC, IC}), precision);
  ops::linear_forward(host_tensor(out, {B, Tn, OC}), host_tensor(inp, {B, Tn, IC}), host_tensor(w, {OC, IC}),
                      precision);
  ops::linear_backward(host_tensor(dinp, {B, Tn, IC}), host_tensor(dw, {OC, IC}), host_tensor(dout, {B, Tn, OC}),
                       host_tensor(inp, {B, Tn, IC}), host_tensor(w, {OC, IC}), precision);
  expect_close_to_max(widened(d_out.download()), out, rtol, "linear out");
  expect_close_to_max(widened(d_dinp.download()), dinp, rtol, "linear dinp");
  expect_close_to_max(widened(d_dw.download()), dw, rtol, "linear dweight");
}

// Linear forward and backward with bf16 activations (TAct = uint16_t) or f32 ones, a weight stored as TW
// (f32, or its bf16 rounding: the model's bf16 copy) and an f32 dweight (the bf16-matmul family) on CUDA
// against the CPU's same family on the same values: the operands are rounded alike, so only the fp32
// summation order and, for bf16 results, a rounding step apart differ. With InputGrad::Overwrite dinp is
// poisoned on both devices first.
template <typename TAct, typename TW = float>
void check_linear_bf16_family(double rtol, ops::InputGrad dinp_write = ops::InputGrad::Accumulate) {
  const int64_t B = 2, Tn = 37, IC = 29, OC = 53, N = B * Tn;
  const auto P = ops::MatmulPrecision::Bf16;
  std::vector<TAct> inp = stored_as<TAct>(random_floats(N * IC, 1)), dout = stored_as<TAct>(random_floats(N * OC, 3)),
                    dinp = stored_as<TAct>(random_floats(N * IC, 4)), out(N * OC);
  std::vector<TW> w = stored_as<TW>(random_floats(OC * IC, 2));
  std::vector<float> dw = random_floats(OC * IC, 5);
  DeviceBuffer<TAct> d_inp(inp), d_dout(dout), d_dinp(dinp), d_out(N * OC);
  DeviceBuffer<TW> d_w(w);
  DeviceBuffer<float> d_dw(dw);
  d_out.poison();
  if (dinp_write == ops::InputGrad::Overwrite) {
    d_dinp.poison();
    dinp = stored_as<TAct>(std::vector<float>(dinp.size(), std::numeric_limits<float>::quiet_NaN()));
  }
  ops::linear_forward(d_out.tensor({N, OC}), d_inp.tensor({N, IC}), d_w.tensor({OC, IC}), P);
  ops::linear_backward(d_dinp.tensor({N, IC}), d_dw.tensor({OC, IC}), d_dout.tensor({N, OC}), d_inp.tensor({N, IC}),
                       d_w.tensor({OC, IC}), P, dinp_write);
  ops::linear_forward(host_tensor(out, {N, OC}), host_tensor(inp, {N, IC}), host_tensor(w, {OC, IC}), P);
  ops::linear_backward(host_tensor(dinp, {N, IC}), host_tensor(dw, {OC, IC}), host_tensor(dout, {N, OC}),
                       host_tensor(inp, {N, IC}), host_tensor(w, {OC, IC}), P, dinp_write);
  expect_close_to_max(widened(d_out.download()), widened(out), rtol, "linear out");
  expect_close_to_max(widened(d_dinp.download()), widened(dinp), rtol, "linear dinp");
  expect_close_to_max(d_dw.download(), dw, kF32Rtol, "linear dweight");
}

// linear_forward_residual on CUDA (the sum formed in cuBLASLt's epilogue, out poisoned first) against the
// CPU's product-then-axpby on the same values: exact f32, bf16 matmuls on f32 tensors, and a bf16 input or
// weight (the model's bf16 activations and weight copy) next to the f32 residual stream, which is only read.
template <typename TIn, typename TW>
void check_linear_residual(ops::MatmulPrecision precision) {
  const int64_t N = 74, IC = 29, OC = 53;
  const double alpha = 0.37, beta = 1.25;
  std::vector<TIn> inp = stored_as<TIn>(random_floats(N * IC, 31));
  std::vector<TW> w = stored_as<TW>(random_floats(OC * IC, 32));
  std::vector<float> residual = random_floats(N * OC, 33), out(N * OC);
  DeviceBuffer<TIn> d_inp(inp);
  DeviceBuffer<TW> d_w(w);
  DeviceBuffer<float> d_residual(residual), d_out(N * OC);
  d_out.poison();
  ops::linear_forward_residual(d_out.tensor({N, OC}), d_inp.tensor({N, IC}), d_w.tensor({OC, IC}), alpha,
                               d_residual.tensor({N, OC}), beta, precision);
  ops::linear_forward_residual(host_tensor(out, {N, OC}), host_tensor(inp, {N, IC}), host_tensor(w, {OC, IC}),
                               alpha, host_tensor(residual, {N, OC}), beta, precision);
  expect_close_to_max(d_out.download(), out, kF32Rtol, "linear residual out");
  EXPECT_EQ(d_residual.download(), residual);
}

// split_heads forward and backward in T on CUDA against the CPU op on the same values: a permutation, so
// the results must agree exactly. bf16 (uint16_t) is compared with the CPU f32 permutation of its values.
template <typename T>
void check_split_heads(AttnShape s) {
  using Host = std::conditional_t<std::is_same_v<T, uint16_t>, float, T>;
  const int64_t W = s.qkv_width(), nq = s.q_numel(), nk = s.kv_numel();
  const auto random_host = [](int64_t n, uint64_t seed) {
    std::vector<float> x = random_floats<T>(n, seed);
    return std::vector<Host>(x.begin(), x.end());
  };
  const auto device = [](const std::vector<Host>& x) {
    return stored_as<T>(std::vector<float>(x.begin(), x.end()));
  };
  std::vector<Host> qkv = random_host(s.B * s.T * W, 1), dq = random_host(nq, 2), dk = random_host(nk, 3),
                    dv = random_host(nk, 4);
  std::vector<Host> q(nq), k(nk), v(nk), dqkv(qkv.size());
  DeviceBuffer<T> d_qkv(device(qkv)), d_dq(device(dq)), d_dk(device(dk)), d_dv(device(dv)), d_q(nq), d_k(nk),
      d_v(nk), d_dqkv(s.B * s.T * W);
  for (auto* b : {&d_q, &d_k, &d_v, &d_dqkv}) b->poison();
  const auto heads = [&](auto& b) { return b.tensor({s.B, s.NH, s.T, s.HS}); };
  const auto groups = [&](auto& b) { return b.tensor({s.B, s.KV, s.T, s.HS}); };
  ops::split_heads_forward(heads(d_q), groups(d_k), groups(d_v), d_qkv.tensor({s.B, s.T, W}));
  ops::split_heads_backward(d_dqkv.tensor({s.B, s.T, W}), heads(d_dq), groups(d_dk), groups(d_dv));
  ops::split_heads_forward(host_tensor(q, {s.B, s.NH, s.T, s.HS}), host_tensor(k, {s.B, s.KV, s.T, s.HS}),
                           host_tensor(v, {s.B, s.KV, s.T, s.HS}), host_tensor(qkv, {s.B, s.T, W}));
  ops::split_heads_backward(host_tensor(dqkv, {s.B, s.T, W}), host_tensor(dq, {s.B, s.NH, s.T, s.HS}),
                            host_tensor(dk, {s.B, s.KV, s.T, s.HS}), host_tensor(dv, {s.B, s.KV, s.T, s.HS}));
  EXPECT_EQ(d_q.download(), device(q)) << "q";
  EXPECT_EQ(d_k.download(), device(k)) << "k";
  EXPECT_EQ(d_v.download(), device(v)) << "v";
  EXPECT_EQ(d_dqkv.download(), device(dqkv)) << "dqkv";
}

// split_heads with RoPE tables, forward and backward in T on CUDA against the CPU op (itself bitwise
// split_heads then rope: test_ops_gemm_attention), outputs poisoned first: f32 and f64 within 1e-6 of each
// tensor's largest value (multiply-adds may contract differently), bf16 within one bf16 unit.
template <typename T>
void check_split_heads_with_rope(AttnShape s) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype_of<T>()) << " " << s);
  using S = compute_type<T>;
  const int64_t W = s.qkv_width(), nq = s.q_numel(), nk = s.kv_numel();
  const int64_t half = s.HS / 2;
  const HostRopeTable<S> rope(s, 10000.0);
  const auto values = [](int64_t n, uint64_t seed) { return stored_as<T>(random_floats<T>(n, seed)); };
  std::vector<T> qkv = values(s.B * s.T * W, 21), dq = values(nq, 22), dk = values(nk, 23), dv = values(nk, 24);
  std::vector<T> q(nq), k(nk), v(nk), dqkv(qkv.size());
  DeviceBuffer<S> d_cos(rope.cos_values), d_sin(rope.sin_values);
  DeviceBuffer<T> d_qkv(qkv), d_dq(dq), d_dk(dk), d_dv(dv), d_q(nq), d_k(nk), d_v(nk), d_dqkv(s.B * s.T * W);
  for (auto* b : {&d_q, &d_k, &d_v, &d_dqkv}) b->poison();
  const auto heads = [&](auto& b) { return b.tensor({s.B, s.NH, s.T, s.HS}); };
  const auto groups = [&](auto& b) { return b.tensor({s.B, s.KV, s.T, s.HS}); };
  const Tensor dcos = d_cos.tensor({s.T, half}), dsin = d_sin.tensor({s.T, half});
  ops::split_heads_forward(heads(d_q), groups(d_k), groups(d_v), d_qkv.tensor({s.B, s.T, W}), dcos, dsin);
  ops::split_heads_backward(d_dqkv.tensor({s.B, s.T, W}), heads(d_dq), groups(d_dk), groups(d_dv), dcos, dsin);
  ops::split_heads_forward(host_tensor(q, {s.B, s.NH, s.T, s.HS}), host_tensor(k, {s.B, s.KV, s.T, s.HS}),
                           host_tensor(v, {s.B, s.KV, s.T, s.HS}), host_tensor(qkv, {s.B, s.T, W}), rope.cos,
                           rope.sin);
  ops::split_heads_backward(host_tensor(dqkv, {s.B, s.T, W}), host_tensor(dq, {s.B, s.NH, s.T, s.HS}),
                            host_tensor(dk, {s.B, s.KV, s.T, s.HS}), host_tensor(dv, {s.B, s.KV, s.T, s.HS}),
                            rope.cos, rope.sin);
  const auto expect_match = [](const std::vector<T>& got, const std::vector<T>& want, const char* what) {
    if constexpr (std::is_same_v<T, uint16_t>) test::expect_bf16_rounding_of(got, widened(want), what);
    else expect_close_to_max(widened(got), widened(want), 1e-6, what);
  };
  expect_match(d_q.download(), q, "q");
  expect_match(d_k.download(), k, "k");
  EXPECT_EQ(d_v.download(), v) << "v";
  expect_match(d_dqkv.download(), dqkv, "dqkv");
  EXPECT_EQ(d_dq.download(), dq) << "dq must be left as it was";
}

// attention_forward and attention_backward (f32) on CUDA against the CPU ops: out, att (exact zeros above
// the diagonal), dq, dk, dv within kF32Rtol of each tensor's largest value. Outputs and scratch are
// poisoned before each GPU call.
void check_attention(AttnShape s) {
  SCOPED_TRACE(::testing::Message() << s);
  const int64_t nq = s.q_numel(), nk = s.kv_numel(), na = s.B * s.NH * s.T * s.T;
  std::vector<float> q = random_floats(nq, 11), k = random_floats(nk, 12), v = random_floats(nk, 13),
                     dout = random_floats(nq, 14);
  std::vector<float> out(nq), att(na), y(nq), dq(nq), dk(nk), dv(nk), datt(na), dy(nq);
  DeviceBuffer<float> d_q(q), d_k(k), d_v(v), d_dout(dout), d_out(nq), d_att(na), d_y(nq), d_dq(nq), d_dk(nk),
      d_dv(nk), d_datt(na), d_dy(nq);
  const auto heads = [&](auto& b) { return b.tensor({s.B, s.NH, s.T, s.HS}); };
  const auto groups = [&](auto& b) { return b.tensor({s.B, s.KV, s.T, s.HS}); };
  const auto scores = [&](auto& b) { return b.tensor({s.B, s.NH, s.T, s.T}); };
  const auto tokens = [&](auto& b) { return b.tensor({s.B, s.T, s.NH * s.HS}); };
  for (auto* b : {&d_out, &d_att, &d_y}) b->poison();
  ops::attention_forward(tokens(d_out), scores(d_att), heads(d_y), heads(d_q), groups(d_k), groups(d_v));
  for (auto* b : {&d_dq, &d_dk, &d_dv, &d_datt, &d_dy}) b->poison();
  ops::attention_backward(heads(d_dq), groups(d_dk), groups(d_dv), scores(d_datt), heads(d_dy),
                          tokens(d_dout), scores(d_att), heads(d_q), groups(d_k), groups(d_v));

  const auto h_heads = [&](std::vector<float>& b) { return host_tensor(b, {s.B, s.NH, s.T, s.HS}); };
  const auto h_groups = [&](std::vector<float>& b) { return host_tensor(b, {s.B, s.KV, s.T, s.HS}); };
  const auto h_scores = [&](std::vector<float>& b) { return host_tensor(b, {s.B, s.NH, s.T, s.T}); };
  const auto h_tokens = [&](std::vector<float>& b) { return host_tensor(b, {s.B, s.T, s.NH * s.HS}); };
  ops::attention_forward(h_tokens(out), h_scores(att), h_heads(y), h_heads(q), h_groups(k), h_groups(v));
  ops::attention_backward(h_heads(dq), h_groups(dk), h_groups(dv), h_scores(datt), h_heads(dy),
                          h_tokens(dout), h_scores(att), h_heads(q), h_groups(k), h_groups(v));

  const std::vector<float> got_att = d_att.download();
  for (int64_t row = 0; row < s.B * s.NH * s.T; ++row)
    for (int64_t j = row % s.T + 1; j < s.T; ++j)
      ASSERT_EQ(got_att[row * s.T + j], 0.0f) << "att row " << row << " col " << j << " above the diagonal";
  expect_close_to_max(got_att, att, kF32Rtol, "att");
  expect_close_to_max(d_out.download(), out, kF32Rtol, "out");
  expect_close_to_max(d_dq.download(), dq, kF32Rtol, "dq");
  expect_close_to_max(d_dk.download(), dk, kF32Rtol, "dk");
  expect_close_to_max(d_dv.download(), dv, kF32Rtol, "dv");
}

#endif  // PRORES_WITH_CUDA

TEST(CudaGemm, F32MatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_all_gemm_variants<float, float>(kF32Rtol);
#endif
}

TEST(CudaGemm, Bf16InputsF32OutputMatchCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_all_gemm_variants<uint16_t, float>(kBf16Rtol);
#endif
}

TEST(CudaGemm, Bf16InputsBf16OutputMatchCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_all_gemm_variants<uint16_t, uint16_t>(kBf16Rtol);
#endif
}

TEST(CudaGemm, StridedBatchedMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      check_strided_batched<float>(ta, tb, kF32Rtol);
      check_strided_batched<uint16_t>(ta, tb, kBf16Rtol);
    }
  }
#endif
}

TEST(CudaGemm, EmptyInnerDimensionScalesC) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  const std::vector<float> c = random_floats(6, 1);
  DeviceBuffer<float> d_c(c), d_none(1);
  const Tensor empty_a(d_none.data(), DType::F32, Device::CUDA, {2, 0});
  const Tensor empty_b(d_none.data(), DType::F32, Device::CUDA, {0, 3});
  ops::gemm(false, false, 2, 3, 0, 1.0, empty_a, empty_b, 1.0, d_c.tensor({2, 3}));
  EXPECT_EQ(d_c.download(), c) << "beta = 1 keeps C";
  d_c.poison();
  ops::gemm(false, false, 2, 3, 0, 1.0, empty_a, empty_b, 0.0, d_c.tensor({2, 3}));
  EXPECT_EQ(d_c.download(), std::vector<float>(6, 0.0f)) << "beta = 0 zeroes C";
  DeviceBuffer<float> d_in(c);  // a separate beta term: C (=) beta * C_in
  d_c.poison();
  ops::cuda::gemm<float, float>(false, false, 2, 3, 0, 1.0f, d_none.data(), 0, d_none.data(), 3, 2.0f, d_c.data(), 3,
                                false, d_in.data());
  std::vector<float> doubled(c);
  for (float& x : doubled) x *= 2.0f;
  EXPECT_EQ(d_c.download(), doubled) << "beta = 2 with C_in";
  EXPECT_EQ(d_in.download(), c);
#endif
}

TEST(CudaLinear, F32MatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_linear<float, float>(kF32Rtol);
#endif
}

TEST(CudaLinear, Bf16MatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_linear<uint16_t, uint16_t>(kBf16Rtol);
  check_linear<uint16_t, float>(kBf16Rtol);  // fp32 weight-gradient accumulation
#endif
}

// With bf16 matmul precision, f32 GEMMs (cuBLASLt's f32-via-bf16 mode) and linear layers (explicit bf16
// copies of the operands) round only their operands: on values bf16 holds exactly they agree with the CPU.
// The linear layers round to nearest even, as the CPU's bf16 matmuls do, so they agree on any values too
// (cuBLASLt does not document how its f32-via-bf16 mode rounds).
TEST(CudaGemm, Bf16MatmulsRoundOnlyTheOperands) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_all_gemm_variants<float, float, uint16_t>(kF32Rtol, ops::MatmulPrecision::Bf16);
  check_linear<float, float, uint16_t>(kF32Rtol, ops::MatmulPrecision::Bf16);
  check_linear<float, float, float>(kF32Rtol, ops::MatmulPrecision::Bf16);
#endif
}

// bf16 activations next to f32 weights or their bf16 copies (the bf16-matmul family), dinp accumulated or
// overwritten: bf16 results may land one bf16 rounding step apart (2^-8 relative) where the fp32 sums differ
// in their last bits.
TEST(CudaLinear, Bf16ActivationsWithF32WeightsMatchCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_linear_bf16_family<float>(kF32Rtol);
  check_linear_bf16_family<uint16_t>(1e-2);
  check_linear_bf16_family<float, uint16_t>(kF32Rtol);
  check_linear_bf16_family<uint16_t, uint16_t>(1e-2);
  check_linear_bf16_family<float>(kF32Rtol, ops::InputGrad::Overwrite);
  check_linear_bf16_family<uint16_t, uint16_t>(1e-2, ops::InputGrad::Overwrite);
#endif
}

TEST(CudaLinear, ResidualFormMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_linear_residual<float, float>(ops::MatmulPrecision::Fp32);
  check_linear_residual<float, float>(ops::MatmulPrecision::Bf16);
  check_linear_residual<uint16_t, float>(ops::MatmulPrecision::Bf16);
  check_linear_residual<uint16_t, uint16_t>(ops::MatmulPrecision::Bf16);
#endif
}

TEST(CudaSplitHeads, MatchesCpuExactly) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  const AttnShape s{2, 37, 4, 2, 16};
  check_split_heads<float>(s);
  check_split_heads<double>(s);
  check_split_heads<uint16_t>(s);
#endif
}

// Both vector widths: 16-byte packs (HS 16) and single elements (HS 6: three pair positions per head).
TEST(CudaSplitHeads, WithRopeMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  for (const AttnShape s : {AttnShape{2, 37, 4, 2, 16}, AttnShape{3, 19, 3, 1, 6}}) {
    check_split_heads_with_rope<float>(s);
    check_split_heads_with_rope<double>(s);
    check_split_heads_with_rope<uint16_t>(s);
  }
#endif
}

TEST(CudaAttention, GroupedQueryMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_attention({2, 37, 4, 2, 16});
  check_attention({1, 70, 4, 1, 8});  // all heads in one group
  check_attention({2, 1, 2, 2, 4});   // one token, one head per group
#endif
}

TEST(CudaGemmAttention, BadArgumentsThrow) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  std::vector<float> host(16);
  DeviceBuffer<float> d(16);
  DeviceBuffer<double> d64(16);
  DeviceBuffer<uint16_t> d16(16);
  Tensor host_as_cuda(host.data(), DType::F32, Device::CUDA, {4, 4});
  const Tensor m = d.tensor({4, 4}), m64 = d64.tensor({4, 4}), m16 = d16.tensor({4, 4});
  expect_error([&] { ops::gemm(false, false, 4, 4, 4, 1, m, host_as_cuda, 0, m); },
               {"gemm", "B", "not CUDA device memory"});
  expect_error([&] { ops::gemm(false, false, 4, 4, 4, 1, m64, m64, 0, m64); }, {"gemm", "f64"});
  expect_error([&] { ops::gemm(false, false, 4, 4, 4, 1, m, m, 0, m16); }, {"gemm", "dtype mismatch"});
  expect_error([&] { ops::linear_forward(m, host_as_cuda, m); }, {"linear_forward", "not CUDA device memory"});
  // bf16 attention waits for the fused kernel; the tensors alias, but the dtype check comes first.
  const Tensor heads16 = d16.tensor({1, 2, 2, 4});
  DeviceBuffer<uint16_t> att16(8), out16(16);
  expect_error([&] {
    ops::attention_forward(out16.tensor({1, 2, 8}), att16.tensor({1, 2, 2, 2}), heads16, heads16, heads16, heads16);
  }, {"attention_forward", "bf16"});
#endif
}

}  // namespace
}  // namespace prores
