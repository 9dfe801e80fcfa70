// The training loop: for every iteration the ProRes α of this stage's blocks, one TrainStep across the
// TP × PP × DP layout (train_step.h) at the scheduled learning rate; periodic validation; checkpoints
// (--save, --save-interval, --exit-interval; a stop request on any rank makes every rank finish the
// iteration, save and stop); resumption with --load; on world rank 0 metrics.jsonl and one readable line
// per logged iteration.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "data/byte_dataset.h"
#include "model/residual_schedule.h"
#include "parallel/layout.h"
#include "train/probe.h"
#include "train/train_config.h"
#include "train/train_step.h"

namespace prores::train {

// What a run leaves behind, for the caller and the tests.
struct TrainResult {
  std::vector<double> losses;     // training loss of every iteration
  std::vector<double> grad_norms; // global gradient norm before clipping, every iteration
  std::vector<double> val_losses; // one per evaluation
  double tokens_per_sec = 0;      // over the whole run, evaluation excluded
  double mfu = 0;
};

// The attention kernel the model runs: --attention-backend flash or cudnn as given, auto is flash with --device
// cuda, --bf16 and a head size the flash kernels take, otherwise (and on the CPU) unfused, which materializes the
// probabilities.
AttentionKernel attention_kernel(const TrainConfig& config, const ModelConfig& model);

// ", flash attention", ", cuDNN attention" or "" (unfused), for the run's description line.
const char* attention_kernel_note(AttentionKernel kernel);

// How many of a stage's `stage_layers` blocks (its first ones) recompute their activations in the backward:
// none without --recompute-granularity full; with it every block (--recompute-method uniform: Megatron
// recomputes chunks of --recompute-num-layers blocks from each chunk's input; here each block starts from its
// own input, which the residual stream keeps anyway, so any chunk size gives the same numbers and memory) or
// the first --recompute-num-layers of the stage (block).
int64_t recomputed_layers(const TrainConfig& config, int64_t stage_layers);

// Model FLOPs per token, PaLM's count with the full (unmasked) attention term: 6·N + 12·L·C·T, with N the
// parameters that take part in matrix multiplies (the LM head included, the embedding not).
double model_flops_per_token(const ModelConfig& model, int64_t matmul_params);
// One block's share of that count (its linear weights and its attention term): the FLOPs a block whose α is
// exactly 0 does not run, since it skips its branches in forward and backward. MFU counts the FLOPs a step ran.
double block_flops_per_token(const ModelConfig& model);

// The default MFU denominator of `ranks` ranks in TFLOP/s (docs/performance.md): on the CPU the 2-core
// reference machine's fp32 peak (0.442), or its bf16 peak (0.9) with --bf16, shared by every rank on it;
// with --device cuda the dense bf16 peak of one H100/H200 (989) per rank.
double default_peak_tflops(const TrainConfig& config, int64_t ranks);

// The training data of config: the byte-level text file of --data-path, or with --tokenizer-model the
// Megatron indexed dataset(s) --data-path names (one prefix or a weighted blend). Throws naming the option.
std::shared_ptr<const data::TokenDataset> open_training_data(const TrainConfig& config, const ModelConfig& model);

// Evaluation beyond the validation loss that the caller supplies (zero-shot tasks: train/ does not know them):
// every `interval` iterations and after the last, run(step) on every rank, with the model after those steps (α
// and weights as the validation sees them), returns named values, the same on every rank, that go into one
// metrics.jsonl record with the iteration.
struct PeriodicEvaluation {
  int64_t interval = 0;  // 0: never
  std::function<std::vector<std::pair<std::string, double>>(TrainStep& step)> run;
};

// Collective over layout.world(). Logs go to `log` on world rank 0 (each rank reports its coordinates). After
// every iteration each rank asks stop_requested (when given; e.g. a signal arrived) and every rank learns
// whether any rank said yes (one all-reduce): then all save (with --save) and stop.
TrainResult train(const ModelConfig& model, const ScheduleArgs& schedule, const TrainConfig& config,
                  const ParallelLayout& layout, const data::TokenDataset& data, std::ostream& log,
                  const std::function<bool()>& stop_requested = {}, const PeriodicEvaluation& periodic = {});

// A checkpoint loaded for forward-only use (evaluation, scoring, generation).
struct LoadedStep {
  std::unique_ptr<TrainStep> step;
  std::string checkpoint;  // the iteration directory
  int64_t iteration = 0;
};

// Collective over layout.world(): builds a TrainStep for `use` (Evaluate or Generate), loads config.load (required;
// any layout) into it, sets the ProRes α of the checkpoint's iteration t under `schedule` (α(t) as train()
// evaluates after t steps) and rounds the bf16 matmul weights.
LoadedStep load_for_inference(const ModelConfig& model, const ScheduleArgs& schedule, const TrainConfig& config,
                              const ParallelLayout& layout, StepUse use);

// What `prores eval` reports: the checkpoint, its iteration, the α(l, t) of every layer it was evaluated with,
// and the mean loss of config.eval_iters global batches of the validation split and of the test split (NaN when
// --split leaves that split empty) over tokens_per_split target tokens each.
struct EvalResult {
  std::string checkpoint;  // the iteration directory
  int64_t iteration = 0;
  std::vector<double> alpha;  // layers 1..L
  int64_t tokens_per_split = 0;
  double val_loss = 0, test_loss = 0;
};

// Collective over layout.world(): loads config.load (required; any layout) into a fresh model, sets the ProRes
// α of its iteration t under `schedule` (the checkpoint's, as the command line takes it), α(t) as train()
// evaluates after t steps, and evaluates both splits as train() evaluates the validation split, so that val_loss
// reproduces the val_loss logged then. Logs one line to `log` on world rank 0, the losses and perplexities in
// full precision (no metrics.jsonl record: the run's own file stays the training's).
EvalResult evaluate_checkpoint(const ModelConfig& model, const ScheduleArgs& schedule, const TrainConfig& config,
                               const ParallelLayout& layout, const data::TokenDataset& data, std::ostream& log);

// What `prores analyze` measures of one checkpoint of a run.
struct CheckpointSimilarity {
  int64_t iteration = 0;
  Similarity similarity;  // to the run's last checkpoint
};

// Collective over layout.world(): for every iteration directory of config.load (a run's checkpoint directory,
// checkpoints of any layout), in iteration order, the layerwise similarity (probe.h) of its model, with the α of
// its iteration under `schedule`, to the model of the last one, on config.probe_batch_samples() probe samples.
// Logs one line per checkpoint to `log` on world rank 0.
std::vector<CheckpointSimilarity> analyze_run(const ModelConfig& model, const ScheduleArgs& schedule,
                                              const TrainConfig& config, const ParallelLayout& layout,
                                              const data::TokenDataset& data, std::ostream& log);

}  // namespace prores::train
