// End-to-end tests of `prores eval --tasks`, `prores train --eval-tasks` and `prores generate` on a tiny
// byte-level checkpoint and task files made here: every batching and every TP × PP × DP layout gives the same
// per-request scores; training logs task scores to metrics.jsonl; bad task names, missing data and malformed
// lines are one-line errors; generation with the key/value cache gives the tokens of recomputing the prefix, and
// sampling is reproducible from its seed.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace {

using namespace prores::test;
using nlohmann::json;

// A 30-step tiny byte-level checkpoint (seq 32), trained once.
const std::string& checkpoint() {
  static const std::string dir = [] {
    const std::string path = (work_dir().path() / "eval_ckpt").string();
    const RunResult r = run(std::string("train --config ") + PRORES_SOURCE_DIR + "/configs/tiny.ini --data-path " +
                            corpus() + " --train-iters 30 --eval-interval 0 --save " + path);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path;
  }();
  return dir;
}

std::string random_words(std::mt19937& rng, int n) {
  static const std::vector<std::string> words = {"warm", "up", "the", "deep", "layers", "slowly", "and", "shallow",
                                                 "ones", "first", "residual", "branch"};
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? " " : "") + words[rng() % words.size()];
  return s;
}

// Task files of each kind: multiple choice with 2 to 4 choices (some contexts longer than the model's 32
// positions, some ending in whitespace) and a target task. (Rolling windows start from a BOS or EOS token, which
// a byte-level model has not: they are tested on a SentencePiece model in test_interop_lm_eval.)
const std::string& task_dir() {
  static const std::string dir = [] {
    const std::string path = (work_dir().path() / "tasks").string();
    std::filesystem::create_directories(path);
    std::mt19937 rng(31);
    std::ofstream mc(path + "/mc.jsonl");
    mc << R"({"prores_eval_task": 1, "task": "mc", "kind": "multiple_choice", "split": "test", "metrics": ["acc", "acc_norm"], "num_docs": 30})" << "\n";
    for (int d = 0; d < 30; ++d) {
      const std::string context = "Question: " + random_words(rng, 1 + rng() % 12) + (d % 3 == 0 ? "\nAnswer: " : "\nAnswer:");
      json doc{{"doc_id", d}, {"requests", json::array()}, {"gold", rng() % 2}, {"choice_chars", json::array()}};
      for (int c = 0, n = 2 + rng() % 3; c < n; ++c) {
        const std::string choice = random_words(rng, 1 + rng() % 4);
        doc["requests"].push_back({context, " " + choice});
        doc["choice_chars"].push_back(choice.size());
      }
      mc << doc.dump() << "\n";
    }
    std::ofstream target(path + "/target.jsonl");
    target << R"({"prores_eval_task": 1, "task": "target", "kind": "target", "metrics": ["acc", "perplexity"], "num_docs": 10})" << "\n";
    for (int d = 0; d < 10; ++d)
      target << json{{"doc_id", d},
                     {"requests", json::array({json::array({random_words(rng, 2 + rng() % 8), " " + random_words(rng, 1)})})}}
                        .dump()
             << "\n";
    return path;
  }();
  return dir;
}

std::string tasks_arg() {
  return " --tasks " + task_dir() + "/mc.jsonl," + task_dir() + "/target.jsonl";
}

// Every request's [loglikelihood, is_greedy] per task, from --samples-dir.
std::map<std::string, std::vector<json>> samples(const std::string& dir) {
  std::map<std::string, std::vector<json>> out;
  for (const char* task : {"mc", "target"}) {
    std::ifstream in(dir + "/" + task + ".jsonl");
    for (std::string line; std::getline(in, line);) out[task].push_back(json::parse(line)["resps"]);
    EXPECT_FALSE(out[task].empty()) << task;
  }
  return out;
}

