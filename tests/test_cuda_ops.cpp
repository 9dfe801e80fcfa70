// CPU<->CUDA parity tests for the model ops through the public dispatch (RMSNorm, RoPE, SwiGLU, the unsharded
// embedding and cross-entropy of tests/unsharded_ops/, the vocabulary-shard pieces; forward and backward) and
// for the CUDA AdamW step against prores::AdamW. Random inputs, outputs poisoned with NaN before each GPU run,
// odd sizes; f32 within 1e-5 and f64 within 1e-11 of the CPU result relative to max(|cpu|, rms(cpu)); the
// embedding (gather and the deterministic scatter-add) bit for bit; RMSNorm with a bf16 output, RoPE and
// SwiGLU on bf16 tensors within one bf16 rounding step. Every test skips with "no CUDA device" when the
// machine has no GPU, and when the build has no CUDA path (the bodies are then not compiled).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/bf16.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"
#include "ops/vocab_shard.h"
#include "optim/adamw.h"
#include "cuda_test_util.h"
#include "test_util.h"
#include "unsharded_ops/cross_entropy.h"
#include "unsharded_ops/embedding.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/adamw.h"
#include "ops/cuda/device.h"
#endif

namespace prores {
namespace {

using test::expect_error;

#if defined(PRORES_WITH_CUDA)

using test::Buffer;
using test::DeviceBuffer;
using test::fill_normal;
using test::random_buffer;
using test::random_ids;
using test::host_tensor;
using test::widened;

// Relative tolerance of a CPU<->CUDA comparison for T.
template <typename T>
constexpr double kRtol = sizeof(T) == 4 ? 1e-5 : 1e-11;

// Expects |got[i] - want[i]| <= rtol * max(|want[i]|, rms(want)) for every i (NaN fails); reports the first
// mismatch and how many elements mismatch.
template <typename T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, double rtol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double squares = 0;
  for (T w : want) squares += static_cast<double>(w) * static_cast<double>(w);
  const double rms = want.empty() ? 0.0 : std::sqrt(squares / static_cast<double>(want.size()));
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = static_cast<double>(want[i]);
    if (!(std::abs(static_cast<double>(got[i]) - w) <= rtol * std::max(std::abs(w), rms))) {
      if (bad++ == 0) first = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": first mismatch at [" << first << "]: cuda " << got[first] << ", cpu "
                     << want[first] << " (rms " << rms << ", rtol " << rtol << ")";
}

// Expects got == want element for element (bitwise for the values the ops produce; NaN fails).
template <typename T>
void expect_equal(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(got[i] == want[i])) {
      ADD_FAILURE() << what << "[" << i << "]: cuda " << got[i] << ", cpu " << want[i];
      return;
    }
  }
}

// Label "rmsnorm f32 (37, 300)" for failure messages.
template <typename T>
std::string label(const char* op, std::initializer_list<int64_t> dims) {
  std::string s = std::string(op) + " " + dtype_name(dtype_of<T>()) + " (";
  for (const int64_t* d = dims.begin(); d != dims.end(); ++d)
    s += (d == dims.begin() ? "" : ", ") + std::to_string(*d);
  return s + ")";
}

