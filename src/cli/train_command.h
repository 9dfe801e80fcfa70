// `prores train`, `prores eval` and `prores analyze`: the options of a training run (Megatron-LM names, INI via
// --config), the run itself, the evaluation of a checkpoint and the analysis of a run's checkpoints with the same
// options.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "core/check.h"
#include "parallel/communicator.h"

namespace prores {

// Runs `prores train` on the arguments after the subcommand name over the world communicator; returns
// the exit status. Bad input throws SetupError (on every rank) with a one-line message naming the
// option and value; errors during training throw prores::Error on the rank that met them.
int run_train_command(const std::vector<std::string>& args, std::ostream& out, Communicator& world);

// Runs `prores eval` (a checkpoint's validation and test loss, train's options plus a required --load) the same
// way.
int run_eval_command(const std::vector<std::string>& args, std::ostream& out, Communicator& world);

// Runs `prores analyze` (the layerwise similarity of a run's checkpoints to its last one, train's options plus a
// required --load DIR and --output) the same way.
int run_analyze_command(const std::vector<std::string>& args, std::ostream& out, Communicator& world);

}  // namespace prores
