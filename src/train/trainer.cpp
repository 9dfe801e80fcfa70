// Single-process training loop (see trainer.h). Everything a step touches is allocated before the loop.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "core/check.h"
#include "data/byte_dataset.h"
#include "model/model.h"
#include "optim/grad_clip.h"
#include "ops/gemm.h"
#include "train/metrics_writer.h"

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
  PRORES_CHECK(!data_path.empty(), "--data-path is required");
  prores::validate(adam);
  LrSchedule check_lr(lr);
}

double model_flops_per_token(const ModelConfig& m, int64_t matmul_params) {
  return 6.0 * static_cast<double>(matmul_params) +
         12.0 * static_cast<double>(m.num_layers * m.hidden_size * m.seq_length);
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Token and target buffers of one micro-batch, filled from a dataset split.
struct Batch {
  std::vector<int32_t> tokens, targets;
  Batch(int64_t B, int64_t T) : tokens(static_cast<size_t>(B * T)), targets(static_cast<size_t>(B * T)) {}
  void load(const data::TokenDataset& ds, data::Split split, int64_t first_sample, int64_t B) {
    const int64_t T = ds.seq_length();
    for (int64_t b = 0; b < B; ++b)
      ds.get_sample(split, first_sample + b, tokens.data() + b * T, targets.data() + b * T);
  }
};

double evaluate(Model& model, const data::TokenDataset& ds, Batch& batch, int64_t eval_iters) {
  const int64_t B = model.micro_batch();
  double sum = 0;
  for (int64_t i = 0; i < eval_iters; ++i) {
    batch.load(ds, data::Split::Valid, i * B, B);
    sum += model.forward(batch.tokens.data(), batch.targets.data());
  }
  return sum / static_cast<double>(eval_iters);
}

std::string alpha_summary(const std::vector<double>& alpha) {
  char buf[96];
  if (alpha.size() == 1) std::snprintf(buf, sizeof buf, "alpha %.3f", alpha[0]);
  else std::snprintf(buf, sizeof buf, "alpha[1..%zu] %.3f..%.3f", alpha.size(), alpha.front(), alpha.back());
  return buf;
}

}  // namespace

