// Diagnostics end to end through `prores` (docs/diagnostics.md): a TP = 2 run with --save-iters keeps its early
// checkpoints past --keep-last; `prores analyze` of them gives one similarity.jsonl line per checkpoint, 1 for the
// last, the same numbers in one process and under PP = 2; the probe runs at iteration 0 and after the last when
// its interval exceeds the run; and bad --save-iters, probe sizes, splits and --load are one-line errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace {

using namespace prores::test;

std::string tiny(const std::string& command) {
  return command + " --config " + PRORES_SOURCE_DIR + "/configs/tiny.ini --data-path " + corpus();
}

struct SimilarityLine {
  double iter = 0, final_iter = 0;
  std::vector<double> block_output, attn_branch, mlp_branch;
};

std::vector<SimilarityLine> read_similarity(const fs::path& path) {
  std::vector<SimilarityLine> out;
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);)
    out.push_back({number_after(line, "iter"), number_after(line, "final_iter"),
                   array_after(line, "similarity/block_output"), array_after(line, "similarity/attn_branch"),
                   array_after(line, "similarity/mlp_branch")});
  return out;
}

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

#if defined(PRORES_MPIEXEC)

TEST(Analyze, SimilarityOfEveryCheckpointToTheLastInAnyLayout) {
  const fs::path run_dir = work_dir().path() / "analyzed_run";
  const RunResult trained = run_shell(mpirun(2) + " " + tiny("train") + " --tensor-model-parallel-size 2" +
                                      " --train-iters 30 --save " + run_dir.string() +
                                      " --save-iters 5,10,20 --keep-last 1 --probe-interval 10");
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  for (const char* dir : {"iter_0000005", "iter_0000010", "iter_0000020", "iter_0000030"})
    EXPECT_TRUE(fs::is_directory(run_dir / dir)) << dir << " pruned";

  const RunResult one = run(tiny("analyze") + " --load " + run_dir.string());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("analyze: checkpoint 4/4 (iter 30)"), std::string::npos) << one.out;
  const std::vector<SimilarityLine> lines = read_similarity(run_dir / "similarity.jsonl");
  ASSERT_EQ(lines.size(), 4u);
  const std::vector<double> iters = {5, 10, 20, 30};
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].iter, iters[i]);
    EXPECT_EQ(lines[i].final_iter, 30);
    ASSERT_EQ(lines[i].block_output.size(), 2u);
    for (const std::vector<double>* v : {&lines[i].block_output, &lines[i].attn_branch, &lines[i].mlp_branch})
      for (double x : *v) {
        EXPECT_LE(x, 1.0 + 1e-9);
        EXPECT_GE(x, -1.0 - 1e-9);
      }
  }
  for (double x : lines.back().block_output) EXPECT_NEAR(x, 1.0, 1e-9);
  EXPECT_GT(mean(lines[2].block_output), mean(lines[0].block_output)) << "iteration 20 is nearer the end than 5";

  const fs::path pp_output = work_dir().path() / "similarity_pp2.jsonl";
  const RunResult pp = run_shell(mpirun(2) + " " + tiny("analyze") + " --pipeline-model-parallel-size 2 --load " +
                                 run_dir.string() + " --output " + pp_output.string());
  ASSERT_EQ(pp.exit_code, 0) << pp.err;
  const std::vector<SimilarityLine> pp_lines = read_similarity(pp_output);
  ASSERT_EQ(pp_lines.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i)
    for (size_t l = 0; l < 2; ++l) {
      EXPECT_NEAR(pp_lines[i].block_output[l], lines[i].block_output[l], 1e-5) << "checkpoint " << i;
      EXPECT_NEAR(pp_lines[i].attn_branch[l], lines[i].attn_branch[l], 1e-5) << "checkpoint " << i;
      EXPECT_NEAR(pp_lines[i].mlp_branch[l], lines[i].mlp_branch[l], 1e-5) << "checkpoint " << i;
    }
}

#endif

TEST(Analyze, ProbeIntervalLongerThanTheRunProbesAtTheEnds) {
  const fs::path log_dir = work_dir().path() / "long_probe_interval";
  const RunResult r = run(tiny("train") + " --train-iters 12 --probe-interval 1000 --log-dir " + log_dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("probe at iter 0 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("probe at iter 12 |"), std::string::npos) << r.out;
}

TEST(Analyze, DefaultProbeIsOffWithoutAValidationSplit) {
  const RunResult r = run(tiny("train") + " --train-iters 6 --split 100,0,0 --eval-interval 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("probe: off, --split 100,0,0 leaves no validation samples"), std::string::npos) << r.out;
}

TEST(Analyze, BadInputIsAOneLineError) {
  const fs::path run_dir = work_dir().path() / "two_checkpoints";
  ASSERT_EQ(run(tiny("train") + " --train-iters 6 --save-iters 3 --save " + run_dir.string()).exit_code, 0);
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {tiny("train") + " --save-iters 5,x", "--save-iters: 'x' in '5,x' is not a non-negative integer"},
      {tiny("train") + " --save-iters 10,5", "--save-iters must list increasing positive iterations, got 5 after 10"},
      {tiny("train") + " --probe-samples 3", "--probe-samples 3 must be a positive multiple"},
      {tiny("train") + " --split 100,0,0 --eval-interval 0 --probe-interval 5", "validation split"},
      {tiny("analyze"), "prores analyze needs --load"},
      {tiny("analyze") + " --load " + (run_dir / "iter_0000003").string(), "holds no iteration directories"},
      {tiny("analyze") + " --load " + run_dir.string() + " --probe-samples 1000000", "exceeds the"},
      {tiny("analyze") + " --load " + run_dir.string() + " --output /proc/forbidden/similarity.jsonl",
       "--output: cannot write"},
  };
  for (const Case& c : cases) {
    const RunResult r = run(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.args << "\n" << r.err;
  }
}

}  // namespace