void expect_same_scores(const std::map<std::string, std::vector<json>>& a, const std::map<std::string, std::vector<json>>& b,
                        double tolerance, const std::string& what) {
  for (const auto& [task, docs] : a) {
    ASSERT_EQ(docs.size(), b.at(task).size()) << what << " " << task;
    for (size_t d = 0; d < docs.size(); ++d)
      for (size_t i = 0; i < docs[d].size(); ++i) {
        const double x = docs[d][i][0].get<double>(), y = b.at(task)[d][i][0].get<double>();
        ASSERT_NEAR(x, y, tolerance * std::max(1.0, std::fabs(y))) << what << " " << task << " doc " << d << " request " << i;
        EXPECT_EQ(docs[d][i][1], b.at(task)[d][i][1]) << what << " " << task << " doc " << d;
      }
  }
}

json run_tasks(const std::string& launcher, const std::string& name, const std::string& extra) {
  const std::string out = (work_dir().path() / name).string();
  const RunResult r = run_shell(launcher + " eval --load " + checkpoint() + tasks_arg() + " --samples-dir " + out +
                                " --results-json " + out + ".json " + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  std::ifstream in(out + ".json");
  return json::parse(in);
}

TEST(EvalTasks, EveryBatchingAndLayoutGivesTheSameScores) {
  const std::string prores = PRORES_BINARY;
  const json one = run_tasks(prores, "one_by_one", "--micro-batch-size 1 --global-batch-size 1");
  const json batched = run_tasks(prores, "batched", "--micro-batch-size 4 --global-batch-size 8");
  // Accuracies identical; the perplexity within fp32 rounding (other batch shapes sum in another order).
  for (const char* key : {"acc,none", "acc_norm,none"})
    EXPECT_EQ(one["results"]["mc"][key], batched["results"]["mc"][key]) << key;
  EXPECT_EQ(one["results"]["target"]["acc,none"], batched["results"]["target"]["acc,none"]);
  EXPECT_NEAR(one["results"]["target"]["perplexity,none"].get<double>(),
              batched["results"]["target"]["perplexity,none"].get<double>(),
              1e-5 * one["results"]["target"]["perplexity,none"].get<double>());
  EXPECT_GT(one["truncated"]["mc"].get<int64_t>(), 0) << "the task should exercise left-truncation";
  EXPECT_EQ(one["results"]["mc"]["alias"], "mc");
  for (const char* key : {"acc,none", "acc_stderr,none", "acc_norm,none", "acc_norm_stderr,none"})
    EXPECT_TRUE(one["results"]["mc"].contains(key)) << key;
  EXPECT_NEAR(one["average"]["acc,none"].get<double>(),
              (one["results"]["mc"]["acc,none"].get<double>() + one["results"]["target"]["acc,none"].get<double>()) / 2,
              1e-15);
  const auto reference = samples((work_dir().path() / "one_by_one").string());
  expect_same_scores(samples((work_dir().path() / "batched").string()), reference, 1e-5, "micro-batch 4");
#if defined(PRORES_MPIEXEC)
  run_tasks(mpirun(4), "tp2_pp2", "--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 "
                                  "--micro-batch-size 2 --global-batch-size 4");
  expect_same_scores(samples((work_dir().path() / "tp2_pp2").string()), reference, 1e-5, "TP 2 x PP 2");
  // Sequence parallelism at micro-batch 1: every window padded to an even length.
  run_tasks(mpirun(4), "tp2_pp2_sp", "--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 "
                                     "--sequence-parallel --micro-batch-size 1 --global-batch-size 2");
  expect_same_scores(samples((work_dir().path() / "tp2_pp2_sp").string()), reference, 1e-5, "TP 2 x PP 2, SP");
  run_tasks(mpirun(2), "dp2", "--micro-batch-size 2 --global-batch-size 4");
  expect_same_scores(samples((work_dir().path() / "dp2").string()), reference, 1e-5, "DP 2");
#endif
}

TEST(EvalTasks, TrainingLogsTaskScores) {
  const std::string log_dir = (work_dir().path() / "train_tasks").string();
  const RunResult r = run(std::string("train --config ") + PRORES_SOURCE_DIR + "/configs/tiny.ini --data-path " +
                          corpus() + " --train-iters 20 --eval-interval 0 --eval-tasks " + task_dir() + "/mc.jsonl," +
                          task_dir() + "/target.jsonl --eval-tasks-interval 10 --eval-tasks-limit 8 --log-dir " + log_dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(log_dir + "/metrics.jsonl");
  int records = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find("tasks/mc/acc") == std::string::npos) continue;
    ++records;
    const json record = json::parse(line);
    EXPECT_EQ(record["iter"].get<int>(), 10 * records);
    for (const char* key : {"tasks/mc/acc", "tasks/mc/acc_norm", "tasks/target/acc", "tasks/target/perplexity"})
      EXPECT_TRUE(record.contains(key)) << key << " in " << line;
  }
  EXPECT_EQ(records, 2);
}

