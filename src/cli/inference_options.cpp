// parse_inference_options (inference_options.h).
#include "cli/inference_options.h"

#include "cli/checkpoint_owned_options.h"
#include "cli/option_parsing.h"
#include "core/check.h"

namespace prores {

namespace po = boost::program_options;

bool parse_inference_options(const std::string& command, const char* usage, const std::vector<std::string>& args,
                             po::options_description& extra, std::ostream& out, InferenceOptions& o) {
  po::options_description desc("prores " + command + " options");
  desc.add_options()("help", "print this help")
      ("load", po::value(&o.load.load), "checkpoint directory (its latest) or iteration directory (any layout)")
      ("seq-length", po::value(&o.model.seq_length), "context length in tokens (default: the checkpoint's)")
      ("tokenizer-model", po::value(&o.load.tokenizer_model),
       "SentencePiece model (default: the checkpoint's; a run without one is byte-level)")
      ("bf16", po::bool_switch(&o.load.bf16), "bf16 matmuls with fp32 accumulation");
  desc.add(extra);
  po::variables_map vm;
  if (!parse_options(command, args, desc, vm)) {
    out << usage << desc;
    return false;
  }
  PRORES_CHECK(!o.load.load.empty(), command, ": --load is required: the checkpoint to load");
  adopt_checkpoint_options(o.load.load, vm, {o.model, o.schedule, o.load.tokenizer_model});
  PRORES_CHECK(o.model.seq_length >= 1, "--seq-length must be positive, got ", o.model.seq_length);
  return true;
}

}  // namespace prores
