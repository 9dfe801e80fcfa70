// End-to-end tests of the `prores` executable: the tiny config trains 50 steps with its loss falling and
// writes the documented metrics; every configuration error exits non-zero with one line naming the
// option and value. The corpus is generated pseudo-text (cli_test_util.h), so the tests need no data package.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "parallel/gpu_device.h"

namespace {

using namespace prores::test;
namespace fs = std::filesystem;

std::string tiny_args() {
  return std::string("train --config ") + PRORES_SOURCE_DIR + "/configs/tiny.ini --data-path " + corpus();
}

// metrics.jsonl holds train, validation and probe records (docs/diagnostics.md): the per-step losses of the
// train records cover every iteration once, the probe runs at iteration 0 and after the last (--probe-interval
// 100 > 50), and the log line tells the elapsed time and the ETA.
TEST(Cli, TinyConfigTrainsAndLossFalls) {
  const fs::path log_dir = work_dir().path() / "tiny_run";
  const RunResult r = run(tiny_args() + " --log-dir " + log_dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("iter     50/50"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| elapsed "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| ETA 0.0s"), std::string::npos) << r.out;
  std::istringstream lines(read_file(log_dir / "metrics.jsonl"));
  std::vector<double> losses, step_losses, probe_iters;
  int evals = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"val_loss\"") != std::string::npos) {
      EXPECT_NEAR(std::exp(number_after(line, "val_loss")), number_after(line, "val_ppl"), 1e-6);
      ++evals;
      continue;
    }
    if (line.find("\"probe/tokens\"") != std::string::npos) {
      probe_iters.push_back(number_after(line, "iter"));
      EXPECT_EQ(array_after(line, "probe/act_norm").size(), 2u);
      continue;
    }
    for (const char* key : {"iter", "lr", "grad_norm", "tokens_per_sec", "mfu", "skipped_share", "elapsed_s"})
      number_after(line, key);
    EXPECT_NE(line.find("\"alpha\":["), std::string::npos);
    losses.push_back(number_after(line, "loss"));
    const std::vector<double> steps = array_after(line, "step_loss");
    ASSERT_EQ(steps.size(), 10u) << line;
    EXPECT_EQ(steps.back(), losses.back());
    EXPECT_EQ(array_after(line, "step_grad_norm").size(), 10u);
    step_losses.insert(step_losses.end(), steps.begin(), steps.end());
  }
  ASSERT_EQ(losses.size(), 5u);  // --log-interval 10 over 50 iterations
  EXPECT_EQ(step_losses.size(), 50u);
  EXPECT_EQ(evals, 2);           // --eval-interval 25
  EXPECT_EQ(probe_iters, (std::vector<double>{0, 50}));
  EXPECT_LT(losses.back(), losses.front() - 0.8) << "loss did not fall clearly";
  EXPECT_LT(losses.back(), std::log(256.0) - 1.0);
}

// --bf16 trains on the CPU too (bf16 matmuls through oneDNN, or the reference GEMM on rounded operands),
// and says so in the start-up line.
TEST(Cli, Bf16TrainsOnTheCpu) {
  const RunResult r = run(tiny_args() + " --train-iters 20 --bf16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("matmuls bf16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("iter     20/20"), std::string::npos) << r.out;
}

TEST(Cli, ScheduleCommandPrintsCsv) {
  const RunResult r = run("schedule --num-layers 2 --prores-schedule linear --prores-warmup-steps 20 --iters 0,5,10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "iter,layer,alpha\n0,1,0\n0,2,0\n5,1,0.5\n5,2,0.25\n10,1,1\n10,2,0.5\n");
}

struct BadInput {
  std::string args, expected;
};

void PrintTo(const BadInput& b, std::ostream* os) { *os << b.args; }

class CliBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInput, FailsWithOneLineNamingTheOption) {
  const RunResult r = run(tiny_args() + " --train-iters 2 " + GetParam().args);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(GetParam().expected), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("prores: error: ", 0), 0u) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, CliBadInput,
    ::testing::Values(
        BadInput{"--hidden-size 30", "--hidden-size 30 is not divisible by --num-attention-heads 4"},
        BadInput{"--prores-schedule sideways", "--prores-schedule: unknown value 'sideways'"},
        BadInput{"--norm-placement middle", "--norm-placement: unknown value 'middle'"},
        BadInput{"--init-scheme magic", "--init-scheme: unknown value 'magic'"},
        BadInput{"--lr=-0.001", "--lr must be a positive finite number, got -0.001"},
        BadInput{"--lr -1", "--lr must be a positive finite number, got -1"},
        BadInput{"--lr nan", "--lr must be a positive finite number, got nan"},
        BadInput{"--num-query-groups 3", "--num-attention-heads 4 is not divisible by --num-query-groups 3"},
        BadInput{"--global-batch-size 6", "--global-batch-size 6 must be a positive multiple of --micro-batch-size 4"},
        BadInput{"--hidden-size abc", "hidden-size"},
        BadInput{"--no-such-option 1", "unknown option '--no-such-option' in the command line"},
        BadInput{"--device tpu", "--device must be cpu or cuda, got 'tpu'"},
        BadInput{"--attention-backend flash", "--attention-backend flash needs --device cuda"},
        BadInput{"--attention-backend sdpa", "--attention-backend must be auto, flash, cudnn or unfused, got 'sdpa'"},
        BadInput{"--attention-backend cudnn", "--attention-backend cudnn needs --device cuda"},
        BadInput{"--attention-backend cudnn --device cuda",
                 "--attention-backend cudnn needs --bf16 (with bf16 activations)"},
        BadInput{"--recompute-granularity selective", "--recompute-granularity selective is not supported"},
        BadInput{"--recompute-granularity all", "--recompute-granularity must be full, got 'all'"},
        BadInput{"--recompute-granularity full --recompute-method chunk",
                 "--recompute-method must be uniform or block, got 'chunk'"},
        BadInput{"--recompute-granularity full --recompute-num-layers 0",
                 "--recompute-num-layers must be positive, got 0"}));