template <typename T>
void check_rmsnorm(int64_t N, int64_t C) {
  const std::string what = label<T>("rmsnorm", {N, C});
  const double eps = 1e-5, scale = 0.7, rtol = kRtol<T>;
  auto inp = random_buffer<T>(N * C, 1), weight = random_buffer<T>(C, 2, 0.5, 1.0);
  auto dout = random_buffer<T>(N * C, 3), dinp0 = random_buffer<T>(N * C, 4),
       dweight0 = random_buffer<T>(C, 5);
  Buffer<T> out(N * C), rstd(N);
  ops::rmsnorm_forward(out.tensor({N, C}), rstd.tensor({N}), inp.tensor({N, C}), weight.tensor({C}), eps,
                       scale);

  DeviceBuffer<T> d_inp(inp.data), d_weight(weight.data), d_out(N * C), d_rstd(N);
  d_out.poison();
  d_rstd.poison();
  ops::rmsnorm_forward(d_out.tensor({N, C}), d_rstd.tensor({N}), d_inp.tensor({N, C}), d_weight.tensor({C}),
                       eps, scale);
  expect_close(d_out.download(), out.data, rtol, what + " out");
  expect_close(d_rstd.download(), rstd.data, rtol, what + " rstd");

  // In place: out aliases inp.
  DeviceBuffer<T> d_x(inp.data);
  ops::rmsnorm_forward(d_x.tensor({N, C}), d_rstd.tensor({N}), d_x.tensor({N, C}), d_weight.tensor({C}), eps,
                       scale);
  expect_close(d_x.download(), out.data, rtol, what + " out in place");

  // Backward accumulates (+=) onto random values, from the CPU's rstd.
  Buffer<T> dinp = dinp0, dweight = dweight0;
  ops::rmsnorm_backward(dinp.tensor({N, C}), dweight.tensor({C}), dout.tensor({N, C}), inp.tensor({N, C}),
                        weight.tensor({C}), rstd.tensor({N}), scale);
  DeviceBuffer<T> d_dout(dout.data), d_dinp(dinp0.data), d_dweight(dweight0.data);
  d_rstd.upload(rstd.data);
  const auto backward = [&] {
    ops::rmsnorm_backward(d_dinp.tensor({N, C}), d_dweight.tensor({C}), d_dout.tensor({N, C}),
                          d_inp.tensor({N, C}), d_weight.tensor({C}), d_rstd.tensor({N}), scale);
  };
  backward();
  expect_close(d_dinp.download(), dinp.data, rtol, what + " dinp");
  const std::vector<T> dweight_first = d_dweight.download();
  expect_close(dweight_first, dweight.data, rtol, what + " dweight");
  // The dweight reduction is deterministic: a second run from the same values agrees bit for bit.
  d_dinp.upload(dinp0.data);
  d_dweight.upload(dweight0.data);
  backward();
  expect_equal(d_dweight.download(), dweight_first, what + " dweight rerun");
  // Overwriting a poisoned dinp, with dres = dinp0 in its own buffer: the same dinp; without dres: the
  // CPU's gradient alone.
  DeviceBuffer<T> d_dres(dinp0.data);
  const auto overwrite = [&](const Tensor& dres) {
    d_dinp.poison();
    ops::rmsnorm_backward(d_dinp.tensor({N, C}), d_dweight.tensor({C}), d_dout.tensor({N, C}),
                          d_inp.tensor({N, C}), d_weight.tensor({C}), d_rstd.tensor({N}), scale,
                          ops::InputGrad::Overwrite, dres);
  };
  overwrite(d_dres.tensor({N, C}));
  expect_close(d_dinp.download(), dinp.data, rtol, what + " dinp with dres");
  Buffer<T> dinp_alone(N * C), dweight_scratch(C);
  ops::rmsnorm_backward(dinp_alone.tensor({N, C}), dweight_scratch.tensor({C}), dout.tensor({N, C}),
                        inp.tensor({N, C}), weight.tensor({C}), rstd.tensor({N}), scale);
  overwrite(Tensor());
  expect_close(d_dinp.download(), dinp_alone.data, rtol, what + " dinp overwritten");
}

template <typename T>
void check_rope(int64_t B, int64_t H, int64_t T_, int64_t HS) {
  const std::string what = label<T>("rope", {B, H, T_, HS});
  const int64_t half = HS / 2, n = B * H * T_ * HS;
  Buffer<T> cos(T_ * half), sin(T_ * half);
  ops::rope_table(cos.tensor({T_, half}), sin.tensor({T_, half}), 10000.0);
  DeviceBuffer<T> d_cos(T_ * half), d_sin(T_ * half);
  d_cos.poison();
  d_sin.poison();
  ops::rope_table(d_cos.tensor({T_, half}), d_sin.tensor({T_, half}), 10000.0);
  expect_close(d_cos.download(), cos.data, kRtol<T>, what + " cos");
  expect_close(d_sin.download(), sin.data, kRtol<T>, what + " sin");
  // The rotations use the CPU's table, so that they are compared on their own.
  d_cos.upload(cos.data);
  d_sin.upload(sin.data);

  auto x = random_buffer<T>(n, 11);
  DeviceBuffer<T> d_x(x.data);
  ops::rope_forward(x.tensor({B, H, T_, HS}), cos.tensor({T_, half}), sin.tensor({T_, half}));
  ops::rope_forward(d_x.tensor({B, H, T_, HS}), d_cos.tensor({T_, half}), d_sin.tensor({T_, half}));
  expect_close(d_x.download(), x.data, kRtol<T>, what + " forward");

  auto dx = random_buffer<T>(n, 12);
  DeviceBuffer<T> d_dx(dx.data);
  ops::rope_backward(dx.tensor({B, H, T_, HS}), cos.tensor({T_, half}), sin.tensor({T_, half}));
  ops::rope_backward(d_dx.tensor({B, H, T_, HS}), d_cos.tensor({T_, half}), d_sin.tensor({T_, half}));
  expect_close(d_dx.download(), dx.data, kRtol<T>, what + " backward");
}

