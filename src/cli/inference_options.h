// The options of the commands that load one checkpoint into this process for inference (`prores generate`,
// `prores serve`): --load, the context length, bf16 and the tokenizer, with the model and the ProRes schedule
// taken from the checkpoint.
#pragma once
#include <boost/program_options.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "core/config.h"
#include "eval/loaded_model.h"
#include "model/residual_schedule.h"

namespace prores {

struct InferenceOptions {
  ModelConfig model;       // the checkpoint's (the sequence length: --seq-length when given)
  ScheduleArgs schedule;   // the checkpoint's
  eval::LoadedModelOptions load;
};

// Parses args against `extra` (the command's own options) plus --load (required), --seq-length (default: the
// checkpoint's), --tokenizer-model (default: the checkpoint's), --bf16 and --help; fills o from the checkpoint.
// Returns false after printing usage and the options for --help. Throws prores::Error naming the option.
bool parse_inference_options(const std::string& command, const char* usage, const std::vector<std::string>& args,
                             boost::program_options::options_description& extra, std::ostream& out,
                             InferenceOptions& o);

}  // namespace prores
