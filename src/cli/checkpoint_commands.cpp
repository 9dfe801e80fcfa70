// The checkpoint subcommands (see checkpoint_commands.h): option parsing around train/checkpoint_tools.h.
#include "cli/checkpoint_commands.h"

#include "cli/option_parsing.h"
#include "core/check.h"
#include "parallel/layout.h"
#include "train/checkpoint_tools.h"

namespace prores {

namespace po = boost::program_options;

namespace {

// Parses args; returns false after printing usage for --help. Every option listed in `required` must be given.
bool parse(const std::string& command, const char* usage, const std::vector<std::string>& args,
           po::options_description& desc, const std::vector<const char*>& required, std::ostream& out) {
  desc.add_options()("help", "print this help");
  po::variables_map vm;
  if (!parse_options(command, args, desc, vm)) {
    out << usage << desc;
    return false;
  }
  for (const char* name : required) PRORES_CHECK(vm.count(name), command, ": --", name, " is required");
  return true;
}

}  // namespace

int run_convert_command(const std::vector<std::string>& args, std::ostream& out) {
  std::string load, save, pipeline_layers;
  ParallelConfig parallel;
  po::options_description desc("prores convert options");
  desc.add_options()("load", po::value(&load), "checkpoint directory (its latest) or iteration directory")
      ("save", po::value(&save), "directory of the resharded copy")
      ("tensor-model-parallel-size", po::value(&parallel.tensor)->default_value(1), "target TP")
      ("pipeline-model-parallel-size", po::value(&parallel.pipeline)->default_value(1), "target PP")
      ("pipeline-layers", po::value(&pipeline_layers), "target layers per stage, e.g. 8,8,7,7");
  if (!parse("convert", "Usage: prores convert --load A --save B [--tensor-model-parallel-size t] "
             "[--pipeline-model-parallel-size p]\nWrites a copy of checkpoint A resharded for TP = t, PP = p.\n",
             args, desc, {"load", "save"}, out))
    return 0;
  if (!pipeline_layers.empty()) parallel.pipeline_layers = parse_pipeline_layers(pipeline_layers);
  train::convert_checkpoint(load, save, parallel, {});  // progress to stderr
  out << "convert: wrote " << save << " for TP " << parallel.tensor << " x PP " << parallel.pipeline << "\n";
  return 0;
}

int run_export_hf_command(const std::vector<std::string>& args, std::ostream& out) {
  std::string load, hf_dir;
  po::options_description desc("prores export-hf options");
  desc.add_options()("load", po::value(&load), "checkpoint directory (its latest) or iteration directory")
      ("out", po::value(&hf_dir), "Hugging Face model directory to write");
  if (!parse("export-hf", "Usage: prores export-hf --load DIR --out HF_DIR\n", args, desc, {"load", "out"}, out))
    return 0;
  train::export_hf(load, hf_dir, {});
  out << "export-hf: wrote " << hf_dir << "/config.json and model.safetensors\n";
  return 0;
}

int run_import_hf_command(const std::vector<std::string>& args, std::ostream& out) {
  std::string hf_dir, save;
  po::options_description desc("prores import-hf options");
  desc.add_options()("hf-dir", po::value(&hf_dir), "LlamaForCausalLM directory (config.json, model.safetensors)")
      ("save", po::value(&save), "checkpoint directory to write");
  if (!parse("import-hf", "Usage: prores import-hf --hf-dir HF_DIR --save DIR\n", args, desc, {"hf-dir", "save"}, out))
    return 0;
  train::import_hf(hf_dir, save, {});
  out << "import-hf: wrote " << save << " (continue with prores train --load " << save
      << " --prores-schedule none)\n";
  return 0;
}

}  // namespace prores
