// Task evaluation (task_eval.h): requests per document, one Scorer pass per task, lm-eval's metrics.
#include "eval/task_eval.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>

#include "core/check.h"
#include "core/progress.h"

namespace prores::eval {

namespace {

using nlohmann::json;

// lm-eval's mean and sample standard error of the mean: sqrt(Σ(x − mean)² / (n − 1) / n).
void add_mean(json& out, const std::string& name, const std::vector<double>& x) {
  const double n = static_cast<double>(x.size());
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / n;
  double ss = 0;
  for (const double v : x) ss += (v - mean) * (v - mean);
  out[name + ",none"] = mean;
  out[name + "_stderr,none"] = x.size() > 1 ? std::sqrt(ss / (n - 1) / n) : 0.0;
}

bool reports(const TaskFile& file, const std::string& metric) {
  return std::find(file.metrics.begin(), file.metrics.end(), metric) != file.metrics.end();
}

// The first index of the largest value (numpy's argmax).
size_t argmax(const std::vector<double>& v) { return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin()); }

std::string seconds_text(double s) {
  std::ostringstream os;
  os.precision(1);
  os << std::fixed << s << " s";
  return os.str();
}

}  // namespace

json task_metrics(const TaskFile& file, const std::vector<std::vector<RequestScore>>& scores,
                  std::vector<json>* per_doc) {
  PRORES_CHECK(scores.size() == file.docs.size(), "task_metrics: ", scores.size(), " score lists for ",
               file.docs.size(), " documents");
  json out = json::object();
  if (per_doc) per_doc->assign(file.docs.size(), json::object());
  const size_t D = file.docs.size();
  if (D == 0) return out;
  if (file.kind == TaskKind::MultipleChoice) {
    std::vector<double> acc(D), acc_norm(D);
    for (size_t d = 0; d < D; ++d) {
      const TaskDoc& doc = file.docs[d];
      std::vector<double> ll, normed;
      for (size_t i = 0; i < doc.requests.size(); ++i) {
        ll.push_back(scores[d][i].logprob);
        normed.push_back(scores[d][i].logprob / static_cast<double>(doc.choice_chars[i]));
      }
      acc[d] = argmax(ll) == static_cast<size_t>(doc.gold) ? 1.0 : 0.0;
      acc_norm[d] = argmax(normed) == static_cast<size_t>(doc.gold) ? 1.0 : 0.0;
      if (per_doc) (*per_doc)[d] = {{"acc", acc[d]}, {"acc_norm", acc_norm[d]}};
    }
    if (reports(file, "acc")) add_mean(out, "acc", acc);
    if (reports(file, "acc_norm")) add_mean(out, "acc_norm", acc_norm);
  } else if (file.kind == TaskKind::Target) {
    std::vector<double> acc(D), ll(D);
    for (size_t d = 0; d < D; ++d) {
      acc[d] = scores[d][0].greedy ? 1.0 : 0.0;
      ll[d] = scores[d][0].logprob;
      if (per_doc) (*per_doc)[d] = {{"acc", acc[d]}, {"perplexity", ll[d]}};
    }
    if (reports(file, "acc")) add_mean(out, "acc", acc);
    if (reports(file, "perplexity")) {
      json mean_ll;
      add_mean(mean_ll, "ll", ll);
      const double ppl = std::exp(-mean_ll["ll,none"].get<double>());
      out["perplexity,none"] = ppl;
      out["perplexity_stderr,none"] = ppl * mean_ll["ll_stderr,none"].get<double>();
    }
  } else {
    double ll = 0, words = 0, bytes = 0;
    for (size_t d = 0; d < D; ++d) {
      double doc_ll = 0;
      for (const RequestScore& s : scores[d]) doc_ll += s.logprob;
      ll += doc_ll;
      words += static_cast<double>(file.docs[d].words);
      bytes += static_cast<double>(file.docs[d].bytes);
      if (per_doc) (*per_doc)[d] = {{"loglikelihood", doc_ll}, {"words", file.docs[d].words},
                                    {"bytes", file.docs[d].bytes}};
    }
    if (reports(file, "word_perplexity")) out["word_perplexity,none"] = std::exp(-ll / words);
    if (reports(file, "byte_perplexity")) out["byte_perplexity,none"] = std::exp(-ll / bytes);
    if (reports(file, "bits_per_byte")) out["bits_per_byte,none"] = -ll / bytes / std::log(2.0);
  }
  return out;
}

