// cuDNN's fused attention (ops/cuda/cudnn_attention.h) against the double-precision CPU reference of causal
// grouped-query attention (attention_reference.h), on random inputs that bf16 holds exactly: out, the softmax
// statistics (each row's log-sum-exp), dq, dk and dv within bf16 accuracy (relative Frobenius error below 2e-2,
// statistics within 2e-2), at a sequence length that is no multiple of 64, grouped queries, both head sizes our
// flash kernels take and a single token. Every output is poisoned with NaN first, so an element cuDNN leaves
// unwritten fails. Also: forward and backward repeat bitwise (the deterministic backward); a workspace smaller
// than cuDNN asks for and a head size cuDNN refuses throw with the reason; and in a build without the cuDNN
// frontend every entry point throws "not built". Every GPU test skips with "no CUDA device" without a GPU.
#include <cstdint>
#include <string>
#include <vector>

#include "attention_reference.h"
#include "cuda_test_util.h"
#include "test_util.h"
// Skips without a GPU, and in a CUDA build without the cuDNN frontend.
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/cudnn_attention.h"
#define PRORES_SKIP_WITHOUT_CUDNN()                  \
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();                 \
  if (!prores::ops::cuda::cudnn_attention_built()) \
  GTEST_SKIP() << "this build has no cuDNN attention (no cuDNN frontend headers)"
#else
#define PRORES_SKIP_WITHOUT_CUDNN() PRORES_SKIP_WITHOUT_CUDA_DEVICE()
#endif

namespace prores {
namespace {

#if defined(PRORES_WITH_CUDA)

using ops::cuda::AttentionDims;
using test::counts;
using test::Counts;
using test::DeviceBuffer;
using test::Inputs;
using test::stored_as;
using test::widened;

// Random unit-normal inputs rounded to bf16, so that the reference sees what cuDNN sees.
Inputs bf16_inputs(const AttentionDims& d, uint64_t seed) {
  Inputs in = test::random_inputs(d, seed);
  for (auto* x : {&in.q, &in.k, &in.v, &in.dout}) *x = widened(stored_as<uint16_t>(*x));
  return in;
}

// Device copies (bf16) of one case's inputs, its NaN-poisoned outputs and a workspace of the size cuDNN asks.
struct DeviceCase {
  DeviceCase(const Inputs& in, const AttentionDims& d)
      : dims(d),
        workspace_bytes(ops::cuda::cudnn_attention_workspace_bytes(d)),
        q(stored_as<uint16_t>(in.q)),
        k(stored_as<uint16_t>(in.k)),
        v(stored_as<uint16_t>(in.v)),
        dout(stored_as<uint16_t>(in.dout)),
        out(counts(d).q),
        dq(counts(d).q),
        dk(counts(d).kv),
        dv(counts(d).kv),
        stats(counts(d).rows),
        workspace(std::max<int64_t>(1, (workspace_bytes + 3) / 4)) {}
  void forward() {
    out.poison();
    stats.poison();
    ops::cuda::cudnn_attention_forward(out.data(), stats.data(), q.data(), k.data(), v.data(), workspace.data(),
                                       workspace_bytes, dims);
  }
  void backward() {
    for (auto* b : {&dq, &dk, &dv}) b->poison();
    ops::cuda::cudnn_attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), out.data(), stats.data(),
                                        q.data(), k.data(), v.data(), workspace.data(), workspace_bytes, dims);
  }
  test::Outputs<float> download() const {
    return {widened(out.download()), stats.download(), widened(dq.download()), widened(dk.download()),
            widened(dv.download())};
  }

  AttentionDims dims;
  int64_t workspace_bytes;
  DeviceBuffer<uint16_t> q, k, v, dout, out, dq, dk, dv;
  DeviceBuffer<float> stats, workspace;
};

void check_against_reference(const AttentionDims& d, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "B " << d.B << " T " << d.T << " NH " << d.NH << " KV " << d.KV << " HS "
                                    << d.HS);
  const Inputs in = bf16_inputs(d, seed);
  DeviceCase gpu(in, d);
  gpu.forward();
  gpu.backward();
  const test::Outputs<float> got = gpu.download();
  const test::Outputs<double> want = test::reference(in, d);
  test::expect_relative_error_below(got.out, want.out, test::kRelTol, "out");
  test::expect_absolute_error_below(got.lse, want.lse, test::kLseTol, "stats");
  test::expect_relative_error_below(got.dq, want.dq, test::kRelTol, "dq");
  test::expect_relative_error_below(got.dk, want.dk, test::kRelTol, "dk");
  test::expect_relative_error_below(got.dv, want.dv, test::kRelTol, "dv");
}

