// `prores eval --results-json FILE`: the evaluation's numbers as one JSON document for scripts (the losses, or
// with --tasks lm-eval's results); `prores analyze --output FILE`: the similarity of a run's checkpoints as JSON
// lines.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/residual_schedule.h"
#include "train/trainer.h"

namespace prores {

// Throws prores::Error naming the option (--results-json, --output) unless path's directory exists (or can be
// created) and a file can be written there; called before any work, so that a bad path fails every rank at set-up.
void check_writable(const std::string& option, const std::string& path);

// Writes path (through path.tmp and a rename) as
//   {"checkpoint": DIR, "iteration": t, "prores_schedule": S, "prores_warmup_steps": W, "alpha": [α(1,t) ... α(L,t)],
//    "split": "969,30,1", "eval_iters": n, "tokens_per_split": N,
//    "valid": {"loss": x, "perplexity": e^x}, "test": {"loss": y, "perplexity": e^y}}
// with every double in full precision (a split --split leaves empty has null loss and perplexity).
void write_eval_results(const std::string& path, const train::EvalResult& result, const ScheduleArgs& schedule,
                        const train::TrainConfig& config);

// Writes `prores analyze`'s results to path (through path.tmp and a rename) as JSON lines, one per checkpoint
// (docs/diagnostics.md): {"iter": t, "final_iter": T, "probe/tokens": n, "similarity/block_output": [L values],
// "similarity/attn_branch": [...], "similarity/mlp_branch": [...]}. Errors name --output.
void write_similarity_lines(const std::string& path, const std::vector<train::CheckpointSimilarity>& results);

// Writes doc to path (through path.tmp and a rename), indented; errors name --results-json.
void write_json_file(const std::string& path, const nlohmann::ordered_json& doc);

}  // namespace prores
