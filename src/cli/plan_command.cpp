// `prores plan` (see plan_command.h): options → ModelConfig, TrainConfig, Cluster and the fixed layout choices →
// train::search_layouts for every node count of --nodes → the fitting layouts, best first, as a table or CSV.
#include "cli/plan_command.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "cli/option_parsing.h"
#include "cli/schedule_options.h"
#include "core/check.h"
#include "data/tokenizer.h"
#include "train/launch_plan.h"
#include "train/trainer.h"

namespace prores {

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: prores plan [--config FILE] [model, batch and layout options of prores train] [--nodes 1,2,4-8]\n"
    "                   [--gpus-per-node G] [--gpu-memory GB] [--peak-tflops T] [--intra-node-bw GB/s]\n"
    "                   [--inter-node-bw GB/s] [--reserved-memory GB] [--top N] [--format table|csv]\n"
    "Lists the TP x PP x DP layouts (x virtual pipeline stages, x full recomputation, x ZeRO-1) of the model on\n"
    "--nodes nodes of --gpus-per-node GPUs that fit --gpu-memory, fastest first: the fullest rank's memory\n"
    "(parameters, gradients, optimizer state, activations per micro-batch x micro-batches in flight, working\n"
    "set, communication buffers, reserved), the pipeline bubble, the bytes each rank sends per step (TP, PP, DP)\n"
    "and the estimated step time, tokens/s and MFU (docs/parallel.md, \"Planning a launch\"). A layout option of\n"
    "prores train given here fixes that dimension; the vocabulary is padded as with --tokenizer-model. Options of\n"
    "prores train that do not change the plan are accepted, so that a training config or command line works.\n";

// prores train's options that change nothing in a plan: accepted so that its config files and command lines can
// be given as they are.
constexpr const char* kTrainOnlyOptions[] = {
    "train-iters", "lr", "min-lr", "lr-warmup-iters", "lr-decay-style", "lr-decay-iters", "lr-wsd-decay-iters",
    "lr-wsd-decay-style", "weight-decay", "adam-beta1", "adam-beta2", "adam-eps", "clip-grad", "seed", "data-path",
    "split", "log-interval", "eval-interval", "eval-iters", "log-dir", "save", "load", "save-interval",
    "exit-interval", "keep-last", "save-iters", "probe-interval", "probe-samples", "eval-data-dir", "eval-tasks",
    "eval-tasks-interval", "eval-tasks-limit"};

// "1,2,4-8,16" → 1 2 4 5 6 7 8 16.
std::vector<int64_t> parse_nodes(const std::string& text) {
  std::vector<int64_t> nodes;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    const size_t dash = item.find('-', 1);
    int64_t low = 0, high = 0;
    const auto number = [](const std::string& s, int64_t& value) {
      const auto r = std::from_chars(s.data(), s.data() + s.size(), value);
      return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size() && value >= 1;
    };
    const bool ok = dash == std::string::npos ? number(item, low) && number(item, high)
                                              : number(item.substr(0, dash), low) &&
                                                    number(item.substr(dash + 1), high) && low <= high;
    PRORES_CHECK(ok, "--nodes: '", item, "' in '", text,
                 "' is not a positive node count or range (expected e.g. 1,2,4,8 or 1-8)");
    for (int64_t n = low; n <= high; ++n) nodes.push_back(n);
    begin = end + 1;
  }
  return nodes;
}

// A prores::Error's message without its " [file:line]" suffix, for a note inside the table.
std::string message_of(const std::string& what) {
  const size_t bracket = what.rfind(" [");
  return bracket == std::string::npos ? what : what.substr(0, bracket);
}

std::string format(const char* fmt, auto... values) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, values...);
  return buf;
}

double gb(double bytes) { return bytes / 1e9; }