TEST(EvalTasks, BadTasksAreOneLineErrors) {
  const std::string base = "eval --load " + checkpoint();
  RunResult r = run(base + " --tasks pika");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown task 'pika' (known: lambada_openai, piqa"), std::string::npos) << r.err;
  r = run(base + " --tasks piqa --eval-data-dir " + (work_dir().path() / "no_data").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("piqa.jsonl is missing; make it with: bash launch/eval_tasks.sh"), std::string::npos) << r.err;
  const std::string bad = (work_dir().path() / "bad.jsonl").string();
  std::ofstream(bad) << R"({"prores_eval_task": 1, "task": "bad", "kind": "target", "metrics": ["acc"], "num_docs": 2})"
                     << "\n" << R"({"doc_id": 0, "requests": [["a", " b"]]})" << "\n{\"doc_id\": 1, \"requests\": [[\"a\"]]}\n";
  r = run(base + " --tasks " + bad);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.jsonl:3: each request must be [context, continuation]"), std::string::npos) << r.err;
#if defined(PRORES_MPIEXEC)
  r = run_shell(mpirun(2) + " " + base + " --tasks " + bad);  // every rank fails at set-up, none hangs
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad.jsonl:3"), std::string::npos) << r.err;
#endif
}

json generate(const std::string& args) {
  const std::string out = (work_dir().path() / "generated.json").string();
  const RunResult r = run("generate --load " + checkpoint() + " --output-json " + out + " " + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(out);
  return json::parse(in)["samples"];
}

TEST(Generate, KeyValueCacheGivesTheTokensOfRecomputingThePrefix) {
  const std::string prompts = "--prompt 'warm up the' --prompt 'deep layers slowly' --max-new-tokens 10";
  const json cached = generate(prompts), recomputed = generate(prompts + " --no-kv-cache");
  ASSERT_EQ(cached.size(), 2u);
  for (size_t i = 0; i < cached.size(); ++i) {
    EXPECT_EQ(cached[i]["tokens"], recomputed[i]["tokens"]) << "prompt " << i;
    EXPECT_EQ(cached[i]["tokens"].size(), 10u);
    EXPECT_EQ(cached[i]["finish_reason"], "length");
  }
  // Prompt + new tokens beyond the 32 positions: generation stops at the context.
  const json full = generate("--prompt 'deep layers slowly' --max-new-tokens 100");
  EXPECT_EQ(full[0]["prompt_tokens"].size() + full[0]["tokens"].size(), 33u);
}

TEST(Generate, SamplingIsReproducibleFromItsSeed) {
  const std::string args = "--prompt 'the residual' --max-new-tokens 24 --temperature 1.0 --top-k 20 --top-p 0.9";
  const json a = generate(args + " --seed 5"), b = generate(args + " --seed 5"), c = generate(args + " --seed 6");
  EXPECT_EQ(a[0]["tokens"], b[0]["tokens"]);
  EXPECT_NE(a[0]["tokens"], c[0]["tokens"]);
}

TEST(Generate, BadRequestsAreOneLineErrors) {
  RunResult r = run("generate --load " + checkpoint());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("give --prompt TEXT or --prompt-file FILE"), std::string::npos) << r.err;
  r = run("generate --load " + checkpoint() + " --prompt '" + std::string(40, 'x') + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("40 tokens do not fit the model's context of 32 tokens"), std::string::npos) << r.err;
  r = run("generate --load " + checkpoint() + " --prompt x --top-p 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--top-p must be in (0, 1]"), std::string::npos) << r.err;
}

}  // namespace
