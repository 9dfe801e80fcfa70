// The --results-json document of `prores eval` (see eval_results.h), written with nlohmann-json.
#include "cli/eval_results.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "train/metrics_writer.h"

namespace prores {

namespace fs = std::filesystem;

void check_writable(const std::string& option, const std::string& path) {
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  const std::string probe = path + ".tmp";
  PRORES_CHECK(std::ofstream(probe).good(), option, ": cannot write '", path, "'");
  fs::remove(probe, ec);
}

void write_eval_results(const std::string& path, const train::EvalResult& result, const ScheduleArgs& schedule,
                        const train::TrainConfig& config) {
  // JSON has no NaN: an empty split's numbers are null.
  const auto number = [](double x) { return std::isfinite(x) ? nlohmann::ordered_json(x) : nlohmann::ordered_json(nullptr); };
  const auto split = [&](double loss) {
    return nlohmann::ordered_json{{"loss", number(loss)}, {"perplexity", number(std::exp(loss))}};
  };
  const nlohmann::ordered_json doc = {{"checkpoint", result.checkpoint},
                              {"iteration", result.iteration},
                              {"prores_schedule", schedule.schedule},
                              {"prores_warmup_steps", schedule.warmup_steps},
                              {"alpha", result.alpha},
                              {"split", config.split},
                              {"eval_iters", config.eval_iters},
                              {"tokens_per_split", result.tokens_per_split},
                              {"valid", split(result.val_loss)},
                              {"test", split(result.test_loss)}};
  write_json_file(path, doc);
}

namespace {

// Writes text to path through path.tmp and a rename; errors name the option.
void write_file_atomically(const std::string& option, const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    PRORES_CHECK(out.good(), option, ": writing '", tmp, "' failed");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  PRORES_CHECK(!ec, option, ": cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

}  // namespace

void write_similarity_lines(const std::string& path, const std::vector<train::CheckpointSimilarity>& results) {
  std::string text;
  for (const train::CheckpointSimilarity& r : results)
    text += train::MetricsRecord()
                .add("iter", r.iteration)
                .add("final_iter", results.back().iteration)
                .add("probe/tokens", r.similarity.tokens)
                .add("similarity/block_output", r.similarity.block_output)
                .add("similarity/attn_branch", r.similarity.attn_branch)
                .add("similarity/mlp_branch", r.similarity.mlp_branch)
                .to_json() +
            "\n";
  write_file_atomically("--output", path, text);
}

void write_json_file(const std::string& path, const nlohmann::ordered_json& doc) {
  write_file_atomically("--results-json", path, doc.dump(2) + "\n");
}

}  // namespace prores
