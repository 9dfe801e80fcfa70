// `prores train`: the options of a training run (Megatron-LM names, INI via --config) and the run itself.
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

}  // namespace prores
