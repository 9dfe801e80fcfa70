// Task-file reading (task_file.h) with nlohmann-json, every error carrying file:line.
#include "eval/task_file.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"

namespace prores::eval {

namespace {

using nlohmann::json;

const json& field(const json& line, const char* name, json::value_t type, const std::string& where) {
  const auto it = line.find(name);
  PRORES_CHECK(it != line.end(), where, ": missing field \"", name, "\"");
  const bool ok = it->type() == type || (type == json::value_t::number_integer && it->is_number_unsigned());
  PRORES_CHECK(ok, where, ": field \"", name, "\" has the wrong type (", it->type_name(), ")");
  return *it;
}

TaskKind parse_kind(const std::string& kind, const std::string& where) {
  if (kind == "multiple_choice") return TaskKind::MultipleChoice;
  if (kind == "target") return TaskKind::Target;
  if (kind == "rolling") return TaskKind::Rolling;
  PRORES_FAIL(where, ": kind must be multiple_choice, target or rolling, got '", kind, "'");
}

TaskDoc parse_doc(const json& line, TaskKind kind, const std::string& where) {
  TaskDoc doc;
  doc.doc_id = field(line, "doc_id", json::value_t::number_integer, where).get<int64_t>();
  if (kind == TaskKind::Rolling) {
    doc.text = field(line, "text", json::value_t::string, where).get<std::string>();
    doc.words = field(line, "words", json::value_t::number_integer, where).get<int64_t>();
    doc.bytes = field(line, "bytes", json::value_t::number_integer, where).get<int64_t>();
    PRORES_CHECK(doc.words >= 1 && doc.bytes >= 1, where, ": words and bytes must be positive");
    return doc;
  }
  for (const json& request : field(line, "requests", json::value_t::array, where)) {
    PRORES_CHECK(request.is_array() && request.size() == 2 && request[0].is_string() && request[1].is_string(), where,
                 ": each request must be [context, continuation] (two strings)");
    doc.requests.emplace_back(request[0].get<std::string>(), request[1].get<std::string>());
  }
  PRORES_CHECK(!doc.requests.empty(), where, ": no requests");
  if (kind == TaskKind::Target) {
    PRORES_CHECK(doc.requests.size() == 1, where, ": a target document has one request, got ", doc.requests.size());
    return doc;
  }
  doc.gold = field(line, "gold", json::value_t::number_integer, where).get<int64_t>();
  PRORES_CHECK(doc.gold >= 0 && doc.gold < static_cast<int64_t>(doc.requests.size()), where, ": gold ", doc.gold,
               " is not one of the ", doc.requests.size(), " requests");
  for (const json& n : field(line, "choice_chars", json::value_t::array, where)) {
    PRORES_CHECK(n.is_number_integer() && n.get<int64_t>() >= 0, where, ": choice_chars must be counts");
    doc.choice_chars.push_back(n.get<int64_t>());
  }
  PRORES_CHECK(doc.choice_chars.size() == doc.requests.size(), where, ": choice_chars has ", doc.choice_chars.size(),
               " entries for ", doc.requests.size(), " requests");
  if (const auto it = line.find("subject"); it != line.end() && it->is_string()) doc.subject = it->get<std::string>();
  return doc;
}

}  // namespace

const std::vector<std::string>& known_tasks() {
  static const std::vector<std::string> names = {"lambada_openai", "piqa", "social_iqa", "hellaswag", "winogrande",
                                                 "arc_easy", "arc_challenge", "openbookqa", "mmlu", "race", "wikitext"};
  return names;
}

std::string task_file_path(const std::string& data_dir, const std::string& name) {
  if (name.size() > 6 && name.ends_with(".jsonl")) {
    PRORES_CHECK(std::filesystem::is_regular_file(name), "--tasks: task file ", name, " does not exist");
    return name;
  }
  bool known = false;
  std::string list;
  for (const std::string& task : known_tasks()) {
    known = known || task == name;
    list += (list.empty() ? "" : ", ") + task;
  }
  PRORES_CHECK(known, "--tasks: unknown task '", name, "' (known: ", list, "; or a path to a .jsonl task file)");
  const std::string path = data_dir + "/" + name + ".jsonl";
  const std::string maker = name == "race" || name == "wikitext"
                                ? "bash launch/eval_tasks.sh --out " + data_dir + " --" + name + " FILE"
                                : "bash launch/eval_tasks.sh --out " + data_dir;
  PRORES_CHECK(std::filesystem::is_regular_file(path), "--tasks: ", path, " is missing; make it with: ", maker);
  return path;
}

TaskFile read_task_file(const std::string& path, int64_t limit) {
  std::ifstream in(path);
  PRORES_CHECK(in, "task file ", path, ": cannot open");
  TaskFile file;
  file.path = path;
  int64_t line_number = 0, num_docs = -1;
  for (std::string text; std::getline(in, text);) {
    const std::string where = path + ":" + std::to_string(++line_number);
    json line;
    try {
      line = json::parse(text);
    } catch (const json::exception& e) {
      PRORES_FAIL(where, ": not a JSON object (", e.what(), ")");
    }
    PRORES_CHECK(line.is_object(), where, ": not a JSON object");
    if (line_number == 1) {
      PRORES_CHECK(line.value("prores_eval_task", 0) == 1, where,
                   ": not a task file header ({\"prores_eval_task\": 1, ...}; see docs/eval.md)");
      file.task = field(line, "task", json::value_t::string, where).get<std::string>();
      file.kind = parse_kind(field(line, "kind", json::value_t::string, where).get<std::string>(), where);
      file.split = line.value("split", "");
      file.source = line.value("source", "");
      for (const json& m : field(line, "metrics", json::value_t::array, where)) file.metrics.push_back(m.get<std::string>());
      num_docs = field(line, "num_docs", json::value_t::number_integer, where).get<int64_t>();
      continue;
    }
    if (limit > 0 && static_cast<int64_t>(file.docs.size()) >= limit) continue;  // still checks the count
    file.docs.push_back(parse_doc(line, file.kind, where));
  }
  PRORES_CHECK(line_number >= 1, "task file ", path, ": empty");
  PRORES_CHECK(num_docs == line_number - 1, "task file ", path, ": the header says ", num_docs, " documents, the file has ",
               line_number - 1);
  return file;
}

}  // namespace prores::eval
