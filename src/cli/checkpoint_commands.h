// `prores convert`, `prores export-hf` and `prores import-hf`: offline checkpoint tools (no MPI).
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// Each runs on the arguments after its subcommand name and returns the exit status; bad input throws
// prores::Error with a one-line message naming the option and value.
int run_convert_command(const std::vector<std::string>& args, std::ostream& out);
int run_export_hf_command(const std::vector<std::string>& args, std::ostream& out);
int run_import_hf_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
