// `prores generate`: text from a checkpoint (any layout it was written in, loaded on one CPU rank) for prompts
// given on the command line or in a file: greedy or sampled (temperature, top-k, top-p, seed), up to
// --max-new-tokens or EOS, decoding incrementally over a key/value cache.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

int run_generate_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
