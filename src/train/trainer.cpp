// The training loop (see trainer.h). Everything a step touches is allocated before the loop.
#include "train/trainer.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string_view>

#include "core/check.h"
#include "core/progress.h"
#include "data/blended_dataset.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "train/checkpointing.h"
#include "train/metrics_writer.h"
#include "train/probe.h"
#include "train/train_step.h"

namespace prores::train {

int64_t recomputed_layers(const TrainConfig& config, int64_t stage_layers) {
  if (config.recompute_granularity != "full") return 0;
  return config.recompute_method == "block" ? std::min(config.recompute_num_layers, stage_layers) : stage_layers;
}

AttentionKernel attention_kernel(const TrainConfig& config, const ModelConfig& model) {
  if (config.attention_backend == "flash") return AttentionKernel::Flash;
  if (config.attention_backend == "cudnn") return AttentionKernel::Cudnn;
  const bool flash = config.attention_backend == "auto" && config.device == Device::CUDA && config.bf16 &&
                     ops::flash_attention_supports(model.head_size());
  return flash ? AttentionKernel::Flash : AttentionKernel::Unfused;
}

const char* attention_kernel_note(AttentionKernel kernel) {
  switch (kernel) {
    case AttentionKernel::Flash: return ", flash attention";
    case AttentionKernel::Cudnn: return ", cuDNN attention";
    case AttentionKernel::Unfused: break;
  }
  return "";
}

double default_peak_tflops(const TrainConfig& config, int64_t ranks) {
  if (config.device == Device::CUDA) return 989.0 * static_cast<double>(ranks);
  return config.bf16 ? 0.9 : 0.442;
}

double model_flops_per_token(const ModelConfig& m, int64_t matmul_params) {
  return 6.0 * static_cast<double>(matmul_params) +
         12.0 * static_cast<double>(m.num_layers * m.hidden_size * m.seq_length);
}

double block_flops_per_token(const ModelConfig& m) {
  const ParamTable table(m);
  int64_t block_matmul = 0;  // the linear weights of one block (every block has the same)
  for (const ParamEntry& e : table.entries())
    if (e.layer == 1 && e.weight_decay) block_matmul += e.numel;
  return 6.0 * static_cast<double>(block_matmul) + 12.0 * static_cast<double>(m.hidden_size * m.seq_length);
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string alpha_summary(const std::vector<double>& alpha) {
  char buf[96];
  if (alpha.size() == 1) std::snprintf(buf, sizeof buf, "alpha %.3f", alpha[0]);
  else std::snprintf(buf, sizeof buf, "alpha[1..%zu] %.3f..%.3f", alpha.size(), alpha.front(), alpha.back());
  return buf;
}

// Construction allocates everything (on a GPU too) and can fail on some ranks only, out of memory say:
// every rank learns of it before the first collective.
std::unique_ptr<TrainStep> make_train_step(const ModelConfig& model_config, const TrainConfig& cfg,
                                           const ParallelLayout& layout, StepUse use) {
  std::unique_ptr<TrainStep> step;
  std::string error;
  try {
    step = std::make_unique<TrainStep>(model_config, cfg, layout, use);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (layout.world().all_reduce_scalar(error.empty() ? 0.0 : 1.0, ReduceOp::Max) > 0)
    throw SetupError(error.empty() ? "another rank failed to set up its model (see its error)" : error);
  return step;
}

}  // namespace

std::shared_ptr<const data::TokenDataset> open_training_data(const TrainConfig& cfg, const ModelConfig& model) {
  PRORES_CHECK(!cfg.data_path.empty(), "--data-path is required");
  const std::array<double, 3> split = data::parse_split(cfg.split);
  std::shared_ptr<const data::TokenDataset> dataset;
  try {
    if (cfg.tokenizer_model.empty()) {
      dataset = std::make_shared<data::ByteDataset>(
          data::ByteDataset::from_text_file(cfg.data_path, split, model.seq_length, cfg.seed));
    } else {
      dataset = data::open_gpt_blend(cfg.data_path, model.vocab_size, split, model.seq_length, cfg.seed);
    }
  } catch (const Error& e) {
    // Every data error names the option, whichever file of the blend it is about.
    if (std::string_view(e.what()).starts_with("--data-path")) throw;
    throw Error("--data-path " + cfg.data_path + ": " + e.what());
  }
  PRORES_CHECK(model.vocab_size >= dataset->vocab_size(), "--vocab-size ", model.vocab_size,
               " is smaller than the vocabulary of --data-path (", dataset->vocab_size(), ")");
  PRORES_CHECK(cfg.eval_interval == 0 || dataset->num_samples(data::Split::Valid) > 0, "--eval-interval ",
               cfg.eval_interval, " needs a validation split, but --split ", cfg.split, " leaves none");
  return dataset;
}

TrainResult train(const ModelConfig& model_config, const ScheduleArgs& schedule_args, const TrainConfig& cfg,
                  const ParallelLayout& layout, const data::TokenDataset& dataset, std::ostream& log,
                  const std::function<bool()>& stop_requested, const PeriodicEvaluation& periodic) {
  model_config.validate();
  cfg.validate();
  const LayoutShape& ls = layout.shape();
  const bool rank0 = ls.rank == 0;
  const ResidualSchedule schedule = make_residual_schedule(schedule_args, model_config.num_layers);

  const std::unique_ptr<TrainStep> step_owner = make_train_step(model_config, cfg, layout, StepUse::Train);
  TrainStep& trainer = *step_owner;
  Model& model = trainer.model();
  model.init_weights(cfg.seed);
  ResumeState position;
  if (!cfg.load.empty()) {
    position = load_checkpoint(cfg.load, trainer, layout);
    if (rank0) log << "resumed from " << cfg.load << " at iteration " << position.iteration << "\n";
  }
  const auto attributes = checkpoint_attributes(model_config, schedule_args, cfg);
  const LrSchedule lr_schedule(cfg.lr);
  std::unique_ptr<MetricsWriter> metrics;
  if (rank0 && !cfg.log_dir.empty()) metrics = std::make_unique<MetricsWriter>(cfg.log_dir);

  const int64_t T = model_config.seq_length, L = model_config.num_layers;
  const ParamTable full_table(model_config);
  const double flops_per_token = model_flops_per_token(model_config, full_table.matmul_numel());
  std::ostringstream where;
  where << ls.describe() << ", " << model.num_slots() << " activation slot(s)" << (ls.chunks > 1 ? " per chunk" : "")
        << ", "
        << (model.recompute_layers() > 0 ? std::to_string(model.recompute_layers()) + " block(s) recomputed, " : "")
        << (model.sequence_parallel() ? "sequence parallel, " : "")
        << model.allocated_bytes() / (1 << 20) << " MiB of model memory, comm " << layout.world().backend() << "\n";
  std::cout << where.str() << std::flush;
  layout.world().barrier();
  if (rank0)
    log << "model: " << full_table.total_numel() << " parameters; " << describe(model_config) << "; ProRes "
        << schedule_kind_name(schedule.kind()) << " (W = " << schedule.warmup_steps() << ")\n"
        << "data: " << cfg.data_path << ", " << dataset.num_samples(data::Split::Train) << " train samples of " << T
        << " tokens; batch " << cfg.global_batch_size << " = " << ls.dp << " DP x "
        << cfg.global_batch_size / (ls.dp * cfg.micro_batch_size) << " x " << cfg.micro_batch_size
        << "; layout TP " << ls.tp << " x PP " << ls.pp << " x DP " << ls.dp
        << (layout.config().distributed_optimizer ? " (ZeRO-1)" : "") << "; "
        << (cfg.device == Device::CPU ? std::string("cpu, gemm ") + ops::cpu_gemm_backend() + ", matmuls "
                                      : std::string("cuda, matmuls "))
        << (cfg.bf16 ? "bf16" : "fp32") << attention_kernel_note(attention_kernel(cfg, model_config))
        << "\n";

  TrainResult result;
  std::vector<double> all_alpha(static_cast<size_t>(L));
  const double block_flops = block_flops_per_token(model_config);
  const int64_t probe_samples = cfg.probe_batch_samples();
  // The probe batch after `done` steps, with α(done) and the weights rounded as the next step will see them.
  const auto probe = [&](int64_t done) {
    model.set_residual_scales(schedule, done);
    model.round_matmul_weights();
    const ProbeNorms norms = probe_norms(trainer, layout, dataset, probe_samples);
    if (!rank0) return;
    char line[160];
    std::snprintf(line, sizeof line, "probe at iter %lld | act_norm[1..%lld] %.4g..%.4g | %lld tokens",
                  static_cast<long long>(done), static_cast<long long>(L), norms.act_norm.front(),
                  norms.act_norm.back(), static_cast<long long>(norms.tokens));
    log << line << std::endl;
    if (metrics)
      metrics->write(MetricsRecord()
                         .add("iter", done)
                         .add("probe/tokens", norms.tokens)
                         .add("probe/act_norm", norms.act_norm)
                         .add("probe/attn_branch_norm", norms.attn_branch_norm)
                         .add("probe/attn_branch_scaled_norm", norms.attn_branch_scaled_norm)
                         .add("probe/mlp_branch_norm", norms.mlp_branch_norm)
                         .add("probe/mlp_branch_scaled_norm", norms.mlp_branch_scaled_norm));
  };
  if (cfg.probe_interval > 0) {
    check_probe_samples(probe_samples, ls, cfg.micro_batch_size, dataset, "--probe-samples");
    if (position.iteration == 0) probe(0);
  }
  const Clock::time_point run_start = Clock::now();
  double interval_seconds = 0, total_seconds = 0, interval_bubble = 0, interval_data_seconds = 0;
  double interval_flops = 0, total_flops = 0;  // model FLOPs the steps ran (blocks at α = 0 skip theirs)
  std::vector<double> interval_losses, interval_grad_norms;
  int64_t interval_iters = 0;
  int64_t interval_tokens = 0, consumed_samples = position.consumed_samples, iterations_run = 0;
  for (int64_t iter = position.iteration; iter < cfg.train_iters; ++iter) {
    const Clock::time_point start = Clock::now();
    model.set_residual_scales(schedule, iter);
    schedule.alphas(iter, 1, L, all_alpha.data());
    const double step_flops = static_cast<double>(cfg.global_batch_size * T) *
                              (flops_per_token - block_flops * static_cast<double>(std::count(
                                                                   all_alpha.begin(), all_alpha.end(), 0.0)));
    const double lr = lr_schedule.lr_at(iter);
    const StepResult step = trainer.step(dataset, consumed_samples, lr);
    PRORES_CHECK(std::isfinite(step.loss), "training diverged: loss is ", step.loss, " at iteration ", iter + 1);
    consumed_samples += cfg.global_batch_size;
    const double seconds = seconds_since(start);
    interval_seconds += seconds;
    total_seconds += seconds;
    interval_tokens += cfg.global_batch_size * T;
    interval_flops += step_flops;
    total_flops += step_flops;
    interval_bubble += step.pipeline_bubble;
    interval_data_seconds += step.data_seconds;
    interval_losses.push_back(step.loss);
    interval_grad_norms.push_back(step.grad_norm);
    ++interval_iters;
    result.losses.push_back(step.loss);
    result.grad_norms.push_back(step.grad_norm);
    ++iterations_run;

    const int64_t done = iter + 1;
    const bool log_now = done % cfg.log_interval == 0 || done == cfg.train_iters;
    const std::vector<double> act_rms = log_now ? trainer.activation_rms() : std::vector<double>{};  // collective
    if (rank0 && log_now) {
      const double tps = static_cast<double>(interval_tokens) / interval_seconds;
      const double mfu = interval_flops / interval_seconds / cfg.peak_flops;
      const double skipped_share = 1.0 - interval_flops / (static_cast<double>(interval_tokens) * flops_per_token);
      // Wall time of the whole run so far (validation, probes and saves included) and the same pace onwards.
      const double elapsed = seconds_since(run_start);
      const double eta = elapsed / static_cast<double>(iterations_run) * static_cast<double>(cfg.train_iters - done);
      char line[320];
      std::snprintf(line, sizeof line,
                    "iter %6lld/%lld | loss %.4f | lr %.3e | grad_norm %.3f | %.0f tok/s | mfu %.1f%%%s | %s | "
                    "elapsed %s | ETA %s",
                    static_cast<long long>(done), static_cast<long long>(cfg.train_iters), step.loss, lr,
                    step.grad_norm, tps, 100 * mfu,
                    skipped_share > 0 ? (" (" + std::to_string(std::lround(100 * skipped_share)) + "% skipped)").c_str()
                                      : "",
                    alpha_summary(all_alpha).c_str(), format_duration(elapsed).c_str(), format_duration(eta).c_str());
      log << line << std::endl;
      if (metrics) {
        MetricsRecord record;
        record.add("iter", done)
            .add("loss", step.loss)
            .add("lr", lr)
            .add("grad_norm", step.grad_norm)
            .add("tokens_per_sec", tps)
            .add("mfu", mfu)
            .add("skipped_share", skipped_share)
            .add("consumed_samples", consumed_samples)
            .add("data_share", interval_data_seconds / interval_seconds)
            .add("elapsed_s", elapsed);
        if (ls.pp > 1) record.add("pipeline_bubble", interval_bubble / static_cast<double>(interval_iters));
        metrics->write(record.add("alpha", all_alpha)
                           .add("act_rms", act_rms)
                           .add("step_loss", interval_losses)
                           .add("step_grad_norm", interval_grad_norms));
      }
    }
    if (log_now) {
      interval_seconds = interval_bubble = interval_data_seconds = interval_flops = 0;
      interval_tokens = interval_iters = 0;
      interval_losses.clear();
      interval_grad_norms.clear();
    }
    if (cfg.eval_interval > 0 && (done % cfg.eval_interval == 0 || done == cfg.train_iters)) {
      // The model after `done` steps runs with α(done), as in the reference (and as the next step will).
      model.set_residual_scales(schedule, done);
      const double val_loss = trainer.evaluate(dataset, cfg.eval_iters);
      result.val_losses.push_back(val_loss);
      if (rank0) {
        char line[128];
        std::snprintf(line, sizeof line, "eval at iter %lld | val_loss %.4f | val_ppl %.3f",
                      static_cast<long long>(done), val_loss, std::exp(val_loss));
        log << line << std::endl;
        if (metrics)
          metrics->write(MetricsRecord().add("iter", done).add("val_loss", val_loss).add("val_ppl", std::exp(val_loss)));
      }
    }
    if (cfg.probe_interval > 0 && (done % cfg.probe_interval == 0 || done == cfg.train_iters)) probe(done);
    if (periodic.interval > 0 && (done % periodic.interval == 0 || done == cfg.train_iters)) {
      model.set_residual_scales(schedule, done);
      model.round_matmul_weights();  // the weights after this step (the next step rounds them again)
      const std::vector<std::pair<std::string, double>> values = periodic.run(trainer);
      if (metrics) {
        MetricsRecord record;
        record.add("iter", done);
        for (const auto& [name, value] : values) record.add(name, value);
        metrics->write(record);
      }
    }
    const bool preempted =
        layout.world().all_reduce_scalar(stop_requested && stop_requested() ? 1.0 : 0.0, ReduceOp::Max) > 0;
    const bool stop = preempted || (cfg.exit_interval > 0 && done % cfg.exit_interval == 0);
    const bool listed = std::binary_search(cfg.save_iters.begin(), cfg.save_iters.end(), done);
    if (!cfg.save.empty() &&
        (stop || listed || done == cfg.train_iters || (cfg.save_interval > 0 && done % cfg.save_interval == 0))) {
      const Clock::time_point save_start = Clock::now();
      save_checkpoint(cfg.save, cfg.keep_last, cfg.save_iters, {done, consumed_samples}, trainer, layout, attributes);
      if (rank0)
        log << "saved checkpoint of iteration " << done << " to " << cfg.save << " in " << seconds_since(save_start)
            << " s" << (preempted ? " (stop requested)" : "") << std::endl;
    }
    if (stop) break;
  }
  result.tokens_per_sec =
      static_cast<double>(iterations_run * cfg.global_batch_size * T) / std::max(total_seconds, 1e-9);
  result.mfu = total_flops / std::max(total_seconds, 1e-9) / cfg.peak_flops;
  return result;
}

LoadedStep load_for_inference(const ModelConfig& model_config, const ScheduleArgs& schedule_args,
                              const TrainConfig& cfg, const ParallelLayout& layout, StepUse use) {
  PRORES_CHECK(!cfg.load.empty(), "--load is required: the checkpoint to load");
  const ResidualSchedule schedule = make_residual_schedule(schedule_args, model_config.num_layers);
  LoadedStep loaded;
  loaded.step = make_train_step(model_config, cfg, layout, use);
  loaded.checkpoint = io::resolve_load_dir(cfg.load);
  loaded.iteration = load_checkpoint(loaded.checkpoint, *loaded.step, layout).iteration;
  loaded.step->model().set_residual_scales(schedule, loaded.iteration);
  loaded.step->model().round_matmul_weights();
  return loaded;
}

EvalResult evaluate_checkpoint(const ModelConfig& model_config, const ScheduleArgs& schedule_args,
                               const TrainConfig& cfg, const ParallelLayout& layout, const data::TokenDataset& dataset,
                               std::ostream& log) {
  model_config.validate();
  cfg.validate();
  PRORES_CHECK(!cfg.load.empty(), "prores eval needs --load: the checkpoint to evaluate");
  const LayoutShape& ls = layout.shape();
  const ResidualSchedule schedule = make_residual_schedule(schedule_args, model_config.num_layers);
  const LoadedStep loaded = load_for_inference(model_config, schedule_args, cfg, layout, StepUse::Evaluate);
  TrainStep* step = loaded.step.get();
  EvalResult result;
  result.checkpoint = loaded.checkpoint;
  result.iteration = loaded.iteration;
  result.alpha.resize(static_cast<size_t>(model_config.num_layers));
  schedule.alphas(result.iteration, 1, model_config.num_layers, result.alpha.data());
  result.tokens_per_split = cfg.eval_iters * cfg.global_batch_size * model_config.seq_length;
  result.val_loss = step->evaluate(dataset, cfg.eval_iters, data::Split::Valid);
  result.test_loss = dataset.num_samples(data::Split::Test) > 0
                         ? step->evaluate(dataset, cfg.eval_iters, data::Split::Test)
                         : std::nan("");
  if (ls.rank == 0) {
    // Shortest digits that read back to the same double (NaN as "nan").
    const auto full = [](double x) {
      char buf[32];
      return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
    };
    log << "eval of iter " << result.iteration << " | val_loss " << full(result.val_loss) << " | val_ppl "
        << full(std::exp(result.val_loss)) << " | test_loss " << full(result.test_loss) << " | test_ppl "
        << full(std::exp(result.test_loss)) << " | " << result.tokens_per_split << " tokens per split" << std::endl;
  }
  return result;
}

std::vector<CheckpointSimilarity> analyze_run(const ModelConfig& model_config, const ScheduleArgs& schedule_args,
                                              const TrainConfig& cfg, const ParallelLayout& layout,
                                              const data::TokenDataset& dataset, std::ostream& log) {
  model_config.validate();
  cfg.validate();
  const std::vector<int64_t> iterations = io::list_checkpoint_iterations(cfg.load);
  PRORES_CHECK(!iterations.empty(), "--load ", cfg.load, " holds no iteration directories (iter_NNNNNNN)");
  const int64_t samples = cfg.probe_batch_samples();
  check_probe_samples(samples, layout.shape(), cfg.micro_batch_size, dataset, "--probe-samples");
  const bool rank0 = layout.shape().rank == 0;
  const auto load = [&](int64_t iteration) {
    TrainConfig one = cfg;
    one.load = cfg.load + "/" + io::iteration_dir_name(iteration);
    return load_for_inference(model_config, schedule_args, one, layout, StepUse::Evaluate);
  };
  const Clock::time_point start = Clock::now();
  const LayerwiseSimilarity reference(*load(iterations.back()).step, layout, dataset, samples);
  std::vector<CheckpointSimilarity> results;
  for (size_t i = 0; i < iterations.size(); ++i) {
    const LoadedStep loaded = load(iterations[i]);
    results.push_back({iterations[i], reference.compare(*loaded.step)});
    if (!rank0) continue;
    const std::vector<double>& block = results.back().similarity.block_output;
    const double elapsed = seconds_since(start);
    const double eta = elapsed / static_cast<double>(i + 1) * static_cast<double>(iterations.size() - i - 1);
    char line[224];
    std::snprintf(line, sizeof line,
                  "analyze: checkpoint %zu/%zu (iter %lld) | block output cos[1..%zu] %.4f..%.4f | elapsed %s | ETA %s",
                  i + 1, iterations.size(), static_cast<long long>(iterations[i]), block.size(), block.front(),
                  block.back(), format_duration(elapsed).c_str(), format_duration(eta).c_str());
    log << line << std::endl;
  }
  return results;
}

}  // namespace prores::train
