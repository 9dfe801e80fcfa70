// The options of a training run other than the model's (ModelConfig, core/config.h) and the ProRes
// schedule's (ScheduleArgs): batch, length, optimizer, data, logging, checkpoints, device and precision.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "optim/adamw.h"
#include "optim/lr_schedule.h"

namespace prores::train {

struct TrainConfig {
  int64_t micro_batch_size = 4;    // --micro-batch-size
  int64_t global_batch_size = 8;   // --global-batch-size (a multiple of the micro-batch size)
  int64_t train_iters = 50;        // --train-iters
  LrConfig lr;                     // --lr, --min-lr, --lr-warmup-iters, --lr-decay-style, ...
  AdamWConfig adam;                // --adam-beta1, --adam-beta2, --adam-eps, --weight-decay
  double clip_grad = 1.0;          // --clip-grad (0 disables)
  uint64_t seed = 1234;            // --seed: init and data order
  std::string data_path;           // --data-path: a text file (byte-level) or indexed-dataset prefix(es)
  std::string tokenizer_model;     // --tokenizer-model: SentencePiece model; empty: byte-level text
  int64_t make_vocab_size_divisible_by = 128;  // --make-vocab-size-divisible-by (with a tokenizer)
  std::string split = "969,30,1";  // --split
  int64_t log_interval = 10;       // --log-interval
  int64_t eval_interval = 0;       // --eval-interval (0: no evaluation)
  int64_t eval_iters = 10;         // --eval-iters: micro-batches per evaluation
  std::string log_dir;             // --log-dir: where metrics.jsonl goes (empty: --save, or none)
  std::string save;                // --save: checkpoint directory (empty: no checkpoints)
  std::string load;                // --load: checkpoint directory or iteration directory to resume from
  int64_t save_interval = 0;       // --save-interval (0: only at the end, on exit or preemption)
  int64_t exit_interval = 0;       // --exit-interval: save and stop after this iteration (0: never)
  int64_t keep_last = 0;           // --keep-last: iteration directories kept (0: all)
  std::vector<int64_t> save_iters;  // --save-iters: also save after these iterations, exempt from --keep-last
  int64_t probe_interval = 100;    // --probe-interval: probe-batch norms every K iterations (0: never)
  int64_t probe_samples = 0;       // --probe-samples: size of the probe batch (0: --global-batch-size)
  double peak_flops = 442e9;       // --peak-tflops · 1e12: MFU denominator, all ranks together
  Device device = Device::CPU;     // --device cpu|cuda (one GPU per rank, the node-local rank's)
  bool bf16 = false;               // --bf16: matmuls on bf16-rounded operands, fp32 accumulation and master weights
  bool bf16_activations = true;    // with bf16: the activations between matmuls in bf16 (off: f32, for A/B timing)
  std::string attention_backend = "auto";  // --attention-backend auto|flash|cudnn|unfused (see attention_kernel)
  std::string recompute_granularity;       // --recompute-granularity full (empty: keep every activation)
  std::string recompute_method = "uniform";  // --recompute-method uniform|block (see recomputed_layers)
  int64_t recompute_num_layers = 1;          // --recompute-num-layers

  int64_t probe_batch_samples() const { return probe_samples > 0 ? probe_samples : global_batch_size; }
  void validate() const;           // throws prores::Error naming the option and value
};

// The --attention-backend checks a run and a plan share: the name, and the device and precision it needs.
void validate_attention_backend(const std::string& backend, Device device, bool bf16, bool bf16_activations);

}  // namespace prores::train
