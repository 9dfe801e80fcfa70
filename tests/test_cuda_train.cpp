// --device cuda training against the CPU reference, through TrainStep (the trainer's own optimizer step)
// on a tiny GQA model with ProRes α in (0, 1) and a sandwich norm: 20 steps in fp32 track the CPU run's
// losses and gradient norms within 1e-4 relative, and with --bf16 matmuls (with and without flash
// attention, which needs heads of 64, and with cuDNN's attention) within 2e-2, and so does a pre-LN model,
// whose residual adds happen in the GEMMs' epilogue; a block with α = 0 skips its branches on the GPU with
// bitwise the same result; a checkpoint saved from the GPU resumes bit-exactly on the GPU and matches the
// CPU's reading of it; a model larger than the GPU fails with one line naming the GPU memory; ZeRO-1 on one
// rank and full activation recomputation train bitwise like the plain step. Every test but the
// attention-backend choice and the CPU halves of ZeRO-1 and recomputation skips without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "ops/attention.h"
#include "test_util.h"
#include "train/checkpointing.h"
#include "train_test_util.h"

namespace {

using namespace prores;
using test::expect_tracks;
using test::host_copy;
using test::random_text;
using test::tiny_model;
using test::Trace;
using test::train_config;
using test::train_steps;
using test::TrainRun;

// --attention-backend auto picks flash only for CUDA with --bf16 and heads the kernels take (64, 128);
// flash, cudnn and unfused are taken as given. Runs everywhere: the choice needs no device.
TEST(CudaTrain, AttentionBackendChoice) {
  const ModelConfig hs16 = tiny_model(16), hs64 = tiny_model(64);
  const auto kernel = [](Device device, bool bf16, const char* backend, const ModelConfig& m) {
    return train::attention_kernel(train_config(device, bf16, backend), m);
  };
  const AttentionKernel flash = ops::flash_attention_supports(64) ? AttentionKernel::Flash : AttentionKernel::Unfused;
  EXPECT_EQ(kernel(Device::CUDA, true, "auto", hs16), AttentionKernel::Unfused);
  EXPECT_EQ(kernel(Device::CUDA, true, "auto", hs64), flash);
#if defined(PRORES_WITH_CUDA)
  EXPECT_TRUE(ops::flash_attention_supports(64) && ops::flash_attention_supports(128));
#endif
  EXPECT_FALSE(ops::flash_attention_supports(32));
  EXPECT_EQ(kernel(Device::CUDA, false, "auto", hs64), AttentionKernel::Unfused) << "fp32 stays exact";
  EXPECT_EQ(kernel(Device::CPU, false, "auto", hs64), AttentionKernel::Unfused);
  EXPECT_EQ(kernel(Device::CUDA, false, "flash", hs64), AttentionKernel::Flash);
  EXPECT_EQ(kernel(Device::CUDA, true, "cudnn", hs16), AttentionKernel::Cudnn);
  EXPECT_EQ(kernel(Device::CUDA, true, "unfused", hs64), AttentionKernel::Unfused);
}

TEST(CudaTrain, Fp32StepsTrackTheCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  const data::ByteDataset data = random_text(32);
  TrainRun cpu(Device::CPU, false), gpu(Device::CUDA, false);
  const Trace c = train_steps(cpu, data, 0, 20), g = train_steps(gpu, data, 0, 20);
  expect_tracks(g, c, 1e-4, "fp32");
  EXPECT_LT(c.loss.back(), c.loss.front() - 0.5) << "the reference run should learn";
  const std::vector<float> pc = host_copy(cpu.step.model().params()), pg = host_copy(gpu.step.model().params());
  double worst = 0;
  for (size_t i = 0; i < pc.size(); ++i) worst = std::max(worst, std::abs(double(pg[i]) - pc[i]));
  EXPECT_LT(worst, 2e-3) << "largest parameter difference after 20 steps at lr 1e-3";
}

TEST(CudaTrain, Bf16MatmulsTrackTheCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  const data::ByteDataset data = random_text(32);
  TrainRun cpu(Device::CPU, false), gpu(Device::CUDA, true);
  expect_tracks(train_steps(gpu, data, 0, 20), train_steps(cpu, data, 0, 20), 2e-2, "bf16");
}

TEST(CudaTrain, FlashAttentionTracksTheCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  const data::ByteDataset data = random_text(32);
  TrainRun cpu(Device::CPU, false, "unfused", 64), gpu(Device::CUDA, true, "flash", 64);
  ASSERT_EQ(gpu.step.model().attention_kernel(), AttentionKernel::Flash);
  expect_tracks(train_steps(gpu, data, 0, 20), train_steps(cpu, data, 0, 20), 2e-2, "bf16 + flash");
}

TEST(CudaTrain, CudnnAttentionTracksTheCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  if (!ops::cudnn_attention_built()) GTEST_SKIP() << "this build has no cuDNN attention (no cuDNN frontend headers)";
  const data::ByteDataset data = random_text(32);
  TrainRun cpu(Device::CPU, false, "unfused", 64), gpu(Device::CUDA, true, "cudnn", 64);
  ASSERT_EQ(gpu.step.model().attention_kernel(), AttentionKernel::Cudnn);
  expect_tracks(train_steps(gpu, data, 0, 20), train_steps(cpu, data, 0, 20), 2e-2, "bf16 + cuDNN attention");
}

TEST(CudaTrain, ZeroAlphaSkipIsBitwiseOnTheGpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  const data::ByteDataset data = random_text(32);
  TrainRun skip(Device::CUDA, false), full(Device::CUDA, false);
  for (TrainRun* r : {&skip, &full}) r->step.model().set_residual_scales(std::vector<double>{1.0, 0.0, 0.0});
  full.step.model().set_skip_zero_residual_scale(false);
  const Trace a = train_steps(skip, data, 0, 3), b = train_steps(full, data, 0, 3);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.grad_norm, b.grad_norm);
  EXPECT_EQ(host_copy(skip.step.model().params()), host_copy(full.step.model().params()));
}