// Without a usable GPU, --device cuda ends every rank with one line and exit status 1 (no hang), with the
// default attention and with cuDNN's. The line names the host when the build has CUDA, the missing support
// otherwise.
TEST(Cli, DeviceCudaWithoutGpuIsAnErrorOnEveryRank) {
  if (prores::cuda_available()) GTEST_SKIP() << "this machine has a GPU";
  std::vector<std::string> launchers = {PRORES_BINARY};
#if defined(PRORES_MPIEXEC)
  launchers.push_back(std::string(PRORES_MPIEXEC) + " --allow-run-as-root --oversubscribe -np 2 " + PRORES_BINARY);
#endif
  for (const std::string& launcher : launchers) {
    for (const std::string device : {"--device cuda", "--device cuda --bf16 --attention-backend cudnn"}) {
      const RunResult r = run_shell(launcher + " " + tiny_args() + " --train-iters 10 " + device);
      EXPECT_EQ(r.exit_code, 1) << launcher << " " << device << ": " << r.err;
      size_t error_lines = 0;
      for (size_t at = r.err.find("prores: error:"); at != std::string::npos;
           at = r.err.find("prores: error:", at + 1))
        ++error_lines;
      EXPECT_EQ(error_lines, launcher == PRORES_BINARY ? 1u : 2u) << r.err;
      EXPECT_TRUE(r.err.find("prores: error: --device cuda: no CUDA device is visible on host") != std::string::npos ||
                  r.err.find("prores: error: --device cuda: this build has no CUDA support") != std::string::npos ||
                  r.err.find("prores: error: --attention-backend cudnn: this build has no cuDNN attention") !=
                      std::string::npos)
          << r.err;
    }
  }
}

TEST(Cli, UnknownKeyInIniFileIsAnError) {
  const fs::path ini = work_dir().path() / "bad.ini";
  std::ofstream(ini) << "num-layers = 2\nbogus-key = 3\n";
  const RunResult r = run("train --config " + ini.string() + " --data-path " + corpus());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown option 'bogus-key' in the config file '" + ini.string() + "'"), std::string::npos)
      << r.err;
}

// Megatron-LM's argparse habit: an option given twice takes its last value, so launch scripts can append
// overrides; in a config file too.
TEST(Cli, RepeatedOptionTakesItsLastValue) {
  RunResult r = run(tiny_args() + " --train-iters 2 --eval-interval 0 --lr-warmup-iters 1 --train-iters 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("done: 3 iterations"), std::string::npos) << r.out;
  const fs::path ini = work_dir().path() / "repeated.ini";
  std::ofstream(ini) << "num-layers = 2\ntrain-iters = 5\neval-interval = 0\ntrain-iters = 2\n";
  r = run("train --config " + ini.string() + " --data-path " + corpus());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("done: 2 iterations"), std::string::npos) << r.out;
}

// [section] headers only group the keys of an INI file; an unknown key under one is still an error.
TEST(Cli, IniSectionsOnlyGroupKeys) {
  const fs::path ini = work_dir().path() / "sections.ini";
  std::ofstream(ini) << "[model]\nnum-layers = 3\nhidden-size = 32\n\n[training]\ntrain-iters = 2\n"
                        "eval-interval = 0\n";
  RunResult r = run("train --config " + ini.string() + " --data-path " + corpus());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("num-layers 3, hidden-size 32,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("done: 2 iterations"), std::string::npos) << r.out;
  std::ofstream(ini) << "[model]\nnum-layer = 3\n";
  r = run("train --config " + ini.string() + " --data-path " + corpus());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown option 'num-layer' in the config file '" + ini.string() + "'"), std::string::npos)
      << r.err;
}

TEST(Cli, MissingDataFileIsAnError) {
  const RunResult r = run(std::string("train --config ") + PRORES_SOURCE_DIR +
                          "/configs/tiny.ini --data-path /nonexistent/corpus.txt");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--data-path: cannot open '/nonexistent/corpus.txt'"), std::string::npos) << r.err;
}

TEST(Cli, MissingConfigFileIsAnError) {
  const RunResult r = run("train --config /nonexistent.ini");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--config: cannot open '/nonexistent.ini'"), std::string::npos) << r.err;
}

TEST(Cli, UnknownCommandIsAnError) {
  const RunResult r = run("frobnicate");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos);
}

}  // namespace