template <typename T>
void check_swiglu(int64_t N, int64_t F) {
  const std::string what = label<T>("swiglu", {N, F});
  auto inp = random_buffer<T>(N * 2 * F, 21, 2.0), dout = random_buffer<T>(N * F, 22);
  Buffer<T> out(N * F), dinp(N * 2 * F);
  ops::swiglu_forward(out.tensor({N, F}), inp.tensor({N, 2 * F}));
  ops::swiglu_backward(dinp.tensor({N, 2 * F}), dout.tensor({N, F}), inp.tensor({N, 2 * F}));

  DeviceBuffer<T> d_inp(inp.data), d_dout(dout.data), d_out(N * F), d_dinp(N * 2 * F);
  d_out.poison();
  d_dinp.poison();
  ops::swiglu_forward(d_out.tensor({N, F}), d_inp.tensor({N, 2 * F}));
  ops::swiglu_backward(d_dinp.tensor({N, 2 * F}), d_dout.tensor({N, F}), d_inp.tensor({N, 2 * F}));
  expect_close(d_out.download(), out.data, kRtol<T>, what + " out");
  expect_close(d_dinp.download(), dinp.data, kRtol<T>, what + " dinp");
}

// n random values rounded to bf16, as bits.
std::vector<uint16_t> random_bf16(int64_t n, uint64_t seed, double scale = 1.0) {
  return test::stored_as<uint16_t>(random_buffer<float>(n, seed, scale).data);
}

// bf16 results computed in f32 and rounded once: the CPU's and the GPU's f32 values may fall on either side
// of a rounding boundary, one bf16 unit (2^-7 relative at most) apart.
constexpr double kBf16ResultRtol = 1.0 / 128;

// RMSNorm with a bf16 output next to f32 inp, rstd and weight, CPU against CUDA.
void check_rmsnorm_bf16_out(int64_t N, int64_t C) {
  const std::string what = "rmsnorm bf16 out (" + std::to_string(N) + ", " + std::to_string(C) + ")";
  auto inp = random_buffer<float>(N * C, 31), weight = random_buffer<float>(C, 32, 0.5, 1.0);
  Buffer<float> rstd(N);
  std::vector<uint16_t> out(N * C);
  ops::rmsnorm_forward(host_tensor(out, {N, C}), rstd.tensor({N}), inp.tensor({N, C}), weight.tensor({C}), 1e-5, 0.7);
  DeviceBuffer<float> d_inp(inp.data), d_weight(weight.data), d_rstd(N);
  DeviceBuffer<uint16_t> d_out(N * C);
  d_out.poison();
  ops::rmsnorm_forward(d_out.tensor({N, C}), d_rstd.tensor({N}), d_inp.tensor({N, C}), d_weight.tensor({C}), 1e-5,
                       0.7);
  expect_close(widened(d_out.download()), widened(out), kBf16ResultRtol, what);
  expect_close(d_rstd.download(), rstd.data, kRtol<float>, what + " rstd");
}

