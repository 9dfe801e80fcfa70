// Shared by the TrainStep tests (test_cuda_train.cpp, test_train_bf16.cpp): a tiny model and training
// configuration, random text, a single-process run, and its trace of losses and gradient norms.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/byte_dataset.h"
#include "ops/memory.h"
#include "parallel/communicator.h"
#include "train/train_step.h"
#include "train/trainer.h"

namespace prores::test {

// A tiny GQA model with a sandwich norm; head_size 16 by default (flash attention needs 64 or 128).
inline ModelConfig tiny_model(int64_t head_size = 16) {
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

inline train::TrainConfig train_config(Device device, bool bf16, const std::string& attention_backend) {
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

inline data::ByteDataset random_text(int64_t seq_length) {
  std::mt19937 rng(11);
  std::vector<uint8_t> bytes(1 << 16);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng() % 96 + 32);
  return data::ByteDataset::from_bytes(std::move(bytes), {1, 0, 0}, seq_length, 5);
}

// config with its bf16_activations set.
inline train::TrainConfig with_bf16_activations(train::TrainConfig config, bool on) {
  config.bf16_activations = on;
  return config;
}

// One single-process run: a layout and a TrainStep, initialized with ProRes α in (0, 1).
struct TrainRun {
  std::unique_ptr<Communicator> world = make_single_process_communicator();
  ModelConfig model;
  train::TrainConfig config;
  ParallelLayout layout;
  train::TrainStep step;

  TrainRun(Device device, bool bf16, const std::string& attention_backend = "unfused", int64_t head_size = 16,
           bool bf16_activations = true, const ParallelConfig& parallel = {})
      : model(tiny_model(head_size)),
        config(with_bf16_activations(train_config(device, bf16, attention_backend), bf16_activations)),
        layout(*world, parallel, model, config.global_batch_size, config.micro_batch_size),
        step(model, config, layout) {
    step.model().init_weights(3);
    step.model().set_residual_scales(std::vector<double>{1.0, 0.6, 0.25});
  }
};

struct Trace {
  std::vector<double> loss, grad_norm;
};

// Steps first .. first + count - 1 of step (global batches of global_batch_size samples) at lr 1e-3.
inline Trace train_steps(train::TrainStep& step, int64_t global_batch_size, const data::TokenDataset& data,
                         int64_t first, int64_t count) {
  Trace t;
  for (int64_t i = first; i < first + count; ++i) {
    const train::StepResult r = step.step(data, i * global_batch_size, 1e-3);
    t.loss.push_back(r.loss);
    t.grad_norm.push_back(r.grad_norm);
  }
  return t;
}

inline Trace train_steps(TrainRun& run, const data::TokenDataset& data, int64_t first, int64_t count) {
  return train_steps(run.step, run.config.global_batch_size, data, first, count);
}

inline std::vector<float> host_copy(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ops::copy_to_host(out.data(), t);
  return out;
}

// Expects every loss and gradient norm of `got` within rel (relative) of `want`'s.
inline void expect_tracks(const Trace& got, const Trace& want, double rel, const char* what) {
  ASSERT_EQ(got.loss.size(), want.loss.size());
  for (size_t i = 0; i < want.loss.size(); ++i) {
    EXPECT_NEAR(got.loss[i], want.loss[i], rel * std::abs(want.loss[i])) << what << " step " << i + 1;
    EXPECT_NEAR(got.grad_norm[i], want.grad_norm[i], rel * std::abs(want.grad_norm[i])) << what << " step " << i + 1;
  }
}

}  // namespace prores::test
