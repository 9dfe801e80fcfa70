// A checkpoint owns its architecture (docs/checkpoints.md): `prores eval` and `prores train --load` of a
// checkpoint whose every model option differs from the defaults take the options left out from the
// checkpoint (eval reproduces the logged validation loss on 1 rank and on TP = 2 × PP = 2; a resumed run
// repeats the uninterrupted one), and each owned option given with another value is a one-line error
// naming the option, both values and the checkpoint directory, on every rank, before any work.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "cli_test_util.h"

namespace {

using namespace prores::test;

// Everything but the defaults: GQA with 6 heads in 2 groups (3 and 1 per TP rank), a padded vocabulary,
// another rotary base and eps, Sandwich-LN with LayerNorm Scaling, linear-sqrt over W = 40, scaled init.
constexpr const char* kModel =
    " --num-layers 4 --hidden-size 48 --ffn-hidden-size 80 --num-attention-heads 6 --num-query-groups 2"
    " --seq-length 32 --vocab-size 384 --rotary-base 50000 --norm-eps 1e-6 --norm-placement sandwich"
    " --layernorm-scaling --init-scheme scaled --init-distribution truncated-normal --init-method-std 0.03"
    " --prores-schedule linear-sqrt"
    " --prores-warmup-steps 40";

// Data, batch and length only: what a run loading the checkpoint gives.
std::string run_options(int iters) {
  return " --data-path " + corpus() + " --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 2" +
         " --train-iters " + std::to_string(iters) + " --log-interval 1 --eval-iters 2";
}

fs::path dir(const std::string& name) { return work_dir().path() / "owned" / name; }

// The checkpoint every test loads: 8 iterations of kModel, validation at iteration 8.
const fs::path& checkpoint() {
  static const fs::path path = [] {
    const fs::path p = dir("model");
    const RunResult r = run("train" + std::string(kModel) + run_options(8) + " --eval-interval 8 --save " + p.string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

double logged_val_loss(const fs::path& log_dir) {
  std::istringstream lines(read_file(log_dir / "metrics.jsonl"));
  double logged = 0;
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"val_loss\"") != std::string::npos) logged = number_after(line, "val_loss");
  return logged;
}

double printed_val_loss(const std::string& out) {
  const size_t pos = out.find("val_loss ");
  EXPECT_NE(pos, std::string::npos) << out;
  return pos == std::string::npos ? 0 : std::stod(out.substr(pos + 9));
}

TEST(CheckpointOwnsModel, EvalTakesTheLeftOutOptionsFromTheCheckpoint) {
  const double logged = logged_val_loss(checkpoint());
  ASSERT_GT(logged, 0);
  const RunResult one = run("eval" + run_options(8) + " --load " + checkpoint().string());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_DOUBLE_EQ(printed_val_loss(one.out), logged) << one.out;
  // The checkpoint's own values may be repeated.
  const RunResult same = run("eval" + std::string(kModel) + run_options(8) + " --load " + checkpoint().string());
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_DOUBLE_EQ(printed_val_loss(same.out), logged) << same.out;
#if defined(PRORES_MPIEXEC)
  const RunResult four = run_shell(mpirun(4) + " eval" + run_options(8) + " --load " + checkpoint().string() +
                                   " --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2");
  ASSERT_EQ(four.exit_code, 0) << four.err;
  EXPECT_NEAR(printed_val_loss(four.out), logged, 1e-5 * logged) << four.out;
#endif
}

TEST(CheckpointOwnsModel, ResumeTakesTheLeftOutOptionsFromTheCheckpoint) {
  const fs::path full = dir("full"), resumed = dir("resumed");
  ASSERT_EQ(run("train" + std::string(kModel) + run_options(10) + " --save " + full.string()).exit_code, 0);
  ASSERT_EQ(run("train" + std::string(kModel) + run_options(10) + " --save " + resumed.string() +
                " --exit-interval 6").exit_code, 0);
  const RunResult r = run("train" + run_options(10) + " --load " + resumed.string() + " --save " + resumed.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("num-layers 4, hidden-size 48, ffn-hidden-size 80, num-attention-heads 6, num-query-groups 2, "
                       "seq-length 32, vocab-size 384, rotary-base 50000, norm-eps 1e-06, norm-placement sandwich, "
                       "init-scheme scaled, init-distribution truncated-normal, init-method-std 0.03, layernorm-scaling true; "
                       "ProRes linear-sqrt (W = 40)"),
            std::string::npos) << r.out;
  std::map<int, double> losses[2];
  for (int k = 0; k < 2; ++k) {
    std::istringstream lines(read_file((k == 0 ? full : resumed) / "metrics.jsonl"));
    for (std::string line; std::getline(lines, line);)
      if (line.find("\"loss\"") != std::string::npos)
        losses[k][static_cast<int>(number_after(line, "iter"))] = number_after(line, "loss");
  }
  for (int i = 7; i <= 10; ++i) {
    ASSERT_TRUE(losses[1].count(i)) << i;
    EXPECT_EQ(losses[1].at(i), losses[0].at(i)) << "iteration " << i;
  }
}

struct Disagreement {
  std::string given;     // command-line words, or "ini:" + a config file's line
  std::string expected;  // the start of the error message
};

void PrintTo(const Disagreement& d, std::ostream* os) { *os << d.given; }

class CheckpointOwnsModelOption : public ::testing::TestWithParam<Disagreement> {};

// The option (or config-file key) that disagrees, as words for the command line.
std::string given_words(const Disagreement& d) {
  if (d.given.rfind("ini:", 0) != 0) return " " + d.given;
  const fs::path ini = work_dir().path() / "owned_override.ini";
  std::ofstream(ini) << "[model]\n" << d.given.substr(4) << "\n";
  return " --config " + ini.string();
}

void expect_one_error_per_rank(const RunResult& r, const std::string& expected, int ranks, const std::string& what) {
  EXPECT_EQ(r.exit_code, 1) << what << ": " << r.out << r.err;
  const std::string line = "prores: error: " + expected + " disagrees with checkpoint " +
                           (checkpoint() / "iter_0000008").string() + ", which records ";
  size_t count = 0;
  for (size_t at = r.err.find(line); at != std::string::npos; at = r.err.find(line, at + 1)) ++count;
  EXPECT_EQ(count, static_cast<size_t>(ranks)) << what << ": " << r.err;
  if (ranks == 1) EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << ": " << r.err;
  EXPECT_EQ(r.out.find("iteration"), std::string::npos) << what << ": work started: " << r.out;
}

TEST_P(CheckpointOwnsModelOption, DisagreeingIsAnErrorOnEveryRankBeforeAnyWork) {
  const Disagreement& d = GetParam();
  const std::string load = " --load " + checkpoint().string() + given_words(d);
  expect_one_error_per_rank(run("eval" + run_options(8) + load), d.expected, 1, "eval, 1 rank");
  expect_one_error_per_rank(run("train" + run_options(12) + load), d.expected, 1, "train --load, 1 rank");
#if defined(PRORES_MPIEXEC)
  expect_one_error_per_rank(run_shell(mpirun(4) + " eval" + run_options(8) + load +
                                      " --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2"),
                            d.expected, 4, "eval, TP 2 x PP 2");
#endif
}

INSTANTIATE_TEST_SUITE_P(
    Options, CheckpointOwnsModelOption,
    ::testing::Values(Disagreement{"--num-layers 2", "--num-layers 2"},
                      Disagreement{"--hidden-size 24", "--hidden-size 24"},
                      Disagreement{"--ffn-hidden-size 64", "--ffn-hidden-size 64"},
                      Disagreement{"--num-attention-heads 12", "--num-attention-heads 12"},
                      Disagreement{"--num-query-groups 6", "--num-query-groups 6"},
                      Disagreement{"--vocab-size 256", "--vocab-size 256"},
                      Disagreement{"--rotary-base 10000", "--rotary-base 10000"},
                      Disagreement{"--norm-eps 1e-5", "--norm-eps 1e-05"},
                      Disagreement{"--norm-placement pre", "--norm-placement pre"},
                      Disagreement{"ini:layernorm-scaling = false", "--layernorm-scaling false"},
                      Disagreement{"--init-scheme normal", "--init-scheme normal"},
                      Disagreement{"--init-method-std 0.02", "--init-method-std 0.02"},
                      Disagreement{"--prores-schedule linear", "--prores-schedule linear"},
                      Disagreement{"--prores-warmup-steps 20", "--prores-warmup-steps 20"},
                      Disagreement{"--prores-steps-per-layer 1000",
                                   "--prores-steps-per-layer 1000 (W = 4000 for 4 layers)"}));

}  // namespace