// RoPE forward and backward on bf16 x next to the CPU's f32 table, CPU against CUDA.
void check_rope_bf16(int64_t B, int64_t H, int64_t T_, int64_t HS) {
  const std::string what = "rope bf16 (" + std::to_string(T_) + ", " + std::to_string(HS) + ")";
  const int64_t half = HS / 2, n = B * H * T_ * HS;
  Buffer<float> cos(T_ * half), sin(T_ * half);
  ops::rope_table(cos.tensor({T_, half}), sin.tensor({T_, half}), 10000.0);
  DeviceBuffer<float> d_cos(cos.data), d_sin(sin.data);
  for (const auto& [rotate, seed] :
       {std::pair{&ops::rope_forward, uint64_t{35}}, std::pair{&ops::rope_backward, uint64_t{36}}}) {
    std::vector<uint16_t> x = random_bf16(n, seed);
    DeviceBuffer<uint16_t> d_x(x);
    rotate(host_tensor(x, {B, H, T_, HS}), cos.tensor({T_, half}), sin.tensor({T_, half}));
    rotate(d_x.tensor({B, H, T_, HS}), d_cos.tensor({T_, half}), d_sin.tensor({T_, half}));
    expect_close(widened(d_x.download()), widened(x), kBf16ResultRtol, what);
  }
}

// SwiGLU forward and backward on bf16 tensors, CPU against CUDA.
void check_swiglu_bf16(int64_t N, int64_t F) {
  const std::string what = "swiglu bf16 (" + std::to_string(N) + ", " + std::to_string(F) + ")";
  std::vector<uint16_t> inp = random_bf16(N * 2 * F, 33, 2.0), dout = random_bf16(N * F, 34), out(N * F),
                        dinp(N * 2 * F);
  ops::swiglu_forward(host_tensor(out, {N, F}), host_tensor(inp, {N, 2 * F}));
  ops::swiglu_backward(host_tensor(dinp, {N, 2 * F}), host_tensor(dout, {N, F}), host_tensor(inp, {N, 2 * F}));
  DeviceBuffer<uint16_t> d_inp(inp), d_dout(dout), d_out(N * F), d_dinp(N * 2 * F);
  d_out.poison();
  d_dinp.poison();
  ops::swiglu_forward(d_out.tensor({N, F}), d_inp.tensor({N, 2 * F}));
  ops::swiglu_backward(d_dinp.tensor({N, 2 * F}), d_dout.tensor({N, F}), d_inp.tensor({N, 2 * F}));
  expect_close(widened(d_out.download()), widened(out), kBf16ResultRtol, what + " out");
  expect_close(widened(d_dinp.download()), widened(dinp), kBf16ResultRtol, what + " dinp");
}

// N tokens over a vocabulary of V.
template <typename T>
void check_embedding(int64_t N, int64_t C, int64_t V) {
  const std::string what = label<T>("embedding", {N, C, V});
  auto tokens = random_ids(N, V, 31);
  auto wte = random_buffer<T>(V * C, 32), dout = random_buffer<T>(N * C, 33),
       dwte0 = random_buffer<T>(V * C, 34);
  Buffer<T> out(N * C), dwte = dwte0;
  unsharded::embedding_forward(out.tensor({N, C}), tokens.tensor({N}), wte.tensor({V, C}));
  unsharded::embedding_backward(dwte.tensor({V, C}), dout.tensor({N, C}), tokens.tensor({N}));

  DeviceBuffer<int32_t> d_tokens(tokens.data);
  DeviceBuffer<T> d_wte(wte.data), d_dout(dout.data), d_out(N * C), d_dwte(dwte0.data);
  d_out.poison();
  unsharded::embedding_forward(d_out.tensor({N, C}), d_tokens.tensor({N}), d_wte.tensor({V, C}));
  unsharded::embedding_backward(d_dwte.tensor({V, C}), d_dout.tensor({N, C}), d_tokens.tensor({N}));
  expect_equal(d_out.download(), out.data, what + " out");
  expect_equal(d_dwte.download(), dwte.data, what + " dwte");
}