std::string describe_model(const ModelConfig& m, const train::TrainConfig& run) {
  const double params = static_cast<double>(train::stage_parameters(train::planned_model(m, run, 1), 1,
                                                                    m.num_layers, true, true));
  return format("%.3gB parameters (%lld layers, hidden %lld, ffn %lld, %lld heads / %lld groups, vocabulary %lld "
                "padded to a multiple of %lld x TP), seq %lld, global batch %lld of micro-batch %lld, %s%s, %s",
                params / 1e9, static_cast<long long>(m.num_layers), static_cast<long long>(m.hidden_size),
                static_cast<long long>(m.ffn_hidden_size), static_cast<long long>(m.num_attention_heads),
                static_cast<long long>(m.kv_groups()), static_cast<long long>(m.vocab_size),
                static_cast<long long>(run.make_vocab_size_divisible_by), static_cast<long long>(m.seq_length),
                static_cast<long long>(run.global_batch_size), static_cast<long long>(run.micro_batch_size),
                run.bf16 ? "bf16" : "fp32", train::attention_kernel_note(train::attention_kernel(run, m)),
                run.device == Device::CPU ? "cpu" : "cuda");
}

void print_table_header(std::ostream& out, const train::Cluster& c) {
  out << format("memory: GB (1e9 bytes) of the fullest rank (of stage st), against %.4g GB; comm: GB each rank sends "
                "per step; v > 1: interleaved 1F1B over v chunks per stage\n", gb(c.memory_bytes))
      << format("%5s %5s %3s %3s %4s %3s %3s %4s %3s %4s | %6s %6s %6s %7s %4s %6s %5s %5s %6s %2s | %6s | %7s %7s "
                "%7s | %8s %9s %6s\n", "nodes", "GPUs", "TP", "PP", "DP", "v", "rc", "ZeRO", "SP", "M", "params", "grads", "optim",
                "act/mb", "x n", "work", "comm", "other", "total", "st", "bubble", "TP GB", "PP GB", "DP GB", "step s",
                "tokens/s", "MFU");
}

const char* yes_no(bool on, bool csv) { return on ? (csv ? "true" : "yes") : (csv ? "false" : "no"); }

// One layout, the columns of the table header (or of the CSV header) in the same order; the CSV's last four, the
// parts of the step, are past the table format's conversions (printf ignores arguments beyond them).
void print_row(std::ostream& out, int64_t nodes, const train::LayoutPlan& p, bool csv) {
  const train::PlanLayout& l = p.layout;
  const train::MemoryBreakdown& m = p.memory;
  const char* fmt = csv ? "%lld,%lld,%lld,%lld,%lld,%lld,%lld,%s,%s,%lld,%.6g,%.6g,%.6g,%.6g,%lld,%.6g,%.6g,%.6g,%.6g,"
                          "%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4g,%.6g,%.6g,%.6g,%.6g\n"
                        : "%5lld %5lld %3lld %3lld %4lld %3lld %3lld %4s %3s %4lld | %6.2f %6.2f %6.2f %7.3f %4lld %6.2f "
                          "%5.2f %5.2f %6.2f %2lld | %6.3f | %7.1f %7.2f %7.2f | %8.4g %9.0f %5.1f%%\n";
  const auto n = [](int64_t x) { return static_cast<long long>(x); };
  out << format(fmt, n(nodes), n(l.tp * l.pp * l.dp), n(l.tp), n(l.pp), n(l.dp), n(l.virtual_stages),
                n(l.recompute_layers), yes_no(l.distributed_optimizer, csv), yes_no(l.sequence_parallel, csv),
                n(p.micro_batches), gb(m.parameters), gb(m.gradients), gb(m.optimizer),
                gb(m.activations_per_micro_batch), n(m.micro_batches_in_flight), gb(m.activation_working),
                gb(m.communication), gb(m.other), gb(m.total()), n(m.stage), p.time.bubble, gb(p.comm.tp),
                gb(p.comm.pp), gb(p.comm.dp), p.time.step, p.time.tokens_per_second,
                csv ? p.time.mfu : 100 * p.time.mfu, p.time.compute, p.time.tp_comm, p.time.pp_comm,
                p.time.dp_exposed);
}

}  // namespace

