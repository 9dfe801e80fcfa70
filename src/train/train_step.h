// TrainStep: one optimizer step of this rank across the TP × PP × DP layout: the 1F1B pipeline over the
// global batch's micro-batches (gradient accumulation), the data-parallel gradient reduction (bucketed
// all-reduce overlapping the last backward, or ZeRO-1's reduce-scatter), the global gradient norm (each
// parameter counted once), clipping and AdamW (on the local shard under ZeRO-1, then an all-gather). The
// optimizer's arithmetic and ZeRO-1's shards are optim/distributed_optimizer.h's; this class orchestrates.
// Also the pipelined forward-only evaluation. Everything it touches is allocated at construction.
// With --device cuda the model, gradients and optimizer moments live on this rank's GPU, the AdamW update
// runs there, and groups of more than one rank move device tensors over NCCL (host scalars stay on the
// layout's communicators); checkpoints read the parameters through a host mirror (state_to_host /
// state_to_device) and the moments through host copies of optimizer()'s tensors.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/config.h"
#include "data/byte_dataset.h"
#include "data/sampler.h"
#include "model/model.h"
#include "optim/adamw.h"
#include "optim/distributed_optimizer.h"
#include "parallel/data_parallel.h"
#include "parallel/layout.h"
#include "parallel/pipeline_runner.h"

namespace prores::train {

struct TrainConfig;

struct StepResult {
  double loss = 0;       // mean over the global batch, the same on every rank
  double grad_norm = 0;  // global norm before clipping, the same on every rank
  // Share of the pipeline's stage-time spent waiting rather than computing, averaged over the stages
  // (compare with the ideal 1F1B bubble (PP − 1) / (M + PP − 1)); 0 without pipeline parallelism.
  double pipeline_bubble = 0;
  double data_seconds = 0;  // spent reading samples on this rank (the loader's share of the step)
};

// What a TrainStep is built for: training (every buffer of a step), evaluation only (the weights and one
// block's activations: no gradients, no optimizer state; step() refuses), or generation (evaluation's model with
// a key/value cache per block, ModelExecution::kv_cache: CPU, one rank).
enum class StepUse { Train, Evaluate, Generate };

class TrainStep {
 public:
  TrainStep(const ModelConfig& model, const TrainConfig& config, const ParallelLayout& layout,
            StepUse use = StepUse::Train);
  ~TrainStep();
  Model& model() { return *model_; }
  const Model& model() const { return *model_; }
  // The optimizer covers elements [optimizer_begin(), optimizer_begin() + optimizer().num_params()) of the
  // model's flat buffers: all of them, or this DP rank's ZeRO-1 shard.
  // Its moments (optimizer().exp_avg(), exp_avg_sq()) are tensors on the model's device.
  bool has_optimizer() const { return optimizer_ != nullptr; }  // false for StepUse::Evaluate
  AdamW& optimizer();
  const AdamW& optimizer() const;
  int64_t optimizer_begin() const { return optimizer_ ? optimizer_->begin() : 0; }

  // The flat parameters (P) in host memory, as a checkpoint reads and writes them: the model's buffer on
  // the CPU, a host mirror on a GPU. state_to_host() fills the mirror from the device before a save;
  // state_to_device() publishes it after a load. Both do nothing on the CPU.
  float* host_params();
  void state_to_host();
  void state_to_device();

  // One step at learning rate lr with block alphas of this stage, on the global batch that starts at
  // sample consumed_samples of the dataset's train split.
  StepResult step(const data::TokenDataset& data, int64_t consumed_samples, double lr);
  // The RMS of the residual stream after every block of the model (global block order) in the last
  // micro-batch of the last step, averaged over the data-parallel ranks: the growth of the activations with
  // depth that ProRes tempers. Collective over the layout's world.
  std::vector<double> activation_rms();
  // Mean loss over eval_iters global batches of a split, the valid one by default (forward only, the same on
  // every rank).
  double evaluate(const data::TokenDataset& data, int64_t eval_iters, data::Split split = data::Split::Valid);
  // Forward only of micro_batches micro-batches through this data-parallel replica's pipeline at the model's
  // window (Model::set_window, the same on every rank of the replica): fill(m, tokens, targets) writes micro-batch
  // m's B·n ids (called on the first and last stages), and on the last stage scored(m) runs right after m's
  // forward, while model() still holds its results (target_log_probs, logits). Collective over the replica's
  // TP × PP ranks only. With bf16 matmuls the caller rounds the weights once after loading them
  // (model().round_matmul_weights()).
  void forward_only(int64_t micro_batches, const std::function<void(int64_t, int32_t*, int32_t*)>& fill,
                    const std::function<void(int64_t)>& scored);

 private:
  void load_micro_batch(const data::TokenDataset& data, data::Split split, int64_t consumed, int64_t micro);
  double run_forward_backward(const data::TokenDataset& data, data::Split split, int64_t consumed, bool backward);
  double global_grad_norm();
  Communicator& device_group(Communicator& host);

  const TrainConfig& config_;
  const ParallelLayout& layout_;
  std::vector<std::unique_ptr<Communicator>> device_groups_;  // NCCL groups for device tensors (CUDA)
  Communicator* tp_ = nullptr;
  Communicator* pp_ = nullptr;
  Communicator* dp_ = nullptr;
  std::unique_ptr<Model> model_;
  int64_t accum_;  // micro-batches per step on this DP rank
  std::vector<PipelineAction> train_actions_, eval_actions_;
  data::DistributedSampler sampler_;
  std::vector<int64_t> sample_indices_;
  std::vector<int32_t> tokens_, targets_;  // one micro-batch
  std::unique_ptr<DataParallelReducer> reducer_;   // DP > 1 without ZeRO-1
  std::unique_ptr<DistributedOptimizer> optimizer_;  // AdamW over the whole buffer or this rank's ZeRO-1 shard
  bool reduce_in_backward_ = false;                 // the last micro-batch: report ready gradients
  double compute_seconds_ = 0, pipeline_seconds_ = 0, data_seconds_ = 0;  // of the last run_forward_backward
  std::vector<float> host_params_;  // CUDA: the checkpoint mirror of the parameters
};

}  // namespace prores::train