template <typename T>
void check_cross_entropy(int64_t N, int64_t V) {
  const std::string what = label<T>("cross_entropy", {N, V});
  const double dloss = 0.37;
  auto logits = random_buffer<T>(N * V, 41, 3.0);
  auto targets = random_ids(N, V, 42);
  Buffer<T> losses(N), dlogits(N * V);
  unsharded::cross_entropy_forward(losses.tensor({N}), logits.tensor({N, V}), targets.tensor({N}));
  unsharded::cross_entropy_backward(dlogits.tensor({N, V}), logits.tensor({N, V}), targets.tensor({N}), dloss);

  DeviceBuffer<T> d_logits(logits.data), d_losses(N), d_dlogits(N * V);
  DeviceBuffer<int32_t> d_targets(targets.data);
  d_losses.poison();
  d_dlogits.poison();
  unsharded::cross_entropy_forward(d_losses.tensor({N}), d_logits.tensor({N, V}), d_targets.tensor({N}));
  unsharded::cross_entropy_backward(d_dlogits.tensor({N, V}), d_logits.tensor({N, V}), d_targets.tensor({N}),
                                    dloss);
  expect_close(d_losses.download(), losses.data, kRtol<T>, what + " losses");
  expect_close(d_dlogits.download(), dlogits.data, kRtol<T>, what + " dlogits");
  // In place: dlogits aliases logits.
  unsharded::cross_entropy_backward(d_logits.tensor({N, V}), d_logits.tensor({N, V}), d_targets.tensor({N}), dloss);
  expect_close(d_logits.download(), dlogits.data, kRtol<T>, what + " dlogits in place");
}

// The embedding shard [vocab_start, vocab_start + Vs) of a vocabulary of V ids; tokens fall inside and
// outside it.
template <typename T>
void check_embedding_shard(int64_t N, int64_t C, int64_t V, int64_t vocab_start, int64_t Vs) {
  const std::string what = label<T>("embedding_shard", {N, C, V, vocab_start, Vs});
  auto ids = random_ids(N, V, 51);
  auto wte = random_buffer<T>(Vs * C, 52), dout = random_buffer<T>(N * C, 53),
       dwte0 = random_buffer<T>(Vs * C, 54);
  Buffer<T> out(N * C), dwte = dwte0;
  ops::embedding_shard_forward(out.tensor({N, C}), ids.tensor({N}), wte.tensor({Vs, C}), vocab_start);
  ops::embedding_shard_backward(dwte.tensor({Vs, C}), dout.tensor({N, C}), ids.tensor({N}), vocab_start);
  DeviceBuffer<int32_t> d_ids(ids.data);
  DeviceBuffer<T> d_wte(wte.data), d_dout(dout.data), d_out(N * C), d_dwte(dwte0.data);
  d_out.poison();
  ops::embedding_shard_forward(d_out.tensor({N, C}), d_ids.tensor({N}), d_wte.tensor({Vs, C}), vocab_start);
  ops::embedding_shard_backward(d_dwte.tensor({Vs, C}), d_dout.tensor({N, C}), d_ids.tensor({N}),
                                vocab_start);
  expect_equal(d_out.download(), out.data, what + " embedding out");
  expect_equal(d_dwte.download(), dwte.data, what + " embedding dwte");
}

