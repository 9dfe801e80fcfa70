// `prores serve`: a checkpoint's model (any layout it was written in, loaded on one CPU rank) behind an
// OpenAI-compatible completions server with vLLM's tokenizer endpoints, for lm-eval's local-completions model
// and OpenAI clients (docs/serve.md); SIGTERM or SIGINT stops it with exit status 0.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

int run_serve_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
