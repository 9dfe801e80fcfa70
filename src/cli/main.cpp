// The `prores` executable: dispatches to a subcommand; the only place that catches errors and exits.
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/checkpoint_commands.h"
#include "cli/data_command.h"
#include "cli/generate_command.h"
#include "cli/plan_command.h"
#include "cli/report_command.h"
#include "cli/schedule_command.h"
#include "cli/serve_command.h"
#include "cli/train_command.h"
#include "core/check.h"
#include "core/malloc_tuning.h"
#include "parallel/communicator.h"

namespace {

constexpr const char* kUsage =
    "Usage: prores <command> [options]   (prores <command> --help for its options)\n"
    "Commands:\n"
    "  train      train a Llama-style decoder with ProRes (Progressive Residual Warmup)\n"
    "  eval       a checkpoint's validation and test loss and perplexity\n"
    "  analyze    layerwise similarity of a run's checkpoints to its last one (for prores report)\n"
    "  schedule   print the ProRes residual scale alpha(l, t) as CSV\n"
    "  data       train a SentencePiece tokenizer; preprocess text into a Megatron indexed dataset\n"
    "  convert    reshard a checkpoint for another TP x PP layout (offline)\n"
    "  plan       the TP x PP x DP layouts of a model that fit a cluster: memory, bubble, communication, step time\n"
    "  generate   continue prompts with a checkpoint's model (greedy or sampled, key/value cache)\n"
    "  report     plots, spike scores and a summary table comparing runs (index.html; TensorBoard export)\n"
    "  sweep      run a grid of training runs from a TOML file, resumably; results table and the paper's figures\n"
    "  serve      an OpenAI-compatible completions server over a checkpoint's model (lm-eval local-completions)\n"
    "  export-hf  write a Pre-LN checkpoint as a Hugging Face LlamaForCausalLM directory\n"
    "  import-hf  turn a LlamaForCausalLM directory into a checkpoint to continue from\n";

void report(const std::exception& e) {
  std::fflush(stdout);
  std::fprintf(stderr, "prores: error: %s\n", e.what());
}

// `prores train` or `prores eval` under MPI (or alone): errors all ranks agreed on end normally with exit status
// 1; any other error aborts every rank, so that none is left waiting in a collective.
int run_distributed(int argc, char** argv, const std::vector<std::string>& args,
                    int (*command)(const std::vector<std::string>&, std::ostream&, prores::Communicator&)) {
  std::unique_ptr<prores::Communicator> world;
  try {
    world = prores::make_world_communicator(&argc, &argv);
    const int status = command(args, std::cout, *world);
    world.reset();
    prores::finalize_world();
    return status;
  } catch (const prores::SetupError& e) {
    report(e);
    world.reset();
    prores::finalize_world();
    return 1;
  } catch (const std::exception& e) {
    report(e);
    if (world && world->size() > 1) prores::abort_world(1);
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  prores::keep_freed_memory_in_heap();
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 1 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "train") return run_distributed(argc, argv, args, prores::run_train_command);
  if (command == "eval") return run_distributed(argc, argv, args, prores::run_eval_command);
  if (command == "analyze") return run_distributed(argc, argv, args, prores::run_analyze_command);
  try {
    if (command == "schedule") return prores::run_schedule_command(args, std::cout);
    if (command == "plan") return prores::run_plan_command(args, std::cout);
    if (command == "data") return prores::run_data_command(args, std::cout);
    if (command == "generate") return prores::run_generate_command(args, std::cout);
    if (command == "serve") return prores::run_serve_command(args, std::cout);
    if (command == "report") return prores::run_report_command(args, std::cout);
    if (command == "sweep") return prores::run_sweep_command(args, std::cout);
    if (command == "convert") return prores::run_convert_command(args, std::cout);
    if (command == "export-hf") return prores::run_export_hf_command(args, std::cout);
    if (command == "import-hf") return prores::run_import_hf_command(args, std::cout);
    std::fprintf(stderr, "prores: error: unknown command '%s'\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    report(e);
    return 1;
  }
}