// The shard [vocab_start, vocab_start + Vs) of a cross-entropy over V ids, on logits stored as T (float,
// double, or uint16_t for bf16) against the CPU's, targets inside and outside the shard:
// the one-pass statistics, the rebase to a larger max, the losses and the gradient, also in place. The
// statistics and losses within kRtol of the statistics' type; a bf16 gradient is the CPU's f32 gradient on
// the same values rounded.
template <typename T>
void check_cross_entropy_shard(int64_t N, int64_t V, int64_t vocab_start, int64_t Vs) {
  using S = compute_type<T>;
  const std::string what = label<T>("cross_entropy_shard", {N, V, vocab_start, Vs});
  const double dloss = 0.61;
  auto ids = random_ids(N, V, 56);
  std::vector<T> logits = test::stored_as<T>(random_buffer<float>(N * Vs, 55, 3.0).data);
  Buffer<S> row_max(N), sumexp(N), target_logit(N);
  ops::cross_entropy_shard_stats(row_max.tensor({N}), sumexp.tensor({N}), target_logit.tensor({N}),
                                 host_tensor(logits, {N, Vs}), ids.tensor({N}), vocab_start);
  DeviceBuffer<int32_t> d_ids(ids.data);
  DeviceBuffer<T> d_logits(logits);
  DeviceBuffer<S> d_row_max(N), d_sumexp(N), d_target_logit(N);
  for (auto* b : {&d_row_max, &d_sumexp, &d_target_logit}) b->poison();
  ops::cross_entropy_shard_stats(d_row_max.tensor({N}), d_sumexp.tensor({N}), d_target_logit.tensor({N}),
                                 d_logits.tensor({N, Vs}), d_ids.tensor({N}), vocab_start);
  expect_equal(d_row_max.download(), row_max.data, what + " row_max");
  expect_close(d_sumexp.download(), sumexp.data, kRtol<S>, what + " row_sumexp");
  expect_equal(d_target_logit.download(), target_logit.data, what + " target_logit");

  // The whole-vocabulary values that the all-reduces would bring: a max above the shard's (the sums rebased
  // to it), and the CPU's sums; both devices get the same ones.
  Buffer<S> shard_max = row_max;
  for (S& m : row_max.data) m += S(0.25);
  ops::cross_entropy_shard_rebase(sumexp.tensor({N}), shard_max.tensor({N}), row_max.tensor({N}));
  DeviceBuffer<S> d_shard_max(shard_max.data);
  d_row_max.upload(row_max.data);
  ops::cross_entropy_shard_rebase(d_sumexp.tensor({N}), d_shard_max.tensor({N}), d_row_max.tensor({N}));
  expect_close(d_sumexp.download(), sumexp.data, kRtol<S>, what + " rebased row_sumexp");

  Buffer<S> losses(N);
  ops::cross_entropy_shard_loss(losses.tensor({N}), row_max.tensor({N}), sumexp.tensor({N}),
                                target_logit.tensor({N}));
  std::vector<S> wide(logits.size()), dwide(logits.size());
  std::transform(logits.begin(), logits.end(), wide.begin(), [](T x) { return load_element(x); });
  ops::cross_entropy_shard_backward(host_tensor(dwide, {N, Vs}), host_tensor(wide, {N, Vs}), ids.tensor({N}),
                                    vocab_start, row_max.tensor({N}), sumexp.tensor({N}), dloss);
  d_sumexp.upload(sumexp.data);
  DeviceBuffer<S> d_losses(N);
  DeviceBuffer<T> d_dlogits(N * Vs);
  d_losses.poison();
  d_dlogits.poison();
  ops::cross_entropy_shard_loss(d_losses.tensor({N}), d_row_max.tensor({N}), d_sumexp.tensor({N}),
                                d_target_logit.tensor({N}));
  ops::cross_entropy_shard_backward(d_dlogits.tensor({N, Vs}), d_logits.tensor({N, Vs}), d_ids.tensor({N}),
                                    vocab_start, d_row_max.tensor({N}), d_sumexp.tensor({N}), dloss);
  expect_close(d_losses.download(), losses.data, kRtol<S>, what + " losses");
  auto expect_gradient = [&](const std::vector<T>& got, const std::string& which) {
    if constexpr (std::is_same_v<T, uint16_t>) test::expect_bf16_rounding_of(got, dwide, what + which);
    else expect_close(got, dwide, kRtol<T>, what + which);
  };
  expect_gradient(d_dlogits.download(), " dlogits");
  // In place: dlogits aliases logits.
  ops::cross_entropy_shard_backward(d_logits.tensor({N, Vs}), d_logits.tensor({N, Vs}), d_ids.tensor({N}),
                                    vocab_start, d_row_max.tensor({N}), d_sumexp.tensor({N}), dloss);
  expect_gradient(d_logits.download(), " dlogits in place");
}

#endif  // PRORES_WITH_CUDA

TEST(CudaOps, RmsNormMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  // (1031, 129): more rows than backward blocks (3 rows each).
  // C = 6001: blocks of 384 threads, C = 8192: the widest row a block holds (512 threads of 16 columns).
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 7}, {37, 300}, {1031, 129}, {13, 6001}, {5, 8192}};
  for (auto [N, C] : shapes) {
    check_rmsnorm<float>(N, C);
    check_rmsnorm<double>(N, C);
    check_rmsnorm_bf16_out(N, C);
  }
  DeviceBuffer<float> wide(8193), wide_rstd(1);
  expect_error([&] { ops::rmsnorm_forward(wide.tensor({1, 8193}), wide_rstd.tensor(), wide.tensor({1, 8193}),
                                          wide.tensor(), 1e-5, 1.0); },
               {"rmsnorm on CUDA", "8193 columns", "8192"});
