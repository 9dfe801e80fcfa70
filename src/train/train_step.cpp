// One optimizer step across the parallel layout (see train_step.h).
#include "train/train_step.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "ops/adamw.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/memory.h"
#include "optim/grad_clip.h"
#include "parallel/pipeline_schedule.h"
#include "train/trainer.h"
#if defined(PRORES_WITH_NCCL)
#include "parallel/nccl_communicator.h"
#endif

namespace prores::train {

namespace {

// Bucket size for the data-parallel all-reduce (elements): Megatron's default is 40M; CPU runs with small
// models want several buckets per step so that reduction overlaps backward.
constexpr int64_t kBucketElements = int64_t{1} << 22;

std::vector<PipelineAction> forward_only_actions(const LayoutShape& ls, int64_t micro_batches) {
  std::vector<PipelineAction> actions;
  for (int64_t m = 0; m < micro_batches; ++m) {
    if (!ls.first_stage()) actions.push_back({PipelineAction::RecvForward, m});
    actions.push_back({PipelineAction::Forward, m});
    if (!ls.last_stage()) actions.push_back({PipelineAction::SendForward, m});
  }
  return actions;
}

bool is_head(const ParamEntry& e) { return e.name == "model.norm.weight" || e.name == "lm_head.weight"; }

// Readiness units in the order backward completes them: the last block (with the final norm and head,
// final before it), earlier blocks, then the embedding.
std::vector<GradUnit> backward_units(const ParamTable& table, const ModelShard& shard) {
  std::vector<GradUnit> units;
  for (int64_t l = shard.first_layer + shard.num_layers - 1; l >= shard.first_layer; --l) {
    int64_t begin = table.total_numel(), end = 0;
    for (const ParamEntry& e : table.entries())
      if (e.layer == l || (l == shard.first_layer + shard.num_layers - 1 && is_head(e))) {
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
      sampler_(config.global_batch_size, config.micro_batch_size, layout.shape().dp_rank, layout.shape().dp),
      device_state_(config.device, config.device == Device::CPU ? DeviceMemory{} : ops::device_memory(config.device)) {
  const LayoutShape& ls = layout.shape();
  const ModelShard shard = shard_of(ls);
  tp_ = &device_group(layout.tp());
  dp_ = &device_group(layout.dp());
  pp_ = &device_group(layout.pp());
  accum_ = config.global_batch_size / (config.micro_batch_size * ls.dp);
  const PipelineSchedule schedule = one_f_one_b(ls.pp, accum_);
  validate_schedule(schedule, ls.pp, accum_);
  train_actions_ = schedule[static_cast<size_t>(ls.pp_rank)];
  eval_actions_ = forward_only_actions(ls, accum_);
  // Evaluation runs each micro-batch's forward through the stage before the next: one activation slot, and
  // its blocks share one set of activations (as recomputed blocks do).
  const bool train = use == StepUse::Train;
  const int64_t slots = train ? std::max<int64_t>(1, max_in_flight(train_actions_)) : 1;
  const ops::MatmulPrecision precision = config.bf16 ? ops::MatmulPrecision::Bf16 : ops::MatmulPrecision::Fp32;
  model_ = std::make_unique<Model>(
      model_config, config.micro_batch_size, DType::F32, shard, tp_, slots,
      ModelExecution{config.device, uses_flash_attention(config, model_config), precision, config.bf16_activations,
                     train ? recomputed_layers(config, shard.num_layers) : shard.num_layers, train});
  const int64_t N = config.micro_batch_size * model_config.seq_length;
  sample_indices_.resize(static_cast<size_t>(config.micro_batch_size));
  tokens_.resize(static_cast<size_t>(N));
  targets_.resize(static_cast<size_t>(N));

  const ParamTable& table = model_->table();
  const int64_t P = table.total_numel();
  if (config.device != Device::CPU) host_params_.resize(static_cast<size_t>(P));
  if (!train) return;
  const int64_t shard_size = (P + ls.dp - 1) / ls.dp;  // S, under ZeRO-1
  if (layout.config().distributed_optimizer) {
    shard_begin_ = std::min(P, ls.dp_rank * shard_size);
    shard_count_ = std::min(shard_size, P - shard_begin_);
    if (config.device == Device::CPU) {
      zero_host_.assign(static_cast<size_t>(shard_size * ls.dp), 0.0f);
      zero_full_ = Tensor(zero_host_.data(), DType::F32, Device::CPU, {shard_size * ls.dp});
    } else {
      device_state_.reserve(&zero_full_, DType::F32, {shard_size * ls.dp});
    }
  } else {
    shard_begin_ = 0;
    shard_count_ = P;
    if (ls.dp > 1) {
      const int64_t L = ls.num_layers;
      reducer_ = std::make_unique<DataParallelReducer>(model_->grads(), backward_units(table, shard), kBucketElements,
                                                       *dp_);
      model_->set_grad_ready_hook([this, L](int64_t l) {
        if (reduce_in_backward_) reducer_->unit_ready(l < 0 ? L : L - 1 - l);
      });
    }
  }
  adamw_ = std::make_unique<AdamW>(config.adam, shard_count_);
  // Each parameter's elements within the optimizer's range, relative to its start: the AdamW decay
  // segments, and the ranges the gradient norm counts (TP-replicated norms only on TP rank 0, so that
  // each parameter counts once), adjacent ones merged.
  std::vector<AdamW::Segment> segments;
  for (const ParamEntry& e : table.entries()) {
    const int64_t begin = std::max(e.offset, shard_begin_) - shard_begin_;
    const int64_t end = std::min(e.offset + e.numel, shard_begin_ + shard_count_) - shard_begin_;
    if (begin >= end) continue;
    segments.push_back({begin, end - begin, e.weight_decay});
    if (e.tp_replicated() && ls.tp_rank != 0) continue;
    if (!norm_ranges_.empty() && norm_ranges_.back().first + norm_ranges_.back().second == begin)
      norm_ranges_.back().second += end - begin;
    else
      norm_ranges_.emplace_back(begin, end - begin);
  }
  adamw_->set_segments(segments);
  if (config.device != Device::CPU) {
    device_state_.reserve(&exp_avg_, DType::F32, {shard_count_});
    device_state_.reserve(&exp_avg_sq_, DType::F32, {shard_count_});
    device_state_.allocate();
  }
  if (layout.config().distributed_optimizer) {
    ops::zero(zero_full_);  // the padding past P stays 0
    zero_shard_ = zero_full_.slice_rows(ls.dp_rank * shard_size, shard_size);
  }
}

// The communicator that carries this group's device tensors: the layout's own on the CPU; on a GPU a
// single-process one for a group of one rank, otherwise an NCCL communicator bootstrapped over the
// layout's (made in the same order on every rank).
Communicator& TrainStep::device_group(Communicator& host) {
  if (config_.device == Device::CPU) return host;
  if (host.size() == 1) {
    device_groups_.push_back(make_single_process_communicator());
    return *device_groups_.back();
  }
#if defined(PRORES_WITH_NCCL)
  device_groups_.push_back(std::make_unique<NcclCommunicator>(host));
  return *device_groups_.back();
#else
  PRORES_FAIL("--device cuda with more than one rank per group needs a build with NCCL");
#endif
}

AdamW& TrainStep::optimizer() {
  PRORES_CHECK(adamw_, "TrainStep: no optimizer in a step built for evaluation only");
  return *adamw_;
}

const AdamW& TrainStep::optimizer() const {
  PRORES_CHECK(adamw_, "TrainStep: no optimizer in a step built for evaluation only");
  return *adamw_;
}

float* TrainStep::host_params() {
  return config_.device == Device::CPU ? model_->params().as<float>() : host_params_.data();
}

void TrainStep::state_to_host() {
  if (config_.device == Device::CPU) return;
  ops::copy_to_host(host_params_.data(), model_->params());
  if (!adamw_) return;
  ops::copy_to_host(adamw_->exp_avg().data(), exp_avg_);
  ops::copy_to_host(adamw_->exp_avg_sq().data(), exp_avg_sq_);
}

void TrainStep::state_to_device() {
  if (config_.device == Device::CPU) return;
  ops::copy_from_host(model_->params(), host_params_.data());
  if (!adamw_) return;
  ops::copy_from_host(exp_avg_, adamw_->exp_avg().data());
  ops::copy_from_host(exp_avg_sq_, adamw_->exp_avg_sq().data());
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
  PipelineStage stage;
  stage.forward = [&](int64_t micro) {
    timed(data_seconds_, [&] { load_micro_batch(data, split, consumed, micro); });
    timed(compute_seconds_, [&] { loss_sum += m.forward(micro % slots, tokens_.data(), targets_.data()); });
  };
  stage.backward = [&](int64_t micro) {
    reduce_in_backward_ = micro == accum_ - 1;
    timed(compute_seconds_, [&] { m.backward(micro % slots, loss_scale); });
    reduce_in_backward_ = false;
  };
  stage.activation_in = [&](int64_t micro) { return m.stage_input(micro % slots); };
  stage.activation_out = [&](int64_t micro) { return m.stage_output(micro % slots); };
  stage.gradient_in = [&] { return m.output_grad(); };
  stage.gradient_out = [&] { return m.input_grad(); };
  const auto start = std::chrono::steady_clock::now();
  run_pipeline(backward ? train_actions_ : eval_actions_, stage, *pp_);
  pipeline_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The last stage's TP × DP ranks hold the loss (the same on each TP rank): average it to every rank.
  const LayoutShape& ls = layout_.shape();
  const double local = ls.last_stage() ? loss_sum / static_cast<double>(accum_) : 0.0;
  return layout_.world().all_reduce_scalar(local, ReduceOp::Sum) / static_cast<double>(ls.tp * ls.dp);
}

StepResult TrainStep::step(const data::TokenDataset& data, int64_t consumed_samples, double lr) {
  PRORES_CHECK(adamw_, "TrainStep: step() on a step built for evaluation only");
  model_->zero_grads();
  StepResult result;
  result.loss = run_forward_backward(data, data::Split::Train, consumed_samples, true);
  result.data_seconds = data_seconds_;
  if (layout_.shape().pp > 1) {
    const double idle = 1.0 - compute_seconds_ / pipeline_seconds_;
    result.pipeline_bubble = layout_.pp().all_reduce_scalar(idle, ReduceOp::Sum) / static_cast<double>(layout_.shape().pp);
  }
  if (layout_.config().distributed_optimizer) {
    ops::copy(zero_full_.slice_rows(0, model_->table().total_numel()), model_->grads());
    dp_->reduce_scatter(zero_shard_, zero_full_);
  } else if (reducer_) {
    reducer_->finish();
  }
  result.grad_norm = global_grad_norm();
  optimizer_step(lr, clip_coefficient(result.grad_norm, config_.clip_grad));
  return result;
}

// Sum of squares of grads[begin, begin + count): the host's deterministic fp64 sum, or the device's.
double TrainStep::sum_squares_of_range(const Tensor& grads, int64_t begin, int64_t count) const {
  if (config_.device == Device::CPU)
    return sum_of_squares(std::span<const float>(grads.as<float>() + begin, static_cast<size_t>(count)));
  return ops::sum_squares(grads.slice_rows(begin, count));
}

// Each parameter counted once (norm_ranges_): DP replicas not at all (after the all-reduce every DP rank
// holds the same sums) or, under ZeRO-1, each DP rank its shard.
double TrainStep::global_grad_norm() {
  const bool zero = layout_.config().distributed_optimizer;
  const Tensor shard_grads = zero ? zero_shard_ : model_->grads();
  double sum = 0;
  for (const auto& [begin, count] : norm_ranges_) sum += sum_squares_of_range(shard_grads, begin, count);
  Communicator& group = zero ? layout_.world() : layout_.model_parallel();
  return std::sqrt(group.all_reduce_scalar(sum, ReduceOp::Sum));
}

void TrainStep::optimizer_step(double lr, double clip_coef) {
  const bool zero = layout_.config().distributed_optimizer;
  const Tensor params = model_->params().slice_rows(shard_begin_, shard_count_);
  const Tensor grads = (zero ? zero_shard_ : model_->grads()).slice_rows(0, shard_count_);
  if (config_.device != Device::CPU) {
    adamw_->set_step_count(adamw_->step_count() + 1);
    const AdamWConfig& c = adamw_->config();
    for (const AdamW::Segment& seg : adamw_->segments())
      ops::adamw_step(params.slice_rows(seg.offset, seg.count), grads.slice_rows(seg.offset, seg.count),
                      exp_avg_.slice_rows(seg.offset, seg.count), exp_avg_sq_.slice_rows(seg.offset, seg.count),
                      {lr, c.beta1, c.beta2, c.eps, seg.decay ? c.weight_decay : 0.0, adamw_->step_count(),
                       clip_coef});
  } else {
    adamw_->step(params.as<float>(), grads.as<float>(), lr, clip_coef);
  }
  if (!zero) return;
  ops::copy(zero_shard_.slice_rows(0, shard_count_), params);
  dp_->all_gather(zero_full_, zero_shard_);
  ops::copy(model_->params(), zero_full_.slice_rows(0, model_->table().total_numel()));
}

std::vector<double> TrainStep::activation_rms() {
  const LayoutShape& ls = layout_.shape();
  std::vector<double> rms(static_cast<size_t>(model_->config().num_layers), 0.0);
  if (ls.tp_rank == 0) {  // the TP ranks of a stage hold the same stream: one of them counts
    const std::vector<double> stage = model_->block_output_rms((accum_ - 1) % model_->num_slots());
    std::copy(stage.begin(), stage.end(), rms.begin() + (ls.first_layer - 1));
  }
  layout_.world().all_reduce(Tensor(rms.data(), DType::F64, Device::CPU, {static_cast<int64_t>(rms.size())}),
                             ReduceOp::Sum);
  for (double& r : rms) r /= static_cast<double>(ls.dp);
  return rms;
}

double TrainStep::evaluate(const data::TokenDataset& data, int64_t eval_iters, data::Split split) {
  double sum = 0;
  for (int64_t i = 0; i < eval_iters; ++i)
    sum += run_forward_backward(data, split, i * config_.global_batch_size, false);
  return sum / static_cast<double>(eval_iters);
}

}  // namespace prores::train