// --use-distributed-optimizer on one rank (the shard is the whole buffer, reduce-scattered and all-gathered
// in place) trains bitwise like the plain optimizer, on the CPU and on the GPU.
TEST(CudaTrain, DistributedOptimizerOnOneRankIsThePlainOne) {
  const data::ByteDataset data = random_text(32);
  ParallelConfig zero1;
  zero1.distributed_optimizer = true;
  for (Device device : {Device::CPU, Device::CUDA}) {
    if (device == Device::CUDA) {
      PRORES_SKIP_WITHOUT_CUDA_DEVICE();
    }
    const char* where = device == Device::CPU ? "cpu" : "cuda";
    TrainRun plain(device, false), sharded(device, false, "unfused", 16, true, zero1);
    const Trace a = train_steps(plain, data, 0, 3), b = train_steps(sharded, data, 0, 3);
    EXPECT_EQ(a.loss, b.loss) << where;
    EXPECT_EQ(a.grad_norm, b.grad_norm) << where;
    EXPECT_EQ(host_copy(plain.step.model().params()), host_copy(sharded.step.model().params())) << where;
  }
}

// What `count` steps of a fresh TrainStep of `model` under `config` give (init seed 3, the α of each block
// as given): the losses and gradient norms, the final parameters, the model's memory and recomputed blocks.
struct Outcome {
  Trace trace;
  std::vector<float> params;
  size_t bytes = 0;
  int64_t recompute_layers = 0;
};

Outcome train_fresh(const ModelConfig& model, const train::TrainConfig& config, const std::vector<double>& alphas,
                    const data::TokenDataset& data, int64_t count) {
  const std::unique_ptr<Communicator> world = make_single_process_communicator();
  const ParallelLayout layout(*world, {}, model, config.global_batch_size, config.micro_batch_size);
  train::TrainStep step(model, config, layout);
  step.model().init_weights(3);
  step.model().set_residual_scales(alphas);
  Outcome o;
  o.trace = train_steps(step, config.global_batch_size, data, 0, count);
  o.params = host_copy(step.model().params());
  o.bytes = step.model().allocated_bytes();
  o.recompute_layers = step.model().recompute_layers();
  return o;
}

