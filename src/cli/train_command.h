// `prores train`: the options of a training run (Megatron-LM names, INI via --config) and the run itself.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// Runs `prores train` on the arguments after the subcommand name; returns the exit status.
// Bad input throws prores::Error with a one-line message naming the option and value.
int run_train_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
