// Zero-shot task evaluation as lm-evaluation-harness scores it: each task file's documents → requests →
// Scorer → per-document metrics → the task's metrics with standard errors, in lm-eval's result keys
// ("acc,none", "acc_stderr,none", ...), and the unweighted average over the tasks run (the paper's).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "eval/scorer.h"
#include "eval/task_file.h"
#include "eval/text_codec.h"

namespace prores::eval {

struct TaskEvalOptions {
  std::string data_dir = "data/eval";  // where task files live (--eval-data-dir)
  int64_t limit = 0;                   // > 0: the first `limit` documents of each task (--limit)
  std::string samples_dir;             // non-empty: DIR/<task>.jsonl per-document records (world rank 0)
};

struct TaskResult {
  std::string task;
  nlohmann::json metrics;  // lm-eval keys: "acc,none", "acc_stderr,none", "perplexity,none", ...
  int64_t docs = 0, requests = 0, truncated = 0;
  double seconds = 0;
  int64_t tokens = 0;  // input tokens this rank's replica read
};

// The task's metrics from its documents and their requests' scores (scores[i]: document i's requests, in
// order). multiple_choice: acc (the most likely request is gold, first maximum on ties) and acc_norm (each
// log-likelihood divided by its choice_chars) with standard errors sqrt(var_{n-1} / n); target: acc (greedy)
// and perplexity exp(−mean log-likelihood) (its standard error by the delta method); rolling: word_perplexity,
// byte_perplexity, bits_per_byte over the documents' words and bytes. Only the metrics listed in the file's header are reported. per_doc (when
// given) receives each document's metric values.
nlohmann::json task_metrics(const TaskFile& file, const std::vector<std::vector<RequestScore>>& scores,
                            std::vector<nlohmann::json>* per_doc = nullptr);

// Collective over the scorer's layout: evaluates each task in turn, logging to `log` on world rank 0 progress
// lines (core/progress.h: the requests its replica has scored, with an ETA, at most one per 5 s) and a result
// line per task. Returns the same results on every rank.
std::vector<TaskResult> evaluate_tasks(Scorer& scorer, const TextCodec& codec, const std::vector<std::string>& tasks,
                                       const TaskEvalOptions& options, std::ostream& log);

// {"results": {task: {"alias": task, metrics...}}, "average": {"acc,none": mean acc, "acc_norm,none": mean of
// acc_norm where reported else acc}, "n-samples": {task: {"effective": docs}}, "truncated": {task: requests}}.
nlohmann::json results_json(const std::vector<TaskResult>& results);

// "piqa,hellaswag" → {"piqa", "hellaswag"}; throws prores::Error naming `option` for an empty name.
std::vector<std::string> parse_task_list(const std::string& text, const char* option);

}  // namespace prores::eval
