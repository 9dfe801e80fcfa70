// `prores plan`: the layouts of a model on a cluster that fit, best first, with each one's per-rank memory,
// pipeline bubble, communication per step, estimated step time and MFU (train/launch_plan.h; docs/parallel.md,
// "Planning a launch"). Takes prores train's model, batch, precision and layout options (and its config files),
// plus the cluster's.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// Runs `prores plan` on the arguments after the subcommand name and writes the table (or CSV) to out; returns
// the exit status (0). Bad input, a layout that does not divide and a model that fits no layout throw
// prores::Error with one line naming the option or value.
int run_plan_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
