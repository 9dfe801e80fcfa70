// `prores generate` (generate_command.h): options → eval::LoadedModel → one Generator call per prompt; the
// prompt and its continuation on stdout, and with --output-json the token ids as well.
#include "cli/generate_command.h"

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/inference_options.h"
#include "core/check.h"

namespace prores {

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: prores generate --load DIR (--prompt TEXT ... | --prompt-file FILE) [options]\n"
    "Continues each prompt with the checkpoint's model (loaded on one CPU rank from any layout): greedy by\n"
    "default, sampled with --temperature > 0. Prints each prompt followed by its continuation.\n";

std::vector<std::string> read_prompt_file(const std::string& path) {
  std::ifstream in(path);
  PRORES_CHECK(in, "--prompt-file ", path, ": cannot open");
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) prompts.push_back(line);
  PRORES_CHECK(!prompts.empty(), "--prompt-file ", path, ": no prompts (one per non-empty line)");
  return prompts;
}

}  // namespace

int run_generate_command(const std::vector<std::string>& args, std::ostream& out) {
  InferenceOptions o;
  std::vector<std::string> prompts;
  std::string prompt_file, output_json;
  eval::GenerationRequest request;
  bool ignore_eos = false, no_kv_cache = false;
  po::options_description extra;
  extra.add_options()("prompt", po::value(&prompts)->composing(), "a prompt (repeatable)")
      ("prompt-file", po::value(&prompt_file), "prompts, one per line")
      ("max-new-tokens", po::value(&request.max_new_tokens)->default_value(32), "tokens to generate at most")
      ("temperature", po::value(&request.sampling.temperature)->default_value(0.0), "0: greedy; > 0: sample")
      ("top-k", po::value(&request.sampling.top_k)->default_value(0), "sample from the k most likely (0: all)")
      ("top-p", po::value(&request.sampling.top_p)->default_value(1.0), "nucleus sampling mass (1: all)")
      ("seed", po::value(&request.sampling.seed)->default_value(0), "sampling seed")
      ("ignore-eos", po::bool_switch(&ignore_eos), "go on after the end-of-sequence token")
      ("no-kv-cache", po::bool_switch(&no_kv_cache),
       "recompute the whole prefix for every token (the reference for the cached decoder; slower)")
      ("output-json", po::value(&output_json), "also write prompts, token ids and texts to this JSON file");
  if (!parse_inference_options("generate", kUsage, args, extra, out, o)) return 0;
  if (!prompt_file.empty()) {
    const std::vector<std::string> more = read_prompt_file(prompt_file);
    prompts.insert(prompts.end(), more.begin(), more.end());
  }
  PRORES_CHECK(!prompts.empty(), "generate: give --prompt TEXT or --prompt-file FILE");
  PRORES_CHECK(request.max_new_tokens >= 0, "--max-new-tokens must be >= 0, got ", request.max_new_tokens);
  request.sampling.validate();
  o.load.kv_cache = !no_kv_cache;
  eval::LoadedModel loaded(o.model, o.schedule, o.load);
  const eval::TextCodec& codec = loaded.codec();
  request.stop_at_eos = !ignore_eos;
  request.eos_id = codec.eos_id();
  nlohmann::json records = nlohmann::json::array();
  int64_t generated = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& prompt : prompts) {
    request.prompt = codec.encode(prompt);
    PRORES_CHECK(!request.prompt.empty(), "generate: the prompt '", prompt, "' has no tokens");
    const eval::GenerationResult result = loaded.generator().generate(request);
    const std::string text = codec.decode(result.tokens);
    out << prompt << text << "\n\n";
    generated += static_cast<int64_t>(result.tokens.size());
    records.push_back({{"prompt", prompt}, {"prompt_tokens", request.prompt}, {"tokens", result.tokens},
                       {"text", text}, {"finish_reason", result.finish_reason}});
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!output_json.empty()) {
    std::ofstream file(output_json);
    PRORES_CHECK(file, "--output-json ", output_json, ": cannot write");
    file << nlohmann::json{{"checkpoint", loaded.checkpoint()}, {"iteration", loaded.iteration()},
                           {"samples", records}}.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
         << "\n";  // a continuation may end inside a UTF-8 character: U+FFFD there
  }
  out << "generate: " << generated << " tokens in " << seconds << " s (" << generated / std::max(seconds, 1e-9)
      << " tokens/s, " << (o.load.kv_cache ? "key/value cache" : "recomputing the prefix") << ")\n";
  return 0;
}

}  // namespace prores