int run_plan_command(const std::vector<std::string>& args, std::ostream& out) {
  ModelConfig model;
  train::TrainConfig run;
  ScheduleArgs schedule;  // accepted, as in a training config; the plan does not depend on it
  train::Cluster cluster;
  std::string device = "cuda", nodes_text = "1", output_format = "table";
  int64_t tp = 0, pp = 0, layers_per_virtual_stage = 0, top = 5;
  double memory_gb = 80, peak_tflops = 0, intra_gbps = 450, inter_gbps = 50, reserved_gb = -1;
  bool distributed_optimizer = false, sequence_parallel = false;
  po::options_description desc("prores plan options");
  desc.add_options()("help", "print this help")("config", po::value<std::string>(), "INI file of options");
  add_model_options(desc, model);
  desc.add_options()
      ("micro-batch-size", po::value(&run.micro_batch_size)->default_value(run.micro_batch_size),
       "sequences per micro-batch")
      ("global-batch-size", po::value(&run.global_batch_size)->default_value(run.global_batch_size),
       "sequences per optimizer step")
      ("tokenizer-model", po::value(&run.tokenizer_model), "SentencePiece model; sets --vocab-size (its pieces)")
      ("make-vocab-size-divisible-by", po::value(&run.make_vocab_size_divisible_by)->default_value(128),
       "pad the vocabulary to a multiple of this times TP")
      ("device", po::value(&device)->default_value(device), "cuda (GPUs) or cpu (CPU ranks, fp32 memory as measured)")
      ("bf16", po::bool_switch(&run.bf16), "bf16 matmuls (bf16 weight copy and activations between matmuls)")
      ("attention-backend", po::value(&run.attention_backend)->default_value(run.attention_backend),
       "flash, cudnn (bf16), unfused or auto (flash with --bf16 on cuda)")
      ("recompute-granularity", po::value(&run.recompute_granularity),
       "full: only layouts with recomputation (default: with and without)")
      ("recompute-method", po::value(&run.recompute_method)->default_value(run.recompute_method),
       "with full: uniform (every block) or block (the first --recompute-num-layers of each stage)")
      ("recompute-num-layers", po::value(&run.recompute_num_layers)->default_value(run.recompute_num_layers),
       "blocks per stage recomputed with --recompute-method block")
      ("tensor-model-parallel-size", po::value(&tp), "only this TP (default: every divisor of --gpus-per-node)")
      ("pipeline-model-parallel-size", po::value(&pp), "only this PP (default: every divisor of --num-layers)")
      ("num-layers-per-virtual-pipeline-stage", po::value(&layers_per_virtual_stage),
       "only interleaved layouts of this many layers per model chunk (default: every even split)")
      ("use-distributed-optimizer", po::bool_switch(&distributed_optimizer),
       "only ZeRO-1 layouts (default: with and without)")
      ("sequence-parallel", po::bool_switch(&sequence_parallel),
       "only sequence-parallel layouts (default: with and without, where TP > 1)")
      ("nodes", po::value(&nodes_text)->default_value(nodes_text), "node counts to plan for: 8, 1,2,4 or 1-8")
      ("gpus-per-node", po::value(&cluster.gpus_per_node)->default_value(cluster.gpus_per_node), "GPUs per node")
      ("gpu-memory", po::value(&memory_gb)->default_value(memory_gb), "GB (1e9 bytes) per GPU: H100 SXM 80")
      ("peak-tflops", po::value(&peak_tflops)->default_value(0),
       "dense peak per GPU (0: 989, an H100's bf16; cpu: 0.442, 0.9 with --bf16)")
      ("intra-node-bw", po::value(&intra_gbps)->default_value(intra_gbps),
       "GB/s per GPU and direction within a node (NVLink 4: 450)")
      ("inter-node-bw", po::value(&inter_gbps)->default_value(inter_gbps),
       "GB/s per GPU and direction between nodes (one 400 Gb/s InfiniBand NDR port per GPU: 50)")
      ("reserved-memory", po::value(&reserved_gb)->default_value(-1),
       "GB per GPU outside the model's buffers: CUDA context, cuBLASLt workspace, NCCL buffers (-1: 2 on cuda, 0 "
       "on cpu, where the initial weights' host copy is counted instead)")
      ("top", po::value(&top)->default_value(top), "layouts listed per node count")
      ("format", po::value(&output_format)->default_value(output_format), "table or csv");
  add_schedule_options(desc, schedule);
  for (const char* name : kTrainOnlyOptions)
    desc.add_options()(name, po::value<std::string>(), "prores train's; no effect on the plan");
  po::variables_map vm;
  if (!parse_options("plan", args, desc, vm)) {
    out << kUsage << desc;
    return 0;
  }
  PRORES_CHECK(device == "cuda" || device == "cpu", "--device must be cuda or cpu, got '", device, "'");
  run.device = device == "cuda" ? Device::CUDA : Device::CPU;
  PRORES_CHECK(output_format == "table" || output_format == "csv", "--format must be table or csv, got '",
               output_format, "'");
  PRORES_CHECK(top >= 1, "--top must be at least 1, got ", top);
  PRORES_CHECK(!vm.count("tensor-model-parallel-size") || tp >= 1, "--tensor-model-parallel-size must be at least 1, "
               "got ", tp);
  PRORES_CHECK(!vm.count("pipeline-model-parallel-size") || pp >= 1, "--pipeline-model-parallel-size must be at "
               "least 1, got ", pp);
  PRORES_CHECK(!vm.count("num-layers-per-virtual-pipeline-stage") || layers_per_virtual_stage >= 1,
               "--num-layers-per-virtual-pipeline-stage must be at least 1, got ", layers_per_virtual_stage);
  PRORES_CHECK(run.make_vocab_size_divisible_by >= 1, "--make-vocab-size-divisible-by must be positive, got ",
               run.make_vocab_size_divisible_by);
  if (!run.tokenizer_model.empty())
    model.vocab_size = data::Tokenizer::load(run.tokenizer_model).vocab_size();
  model.validate();
  PRORES_CHECK(run.micro_batch_size >= 1, "--micro-batch-size must be positive, got ", run.micro_batch_size);
  PRORES_CHECK(run.global_batch_size >= 1 && run.global_batch_size % run.micro_batch_size == 0, "--global-batch-size ",
               run.global_batch_size, " must be a positive multiple of --micro-batch-size ", run.micro_batch_size);
  train::validate_attention_backend(run.attention_backend, run.device, run.bf16, run.bf16_activations);
  PRORES_CHECK(run.recompute_granularity.empty() || run.recompute_granularity == "full",
               "--recompute-granularity must be full, got '", run.recompute_granularity, "'");
  PRORES_CHECK(run.recompute_method == "uniform" || run.recompute_method == "block",
               "--recompute-method must be uniform or block, got '", run.recompute_method, "'");
  PRORES_CHECK(run.recompute_num_layers >= 1, "--recompute-num-layers must be positive, got ",
               run.recompute_num_layers);
  cluster.memory_bytes = memory_gb * 1e9;
  cluster.peak_flops = (peak_tflops != 0 ? peak_tflops
                        : run.device == Device::CUDA ? 989.0 : train::default_peak_tflops(run, 1)) * 1e12;
  cluster.intra_node_bandwidth = intra_gbps * 1e9;
  cluster.inter_node_bandwidth = inter_gbps * 1e9;
  cluster.reserved_bytes = (reserved_gb != -1 ? reserved_gb : run.device == Device::CUDA ? 2.0 : 0.0) * 1e9;
  cluster.validate();
  const std::vector<int64_t> node_counts = parse_nodes(nodes_text);
  train::LayoutChoices choices;
  choices.tp = tp;
  choices.pp = pp;
  choices.layers_per_virtual_stage = layers_per_virtual_stage;
  choices.recompute = run.recompute_granularity.empty() ? -1 : 1;
  choices.distributed_optimizer = distributed_optimizer ? 1 : -1;
  choices.sequence_parallel = sequence_parallel ? 1 : -1;

  const bool csv = output_format == "csv";
  std::vector<std::pair<int64_t, std::vector<train::LayoutPlan>>> listed;
  std::vector<std::string> notes(node_counts.size());
  bool any = false;
  for (size_t i = 0; i < node_counts.size(); ++i) {
    train::Cluster c = cluster;
    c.nodes = node_counts[i];
    c.validate();
    const train::LayoutSearch search = train::search_layouts(model, run, c, choices);
    std::vector<train::LayoutPlan> fitting;
    for (const train::LayoutPlan& p : search.layouts)
      if (p.fits && static_cast<int64_t>(fitting.size()) < top) fitting.push_back(p);
    if (fitting.empty()) {
      if (search.layouts.empty()) {
        notes[i] = message_of(search.refusal);
      } else {
        const train::LayoutPlan* least = &search.layouts.front();
        for (const train::LayoutPlan& p : search.layouts)
          if (p.memory.total() < least->memory.total()) least = &p;
        notes[i] = format("no layout of the %lld GPUs fits --gpu-memory %.4g GB: the smallest, %s, needs %.1f GB",
                          static_cast<long long>(c.ranks()), memory_gb, least->layout.describe().c_str(),
                          gb(least->memory.total()));
      }
    }
    any = any || !fitting.empty();
    listed.emplace_back(node_counts[i], std::move(fitting));
  }
  if (!any && node_counts.size() == 1) PRORES_FAIL("prores plan: ", notes.front());
  if (!any)
    PRORES_FAIL("prores plan: no layout fits on any of --nodes ", nodes_text, " (", node_counts.front(), " nodes: ",
                notes.front(), ")");
  const double efficiency = train::achieved_efficiency(model, run);
  if (csv) {
    out << "nodes,gpus,tp,pp,dp,virtual_stages,recompute_layers,zero1,sequence_parallel,micro_batches,params_gb,grads_gb,optimizer_gb,"
           "activation_per_micro_batch_gb,micro_batches_in_flight,activation_working_gb,comm_buffers_gb,other_gb,"
           "total_gb,stage,bubble,tp_comm_gb,pp_comm_gb,dp_comm_gb,step_s,tokens_per_s,mfu,compute_per_micro_batch_s,"
           "tp_per_micro_batch_s,pp_per_micro_batch_s,dp_exposed_s\n";
  } else {
    out << "prores plan: " << describe_model(model, run) << "\n"
        << format("cluster: %lld %s per node, %.4g GB each (%.4g GB reserved), %.4g TFLOP/s at %.1f%% achieved "
                  "(measured on one %s, %s), %.4g GB/s within a node, %.4g GB/s between nodes\n",
                  static_cast<long long>(cluster.gpus_per_node), run.device == Device::CUDA ? "GPU(s)" : "CPU rank(s)",
                  memory_gb, gb(cluster.reserved_bytes), cluster.peak_flops / 1e12, 100 * efficiency,
                  run.device == Device::CUDA ? "GPU" : "CPU", run.device == Device::CUDA ? "docs/gpu.md"
                                                                                         : "docs/performance.md",
                  intra_gbps, inter_gbps);
    print_table_header(out, cluster);
  }
  for (size_t i = 0; i < listed.size(); ++i) {
    if (!csv && !notes[i].empty())
      out << format("%5lld  %s\n", static_cast<long long>(listed[i].first), notes[i].c_str());
    for (const train::LayoutPlan& p : listed[i].second) print_row(out, listed[i].first, p, csv);
  }
  return 0;
}

}  // namespace prores
