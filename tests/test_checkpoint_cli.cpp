// Checkpoints end to end through `prores`: a resumed run repeats the uninterrupted one bit for bit; a
// checkpoint written under TP = 2 × PP = 2 continues under TP = 1 × PP = 1 and TP = 1 × PP = 2, loaded
// directly or through `prores convert`, with the losses of the unresharded run (and a checkpoint of virtual
// stages resumes on its layout and in one process); SIGUSR1 on one rank makes
// every rank save and exit 0, and the same command relaunched (a requeued job) resumes from --save bit for
// bit; SIGKILL of a rank while it saves every iteration leaves a loadable `latest`; damaged or mismatched
// checkpoints give clear errors while the previous checkpoint stays `latest`; and `prores eval` of a
// checkpoint, on its layout or another, reproduces the validation loss its run logged.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "io/checkpoint.h"

namespace {

using namespace prores::test;

// iteration → loss of a run's metrics.jsonl (losses are written with round-trip precision).
std::map<int, double> losses(const fs::path& log_dir) {
  std::map<int, double> out;
  std::istringstream lines(read_file(log_dir / "metrics.jsonl"));
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"loss\"") != std::string::npos)
      out[static_cast<int>(number_after(line, "iter"))] = number_after(line, "loss");
  return out;
}

std::string tiny(int layers, int iters, int micro_batch = 2) {
  return std::string(" train --config ") + PRORES_SOURCE_DIR + "/configs/tiny.ini --data-path " + corpus() +
         " --num-layers " + std::to_string(layers) + " --train-iters " + std::to_string(iters) +
         " --log-interval 1 --eval-interval 0 --lr-warmup-iters 2 --global-batch-size 8 --micro-batch-size " +
         std::to_string(micro_batch);
}

fs::path dir(const std::string& name) { return work_dir().path() / "ckpt" / name; }

// In fp32 and with --bf16 (whose state is the same f32 weights and moments).
TEST(Checkpoint, ResumeIsBitExact) {
  for (const auto& [name, flags] : {std::pair<std::string, std::string>{"fp32", ""}, {"bf16", " --bf16"}}) {
    SCOPED_TRACE(name);
    const fs::path full_dir = dir("full_" + name), resumed_dir = dir("resumed_" + name);
    ASSERT_EQ(run(tiny(2, 20) + flags + " --save " + full_dir.string()).exit_code, 0);
    const RunResult first = run(tiny(2, 20) + flags + " --save " + resumed_dir.string() + " --exit-interval 10");
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_TRUE(fs::exists(resumed_dir / "iter_0000010"));
    const RunResult second =
        run(tiny(2, 20) + flags + " --save " + resumed_dir.string() + " --load " + resumed_dir.string());
    ASSERT_EQ(second.exit_code, 0) << second.err;
    const auto full = losses(full_dir), resumed = losses(resumed_dir);
    for (int i = 1; i <= 20; ++i) {
      ASSERT_TRUE(resumed.count(i)) << i;
      EXPECT_EQ(resumed.at(i), full.at(i)) << "iteration " << i;
    }
  }
}