#endif
}

TEST(CudaOps, RopeMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_rope<float>(1, 1, 1, 2);
  check_rope<double>(1, 1, 1, 2);
  check_rope<float>(2, 3, 17, 10);
  check_rope<double>(2, 3, 17, 10);
  check_rope<float>(3, 5, 129, 34);
  check_rope<double>(3, 5, 129, 34);
  check_rope_bf16(2, 3, 17, 10);
  check_rope_bf16(3, 5, 129, 34);
#endif
}

TEST(CudaOps, SwigluMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {7, 13}, {129, 1001}};
  for (auto [N, F] : shapes) {
    check_swiglu<float>(N, F);
    check_swiglu<double>(N, F);
    check_swiglu_bf16(N, F);
  }
#endif
}

TEST(CudaOps, EmbeddingMatchesCpuBitwise) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  // N > V: long runs of repeated ids for the scatter-add; V = 100003: a sparse table.
  const std::tuple<int64_t, int64_t, int64_t> shapes[] = {
      {1, 1, 1}, {1000, 77, 50}, {4099, 33, 3001}, {20011, 5, 7}, {7, 33, 100003}};
  for (auto [N, C, V] : shapes) {
    check_embedding<float>(N, C, V);
    check_embedding<double>(N, C, V);
  }
#endif
}

TEST(CudaOps, CrossEntropyMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {7, 33}, {3, 5001}, {65, 50257}};
  for (auto [N, V] : shapes) {
    check_cross_entropy<float>(N, V);
    check_cross_entropy<double>(N, V);
  }
#endif
}

TEST(CudaOps, VocabShardMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  check_embedding_shard<float>(1, 1, 2, 1, 1);
  check_embedding_shard<double>(1, 1, 2, 1, 1);
  check_embedding_shard<float>(301, 19, 37, 10, 13);
  check_embedding_shard<double>(301, 19, 37, 10, 13);
  check_embedding_shard<float>(97, 65, 50257, 25129, 25128);
  check_embedding_shard<double>(97, 65, 50257, 25129, 25128);
  for (auto [N, V, vocab_start, Vs] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 2, 1, 1},
                                       {301, 37, 10, 13}, {97, 50257, 25129, 25128}}) {
    check_cross_entropy_shard<float>(N, V, vocab_start, Vs);
    check_cross_entropy_shard<double>(N, V, vocab_start, Vs);
    check_cross_entropy_shard<uint16_t>(N, V, vocab_start, Vs);
  }
#endif
}

TEST(CudaOps, AdamWMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  const int64_t n = 100003, split = 40009;
  const AdamWConfig config{0.9, 0.95, 1e-8, 0.1};
  AdamW cpu(config, n);
  cpu.set_segments({{0, split, true}, {split, n - split, false}});
  auto params = random_buffer<float>(n, 61);
  DeviceBuffer<float> d_params(params.data), d_grads(n), d_m(std::vector<float>(n, 0.0f)),
      d_v(std::vector<float>(n, 0.0f));
  for (int64_t step = 1; step <= 5; ++step) {
    const auto grads = random_buffer<float>(n, 61 + static_cast<uint64_t>(step), 0.1);
    const double lr = 2e-3 * static_cast<double>(step), clip = step % 2 == 0 ? 0.37 : 1.0;
    cpu.step(params.data.data(), grads.data.data(), lr, clip);
    d_grads.upload(grads.data);
    const ops::AdamWSegment segments[] = {{0, split, true}, {split, n - split, false}};
    ops::cuda::adamw_step(d_params.data(), d_grads.data(), d_m.data(), d_v.data(), segments, 2,
                          {lr, config.beta1, config.beta2, config.eps, config.weight_decay, step, clip});
  }
  const float *m = cpu.exp_avg().as<float>(), *v = cpu.exp_avg_sq().as<float>();
  expect_close(d_params.download(), params.data, 1e-5, "adamw params");
  expect_close(d_m.download(), std::vector<float>(m, m + n), 1e-5, "adamw exp_avg");
  expect_close(d_v.download(), std::vector<float>(v, v + n), 1e-5, "adamw exp_avg_sq");
  const auto step_zero = [&] {
    const ops::AdamWSegment all{0, n, true};
    ops::cuda::adamw_step(d_params.data(), d_grads.data(), d_m.data(), d_v.data(), &all, 1,
                          {1e-3, 0.9, 0.95, 1e-8, 0.1, 0, 1.0});
  };
  expect_error(step_zero, {"adamw_step", "step >= 1"});
#endif
}