#endif  // PRORES_WITH_CUDA

TEST(CudaCudnnAttention, PartialBlocksAndGroupedQueriesMatchReference) {
  PRORES_SKIP_WITHOUT_CUDNN();
#if defined(PRORES_WITH_CUDA)
  check_against_reference({.B = 2, .T = 77, .NH = 4, .KV = 2, .HS = 64}, 100);
#endif
}

TEST(CudaCudnnAttention, HeadSize128MatchesReference) {
  PRORES_SKIP_WITHOUT_CUDNN();
#if defined(PRORES_WITH_CUDA)
  check_against_reference({.B = 1, .T = 130, .NH = 4, .KV = 1, .HS = 128}, 200);
#endif
}

TEST(CudaCudnnAttention, WholeBlocksOneHeadPerGroupMatchReference) {
  PRORES_SKIP_WITHOUT_CUDNN();
#if defined(PRORES_WITH_CUDA)
  check_against_reference({.B = 2, .T = 256, .NH = 8, .KV = 8, .HS = 64}, 300);
#endif
}

TEST(CudaCudnnAttention, OneTokenMatchesReference) {
  PRORES_SKIP_WITHOUT_CUDNN();
#if defined(PRORES_WITH_CUDA)
  check_against_reference({.B = 1, .T = 1, .NH = 4, .KV = 4, .HS = 64}, 400);
#endif
}

// Two forwards give the same bits, and so do two backwards from the first forward's out and statistics.
TEST(CudaCudnnAttention, ForwardAndBackwardAreBitwiseDeterministic) {
  PRORES_SKIP_WITHOUT_CUDNN();
#if defined(PRORES_WITH_CUDA)
  const AttentionDims d{.B = 2, .T = 300, .NH = 4, .KV = 2, .HS = 64};
  DeviceCase gpu(bf16_inputs(d, 500), d);
  gpu.forward();
  const std::vector<uint16_t> out = gpu.out.download();
  const std::vector<float> stats = gpu.stats.download();
  gpu.forward();
  EXPECT_EQ(gpu.out.download(), out) << "out differs between runs";
  EXPECT_EQ(gpu.stats.download(), stats) << "stats differ between runs";
  gpu.backward();
  const std::vector<uint16_t> dq = gpu.dq.download(), dk = gpu.dk.download(), dv = gpu.dv.download();
  gpu.backward();
  EXPECT_EQ(gpu.dq.download(), dq) << "dq differs between runs";
  EXPECT_EQ(gpu.dk.download(), dk) << "dk differs between runs";
  EXPECT_EQ(gpu.dv.download(), dv) << "dv differs between runs";
#endif
}

// A workspace one byte short of cuDNN's size is refused before cuDNN runs; a head size cuDNN's fused attention
// does not take (not a multiple of 8) is refused with the dims and cuDNN's reason, never run.
TEST(CudaCudnnAttention, ShortWorkspaceAndUnsupportedHeadSizeThrow) {
  PRORES_SKIP_WITHOUT_CUDNN();
#if defined(PRORES_WITH_CUDA)
  const AttentionDims d{.B = 1, .T = 64, .NH = 2, .KV = 1, .HS = 64};
  DeviceCase gpu(bf16_inputs(d, 600), d);
  if (gpu.workspace_bytes > 0) {
    gpu.workspace_bytes -= 1;
    test::expect_error([&] { gpu.forward(); }, {"--attention-backend cudnn", "bytes of workspace"});
  }
  test::expect_error(
      [&] { ops::cuda::cudnn_attention_workspace_bytes({.B = 1, .T = 64, .NH = 2, .KV = 1, .HS = 12}); },
      {"--attention-backend cudnn", "groups of size 12"});
#endif
}

// Without the frontend at build time, every entry point says so; with it, cudnn_attention_built says that.
TEST(CudaCudnnAttention, ABuildWithoutTheFrontendSaysSo) {
#if defined(PRORES_WITH_CUDA)
  if (ops::cuda::cudnn_attention_built()) GTEST_SKIP() << "this build has cuDNN attention";
  test::expect_error([] { ops::cuda::cudnn_attention_workspace_bytes({1, 8, 2, 1, 64}); },
                     {"--attention-backend cudnn", "no cuDNN attention"});
#else
  GTEST_SKIP() << "no CUDA path in this build";
#endif
}

}  // namespace
}  // namespace prores