TEST(Checkpoint, MismatchedOrDamagedCheckpointsFailClearly) {
  const fs::path good = dir("damaged");
  ASSERT_EQ(run(tiny(2, 4) + " --save " + good.string() + " --save-interval 2").exit_code, 0);
  // A save killed half way leaves a .tmp directory; `latest` still names the last complete checkpoint.
  fs::create_directories(good / "iter_0000006.tmp");
  std::ofstream(good / "iter_0000006.tmp" / "model_tp00_pp000.h5") << "partial";
  EXPECT_EQ(read_file(good / "latest").find('4'), 0u);
  RunResult r = run(tiny(2, 6) + " --load " + good.string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("resumed from " + good.string() + " at iteration 4"), std::string::npos) << r.out;

  r = run(tiny(2, 6) + " --hidden-size 64 --load " + good.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--hidden-size 64 disagrees with checkpoint " + (good / "iter_0000004").string() +
                       ", which records --hidden-size 32"), std::string::npos) << r.err;

  const fs::path file = good / "iter_0000004" / "model_tp00_pp000.h5";
  const auto size = fs::file_size(file);
  fs::resize_file(file, size / 2);
  r = run(tiny(2, 6) + " --load " + (good / "iter_0000004").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model_tp00_pp000.h5"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  fs::remove(good / "iter_0000002" / "model_tp00_pp000.h5");
  r = run(tiny(2, 6) + " --load " + (good / "iter_0000002").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("iter_0000002"), std::string::npos) << r.err;

  r = run(tiny(2, 6) + " --load " + (work_dir().path() / "no_such_checkpoint").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--load"), std::string::npos) << r.err;
}

#if defined(PRORES_MPIEXEC)
// One rank process (not mpirun) of the job saving to `save`: their command lines start with the binary. 0: none.
int rank_pid(const fs::path& save) {
  const RunResult pids = run_shell("pgrep -f '^" + std::string(PRORES_BINARY) + " train.*" + save.string() + "'");
  std::istringstream ids(pids.out);
  int pid = 0;
  return ids >> pid ? pid : 0;
}


// A checkpoint written with virtual stages (interleaved 1F1B: stage 0 holds blocks 1 and 3) resumes bit for bit on
// its layout, and continues in one process with the losses of the uninterrupted run.
TEST(Checkpoint, VirtualStageCheckpointsResumeAndReshard) {
  const std::string virtual_stages = " --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1";
  ASSERT_EQ(run_shell(mpirun(2) + tiny(4, 12) + virtual_stages + " --save " + dir("v_ref").string()).exit_code, 0);
  ASSERT_EQ(run_shell(mpirun(2) + tiny(4, 12) + virtual_stages + " --save " + dir("v_a").string() +
                      " --exit-interval 10").exit_code, 0);
  RunResult r = run_shell(mpirun(2) + tiny(4, 12) + virtual_stages + " --save " + dir("v_a").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run(tiny(4, 12) + " --load " + dir("v_a").string() + "/iter_0000010 --save " + dir("v_b").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ref = losses(dir("v_ref")), resumed = losses(dir("v_a")), one = losses(dir("v_b"));
  for (int i : {11, 12}) {
    EXPECT_EQ(resumed.at(i), ref.at(i)) << "iteration " << i;
    EXPECT_NEAR(one.at(i), ref.at(i), 1e-5 * ref.at(i)) << "iteration " << i;
  }
}

TEST(Checkpoint, ReshardingContinuesTheRun) {
  const std::string tp2pp2 = " --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2";
  ASSERT_EQ(run_shell(mpirun(4) + tiny(4, 12) + tp2pp2 + " --save " + dir("ref").string()).exit_code, 0);
  ASSERT_EQ(run_shell(mpirun(4) + tiny(4, 12) + tp2pp2 + " --save " + dir("a").string() + " --exit-interval 10")
                .exit_code, 0);
  // Direct loads: TP 2 × PP 2 → TP 1 × PP 1 (one iteration) → TP 1 × PP 2.
  RunResult r = run(tiny(4, 12) + " --load " + dir("a").string() + " --save " + dir("b").string() +
                    " --exit-interval 11");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_shell(mpirun(2) + tiny(4, 12) + " --pipeline-model-parallel-size 2 --load " + dir("b").string() +
                " --save " + dir("c").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Offline: convert TP 2 × PP 2 → TP 1 × PP 1 → TP 1 × PP 2, then continue under TP 1 × PP 2.
  ASSERT_EQ(run("convert --load " + dir("a").string() + " --save " + dir("conv1").string()).exit_code, 0);
  ASSERT_EQ(run("convert --load " + dir("conv1").string() + " --save " + dir("conv2").string() +
                " --pipeline-model-parallel-size 2").exit_code, 0);
  EXPECT_TRUE(fs::exists(dir("conv2") / "iter_0000010" / "model_tp00_pp001.h5"));
  r = run_shell(mpirun(2) + tiny(4, 12) + " --pipeline-model-parallel-size 2 --load " + dir("conv2").string() +
                " --save " + dir("d").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ref = losses(dir("ref")), b = losses(dir("b")), c = losses(dir("c")), d = losses(dir("d"));
  EXPECT_NEAR(b.at(11), ref.at(11), 1e-5 * ref.at(11));
  EXPECT_NEAR(c.at(12), ref.at(12), 1e-5 * ref.at(12));
  EXPECT_NEAR(d.at(11), ref.at(11), 1e-5 * ref.at(11));
  EXPECT_NEAR(d.at(12), ref.at(12), 1e-5 * ref.at(12));
}

// The number after "key " in a line of text (0 when missing, with a test failure).
double printed_number(const std::string& text, const std::string& key) {
  const size_t pos = text.find(key + " ");
  EXPECT_NE(pos, std::string::npos) << key << " missing in " << text;
  return pos == std::string::npos ? 0 : std::stod(text.substr(pos + key.size() + 1));
}

// `prores eval` of a checkpoint reproduces the validation loss its training run logged at that iteration, on
// the layout that saved it (TP 2 x PP 2) and on one rank, with the ProRes schedule the checkpoint records
// (another one given is an error), and reports the test split's, printed in full precision and written by
// --results-json; without --load, or without validation samples, it fails with one line.
TEST(Checkpoint, EvalReproducesTheLoggedValidationLoss) {
  const std::string tp2pp2 = " --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2";
  std::string trained = tiny(4, 10);
  trained.replace(trained.find(" --eval-interval 0"), 18, " --eval-interval 10 --eval-iters 3");
  const std::string evaluated = " eval" + trained.substr(6);  // " train ..." → " eval ..."
  ASSERT_EQ(run_shell(mpirun(4) + trained + tp2pp2 + " --save " + dir("eval").string()).exit_code, 0);
  double logged = 0;
  std::istringstream lines(read_file(dir("eval") / "metrics.jsonl"));
  for (std::string line; std::getline(lines, line);)
    if (line.find("\"val_loss\"") != std::string::npos) logged = number_after(line, "val_loss");
  ASSERT_GT(logged, 0);
  const fs::path results = work_dir().path() / "eval_results" / "tp2pp2.json";
  const RunResult same =
      run_shell(mpirun(4) + evaluated + tp2pp2 + " --load " + dir("eval").string() + " --results-json " + results.string());
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_DOUBLE_EQ(printed_number(same.out, "val_loss"), logged) << same.out;  // printed in full precision
  EXPECT_EQ(printed_number(same.out, "eval of iter"), 10);
  const double test_loss = printed_number(same.out, "test_loss");
  EXPECT_GT(test_loss, 0);
  EXPECT_DOUBLE_EQ(printed_number(same.out, "val_ppl"), std::exp(logged)) << same.out;
  const nlohmann::json doc = nlohmann::json::parse(read_file(results));
  EXPECT_EQ(doc["checkpoint"], (dir("eval") / "iter_0000010").string());
  EXPECT_EQ(doc["iteration"], 10);
  EXPECT_EQ(doc["split"], "969,30,1");
  EXPECT_EQ(doc["tokens_per_split"], 3 * 8 * 32);  // --eval-iters 3 global batches of 8 sequences of 32 tokens
  EXPECT_EQ(doc["alpha"], nlohmann::json({1.0, 1.0, 2.0 / 3.0, 0.5}));  // linear, W = 20, T = 5: min(10 / 5l, 1)
  EXPECT_DOUBLE_EQ(doc["valid"]["loss"].get<double>(), logged);
  EXPECT_DOUBLE_EQ(doc["valid"]["perplexity"].get<double>(), std::exp(logged));
  EXPECT_DOUBLE_EQ(doc["test"]["loss"].get<double>(), test_loss);
  const RunResult one = run(evaluated + " --load " + dir("eval").string());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NEAR(printed_number(one.out, "val_loss"), logged, 1e-5 * logged);
  const RunResult other_schedule = run(evaluated + " --load " + dir("eval").string() + " --prores-warmup-steps 4000");
  EXPECT_EQ(other_schedule.exit_code, 1);
  EXPECT_NE(other_schedule.err.find("--prores-warmup-steps 4000 disagrees with checkpoint"), std::string::npos)
      << other_schedule.err;
  const RunResult missing = run(evaluated);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("prores eval needs --load"), std::string::npos) << missing.err;
  const RunResult no_valid = run(evaluated + " --load " + dir("eval").string() + " --split 100,0,0");
  EXPECT_NE(no_valid.exit_code, 0);
  EXPECT_NE(no_valid.err.find("prores eval: --split 100,0,0 leaves no validation samples"), std::string::npos)
      << no_valid.err;
}

TEST(Checkpoint, ResumeUnderTp2Pp2IsBitExactAndZeroShardsReshard) {
  const std::string tp2pp2 = " --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2";
  ASSERT_EQ(run_shell(mpirun(4) + tiny(4, 8) + tp2pp2 + " --save " + dir("p_full").string()).exit_code, 0);
  ASSERT_EQ(run_shell(mpirun(4) + tiny(4, 8) + tp2pp2 + " --save " + dir("p_res").string() + " --exit-interval 4")
                .exit_code, 0);
  ASSERT_EQ(run_shell(mpirun(4) + tiny(4, 8) + tp2pp2 + " --save " + dir("p_res").string() + " --load " +
                      dir("p_res").string()).exit_code, 0);
  const auto full = losses(dir("p_full")), resumed = losses(dir("p_res"));
  for (int i = 5; i <= 8; ++i) EXPECT_EQ(resumed.at(i), full.at(i)) << "iteration " << i;
  // ZeRO-1 optimizer shards written by DP = 2 load into DP = 1 and reproduce the run.
  ASSERT_EQ(run_shell(mpirun(2) + tiny(4, 8, 1) + " --use-distributed-optimizer --save " + dir("z").string() +
                      " --exit-interval 4").exit_code, 0);
  EXPECT_TRUE(fs::exists(dir("z") / "iter_0000004" / "optim_tp00_pp000_dp001.h5"));
  ASSERT_EQ(run(tiny(4, 8) + " --load " + dir("z").string() + " --save " + dir("z1").string()).exit_code, 0);
  const auto z1 = losses(dir("z1"));
  for (int i = 5; i <= 8; ++i) EXPECT_NEAR(z1.at(i), full.at(i), 1e-5 * full.at(i)) << "iteration " << i;
}

TEST(Checkpoint, SignalOnOneRankSavesEverywhereAndExitsZero) {
  const fs::path save = dir("preempted");
  const std::string command = mpirun(2) + tiny(2, 100000) + " --pipeline-model-parallel-size 2 --save " + save.string();
  int exit_code = -1;
  std::thread job([&] { exit_code = run_shell("timeout 300 " + command).exit_code; });
  const fs::path metrics = save / "metrics.jsonl";
  for (int i = 0; i < 600 && (!fs::exists(metrics) || fs::file_size(metrics) == 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int pid = rank_pid(save);
  ASSERT_GT(pid, 0) << "no rank process found";
  ::kill(pid, SIGUSR1);
  job.join();
  EXPECT_EQ(exit_code, 0);
  ASSERT_TRUE(fs::exists(save / "latest"));
  const int iteration = std::stoi(read_file(save / "latest"));
  EXPECT_GT(iteration, 0);
  EXPECT_LT(iteration, 100000);
  EXPECT_TRUE(fs::exists(save / prores::io::iteration_dir_name(iteration) / "model_tp00_pp001.h5"));
}

// The cycle of a preempted SLURM job (launch/slurm.sbatch): the scheduler's signal makes the run save and exit 0,
// and the requeued job, the same command line without --load, resumes from --save and repeats the uninterrupted
// run's losses bit for bit. A relaunch that would change the saved model says how to start afresh.
TEST(Checkpoint, PreemptedJobRelaunchedUnchangedContinuesBitwise) {
  const int iters = 600;
  const std::string job = mpirun(2) + tiny(2, iters) + " --pipeline-model-parallel-size 2 --save-interval 0 --save ";
  const fs::path full = dir("requeue_full"), save = dir("requeued");
  ASSERT_EQ(run_shell(job + full.string()).exit_code, 0);
  RunResult first;
  std::thread running([&] { first = run_shell("timeout 300 " + job + save.string()); });
  const fs::path metrics = save / "metrics.jsonl";
  for (int i = 0; i < 3000 && (!fs::exists(metrics) || losses(save).size() < 3); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const int pid = rank_pid(save);
  ASSERT_GT(pid, 0) << "no rank process found";
  ::kill(pid, SIGUSR1);
  running.join();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const int stopped_at = std::stoi(read_file(save / "latest"));
  ASSERT_LT(stopped_at, iters) << "the run ended before the signal arrived";

  const RunResult changed = run_shell(job + save.string() + " --num-layers 4");
  EXPECT_NE(changed.exit_code, 0);
  EXPECT_NE(changed.err.find("give another --save to start afresh"), std::string::npos) << changed.err;

  const RunResult requeued = run_shell(job + save.string());
  ASSERT_EQ(requeued.exit_code, 0) << requeued.err;
  EXPECT_NE(requeued.out.find("--load defaults to --save " + save.string()), std::string::npos) << requeued.out;
  EXPECT_NE(requeued.out.find("at iteration " + std::to_string(stopped_at)), std::string::npos) << requeued.out;
  const auto want = losses(full), got = losses(save);
  for (int i = 1; i <= iters; ++i) {
    ASSERT_TRUE(got.count(i)) << i;
    EXPECT_EQ(got.at(i), want.at(i)) << "iteration " << i;
  }
}

TEST(Checkpoint, KillNineDuringSavesLeavesALoadableLatest) {
  // Saving every iteration, one rank is killed with SIGKILL at some point of the run (often inside a
  // save): whatever it interrupted, `latest` must name a complete checkpoint that a new run loads.
  const fs::path save = dir("killed");
  const std::string command = mpirun(2) + tiny(4, 100000) + " --pipeline-model-parallel-size 2 --save-interval 1" +
                              " --keep-last 2 --save " + save.string();
  std::thread job([&] { run_shell("timeout 300 " + command); });
  for (int i = 0; i < 600 && !fs::exists(save / "latest"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  const int pid = rank_pid(save);
  ASSERT_GT(pid, 0) << "no rank process found";
  ::kill(pid, SIGKILL);
  job.join();
  ASSERT_TRUE(fs::exists(save / "latest"));
  const int iteration = std::stoi(read_file(save / "latest"));
  const RunResult resumed = run(tiny(4, iteration + 1) + " --load " + save.string());
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("at iteration " + std::to_string(iteration)), std::string::npos) << resumed.out;
}

#endif

}  // namespace
