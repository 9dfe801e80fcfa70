// TrainConfig validation (see train_config.h).
#include "train/train_config.h"

#include <cmath>
#include <string>

#include "core/check.h"
#include "ops/attention.h"

namespace prores::train {

void TrainConfig::validate() const {
  PRORES_CHECK(micro_batch_size >= 1, "--micro-batch-size must be positive, got ", micro_batch_size);
  PRORES_CHECK(global_batch_size >= 1 && global_batch_size % micro_batch_size == 0, "--global-batch-size ",
               global_batch_size, " must be a positive multiple of --micro-batch-size ", micro_batch_size);
  PRORES_CHECK(train_iters >= 1, "--train-iters must be positive, got ", train_iters);
  PRORES_CHECK(std::isfinite(clip_grad) && clip_grad >= 0, "--clip-grad must be a finite number >= 0, got ",
               clip_grad);
  PRORES_CHECK(log_interval >= 1, "--log-interval must be positive, got ", log_interval);
  PRORES_CHECK(eval_interval >= 0, "--eval-interval must be >= 0, got ", eval_interval);
  PRORES_CHECK(eval_iters >= 1, "--eval-iters must be positive, got ", eval_iters);
  PRORES_CHECK(std::isfinite(peak_flops) && peak_flops > 0, "--peak-tflops must be positive, got ",
               peak_flops / 1e12);
  PRORES_CHECK(save_interval >= 0, "--save-interval must be >= 0, got ", save_interval);
  PRORES_CHECK(exit_interval >= 0, "--exit-interval must be >= 0, got ", exit_interval);
  PRORES_CHECK(keep_last >= 0, "--keep-last must be >= 0, got ", keep_last);
  for (size_t i = 0; i < save_iters.size(); ++i)
    PRORES_CHECK(save_iters[i] >= 1 && (i == 0 || save_iters[i] > save_iters[i - 1]),
                 "--save-iters must list increasing positive iterations, got ", save_iters[i],
                 i > 0 ? " after " + std::to_string(save_iters[i - 1]) : std::string());
  PRORES_CHECK(probe_interval >= 0, "--probe-interval must be >= 0, got ", probe_interval);
  PRORES_CHECK(probe_samples >= 0, "--probe-samples must be >= 0, got ", probe_samples);
  validate_attention_backend(attention_backend, device, bf16, bf16_activations);
  if (attention_backend == "cudnn") ops::require_cudnn_attention();
  PRORES_CHECK(recompute_granularity != "selective", "--recompute-granularity selective is not supported: flash "
               "attention keeps no probabilities to drop; use full");
  PRORES_CHECK(recompute_granularity.empty() || recompute_granularity == "full",
               "--recompute-granularity must be full, got '", recompute_granularity, "'");
  PRORES_CHECK(recompute_method == "uniform" || recompute_method == "block",
               "--recompute-method must be uniform or block, got '", recompute_method, "'");
  PRORES_CHECK(recompute_num_layers >= 1, "--recompute-num-layers must be positive, got ", recompute_num_layers);
  prores::validate(adam);
  LrSchedule check_lr(lr);
}

void validate_attention_backend(const std::string& backend, Device device, bool bf16, bool bf16_activations) {
  PRORES_CHECK(backend == "auto" || backend == "flash" || backend == "cudnn" || backend == "unfused",
               "--attention-backend must be auto, flash, cudnn or unfused, got '", backend, "'");
  PRORES_CHECK(backend != "flash" || device == Device::CUDA, "--attention-backend flash needs --device cuda");
  PRORES_CHECK(backend != "cudnn" || device == Device::CUDA, "--attention-backend cudnn needs --device cuda");
  PRORES_CHECK(backend != "cudnn" || (bf16 && bf16_activations), "--attention-backend cudnn needs --bf16 (with bf16 "
               "activations): cuDNN's fused attention takes bf16 q, k, v");
}

}  // namespace prores::train
