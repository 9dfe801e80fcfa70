// --device cuda training against the CPU reference, through TrainStep (the trainer's own optimizer step)
// on a tiny GQA model with ProRes α in (0, 1) and a sandwich norm: 20 steps in fp32 track the CPU run's
// losses and gradient norms within 1e-4 relative, and with --bf16 matmuls (with and without flash
// attention, which needs heads of 64) within 2e-2; a block with α = 0
// skips its branches on the GPU with bitwise the same result; a checkpoint saved from the GPU resumes
// bit-exactly on the GPU and matches the CPU's reading of it; and a model larger than the GPU fails with
// one line naming the GPU memory. Every test but the attention-backend choice skips without a device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "ops/attention.h"
#include "ops/memory.h"
#include "parallel/communicator.h"
#include "test_util.h"
#include "train/checkpointing.h"
#include "train/train_step.h"
#include "train/trainer.h"

namespace {

using namespace prores;

// head_size 16 by default; flash attention needs 64 or 128.
ModelConfig tiny_model(int64_t head_size = 16) {
  ModelConfig c;
  c.num_layers = 3;
  c.hidden_size = 4 * head_size;
  c.ffn_hidden_size = 96;
  c.num_attention_heads = 4;
  c.num_query_groups = 2;
  c.seq_length = 32;
  c.vocab_size = 256;
  c.norm_placement = NormPlacement::Sandwich;
  return c;
}

train::TrainConfig train_config(Device device, bool bf16, const std::string& attention_backend) {
  train::TrainConfig t;
  t.attention_backend = attention_backend;
  t.micro_batch_size = 2;
  t.global_batch_size = 4;  // two micro-batches: gradient accumulation
  t.data_path = "<memory>";
  t.device = device;
  t.bf16 = bf16;
  t.lr.lr = 1e-3;
  return t;
}

data::ByteDataset random_text(int64_t seq_length) {
  std::mt19937 rng(11);
  std::vector<uint8_t> bytes(1 << 16);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng() % 96 + 32);
  return data::ByteDataset::from_bytes(std::move(bytes), {1, 0, 0}, seq_length, 5);
}

// One single-process run: a layout, a TrainStep and the data.
struct TrainRun {
  std::unique_ptr<Communicator> world = make_single_process_communicator();
  ModelConfig model;
  train::TrainConfig config;
  ParallelLayout layout;
  train::TrainStep step;

  TrainRun(Device device, bool bf16, const std::string& attention_backend = "unfused", int64_t head_size = 16)
      : model(tiny_model(head_size)),
        config(train_config(device, bf16, attention_backend)),
        layout(*world, ParallelConfig{}, model, config.global_batch_size, config.micro_batch_size),
        step(model, config, layout) {
    step.model().init_weights(3);
    step.model().set_alphas(std::vector<double>{1.0, 0.6, 0.25});
  }
};

struct Trace {
  std::vector<double> loss, grad_norm;
};

Trace train_steps(TrainRun& run, const data::TokenDataset& data, int64_t first, int64_t count) {
  Trace t;
  for (int64_t i = first; i < first + count; ++i) {
    const train::StepResult r = run.step.step(data, i * run.config.global_batch_size, 1e-3);
    t.loss.push_back(r.loss);
    t.grad_norm.push_back(r.grad_norm);
  }
  return t;
}

std::vector<float> host_copy(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ops::copy_to_host(out.data(), t);
  return out;
}

void expect_tracks(const Trace& gpu, const Trace& cpu, double rel, const char* what) {
  ASSERT_EQ(gpu.loss.size(), cpu.loss.size());
  for (size_t i = 0; i < cpu.loss.size(); ++i) {
    EXPECT_NEAR(gpu.loss[i], cpu.loss[i], rel * std::abs(cpu.loss[i])) << what << " step " << i + 1;
    EXPECT_NEAR(gpu.grad_norm[i], cpu.grad_norm[i], rel * std::abs(cpu.grad_norm[i])) << what << " step " << i + 1;
  }
}

// --attention-backend auto picks flash only for CUDA with --bf16 and heads the kernels take (64, 128);
// flash and unfused are taken as given. Runs everywhere: the choice needs no device.
TEST(CudaTrain, AttentionBackendChoice) {
  const ModelConfig hs16 = tiny_model(16), hs64 = tiny_model(64);
  train::TrainConfig t = train_config(Device::CUDA, true, "auto");
  EXPECT_FALSE(train::uses_flash_attention(t, hs16));
  EXPECT_EQ(train::uses_flash_attention(t, hs64), ops::flash_attention_supports(64));
#if defined(PRORES_WITH_CUDA)
  EXPECT_TRUE(ops::flash_attention_supports(64) && ops::flash_attention_supports(128));
#endif
  EXPECT_FALSE(ops::flash_attention_supports(32));
  EXPECT_FALSE(train::uses_flash_attention(train_config(Device::CUDA, false, "auto"), hs64)) << "fp32 stays exact";
  EXPECT_FALSE(train::uses_flash_attention(train_config(Device::CPU, false, "auto"), hs64));
  EXPECT_TRUE(train::uses_flash_attention(train_config(Device::CUDA, false, "flash"), hs64));
  EXPECT_FALSE(train::uses_flash_attention(train_config(Device::CUDA, true, "unfused"), hs64));
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
  ASSERT_TRUE(gpu.step.model().flash_attention());
  expect_tracks(train_steps(gpu, data, 0, 20), train_steps(cpu, data, 0, 20), 2e-2, "bf16 + flash");
}

TEST(CudaTrain, ZeroAlphaSkipIsBitwiseOnTheGpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  const data::ByteDataset data = random_text(32);
  TrainRun skip(Device::CUDA, false), full(Device::CUDA, false);
  for (TrainRun* r : {&skip, &full}) r->step.model().set_alphas(std::vector<double>{1.0, 0.0, 0.0});
  full.step.model().set_skip_zero_alpha(false);
  const Trace a = train_steps(skip, data, 0, 3), b = train_steps(full, data, 0, 3);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.grad_norm, b.grad_norm);
  EXPECT_EQ(host_copy(skip.step.model().params()), host_copy(full.step.model().params()));
}

TEST(CudaTrain, CheckpointResumesBitExactlyAndReadsOnTheCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
  const data::ByteDataset data = random_text(32);
  const test::TempDir dir("prores_cuda_ckpt");
  const std::string save = (dir.path() / "ckpt").string();
  TrainRun original(Device::CUDA, false);
  train_steps(original, data, 0, 4);
  const ScheduleArgs schedule;
  train::save_checkpoint(save, 0, {4, 16}, original.step, original.layout,
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
