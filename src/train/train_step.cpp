// One optimizer step across the parallel layout (see train_step.h).
#include "train/train_step.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "ops/gemm.h"
#include "ops/memory.h"
#include "optim/grad_clip.h"
#include "parallel/pipeline_schedule.h"
#include "train/trainer.h"

namespace prores::train {

namespace {

// Bucket size for the data-parallel all-reduce (elements): Megatron's default is 40M; CPU runs with small
// models want several buckets per step so that reduction overlaps backward.
constexpr int64_t kBucketElements = int64_t{1} << 22;

// Forward only, one micro-batch after the other through every chunk: in (micro-batch, virtual stage) order, the
// one global order of its transfers.
std::vector<PipelineAction> forward_only_actions(const LayoutShape& ls, int64_t micro_batches) {
  std::vector<PipelineAction> actions;
  for (int64_t m = 0; m < micro_batches; ++m) {
    for (int64_t c = 0; c < ls.chunks; ++c) {
      if (!(ls.first_stage() && c == 0)) actions.push_back({PipelineAction::RecvForward, m, c});
      actions.push_back({PipelineAction::Forward, m, c});
      if (!(ls.last_stage() && c == ls.chunks - 1)) actions.push_back({PipelineAction::SendForward, m, c});
    }
  }
  return actions;
}

bool is_head(const ParamEntry& e) { return e.name == "model.norm.weight" || e.name == "lm_head.weight"; }

// Readiness units in the order backward completes them: the last block (with the final norm and head,
// final before it), earlier blocks (local order: with virtual stages, the chunks from the last), then the
// embedding.
std::vector<GradUnit> backward_units(const ParamTable& table, const ModelShard& shard) {
  std::vector<GradUnit> units;
  for (int64_t local = shard.num_layers - 1; local >= 0; --local) {
    const int64_t l = shard.layer(local);
    int64_t begin = table.total_numel(), end = 0;
    for (const ParamEntry& e : table.entries())
      if (e.layer == l || (local == shard.num_layers - 1 && is_head(e))) {
        begin = std::min(begin, e.offset);
        end = std::max(end, e.offset + e.numel);
      }
    units.push_back({begin, end - begin});
  }
  if (shard.first_stage) units.push_back({0, table.find("model.embed_tokens.weight").numel});
  return units;
}

}  // namespace

TrainStep::TrainStep(const ModelConfig& model_config, const TrainConfig& config, const ParallelLayout& layout,
                     StepUse use)
    : config_(config),
      layout_(layout),
      sampler_(config.global_batch_size, config.micro_batch_size, layout.shape().dp_rank, layout.shape().dp) {
  const LayoutShape& ls = layout.shape();
  const ModelShard shard = shard_of(ls);
  tp_ = &device_group(layout.tp());
  dp_ = &device_group(layout.dp());
  pp_ = &device_group(layout.pp());
  accum_ = config.global_batch_size / (config.micro_batch_size * ls.dp);
  const PipelineSchedule schedule =
      ls.chunks > 1 ? interleaved_one_f_one_b(ls.pp, ls.chunks, accum_) : one_f_one_b(ls.pp, accum_);
  validate_schedule(schedule, ls.pp, accum_, ls.chunks);
  train_actions_ = schedule[static_cast<size_t>(ls.pp_rank)];
  eval_actions_ = forward_only_actions(ls, accum_);
  // Evaluation runs each micro-batch's forward through the stage before the next: one activation slot per chunk,
  // and its blocks share one set of activations (as recomputed blocks do).
  const bool train = use == StepUse::Train;
  int64_t slots = 1;
  for (int64_t c = 0; train && c < ls.chunks; ++c) slots = std::max(slots, max_in_flight(train_actions_, c));
  const ops::MatmulPrecision precision = config.bf16 ? ops::MatmulPrecision::Bf16 : ops::MatmulPrecision::Fp32;
  PRORES_CHECK(use != StepUse::Generate || (config.device == Device::CPU && ls.tp == 1 && ls.pp == 1),
               "generation runs on one CPU rank (TP = PP = 1, --device cpu)");
  model_ = std::make_unique<Model>(
      model_config, config.micro_batch_size, DType::F32, shard, tp_, slots,
      ModelExecution{config.device, attention_kernel(config, model_config), precision, config.bf16_activations,
                     train ? recomputed_layers(config, shard.num_layers) : shard.num_layers, train,
                     use == StepUse::Generate, layout.config().sequence_parallel});
  const int64_t N = config.micro_batch_size * model_config.seq_length;
  sample_indices_.resize(static_cast<size_t>(config.micro_batch_size));
  tokens_.resize(static_cast<size_t>(N));
  targets_.resize(static_cast<size_t>(N));

  const ParamTable& table = model_->table();
  const int64_t P = table.total_numel();
  if (config.device != Device::CPU) host_params_.resize(static_cast<size_t>(P));
  if (!train) return;
  const bool zero = layout.config().distributed_optimizer;
  if (!zero && ls.dp > 1) {
    const int64_t L = ls.num_layers;
    reducer_ = std::make_unique<DataParallelReducer>(model_->grads(), backward_units(table, shard), kBucketElements,
                                                     *dp_);
    model_->set_grad_ready_hook([this, L](int64_t l) {
      if (reduce_in_backward_) reducer_->unit_ready(l < 0 ? L : L - 1 - l);
    });
  }
  // Every parameter with its decay flag; TP-replicated ones (norms) count in the gradient norm only on TP
  // rank 0, so that each parameter counts once.
  std::vector<OptimizerParam> params;
  for (const ParamEntry& e : table.entries())
    params.push_back({e.offset, e.numel, e.weight_decay, !(e.tp_replicated() && ls.tp_rank != 0)});
  optimizer_ = std::make_unique<DistributedOptimizer>(config.adam, model_->params(), model_->grads(), params, *dp_,
                                                      zero);
}

// The communicator that carries this group's device tensors: the layout's own on the CPU, on a GPU
// make_gpu_communicator's over it (made in the same order on every rank).
Communicator& TrainStep::device_group(Communicator& host) {
  if (config_.device == Device::CPU) return host;
  device_groups_.push_back(make_gpu_communicator(host));
  return *device_groups_.back();
}

AdamW& TrainStep::optimizer() {
  PRORES_CHECK(optimizer_, "TrainStep: no optimizer in a step built for evaluation only");
  return optimizer_->adamw();
}

const AdamW& TrainStep::optimizer() const {
  PRORES_CHECK(optimizer_, "TrainStep: no optimizer in a step built for evaluation only");
  return optimizer_->adamw();
}

float* TrainStep::host_params() {
  return config_.device == Device::CPU ? model_->params().as<float>() : host_params_.data();
}

void TrainStep::state_to_host() {
  if (config_.device == Device::CPU) return;
  ops::copy_to_host(host_params_.data(), model_->params());
}

void TrainStep::state_to_device() {
  if (config_.device == Device::CPU) return;
  ops::copy_from_host(model_->params(), host_params_.data());
}

TrainStep::~TrainStep() = default;

void TrainStep::load_micro_batch(const data::TokenDataset& data, data::Split split, int64_t consumed, int64_t micro) {
  const int64_t T = data.seq_length();
  sampler_.micro_batch_indices(consumed, micro, sample_indices_.data());
  for (size_t b = 0; b < sample_indices_.size(); ++b)
    data.get_sample(split, sample_indices_[b], tokens_.data() + b * T, targets_.data() + b * T);
}

double TrainStep::run_forward_backward(const data::TokenDataset& data, data::Split split, int64_t consumed,
                                       bool backward) {
  Model& m = *model_;
  const int64_t slots = m.num_slots();
  const double loss_scale = 1.0 / static_cast<double>(accum_ * layout_.shape().dp);
  double loss_sum = 0;
  compute_seconds_ = data_seconds_ = 0;
  m.round_matmul_weights();  // the parameters as the last optimizer step (or a load) left them
  auto timed = [](double& seconds, auto&& work) {
    const auto start = std::chrono::steady_clock::now();
    work();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const LayoutShape& shape = layout_.shape();
  PipelineStage stage;
  stage.forward = [&](int64_t micro, int64_t chunk) {
    // The ids feed the embedding (the first stage's chunk 0) and the loss (the last stage's last chunk).
    if ((shape.first_stage() && chunk == 0) || (shape.last_stage() && chunk == shape.chunks - 1))
      timed(data_seconds_, [&] { load_micro_batch(data, split, consumed, micro); });
    timed(compute_seconds_, [&] { loss_sum += m.forward(chunk, micro % slots, tokens_.data(), targets_.data()); });
  };
  stage.backward = [&](int64_t micro, int64_t chunk) {
    reduce_in_backward_ = micro == accum_ - 1;  // the chunk's last backward
    timed(compute_seconds_, [&] { m.backward(chunk, micro % slots, loss_scale); });
    reduce_in_backward_ = false;
  };
  stage.activation_in = [&](int64_t micro, int64_t chunk) { return m.stage_input(chunk, micro % slots); };
  stage.activation_out = [&](int64_t micro, int64_t chunk) { return m.stage_output(chunk, micro % slots); };
  stage.gradient_in = [&](int64_t chunk) { return m.output_grad(chunk); };
  stage.gradient_out = [&](int64_t chunk) { return m.input_grad(chunk); };
  const auto start = std::chrono::steady_clock::now();
  run_pipeline(backward ? train_actions_ : eval_actions_, stage, *pp_);
  pipeline_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The last stage's TP × DP ranks hold the loss (the same on each TP rank): average it to every rank.
  const LayoutShape& ls = layout_.shape();
  const double local = ls.last_stage() ? loss_sum / static_cast<double>(accum_) : 0.0;
  return layout_.world().all_reduce_scalar(local, ReduceOp::Sum) / static_cast<double>(ls.tp * ls.dp);
}

StepResult TrainStep::step(const data::TokenDataset& data, int64_t consumed_samples, double lr) {
  PRORES_CHECK(optimizer_, "TrainStep: step() on a step built for evaluation only");
  model_->zero_grads();
  StepResult result;
  result.loss = run_forward_backward(data, data::Split::Train, consumed_samples, true);
  result.data_seconds = data_seconds_;
  if (layout_.shape().pp > 1) {
    const double idle = 1.0 - compute_seconds_ / pipeline_seconds_;
    result.pipeline_bubble = layout_.pp().all_reduce_scalar(idle, ReduceOp::Sum) / static_cast<double>(layout_.shape().pp);
  }
  if (reducer_) reducer_->finish();
  optimizer_->reduce_gradients();  // ZeRO-1's reduce-scatter (nothing otherwise)
  result.grad_norm = global_grad_norm();
  optimizer_->step(lr, clip_coefficient(result.grad_norm, config_.clip_grad));
  return result;
}

// Each parameter counted once: DP replicas not at all (after the all-reduce every DP rank holds the same
// sums, so the model-parallel group adds them) or, under ZeRO-1, each DP rank its shard (the whole world).
double TrainStep::global_grad_norm() {
  Communicator& group = optimizer_->sharded() ? layout_.world() : layout_.model_parallel();
  return std::sqrt(group.all_reduce_scalar(optimizer_->grad_sum_of_squares(), ReduceOp::Sum));
}

std::vector<double> TrainStep::activation_rms() {
  const LayoutShape& ls = layout_.shape();
  const Model& m = *model_;
  const ModelShard& shard = m.shard();
  const double values = static_cast<double>(m.micro_batch() * m.window_length() * m.config().hidden_size);
  std::vector<double> rms(static_cast<size_t>(m.config().num_layers), 0.0);
  for (int64_t c = 0; c < shard.chunks; ++c) {
    std::vector<double> sums = m.block_output_sum_squares(c, (accum_ - 1) % m.num_slots());
    // Under sequence parallelism each TP rank holds its share of the stream's rows.
    if (m.sequence_parallel())
      layout_.tp().all_reduce(Tensor(sums.data(), DType::F64, Device::CPU, {static_cast<int64_t>(sums.size())}),
                              ReduceOp::Sum);
    if (ls.tp_rank != 0) continue;  // the TP ranks of a stage hold the same sums: one of them counts
    for (size_t j = 0; j < sums.size(); ++j)
      rms[static_cast<size_t>(shard.layer(c * shard.chunk_layers() + static_cast<int64_t>(j)) - 1)] =
          std::sqrt(sums[j] / values);
  }
  layout_.world().all_reduce(Tensor(rms.data(), DType::F64, Device::CPU, {static_cast<int64_t>(rms.size())}),
                             ReduceOp::Sum);
  for (double& r : rms) r /= static_cast<double>(ls.dp);
  return rms;
}

void TrainStep::forward_only(int64_t micro_batches, const std::function<void(int64_t, int32_t*, int32_t*)>& fill,
                             const std::function<void(int64_t)>& scored) {
  Model& m = *model_;
  const int64_t n = m.micro_batch() * m.window_length();
  const LayoutShape& ls = layout_.shape();
  PipelineStage stage;
  stage.forward = [&](int64_t micro, int64_t chunk) {
    const bool embeds = ls.first_stage() && chunk == 0, scores = ls.last_stage() && chunk == ls.chunks - 1;
    if (embeds || scores) fill(micro, tokens_.data(), targets_.data());
    m.forward(chunk, 0, tokens_.data(), targets_.data());
    if (scores) scored(micro);
  };
  stage.activation_in = [&](int64_t, int64_t chunk) { return m.stage_input(chunk, 0); };
  stage.activation_out = [&](int64_t, int64_t chunk) { return m.stage_output(chunk, 0); };
  PRORES_CHECK(n <= static_cast<int64_t>(tokens_.size()), "forward_only: window larger than the micro-batch buffer");
  run_pipeline(forward_only_actions(layout_.shape(), micro_batches), stage, *pp_);
}

double TrainStep::evaluate(const data::TokenDataset& data, int64_t eval_iters, data::Split split) {
  double sum = 0;
  for (int64_t i = 0; i < eval_iters; ++i)
    sum += run_forward_backward(data, split, i * config_.global_batch_size, false);
  return sum / static_cast<double>(eval_iters);
}

}  // namespace prores::train