TEST(CudaOps, EmptyInputsAreNoOps) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  DeviceBuffer<float> w(std::vector<float>(8, 1.0f)), dw(std::vector<float>(8, 2.0f));
  const Tensor rows(nullptr, DType::F32, Device::CUDA, {0, 8}), vec(nullptr, DType::F32, Device::CUDA, {0});
  const Tensor ids(nullptr, DType::I32, Device::CUDA, {0});
  ops::rmsnorm_forward(rows, vec, rows, w.tensor({8}), 1e-5, 1.0);
  ops::rmsnorm_backward(rows, dw.tensor({8}), rows, rows, w.tensor({8}), vec, 1.0);
  unsharded::embedding_forward(rows, ids, w.tensor({1, 8}));
  unsharded::embedding_backward(dw.tensor({1, 8}), rows, ids);
  unsharded::cross_entropy_forward(vec, rows, ids);
  unsharded::cross_entropy_backward(rows, rows, ids, 1.0);
  expect_equal(dw.download(), std::vector<float>(8, 2.0f), "dweight after empty backward");
#endif
}

TEST(CudaOps, BadArgumentsThrow) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  // Ids outside [0, V): the CPU's message, and nothing written.
  Buffer<int32_t> ids(6);
  ids.data = {0, 1, 2, 50, 4, -1};
  DeviceBuffer<int32_t> d_ids(ids.data);
  DeviceBuffer<float> d_wte(random_buffer<float>(50 * 3, 71).data), d_out(6 * 3), d_logits(6 * 50),
      d_losses(6);
  d_out.poison();
  expect_error(
      [&] {
        unsharded::embedding_forward(d_out.tensor({6, 3}), d_ids.tensor({6}), d_wte.tensor({50, 3}));
      },
      {"embedding_forward: token id 50 at position 3 is outside [0, V) with V = 50"});
  for (float x : d_out.download()) EXPECT_TRUE(std::isnan(x)) << "embedding_forward wrote before throwing";
  expect_error(
      [&] {
        unsharded::embedding_backward(d_wte.tensor({50, 3}), d_out.tensor({6, 3}), d_ids.tensor({6}));
      },
      {"embedding_backward: token id 50 at position 3"});
  expect_error(
      [&] {
        unsharded::cross_entropy_forward(d_losses.tensor({6}), d_logits.tensor({6, 50}), d_ids.tensor({6}));
      },
      {"cross_entropy_forward: target id 50 at position 3 is outside [0, V) with V = 50"});
  const auto ce_backward = [&] {
    unsharded::cross_entropy_backward(d_logits.tensor({6, 50}), d_logits.tensor({6, 50}), d_ids.tensor({6}), 1);
  };
  expect_error(ce_backward, {"cross_entropy_backward: target id 50 at position 3"});

  // Host memory passed as a CUDA tensor.
  Buffer<float> host(6 * 50);
  Tensor host_logits = host.tensor({6, 50});
  host_logits.device = Device::CUDA;
  expect_error(
      [&] {
        ops::cross_entropy_shard_stats(d_losses.tensor({6}), d_losses.tensor({6}), d_losses.tensor({6}),
                                       host_logits, d_ids.tensor({6}), 0);
      },
      {"cross_entropy_shard_stats", "logits", "not CUDA device memory"});
  DeviceBuffer<float> d_swiglu_out(6 * 25);
  expect_error(
      [&] {
        ops::swiglu_forward(d_swiglu_out.tensor({6, 25}), host_logits);
      },
      {"swiglu_forward", "inp", "not CUDA device memory"});
#endif
}

}  // namespace
}  // namespace prores
