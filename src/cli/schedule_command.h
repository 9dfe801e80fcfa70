// `prores schedule`: prints the ProRes alpha(l, t) table as CSV, for inspecting or plotting a schedule
// without training (same options and resolution as `prores train`).
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// Runs `prores schedule` on the arguments after the subcommand name, e.g.
//   --num-layers 4 --prores-schedule linear --prores-warmup-steps 400 --iters 0,100,400
// and writes `iter,layer,alpha` then one row per (iteration in the given order, layer 1..L), alpha in
// the shortest decimal form that reads back as the same double. --help writes the usage instead.
// Returns the exit status (0). Bad input throws prores::Error with a one-line message naming the option.
int run_schedule_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
