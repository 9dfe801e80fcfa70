// End-to-end tests of `prores plan`: it plans every config of configs/ (a training config is accepted as it is),
// lists fitting layouts best first with the model's parameter count in its header, writes CSV, sweeps node
// counts, and refuses a layout that does not divide, a model that fits nowhere and nonsense cluster values with
// exit status 1 and one line naming the option or value.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace {

using namespace prores::test;
namespace fs = std::filesystem;

std::string config(const std::string& name) { return std::string(PRORES_SOURCE_DIR) + "/configs/" + name; }

int count_lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST(PlanCli, EveryConfigPlans) {
  for (const auto& entry : fs::directory_iterator(std::string(PRORES_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".ini") continue;
    // The tokenizers some configs name are built by the quick start and the depth study: without one the
    // vocabulary is the config's --vocab-size.
    const RunResult r = run("plan --config " + entry.path().string() + " --tokenizer-model '' --bf16 --top 1");
    EXPECT_EQ(r.exit_code, 0) << entry.path() << ": " << r.err;
    EXPECT_NE(r.out.find("prores plan: "), std::string::npos) << entry.path();
  }
}

TEST(PlanCli, SevenBillionOnANodeListsFittingLayoutsBestFirst) {
  const RunResult r = run("plan --config " + config("llama_7b.ini") + " --bf16 --nodes 1 --top 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("6.74B parameters (32 layers, hidden 4096"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cluster: 8 GPU(s) per node, 80 GB each"), std::string::npos) << r.out;
  std::istringstream lines(r.out);
  std::vector<double> steps, totals;
  for (std::string line; std::getline(lines, line);) {
    if (line.size() < 6 || line.substr(0, 5) != "    1") continue;
    std::vector<std::string> fields;
    std::istringstream words(line);
    for (std::string w; words >> w;) fields.push_back(w);
    ASSERT_EQ(fields.size(), 31u) << line;
    totals.push_back(std::stod(fields[19]));
    steps.push_back(std::stod(fields[28]));
  }
  ASSERT_EQ(steps.size(), 4u) << r.out;
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_LE(totals[i], 80.0);
    if (i > 0) EXPECT_LE(steps[i - 1], steps[i]);
  }
}

TEST(PlanCli, CsvAndANodeSweep) {
  const RunResult r = run("plan --config " + config("llama_7b.ini") + " --bf16 --nodes 1-2,8,9 --top 2 --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("nodes,gpus,tp,pp,dp,virtual_stages,recompute_layers,zero1,", 0), 0u) << r.out;
  // 9 nodes: no TP x PP x DP of 72 GPUs divides the batch (DP must divide 512 / 4): no rows.
  EXPECT_EQ(count_lines(r.out), 1 + 3 * 2) << r.out;
  for (const char* nodes : {"\n1,8,", "\n2,16,", "\n8,64,"})
    EXPECT_NE(r.out.find(nodes), std::string::npos) << nodes << " in " << r.out;
}

// A node count where nothing fits gets a note in the table; only when no node count fits is it an error.
TEST(PlanCli, NodeCountsThatFitNothingAreNoted) {
  const RunResult r = run("plan --config " + config("llama_7b.ini") + " --bf16 --nodes 1,4 --top 1 "
                          "--tensor-model-parallel-size 8 --pipeline-model-parallel-size 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("    1  --tensor-model-parallel-size 8 x --pipeline-model-parallel-size 2 does not divide "
                       "the 8 GPUs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n    4    32   8   2    2 "), std::string::npos) << r.out;
}

TEST(PlanCli, BadInputIsOneLineNamingTheOption) {
  const std::string seven = "plan --config " + config("llama_7b.ini") + " --bf16 ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {seven + "--tensor-model-parallel-size 3",
       "--num-attention-heads 32 is not divisible by --tensor-model-parallel-size 3"},
      {seven + "--tensor-model-parallel-size 16", "--tensor-model-parallel-size 16 does not divide --gpus-per-node 8"},
      {seven + "--pipeline-model-parallel-size 3",
       "--num-layers 32 is not divisible by --pipeline-model-parallel-size 3"},
      {seven + "--num-layers-per-virtual-pipeline-stage 3", "--num-layers-per-virtual-pipeline-stage 3"},
      {seven + "--gpu-memory 10", "no layout of the 8 GPUs fits --gpu-memory 10 GB: the smallest"},
      {seven + "--gpu-memory 10 --nodes 1,2", "no layout fits on any of --nodes 1,2"},
      {seven + "--nodes 0", "--nodes: '0' in '0' is not a positive node count"},
      {seven + "--nodes 4-2", "--nodes: '4-2'"},
      {seven + "--nodes two", "--nodes: 'two'"},
      {seven + "--gpus-per-node 0", "--gpus-per-node must be at least 1, got 0"},
      {seven + "--gpu-memory=-80", "--gpu-memory must be a positive number of GB, got -80"},
      {seven + "--peak-tflops=-1", "--peak-tflops must be positive, got -1"},
      {seven + "--intra-node-bw 0", "--intra-node-bw must be a positive number of GB/s, got 0"},
      {seven + "--inter-node-bw nan", "--inter-node-bw must be a positive number of GB/s, got nan"},
      {seven + "--reserved-memory 90", "--reserved-memory must be >= 0 GB and below --gpu-memory 80 GB, got 90"},
      {seven + "--top 0", "--top must be at least 1, got 0"},
      {seven + "--format xml", "--format must be table or csv, got 'xml'"},
      {seven + "--device tpu", "--device must be cuda or cpu, got 'tpu'"},
      {seven + "--num-layer 4", "plan: unknown option '--num-layer'"},
  };
  for (const auto& [args, message] : cases) {
    const RunResult r = run(args);
    EXPECT_EQ(r.exit_code, 1) << args << ": " << r.out << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << args << ": " << r.err;
    EXPECT_EQ(r.out, "") << args;
  }
}

}  // namespace
