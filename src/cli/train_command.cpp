// `prores train` and `prores eval` (see train_command.h): option table → ModelConfig, ScheduleArgs,
// TrainConfig (with a checkpoint's owned options under --load) → train() or evaluate_checkpoint().
#include "cli/train_command.h"

#include <cmath>
#include <csignal>
#include <sstream>

#include "cli/checkpoint_owned_options.h"
#include "cli/eval_results.h"
#include "cli/option_parsing.h"
#include "cli/schedule_options.h"
#include "core/check.h"
#include "data/tokenizer.h"
#include "io/checkpoint.h"
#include "eval/scorer.h"
#include "eval/task_eval.h"
#include "eval/text_codec.h"
#include "parallel/gpu_device.h"
#include "parallel/layout.h"
#include "train/trainer.h"

namespace prores {

namespace po = boost::program_options;

namespace {

struct TrainOptions {
  ModelConfig model;
  ScheduleArgs schedule;
  train::TrainConfig train;
  ParallelConfig parallel;
  std::string pipeline_layers;
  std::shared_ptr<const data::TokenDataset> data;
  std::string results_json;  // eval: --results-json
  std::string save_iters;    // train: --save-iters
  std::string output;        // analyze: --output
  // Zero-shot tasks: eval --tasks; train --eval-tasks every --eval-tasks-interval iterations.
  std::string tasks;
  int64_t tasks_interval = 0;
  eval::TaskEvalOptions task_options;
  double peak_tflops = 0;
  std::string device = "cpu";
};

// Set by SIGTERM / SIGUSR1 (a scheduler's preemption notice): training saves and stops after the iteration.
volatile std::sig_atomic_t stop_signal = 0;
extern "C" void request_stop(int) { stop_signal = 1; }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda") return Device::CUDA;
  PRORES_FAIL("--device must be cpu or cuda, got '", name, "'");
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
      ("data-path", po::value(&t.data_path),
       "byte-level text file, or with --tokenizer-model an indexed-dataset prefix or blend '0.7 A 0.3 B'")
      ("tokenizer-model", po::value(&t.tokenizer_model), "SentencePiece model; sets --vocab-size (padded)")
      ("make-vocab-size-divisible-by", po::value(&t.make_vocab_size_divisible_by)->default_value(128),
       "pad the tokenizer's vocabulary to a multiple of this times TP")
      ("split", po::value(&t.split)->default_value(t.split), "train,valid,test weights")
      ("log-interval", po::value(&t.log_interval)->default_value(t.log_interval), "iterations per log line")
      ("eval-interval", po::value(&t.eval_interval)->default_value(t.eval_interval),
       "iterations between validations (0: none)")
      ("eval-iters", po::value(&t.eval_iters)->default_value(t.eval_iters), "global batches per validation")
      ("log-dir", po::value(&t.log_dir), "directory of metrics.jsonl (default: --save)")
      ("save", po::value(&t.save), "checkpoint directory")
      ("load", po::value(&t.load), "resume from this checkpoint directory (its latest) or iteration directory "
       "(train: default --save when that holds a checkpoint)")
      ("save-interval", po::value(&t.save_interval)->default_value(t.save_interval),
       "iterations between checkpoints (0: only at the end)")
      ("exit-interval", po::value(&t.exit_interval)->default_value(t.exit_interval),
       "save and exit after an iteration divisible by this (0: never)")
      ("keep-last", po::value(&t.keep_last)->default_value(t.keep_last), "checkpoints kept (0: all)")
      ("save-iters", po::value(&o.save_iters),
       "also save after these iterations, e.g. 25,50,100,200 (dense early checkpoints for prores analyze; "
       "--keep-last never removes them)")
      ("probe-interval", po::value(&t.probe_interval)->default_value(t.probe_interval),
       "iterations between probe-batch activation norms in metrics.jsonl, also at iteration 0 and after the last "
       "(0: none; docs/diagnostics.md)")
      ("probe-samples", po::value(&t.probe_samples)->default_value(t.probe_samples),
       "samples of the probe batch, the first ones of the validation split (0: --global-batch-size)")
      ("peak-tflops", po::value(&o.peak_tflops)->default_value(o.peak_tflops),
       "peak TFLOP/s of all ranks together, for MFU (0: 0.442 on the CPU, 0.9 with --bf16, 989 per GPU with "
       "--device cuda)")
      ("device", po::value(&o.device)->default_value(o.device), "cpu, or cuda: one GPU per rank (node-local rank)")
      ("bf16", po::bool_switch(&t.bf16),
       "matmuls on bf16-rounded operands with fp32 accumulation (tensor cores; AVX512-BF16 through oneDNN on the "
       "CPU); weights, gradients and optimizer state stay fp32")
      ("attention-backend", po::value(&t.attention_backend)->default_value(t.attention_backend),
       "flash (CUDA, bf16 arithmetic), cudnn (CUDA, cuDNN's fused attention, --bf16), unfused (materialized "
       "probabilities) or auto (flash with --bf16)")
      ("recompute-granularity", po::value(&t.recompute_granularity),
       "full: blocks keep only their input and run their forward again before their backward (less activation "
       "memory, one more forward; bitwise the same training)")
      ("recompute-method", po::value(&t.recompute_method)->default_value(t.recompute_method),
       "with full: uniform (every block) or block (the first --recompute-num-layers blocks of each stage)")
      ("recompute-num-layers", po::value(&t.recompute_num_layers)->default_value(t.recompute_num_layers),
       "blocks per stage recomputed with --recompute-method block (uniform: Megatron's chunk size, here the same "
       "numbers and memory for any value)");
}

void add_parallel_options(po::options_description& desc, TrainOptions& o) {
  ParallelConfig& p = o.parallel;
  desc.add_options()
      ("tensor-model-parallel-size", po::value(&p.tensor)->default_value(p.tensor), "tensor-parallel ranks TP")
      ("pipeline-model-parallel-size", po::value(&p.pipeline)->default_value(p.pipeline), "pipeline stages PP")
      ("pipeline-layers", po::value(&o.pipeline_layers), "layers per stage, e.g. 8,8,7,7 (default: even split)")
      ("num-layers-per-virtual-pipeline-stage", po::value(&p.virtual_stage_layers)->default_value(0),
       "interleaved 1F1B: blocks per model chunk, L / (PP x this) chunks per stage (0: no interleaving)")
      ("sequence-parallel", po::bool_switch(&p.sequence_parallel),
       "with TP: the norms, residual adds and the residual stream between blocks and stages sharded over the TP "
       "ranks along the micro-batch's tokens; all-gathers and reduce-scatters replace the TP all-reduces (less "
       "activation memory, the same training)")
      ("use-distributed-optimizer", po::bool_switch(&p.distributed_optimizer),
       "ZeRO-1: shard the optimizer state over data-parallel ranks");
}

// What the command does with the options: train, evaluate a checkpoint (--load), or analyze a run's checkpoints
// (--load DIR), with the same options.
enum class Mode { Train, Eval, Analyze };

const char* command_name(Mode mode) {
  switch (mode) {
    case Mode::Train: return "train";
    case Mode::Eval: return "eval";
    case Mode::Analyze: return "analyze";
  }
  return "";
}

constexpr const char* kTrainUsage =
    "Usage: [mpirun -np N] prores train [--config FILE] [options]\n"
    "Trains a Llama-style decoder with ProRes over N ranks = TP x PP x DP. Options may also be given in an\n"
    "INI file (key = value, keys are the option names without dashes, [sections] only group them); the command\n"
    "line wins, and an option given twice takes its last value. With --load the model options, the --prores-*\n"
    "options and the tokenizer are the checkpoint's (docs/checkpoints.md).\n";
constexpr const char* kEvalUsage =
    "Usage: [mpirun -np N] prores eval [--config FILE] --load DIR [options]\n"
    "Evaluates a checkpoint (any TP x PP x DP layout) with the ProRes alpha of its iteration under the schedule\n"
    "it records: the mean loss and perplexity of --eval-iters global batches of the validation and test splits,\n"
    "the validation one as the training run computed it. Takes prores train's options: data, batch, device and\n"
    "layout; the model options, the --prores-* options and the tokenizer are the checkpoint's (leave them out,\n"
    "or give the checkpoint's values).\n";
constexpr const char* kAnalyzeUsage =
    "Usage: [mpirun -np N] prores analyze [--config FILE] --load DIR [--output FILE] [options]\n"
    "For every checkpoint of a run (the iteration directories of DIR, any layout), the layerwise cosine similarity\n"
    "of its block outputs and branch outputs to those of the run's last checkpoint, per token of the probe batch\n"
    "(--probe-samples samples of the validation split) and averaged over tokens, written as JSON lines to --output\n"
    "(default: --log-dir/similarity.jsonl, --log-dir defaulting to DIR), where prores report finds it\n"
    "(docs/diagnostics.md). Takes prores train's data, batch, device and layout options; the model and --prores-*\n"
    "options are the checkpoint's.\n";

// Parses and validates everything that can be checked before the first collective; returns false for
// --help. Throws prores::Error naming the option and value.
bool parse_and_validate(Mode mode, const std::vector<std::string>& args, std::ostream& out, const Communicator& world,
                        TrainOptions& o) {
  const std::string command = command_name(mode);
  po::options_description desc("prores " + command + " options");
  desc.add_options()("help", "print this help")("config", po::value<std::string>(), "INI file of options");
  add_model_options(desc, o.model);
  add_training_options(desc, o);
  add_parallel_options(desc, o);
  add_schedule_options(desc, o.schedule);
  desc.add_options()("eval-data-dir", po::value(&o.task_options.data_dir)->default_value(o.task_options.data_dir),
                     "directory of the task files (bash launch/eval_tasks.sh writes them)");
  if (mode == Mode::Eval)
    desc.add_options()("results-json", po::value(&o.results_json),
                       "also write the results to this JSON file (checkpoint, iteration, alpha, split, tokens, "
                       "losses and perplexities; with --tasks lm-eval's results keys)")
        ("tasks", po::value(&o.tasks), "zero-shot tasks to score, e.g. piqa,hellaswag,lambada_openai (docs/eval.md)")
        ("limit", po::value(&o.task_options.limit)->default_value(0), "score the first N documents of each task (0: all)")
        ("samples-dir", po::value(&o.task_options.samples_dir), "write per-document records to DIR/<task>.jsonl");
  else if (mode == Mode::Analyze)
    desc.add_options()("output", po::value(&o.output), "the JSON lines file (default: --log-dir/similarity.jsonl)");
  else
    desc.add_options()("eval-tasks", po::value(&o.tasks), "zero-shot tasks to score during training (docs/eval.md)")
        ("eval-tasks-interval", po::value(&o.tasks_interval)->default_value(0),
         "iterations between task evaluations (0: only after the last iteration when --eval-tasks is given)")
        ("eval-tasks-limit", po::value(&o.task_options.limit)->default_value(200),
         "documents per task in training-time evaluation (0: all)");
  po::variables_map vm;
  if (!parse_options(command, args, desc, vm)) {
    if (world.rank() == 0)
      out << (mode == Mode::Train ? kTrainUsage : mode == Mode::Eval ? kEvalUsage : kAnalyzeUsage) << desc;
    return false;
  }
  if (mode == Mode::Eval) {
    PRORES_CHECK(!o.train.load.empty(), "prores eval needs --load: the checkpoint to evaluate");
    o.train.eval_interval = 0;  // a training option: eval checks its own need of a validation split below
    if (!o.results_json.empty() && world.rank() == 0) check_writable("--results-json", o.results_json);
  }
  if (mode == Mode::Analyze) {
    PRORES_CHECK(!o.train.load.empty(), "prores analyze needs --load: the run's checkpoint directory");
    PRORES_CHECK(!io::list_checkpoint_iterations(o.train.load).empty(), "prores analyze: --load ", o.train.load,
                 " holds no iteration directories (iter_NNNNNNN): give the run's checkpoint directory");
    o.train.eval_interval = 0;
  }
  // A requeued job resumes (Megatron-LM's habit): without --load, train loads --save when that holds a checkpoint.
  const bool load_is_save =
      mode == Mode::Train && o.train.load.empty() && !o.train.save.empty() && io::holds_latest_checkpoint(o.train.save);
  if (load_is_save) {
    o.train.load = o.train.save;
    if (world.rank() == 0) out << "--load defaults to --save " << o.train.save << ", which holds a checkpoint\n";
  }
  if (!o.train.load.empty()) {
    // --tokenizer-model sets the vocabulary (a fresh run pads the tokenizer's, a loaded one keeps the checkpoint's),
    // so a --vocab-size beside it, e.g. from a config file, is not the model's: the command that started a run
    // resumes it.
    if (vm.count("tokenizer-model") && !vm["tokenizer-model"].defaulted()) vm.erase("vocab-size");
    try {
      adopt_checkpoint_options(o.train.load, vm, {o.model, o.schedule, o.train.tokenizer_model});
    } catch (const Error& e) {
      if (!load_is_save) throw;
      throw Error(std::string(e.what()) + " (--load defaults to --save, which holds a checkpoint: give another "
                  "--save to start afresh)");
    }
  }
  if (o.train.lr.decay_iters == 0) o.train.lr.decay_iters = o.train.train_iters;
  o.train.device = parse_device(o.device);
  PRORES_CHECK(std::isfinite(o.peak_tflops) && o.peak_tflops >= 0, "--peak-tflops must be >= 0, got ", o.peak_tflops);
  if (o.peak_tflops == 0)
    o.peak_tflops = train::default_peak_tflops(o.train, world.size());
  o.train.peak_flops = o.peak_tflops * 1e12;
  if (o.train.log_dir.empty()) o.train.log_dir = mode == Mode::Analyze ? o.train.load : o.train.save;
  if (mode == Mode::Analyze) {
    if (o.output.empty()) o.output = o.train.log_dir + "/similarity.jsonl";
    if (world.rank() == 0) check_writable("--output", o.output);
  }
  if (!o.save_iters.empty()) o.train.save_iters = parse_iteration_list("--save-iters", o.save_iters);
  if (!o.pipeline_layers.empty()) o.parallel.pipeline_layers = parse_pipeline_layers(o.pipeline_layers);
  if (!o.train.tokenizer_model.empty()) {
    PRORES_CHECK(o.train.make_vocab_size_divisible_by >= 1, "--make-vocab-size-divisible-by must be positive, got ",
                 o.train.make_vocab_size_divisible_by);
    const data::Tokenizer tokenizer = data::Tokenizer::load(o.train.tokenizer_model);
    if (o.train.load.empty())
      o.model.vocab_size =
          data::padded_vocab_size(tokenizer.vocab_size(), o.train.make_vocab_size_divisible_by, o.parallel.tensor);
    else  // the checkpoint's padded vocabulary stays
      PRORES_CHECK(tokenizer.vocab_size() <= o.model.vocab_size, "--tokenizer-model ", o.train.tokenizer_model, " has ",
                   tokenizer.vocab_size(), " pieces, more than the vocabulary ", o.model.vocab_size, " of --load ",
                   o.train.load);
  }
  o.model.validate();
  o.train.validate();
  make_residual_schedule(o.schedule, o.model.num_layers);
  const LayoutShape shape = LayoutShape::compute(world.size(), world.rank(), o.parallel, o.model,
                                                 o.train.global_batch_size, o.train.micro_batch_size);
  if (!o.tasks.empty()) {  // every task file is read (and checked) before the first collective
    for (const std::string& name : eval::parse_task_list(o.tasks, mode == Mode::Eval ? "--tasks" : "--eval-tasks"))
      eval::read_task_file(eval::task_file_path(o.task_options.data_dir, name), 1);
    PRORES_CHECK(o.tasks_interval >= 0, "--eval-tasks-interval must be >= 0, got ", o.tasks_interval);
    PRORES_CHECK(o.task_options.limit >= 0, mode == Mode::Eval ? "--limit" : "--eval-tasks-limit",
                 " must be >= 0, got ", o.task_options.limit);
  }
  if (mode == Mode::Eval && !o.tasks.empty() && o.train.data_path.empty()) return true;  // tasks only
  o.data = train::open_training_data(o.train, o.model);
  PRORES_CHECK(mode == Mode::Train || o.data->num_samples(data::Split::Valid) > 0, "prores ", command, ": --split ",
               o.train.split, " leaves no validation samples");
  if (mode == Mode::Train && o.train.probe_interval > 0 && o.data->num_samples(data::Split::Valid) == 0 &&
      vm["probe-interval"].defaulted()) {
    o.train.probe_interval = 0;  // the default probe needs the held-out split; an explicit one is an error below
    if (world.rank() == 0) out << "probe: off, --split " << o.train.split << " leaves no validation samples\n";
  }
  if (mode == Mode::Analyze || (mode == Mode::Train && o.train.probe_interval > 0))
    train::check_probe_samples(o.train.probe_batch_samples(), shape, o.train.micro_batch_size, *o.data,
                               "--probe-samples");
  return true;
}

int run(Mode mode, const std::vector<std::string>& args, std::ostream& out, Communicator& world) {
  TrainOptions o;
  std::string error;
  bool run = false;
  try {
    run = parse_and_validate(mode, args, out, world, o);
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Every rank learns whether any rank failed before the layout's first collective.
  if (world.all_reduce_scalar(error.empty() ? 0.0 : 1.0, ReduceOp::Max) > 0)
    throw SetupError(error.empty() ? "another rank failed during set-up" : error);
  if (!run) return 0;
  if (o.train.device == Device::CUDA) {
    try {
      select_local_gpu();  // collective: every rank learns of any rank's failure
    } catch (const Error& e) {
      throw SetupError(e.what());
    }
  }
  const ParallelLayout layout(world, o.parallel, o.model, o.train.global_batch_size, o.train.micro_batch_size);
  const eval::TextCodec codec = eval::TextCodec::for_tokenizer(o.train.tokenizer_model);
  const std::vector<std::string> tasks =
      o.tasks.empty() ? std::vector<std::string>{} : eval::parse_task_list(o.tasks, "--tasks");
  // Micro-batches per scoring pass: the global batch's share of one replica, as in training.
  const int64_t micro_batches = o.train.global_batch_size / (o.train.micro_batch_size * layout.shape().dp);
  if (mode == Mode::Analyze) {
    const std::vector<train::CheckpointSimilarity> results =
        train::analyze_run(o.model, o.schedule, o.train, layout, *o.data, out);
    if (world.rank() == 0) {
      write_similarity_lines(o.output, results);
      out << "analyze: " << results.size() << " checkpoint(s) against iteration " << results.back().iteration
          << ", written to " << o.output << std::endl;
    }
    return 0;
  }
  if (mode == Mode::Eval) {
    if (o.data) {
      const train::EvalResult result = train::evaluate_checkpoint(o.model, o.schedule, o.train, layout, *o.data, out);
      if (world.rank() == 0 && !o.results_json.empty() && tasks.empty())
        write_eval_results(o.results_json, result, o.schedule, o.train);
    }
    if (!tasks.empty()) {
      const train::LoadedStep loaded =
          train::load_for_inference(o.model, o.schedule, o.train, layout, train::StepUse::Evaluate);
      eval::Scorer scorer(*loaded.step, layout, micro_batches);
      const std::vector<eval::TaskResult> results = eval::evaluate_tasks(scorer, codec, tasks, o.task_options, out);
      nlohmann::json doc = eval::results_json(results);
      if (world.rank() == 0) out << "eval tasks | average " << doc["average"].dump() << std::endl;
      if (world.rank() == 0 && !o.results_json.empty()) {
        doc["config"] = {{"checkpoint", loaded.checkpoint}, {"iteration", loaded.iteration},
                         {"seq_length", o.model.seq_length}, {"bf16", o.train.bf16}, {"limit", o.task_options.limit},
                         {"layout", layout.shape().describe()}};
        write_json_file(o.results_json, doc);
      }
    }
    return 0;
  }
  train::PeriodicEvaluation periodic;
  if (!tasks.empty()) {
    periodic.interval = o.tasks_interval > 0 ? o.tasks_interval : o.train.train_iters;
    periodic.run = [&](train::TrainStep& step) {
      eval::Scorer scorer(step, layout, micro_batches);
      std::ostringstream quiet;  // the task lines go to the log below, the progress lines nowhere
      std::vector<std::pair<std::string, double>> values;
      for (const eval::TaskResult& r : eval::evaluate_tasks(scorer, codec, tasks, o.task_options, quiet)) {
        for (const auto& [key, value] : r.metrics.items())
          if (key.find("_stderr") == std::string::npos)
            values.emplace_back("tasks/" + r.task + "/" + key.substr(0, key.find(',')), value.get<double>());
      }
      if (world.rank() == 0) {
        out << "tasks at iter |";
        for (const auto& [name, value] : values) out << " " << name << " " << value;
        out << std::endl;
      }
      return values;
    };
  }
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);
  const train::TrainResult result = train::train(o.model, o.schedule, o.train, layout, *o.data, out,
                                                 [] { return stop_signal != 0; }, periodic);
  if (world.rank() == 0 && !result.losses.empty())
    out << "done: " << result.losses.size() << " iterations, final loss " << result.losses.back() << ", "
        << static_cast<int64_t>(result.tokens_per_sec) << " tok/s, mfu " << 100 * result.mfu << "%\n";
  return 0;
}

}  // namespace

int run_train_command(const std::vector<std::string>& args, std::ostream& out, Communicator& world) {
  return run(Mode::Train, args, out, world);
}

int run_eval_command(const std::vector<std::string>& args, std::ostream& out, Communicator& world) {
  return run(Mode::Eval, args, out, world);
}

int run_analyze_command(const std::vector<std::string>& args, std::ostream& out, Communicator& world) {
  return run(Mode::Analyze, args, out, world);
}

}  // namespace prores