// --recompute-granularity full trains bitwise like keeping every activation, with --bf16 on the CPU and on the
// GPU (unfused and flash attention there), one block skipped (α = 0).
TEST(CudaTrain, RecomputedBlocksTrainBitwiseLikeKeptOnes) {
  const data::ByteDataset data = random_text(32);
  for (Device device : {Device::CPU, Device::CUDA}) {
    if (device == Device::CUDA) {
      PRORES_SKIP_WITHOUT_CUDA_DEVICE();
    }
    for (const std::string backend : {"unfused", "flash"}) {
      if (device == Device::CPU && backend == "flash") continue;
      SCOPED_TRACE((device == Device::CPU ? "cpu " : "cuda ") + backend);
      const ModelConfig model = tiny_model(backend == "flash" ? 64 : 16);
      train::TrainConfig kept = train_config(device, true, backend), recomputed = kept;
      recomputed.recompute_granularity = "full";
      const std::vector<double> alphas{1.0, 0.0, 0.25};
      const Outcome a = train_fresh(model, kept, alphas, data, 3), b = train_fresh(model, recomputed, alphas, data, 3);
      EXPECT_EQ(b.recompute_layers, model.num_layers);
      EXPECT_EQ(a.trace.loss, b.trace.loss);
      EXPECT_EQ(a.trace.grad_norm, b.trace.grad_norm);
      EXPECT_EQ(a.params, b.params);
      EXPECT_LT(b.bytes, a.bytes);
    }
  }
}

// Pre-LN on one rank: the o and down GEMMs add their products to the residual stream in cuBLASLt's epilogue
// (linear_forward_residual), which the sandwich model of the tests above never takes: 20 steps track the CPU
// within 1e-4 in fp32 and 2e-2 with --bf16 and flash attention.
TEST(CudaTrain, PreNormResidualInTheGemmTracksTheCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  const data::ByteDataset data = random_text(32);
  const std::vector<double> alphas{1.0, 0.6, 0.25};
  ModelConfig model = tiny_model(64);
  model.norm_placement = NormPlacement::Pre;
  const Trace cpu = train_fresh(model, train_config(Device::CPU, false, "unfused"), alphas, data, 20).trace;
  expect_tracks(train_fresh(model, train_config(Device::CUDA, false, "unfused"), alphas, data, 20).trace, cpu,
                1e-4, "pre-LN fp32");
  expect_tracks(train_fresh(model, train_config(Device::CUDA, true, "flash"), alphas, data, 20).trace, cpu, 2e-2,
                "pre-LN bf16 + flash");
}

TEST(CudaTrain, CheckpointResumesBitExactlyAndReadsOnTheCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  const data::ByteDataset data = random_text(32);
  const test::TempDir dir("prores_cuda_ckpt");
  const std::string save = (dir.path() / "ckpt").string();
  TrainRun original(Device::CUDA, false);
  train_steps(original, data, 0, 4);
  const ScheduleArgs schedule;
  train::save_checkpoint(save, 0, {}, {4, 16}, original.step, original.layout,
                         train::checkpoint_attributes(original.model, schedule, original.config));
  const Trace continued = train_steps(original, data, 4, 3);

  TrainRun resumed(Device::CUDA, false), on_cpu(Device::CPU, false);
  EXPECT_EQ(train::load_checkpoint(save, resumed.step, resumed.layout).iteration, 4);
  train::load_checkpoint(save, on_cpu.step, on_cpu.layout);
  EXPECT_EQ(host_copy(resumed.step.model().params()), host_copy(on_cpu.step.model().params()));
  const Trace again = train_steps(resumed, data, 4, 3);
  EXPECT_EQ(again.loss, continued.loss);
  EXPECT_EQ(again.grad_norm, continued.grad_norm);
}

TEST(CudaTrain, ModelLargerThanTheGpuFailsWithOneLine) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  ModelConfig huge = tiny_model();
  huge.num_layers = 1;
  huge.hidden_size = 16384;
  huge.num_attention_heads = 128;
  huge.num_query_groups = 128;
  huge.ffn_hidden_size = 16384;
  huge.vocab_size = 1 << 21;  // two 2^35-element tables: 256 GiB of parameters and gradients
  test::expect_error([&] { Model m(huge, 1, DType::F32, {}, nullptr, 1, {Device::CUDA}); }, {"out of GPU memory"});
}

}  // namespace
