// The project's task files (docs/eval.md, "Task files"): one JSON-lines file per benchmark, made by
// launch/eval_tasks.sh from the lm-evaluation-harness zero-shot prompts, read here into documents.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace prores::eval {

// multiple_choice: one request per choice, accuracy of the most likely; target: one request whose
// continuation must be greedy (LAMBADA); rolling: a text scored by rolling windows (WikiText).
enum class TaskKind { MultipleChoice, Target, Rolling };

struct TaskDoc {
  int64_t doc_id = 0;
  std::vector<std::pair<std::string, std::string>> requests;  // (context, continuation); not for rolling
  int64_t gold = -1;                                          // multiple_choice: the right request's index
  std::vector<int64_t> choice_chars;                          // multiple_choice: acc_norm's lengths
  std::string subject;                                        // optional (MMLU)
  std::string text;                                           // rolling: the scored text
  int64_t words = 0;                                          // rolling: word_perplexity's word count
  int64_t bytes = 0;                                          // rolling: byte_perplexity's UTF-8 bytes
};

struct TaskFile {
  std::string path, task, split, source;
  TaskKind kind = TaskKind::MultipleChoice;
  std::vector<std::string> metrics;
  std::vector<TaskDoc> docs;
};

// The tasks launch/eval_tasks.sh writes, by lm-evaluation-harness name.
const std::vector<std::string>& known_tasks();

// Where task `name` lives: name itself when it ends in .jsonl (a file the user made), else DIR/name.jsonl for a
// known name. Throws prores::Error listing the known tasks for an unknown name, and naming the command that
// makes the data when the file is missing.
std::string task_file_path(const std::string& data_dir, const std::string& name);

// Reads a task file; throws prores::Error naming the file and line number at the first malformed line (bad
// JSON, a missing or mistyped field, a gold index out of range, a header that is not version 1), and when the
// header's num_docs disagrees with the documents. limit > 0 keeps the first `limit` documents.
TaskFile read_task_file(const std::string& path, int64_t limit = 0);

}  // namespace prores::eval
