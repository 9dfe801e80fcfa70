// Shared Boost.Program_options plumbing for the subcommands: command line first, then an optional INI
// file (`--config FILE`, keys = long option names, `[section]` headers only grouping them) for whatever the
// command line left unset; an option repeated on the command line (or a key in the file) takes its last value,
// as with Megatron-LM's argparse; every Boost error becomes a one-line prores::Error naming the option or the
// config key.
#pragma once
#include <boost/program_options.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace prores {

// Parses args (the words after the subcommand) against desc, which must contain "help" (and may contain
// "config").
// Returns false when --help was given (the caller prints usage), true otherwise with vm stored and
// notified. Throws prores::Error on unknown options or keys, positional words and malformed values.
bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const boost::program_options::options_description& desc,
                   boost::program_options::variables_map& vm);

// A comma-separated list of non-negative integers such as 0,100,500 (--iters, --save-iters), in the given
// order. Throws prores::Error naming the option and the bad item.
std::vector<int64_t> parse_iteration_list(const std::string& option, const std::string& text);

// One option per ModelConfig field (for_each_model_field), bound to m: enums by name, bools as switches. The
// commands that take a model's options (train, eval, analyze, plan) register them through this one function.
void add_model_options(boost::program_options::options_description& desc, ModelConfig& m);

}  // namespace prores