std::vector<TaskResult> evaluate_tasks(Scorer& scorer, const TextCodec& codec, const std::vector<std::string>& tasks,
                                       const TaskEvalOptions& options, std::ostream& log) {
  std::vector<TaskFile> files;  // read every file first: a bad one fails before any scoring
  for (const std::string& name : tasks) files.push_back(read_task_file(task_file_path(options.data_dir, name), options.limit));
  std::vector<TaskResult> results;
  for (const TaskFile& file : files) {
    const auto start = std::chrono::steady_clock::now();
    const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    TaskResult result;
    result.task = file.task;
    result.docs = static_cast<int64_t>(file.docs.size());
    std::vector<TokenRequest> requests;
    std::vector<size_t> first_request;  // document d's requests start here
    for (const TaskDoc& doc : file.docs) {
      first_request.push_back(requests.size());
      if (file.kind == TaskKind::Rolling) {
        std::vector<TokenRequest> windows = rolling_requests(codec, doc.text, scorer.max_length());
        requests.insert(requests.end(), windows.begin(), windows.end());
      } else {
        for (const auto& [context, continuation] : doc.requests)
          requests.push_back(make_request(codec, context, continuation, scorer.max_length()));
      }
    }
    first_request.push_back(requests.size());
    result.requests = static_cast<int64_t>(requests.size());
    for (const TokenRequest& r : requests) result.truncated += r.truncated ? 1 : 0;
    std::optional<Progress> progress;  // made at the first report, which brings the replica's total
    const ScoreProgress report = [&](int64_t done, int64_t total) {
      if (!progress) {
        const ProgressOptions to_log{.out = &log, .enabled = scorer.is_reporter()};
        progress.emplace("eval " + file.task, total, "requests", to_log);
      }
      progress->advance(done - progress->done());
    };
    const std::vector<RequestScore> flat = scorer.score(requests, report);
    result.tokens = scorer.tokens_read();
    std::vector<std::vector<RequestScore>> scores(file.docs.size());
    for (size_t d = 0; d < file.docs.size(); ++d)
      scores[d].assign(flat.begin() + static_cast<std::ptrdiff_t>(first_request[d]),
                       flat.begin() + static_cast<std::ptrdiff_t>(first_request[d + 1]));
    std::vector<json> per_doc;
    result.metrics = task_metrics(file, scores, options.samples_dir.empty() ? nullptr : &per_doc);
    result.seconds = elapsed();
    if (!options.samples_dir.empty() && scorer.is_reporter()) {
      std::filesystem::create_directories(options.samples_dir);
      std::ofstream out(options.samples_dir + "/" + file.task + ".jsonl");
      PRORES_CHECK(out, "--samples-dir ", options.samples_dir, ": cannot write ", file.task, ".jsonl");
      for (size_t d = 0; d < file.docs.size(); ++d) {
        json record = per_doc[d];
        record["doc_id"] = file.docs[d].doc_id;
        json arguments = json::array(), resps = json::array();
        for (const auto& [context, continuation] : file.docs[d].requests) arguments.push_back({context, continuation});
        for (const RequestScore& s : scores[d]) resps.push_back({s.logprob, s.greedy});
        if (file.kind != TaskKind::Rolling) record["arguments"] = arguments;
        record["resps"] = resps;
        out << record.dump() << "\n";
      }
    }
    std::ostringstream line;
    line << "eval " << file.task << " (" << result.docs << " docs, " << result.requests << " requests";
    if (result.truncated > 0) line << ", " << result.truncated << " truncated";
    line << ", " << seconds_text(result.seconds) << ")";
    for (const auto& [key, value] : result.metrics.items()) line << " | " << key << " " << value.dump();
    if (scorer.is_reporter()) log << line.str() << std::endl;
    results.push_back(std::move(result));
  }
  return results;
}

json results_json(const std::vector<TaskResult>& results) {
  json out{{"results", json::object()}, {"n-samples", json::object()}, {"truncated", json::object()}};
  std::vector<double> acc, acc_norm;
  for (const TaskResult& r : results) {
    json metrics = r.metrics;
    metrics["alias"] = r.task;
    out["results"][r.task] = metrics;
    out["n-samples"][r.task] = {{"effective", r.docs}};
    out["truncated"][r.task] = r.truncated;
    if (r.metrics.contains("acc,none")) {
      acc.push_back(r.metrics["acc,none"].get<double>());
      acc_norm.push_back(r.metrics.value("acc_norm,none", r.metrics["acc,none"].get<double>()));
    }
  }
  json average = json::object();
  if (!acc.empty()) {
    average["acc,none"] = std::accumulate(acc.begin(), acc.end(), 0.0) / static_cast<double>(acc.size());
    average["acc_norm,none"] = std::accumulate(acc_norm.begin(), acc_norm.end(), 0.0) / static_cast<double>(acc_norm.size());
    average["tasks"] = acc.size();
  }
  out["average"] = average;
  return out;
}

std::vector<std::string> parse_task_list(const std::string& text, const char* option) {
  std::vector<std::string> names;
  std::stringstream in(text);
  for (std::string name; std::getline(in, name, ',');) {
    PRORES_CHECK(!name.empty(), option, ": empty task name in '", text, "'");
    names.push_back(name);
  }
  PRORES_CHECK(!names.empty(), option, ": no tasks given");
  return names;
}

}  // namespace prores::eval