TrainResult train(const ModelConfig& model_config, const ScheduleArgs& schedule_args, const TrainConfig& cfg,
                  std::ostream& log) {
  model_config.validate();
  cfg.validate();
  const ResidualSchedule schedule = make_residual_schedule(schedule_args, model_config.num_layers);
  const data::ByteDataset dataset = data::ByteDataset::from_text_file(
      cfg.data_path, data::parse_split(cfg.split), model_config.seq_length, cfg.seed);
  PRORES_CHECK(model_config.vocab_size >= dataset.vocab_size(), "--vocab-size ", model_config.vocab_size,
               " is smaller than the byte-level vocabulary of --data-path (", dataset.vocab_size(), ")");
  const bool can_eval = dataset.num_samples(data::Split::Valid) > 0;
  PRORES_CHECK(cfg.eval_interval == 0 || can_eval, "--eval-interval ", cfg.eval_interval,
               " needs a validation split, but --split ", cfg.split, " leaves none");

  const int64_t B = cfg.micro_batch_size, T = model_config.seq_length, L = model_config.num_layers;
  const int64_t accum = cfg.global_batch_size / B;
  Model model(model_config, B);
  model.init_weights(cfg.seed);
  AdamW adamw(cfg.adam, model.table().total_numel());
  std::vector<AdamW::Segment> segments;
  for (const ParamEntry& e : model.table().entries()) segments.push_back({e.offset, e.numel, e.weight_decay});
  adamw.set_segments(segments);
  const LrSchedule lr_schedule(cfg.lr);
  std::unique_ptr<MetricsWriter> metrics;
  if (!cfg.log_dir.empty()) metrics = std::make_unique<MetricsWriter>(cfg.log_dir);

  const double flops_per_token = model_flops_per_token(model_config, model.table().matmul_numel());
  log << "model: " << L << " layers, hidden " << model_config.hidden_size << ", "
      << model.table().total_numel() << " parameters, norm " << norm_placement_name(model_config.norm_placement)
      << ", init " << init_scheme_name(model_config.init_scheme) << ", ProRes " << schedule_kind_name(schedule.kind())
      << " (W = " << schedule.warmup_steps() << ")\n"
      << "data: " << cfg.data_path << ", " << dataset.num_samples(data::Split::Train) << " train samples of "
      << T << " tokens; batch " << cfg.global_batch_size << " = " << accum << " x " << B << "; gemm "
      << ops::cpu_gemm_backend() << "\n";

  TrainResult result;
  Batch batch(B, T);
  std::vector<double> alpha(static_cast<size_t>(L));
  float* params = model.params().as<float>();
  const std::span<float> grads(model.grads().as<float>(), static_cast<size_t>(model.table().total_numel()));
  double interval_seconds = 0, total_seconds = 0;
  int64_t interval_tokens = 0, consumed_samples = 0;
  for (int64_t iter = 0; iter < cfg.train_iters; ++iter) {
    const Clock::time_point start = Clock::now();
    schedule.alphas(iter, 1, L, alpha.data());
    model.set_alphas(alpha);
    model.zero_grads();
    double loss = 0;
    for (int64_t micro = 0; micro < accum; ++micro) {
      batch.load(dataset, data::Split::Train, consumed_samples + micro * B, B);
      loss += model.forward(batch.tokens.data(), batch.targets.data()) / static_cast<double>(accum);
      model.backward(1.0 / static_cast<double>(accum));
    }
    PRORES_CHECK(std::isfinite(loss), "training diverged: loss is ", loss, " at iteration ", iter + 1);
    const double grad_norm = global_grad_norm(grads);
    scale_grads(grads, clip_coefficient(grad_norm, cfg.clip_grad));
    const double lr = lr_schedule.lr_at(iter);
    adamw.step(params, grads.data(), lr);
    consumed_samples += cfg.global_batch_size;
    const double seconds = seconds_since(start);
    interval_seconds += seconds;
    total_seconds += seconds;
    interval_tokens += cfg.global_batch_size * T;
    result.losses.push_back(loss);
    result.grad_norms.push_back(grad_norm);

    const int64_t done = iter + 1;
    if (done % cfg.log_interval == 0 || done == cfg.train_iters) {
      const double tps = static_cast<double>(interval_tokens) / interval_seconds;
      const double mfu = tps * flops_per_token / cfg.peak_flops;
      char line[256];
      std::snprintf(line, sizeof line, "iter %6lld/%lld | loss %.4f | lr %.3e | grad_norm %.3f | %.0f tok/s | mfu %.1f%% | ",
                    static_cast<long long>(done), static_cast<long long>(cfg.train_iters), loss, lr, grad_norm, tps,
                    100 * mfu);
      log << line << alpha_summary(alpha) << std::endl;
      if (metrics)
        metrics->write(MetricsRecord()
                           .add("iter", done)
                           .add("loss", loss)
                           .add("lr", lr)
                           .add("grad_norm", grad_norm)
                           .add("tokens_per_sec", tps)
                           .add("mfu", mfu)
                           .add("consumed_samples", consumed_samples)
                           .add("alpha", alpha));
      interval_seconds = 0;
      interval_tokens = 0;
    }
    if (cfg.eval_interval > 0 && (done % cfg.eval_interval == 0 || done == cfg.train_iters)) {
      const double val_loss = evaluate(model, dataset, batch, cfg.eval_iters);
      result.val_losses.push_back(val_loss);
      char line[128];
      std::snprintf(line, sizeof line, "eval at iter %lld | val_loss %.4f | val_ppl %.3f",
                    static_cast<long long>(done), val_loss, std::exp(val_loss));
      log << line << std::endl;
      if (metrics)
        metrics->write(MetricsRecord().add("iter", done).add("val_loss", val_loss).add("val_ppl", std::exp(val_loss)));
    }
  }
  result.tokens_per_sec = static_cast<double>(cfg.train_iters * cfg.global_batch_size * T) / total_seconds;
  result.mfu = result.tokens_per_sec * flops_per_token / cfg.peak_flops;
  return result;
}

}  // namespace prores::train
