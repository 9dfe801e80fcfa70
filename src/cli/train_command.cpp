// `prores train` (see train_command.h): option table → ModelConfig, ScheduleArgs, TrainConfig → train().
#include "cli/train_command.h"

#include "cli/option_parsing.h"
#include "cli/schedule_options.h"
#include "core/check.h"
#include "train/trainer.h"

namespace prores {

namespace po = boost::program_options;

namespace {

struct TrainOptions {
  ModelConfig model;
  ScheduleArgs schedule;
  train::TrainConfig train;
  std::string norm_placement = "pre", init_scheme = "normal";
  double peak_tflops = 0.442;
};

void add_model_options(po::options_description& desc, TrainOptions& o) {
  ModelConfig& m = o.model;
  desc.add_options()
      ("num-layers", po::value(&m.num_layers)->default_value(m.num_layers), "transformer blocks L")
      ("hidden-size", po::value(&m.hidden_size)->default_value(m.hidden_size), "model width C")
      ("ffn-hidden-size", po::value(&m.ffn_hidden_size)->default_value(m.ffn_hidden_size), "SwiGLU width F")
      ("num-attention-heads", po::value(&m.num_attention_heads)->default_value(m.num_attention_heads),
       "query heads NH")
      ("num-query-groups", po::value(&m.num_query_groups)->default_value(m.num_query_groups),
       "key/value groups KV for grouped-query attention (0: one per head)")
      ("seq-length", po::value(&m.seq_length)->default_value(m.seq_length), "sequence length T")
      ("vocab-size", po::value(&m.vocab_size)->default_value(m.vocab_size), "vocabulary size V")
      ("rotary-base", po::value(&m.rotary_base)->default_value(m.rotary_base), "rotary embedding base")
      ("norm-eps", po::value(&m.norm_eps)->default_value(m.norm_eps), "RMSNorm epsilon")
      ("norm-placement", po::value(&o.norm_placement)->default_value(o.norm_placement),
       "pre, post, sandwich or deepnorm")
      ("init-scheme", po::value(&o.init_scheme)->default_value(o.init_scheme), "normal, scaled, ds-init or deepnorm")
      ("init-method-std", po::value(&m.init_method_std)->default_value(m.init_method_std), "init std sigma")
      ("layernorm-scaling", po::bool_switch(&m.layernorm_scaling), "scale block l's norms by 1/sqrt(l)");
}

void add_training_options(po::options_description& desc, TrainOptions& o) {
  train::TrainConfig& t = o.train;
  LrConfig& lr = t.lr;
  desc.add_options()
      ("micro-batch-size", po::value(&t.micro_batch_size)->default_value(t.micro_batch_size), "sequences per micro-batch")
      ("global-batch-size", po::value(&t.global_batch_size)->default_value(t.global_batch_size),
       "sequences per optimizer step (gradient accumulation over micro-batches)")
      ("train-iters", po::value(&t.train_iters)->default_value(t.train_iters), "optimizer steps")
      ("lr", po::value(&lr.lr)->default_value(3e-4), "peak learning rate")
      ("min-lr", po::value(&lr.min_lr)->default_value(lr.min_lr), "final learning rate")
      ("lr-warmup-iters", po::value(&lr.warmup_iters)->default_value(lr.warmup_iters), "linear LR warm-up steps")
      ("lr-decay-style", po::value(&lr.decay_style)->default_value(lr.decay_style), "constant, linear, cosine or wsd")
      ("lr-decay-iters", po::value(&lr.decay_iters)->default_value(0), "end of the LR decay (0: --train-iters)")
      ("lr-wsd-decay-iters", po::value(&lr.wsd_decay_iters)->default_value(lr.wsd_decay_iters),
       "length of WSD's final decay (0: 10% of the decay iterations)")
      ("lr-wsd-decay-style", po::value(&lr.wsd_decay_style)->default_value(lr.wsd_decay_style), "linear or cosine")
      ("weight-decay", po::value(&t.adam.weight_decay)->default_value(t.adam.weight_decay),
       "AdamW decoupled weight decay (not on norms and embeddings)")
      ("adam-beta1", po::value(&t.adam.beta1)->default_value(t.adam.beta1), "AdamW beta1")
      ("adam-beta2", po::value(&t.adam.beta2)->default_value(t.adam.beta2), "AdamW beta2")
      ("adam-eps", po::value(&t.adam.eps)->default_value(t.adam.eps), "AdamW epsilon")
      ("clip-grad", po::value(&t.clip_grad)->default_value(t.clip_grad), "global gradient-norm clip (0: off)")
      ("seed", po::value(&t.seed)->default_value(t.seed), "random seed (init and data order)")
      ("data-path", po::value(&t.data_path), "training text file (byte-level tokens)")
      ("split", po::value(&t.split)->default_value(t.split), "train,valid,test weights")
      ("log-interval", po::value(&t.log_interval)->default_value(t.log_interval), "iterations per log line")
      ("eval-interval", po::value(&t.eval_interval)->default_value(t.eval_interval),
       "iterations between validations (0: none)")
      ("eval-iters", po::value(&t.eval_iters)->default_value(t.eval_iters), "micro-batches per validation")
      ("log-dir", po::value(&t.log_dir), "directory of metrics.jsonl")
      ("peak-tflops", po::value(&o.peak_tflops)->default_value(o.peak_tflops),
       "peak FLOP/s in TFLOP/s for MFU (default: fp32 peak of 2 Zen 5 cores)");
}

constexpr const char* kUsage =
    "Usage: prores train [--config FILE] [options]\n"
    "Trains a Llama-style decoder with ProRes on one process. Options may also be given in an INI file\n"
    "(key = value, keys are the option names without dashes); the command line wins.\n";

}  // namespace

int run_train_command(const std::vector<std::string>& args, std::ostream& out) {
  TrainOptions o;
  po::options_description desc("prores train options");
  desc.add_options()("help", "print this help")("config", po::value<std::string>(), "INI file of options");
  add_model_options(desc, o);
  add_training_options(desc, o);
  add_schedule_options(desc, o.schedule);
  po::variables_map vm;
  if (!parse_options("train", args, desc, vm)) {
    out << kUsage << desc;
    return 0;
  }
  o.model.norm_placement = parse_norm_placement(o.norm_placement);
  o.model.init_scheme = parse_init_scheme(o.init_scheme);
  if (o.train.lr.decay_iters == 0) o.train.lr.decay_iters = o.train.train_iters;
  o.train.peak_flops = o.peak_tflops * 1e12;
  const train::TrainResult result = train::train(o.model, o.schedule, o.train, out);
  out << "done: " << result.losses.size() << " iterations, final loss " << result.losses.back() << ", "
      << static_cast<int64_t>(result.tokens_per_sec) << " tok/s, mfu " << 100 * result.mfu << "%\n";
  return 0;
}

}  // namespace prores
