// Parallel layouts against the single-process run, end to end through `mpirun prores train`: on the
// tiny model (4 layers, ProRes linear, 4 micro-batches per DP rank) the loss and gradient norm of each
// of the first 10 iterations under TP, PP, DP, their products, ZeRO-1 and PP with recomputed blocks equal
// the single-process values within 1e-5 relative (3.7e-8 measured), and so does the activations' RMS per
// block where the layout keeps the micro-batches, and every probe-batch norm (at iteration 0 and 10), also with
// virtual stages (interleaved 1F1B: 2 and 4 chunks per stage, 2 and 4 stages, with TP, DP, ZeRO-1 and
// recomputation, on 4 and 8 blocks) and with sequence parallelism (TP alone and with PP, DP, ZeRO-1,
// recomputation and virtual stages, under every norm placement); with --bf16, TP x PP (also sequence-parallel) and
// TP x DP with
// ZeRO-1 equal the single-process bf16 run within 1e-4 (the rounding to bf16 of partial sums taken in another
// order: 4.0e-5 measured, while the fp32 run is 4.6e-4 away); and a layout that cannot hold the model fails on
// every rank with the same message, without hanging. Measured on the generated corpus (cli_test_util.h).
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "train_test_util.h"

namespace {

using namespace prores::test;

#if defined(PRORES_MPIEXEC)

struct Layout {
  std::string name;
  int ranks;
  std::string flags;  // TP / PP / ZeRO flags and the micro-batch size that gives 4 micro-batches per DP rank
};

std::string common_args(const std::string& log_dir, int layers = 4) {
  return std::string(" train --config ") + PRORES_SOURCE_DIR + "/configs/tiny.ini --data-path " + corpus() +
         " --num-layers " + std::to_string(layers) + " --global-batch-size 8 --train-iters 10 --log-interval 1 " +
         "--eval-interval 0 --log-dir " + log_dir;
}

// The probe-batch norms of a run (docs/diagnostics.md), one list per key, the records in iteration order.
const std::vector<std::string> kProbeKeys = {"probe/act_norm", "probe/attn_branch_norm", "probe/attn_branch_scaled_norm",
                                             "probe/mlp_branch_norm", "probe/mlp_branch_scaled_norm"};

struct LayoutRun {
  Trace trace;
  std::vector<double> act_rms;  // of the last iteration
  std::vector<std::vector<double>> probes;  // per probe record, kProbeKeys' arrays one after another
};

LayoutRun run_layout(const Layout& layout, int layers = 4) {
  const std::string log_dir = (work_dir().path() / layout.name).string();
  const RunResult r = run_shell(mpirun(layout.ranks) + common_args(log_dir, layers) + " " + layout.flags);
  EXPECT_EQ(r.exit_code, 0) << layout.name << ": " << r.out << r.err;
  LayoutRun run;
  std::istringstream lines(read_file(fs::path(log_dir) / "metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"probe/tokens\"") != std::string::npos) {
      std::vector<double>& probe = run.probes.emplace_back();
      for (const std::string& key : kProbeKeys)
        for (double v : array_after(line, key)) probe.push_back(v);
      continue;
    }
    run.trace.loss.push_back(number_after(line, "loss"));
    run.trace.grad_norm.push_back(number_after(line, "grad_norm"));
    run.act_rms = array_after(line, "act_rms");
  }
  return run;
}

// Every layout's loss, gradient norm, probe norms and (with micro-batches of 2) activation RMS per block against
// the single-process run of the same depth.
void expect_layouts_reproduce(const LayoutRun& reference, const std::vector<Layout>& layouts, int layers) {
  const size_t L = static_cast<size_t>(layers);
  for (const Layout& layout : layouts) {
    const LayoutRun run = run_layout(layout, layers);
    expect_tracks(run.trace, reference.trace, 1e-5, layout.name.c_str());
    // The probe batch is the same samples in every layout, whatever the micro-batch and DP split.
    ASSERT_EQ(run.probes.size(), reference.probes.size()) << layout.name;
    for (size_t p = 0; p < run.probes.size(); ++p) {
      ASSERT_EQ(run.probes[p].size(), reference.probes[p].size()) << layout.name;
      for (size_t i = 0; i < run.probes[p].size(); ++i)
        EXPECT_NEAR(run.probes[p][i], reference.probes[p][i], 1e-5 * std::abs(reference.probes[p][i]))
            << layout.name << " probe " << p << " " << kProbeKeys[i / L] << " block " << i % L;
    }
    // The activations' RMS per block, of the same last micro-batch where the layout keeps micro-batches of 2.
    if (layout.flags.find("--micro-batch-size 2") == std::string::npos) continue;
    ASSERT_EQ(run.act_rms.size(), reference.act_rms.size()) << layout.name;
    for (size_t l = 0; l < run.act_rms.size(); ++l)
      EXPECT_NEAR(run.act_rms[l], reference.act_rms[l], 1e-5 * reference.act_rms[l]) << layout.name << " block " << l;
  }
}

TEST(LayoutEquivalence, EveryLayoutReproducesTheSingleProcessRun) {
  const LayoutRun reference = run_layout({"single", 1, "--micro-batch-size 2"});
  ASSERT_EQ(reference.trace.loss.size(), 10u);
  ASSERT_EQ(reference.act_rms.size(), 4u);
  ASSERT_EQ(reference.probes.size(), 2u);  // at iteration 0 and after the last
  ASSERT_EQ(reference.probes[0].size(), 4 * kProbeKeys.size());
  expect_layouts_reproduce(reference, {
      {"tp2", 2, "--micro-batch-size 2 --tensor-model-parallel-size 2"},
      {"pp2", 2, "--micro-batch-size 2 --pipeline-model-parallel-size 2"},
      {"pp2_uneven", 2, "--micro-batch-size 2 --pipeline-model-parallel-size 2 --pipeline-layers 3,1"},
      {"pp2_recompute", 2,
       "--micro-batch-size 2 --pipeline-model-parallel-size 2 --recompute-granularity full --recompute-method block"},
      {"dp2", 2, "--micro-batch-size 1"},
      {"tp2_pp2", 4, "--micro-batch-size 2 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2"},
      {"pp4", 4, "--micro-batch-size 2 --pipeline-model-parallel-size 4"},
      {"tp2_dp2", 4, "--micro-batch-size 1 --tensor-model-parallel-size 2"},
      {"pp2_dp2", 4, "--micro-batch-size 1 --pipeline-model-parallel-size 2"},
      {"tp2_dp2_zero1", 4, "--micro-batch-size 1 --tensor-model-parallel-size 2 --use-distributed-optimizer"},
      // Interleaved 1F1B: 2 stages of 2 chunks of one block (stage 0 holds blocks 1 and 3).
      {"pp2_v2", 2, "--micro-batch-size 2 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1"},
      {"pp2_v2_recompute", 2, "--micro-batch-size 2 --pipeline-model-parallel-size 2 "
                              "--num-layers-per-virtual-pipeline-stage 1 --recompute-granularity full"},
      {"tp2_pp2_v2", 4, "--micro-batch-size 2 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 "
                        "--num-layers-per-virtual-pipeline-stage 1"},
      {"pp2_dp2_v2", 4,
       "--micro-batch-size 1 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1"},
      {"pp2_dp2_v2_zero1", 4, "--micro-batch-size 1 --pipeline-model-parallel-size 2 "
                              "--num-layers-per-virtual-pipeline-stage 1 --use-distributed-optimizer"},
  }, 4);
}

// Interleaved 1F1B on 8 blocks: more chunks per stage, and more stages, than 4 blocks allow.
TEST(LayoutEquivalence, VirtualStagesReproduceTheSingleProcessRun) {
  const LayoutRun reference = run_layout({"single_8", 1, "--micro-batch-size 2"}, 8);
  ASSERT_EQ(reference.act_rms.size(), 8u);
  expect_layouts_reproduce(reference, {
      {"pp2_v4", 2, "--micro-batch-size 2 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1"},
      {"pp2_v2_n2", 2,
       "--micro-batch-size 2 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 2"},
      {"pp4_v2", 4, "--micro-batch-size 2 --pipeline-model-parallel-size 4 --num-layers-per-virtual-pipeline-stage 1"},
  }, 8);
}

// Sequence parallelism: the norms, residual adds and the stream between blocks and stages on this TP rank's rows.
TEST(LayoutEquivalence, SequenceParallelLayoutsReproduceTheSingleProcessRun) {
  const LayoutRun reference = run_layout({"single_sp", 1, "--micro-batch-size 2"});
  expect_layouts_reproduce(reference, {
      {"tp2_sp", 2, "--micro-batch-size 2 --tensor-model-parallel-size 2 --sequence-parallel"},
      {"tp2_sp_recompute", 2,
       "--micro-batch-size 2 --tensor-model-parallel-size 2 --sequence-parallel --recompute-granularity full"},
      {"tp2_pp2_sp", 4,
       "--micro-batch-size 2 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --sequence-parallel"},
      {"tp2_dp2_sp_zero1", 4, "--micro-batch-size 1 --tensor-model-parallel-size 2 --sequence-parallel "
                              "--use-distributed-optimizer"},
      {"tp2_pp2_v2_sp", 4, "--micro-batch-size 2 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 "
                           "--num-layers-per-virtual-pipeline-stage 1 --sequence-parallel"},
  }, 4);
}

// Every norm placement's norms (input, output and post norms; DeepNorm's scaled residual) under sequence
// parallelism, through the pipeline and the recomputed blocks.
TEST(LayoutEquivalence, SequenceParallelReproducesEveryNormPlacement) {
  for (const std::string placement : {"post", "sandwich", "deepnorm"}) {
    const std::string model =
        "--norm-placement " + placement + (placement == "deepnorm" ? " --init-scheme deepnorm" : "");
    const LayoutRun reference = run_layout({"single_" + placement, 1, "--micro-batch-size 2 " + model});
    expect_layouts_reproduce(reference, {
        {"tp2_pp2_sp_recompute_" + placement, 4,
         "--micro-batch-size 2 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --sequence-parallel "
         "--recompute-granularity full " + model},
    }, 4);
  }
}

TEST(LayoutEquivalence, Bf16LayoutsReproduceTheSingleProcessBf16Run) {
  const Trace reference = run_layout({"single_bf16", 1, "--micro-batch-size 2 --bf16"}).trace;
  ASSERT_EQ(reference.loss.size(), 10u);
  const std::vector<Layout> layouts = {
      {"tp2_pp2_bf16", 4, "--micro-batch-size 2 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --bf16"},
      {"tp2_dp2_zero1_bf16", 4,
       "--micro-batch-size 1 --tensor-model-parallel-size 2 --use-distributed-optimizer --bf16"},
      {"tp2_pp2_sp_bf16", 4, "--micro-batch-size 2 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 "
                             "--sequence-parallel --bf16"},
  };
  for (const Layout& layout : layouts) expect_tracks(run_layout(layout).trace, reference, 1e-4, layout.name.c_str());
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// The depth at the extreme: 120 blocks over 4 stages of 3 chunks of 10 (the tiny width).
TEST(LayoutEquivalence, HundredTwentyLayersOnFourStagesOfThreeChunks) {
  const LayoutRun reference = run_layout({"single_120", 1, "--micro-batch-size 2 --probe-interval 0"}, 120);
  ASSERT_EQ(reference.act_rms.size(), 120u);
  const LayoutRun run = run_layout({"pp4_v3_120", 4,
                                    "--micro-batch-size 2 --probe-interval 0 --pipeline-model-parallel-size 4 "
                                    "--num-layers-per-virtual-pipeline-stage 10"},
                                   120);
  expect_tracks(run.trace, reference.trace, 1e-5, "pp4_v3_120");
  ASSERT_EQ(run.act_rms.size(), 120u);
  for (size_t l = 0; l < 120; ++l) EXPECT_NEAR(run.act_rms[l], reference.act_rms[l], 1e-5 * reference.act_rms[l]) << l;
}

TEST(LayoutEquivalence, WrongLayoutsFailOnEveryRankWithoutHanging) {
  struct Case {
    int ranks;
    std::string flags, message;
  };
  const std::vector<Case> cases = {
      {3, "--tensor-model-parallel-size 2", "does not divide the world size 3"},
      {4, "--pipeline-model-parallel-size 4 --num-layers 2", "--pipeline-model-parallel-size 4 exceeds --num-layers 2"},
      {2, "--pipeline-model-parallel-size 2 --num-layers 6 --num-layers-per-virtual-pipeline-stage 2",
       "--num-layers 6 is not divisible by --pipeline-model-parallel-size 2 × "
       "--num-layers-per-virtual-pipeline-stage 2"},
      {2, "--pipeline-model-parallel-size 2 --num-layers 4 --num-layers-per-virtual-pipeline-stage 1 "
          "--global-batch-size 6 --micro-batch-size 2",
       "the 3 micro-batches per pipeline"},
      {2, "--pipeline-model-parallel-size 2 --num-layers 4 --num-layers-per-virtual-pipeline-stage 1 "
          "--pipeline-layers 3,1",
       "--num-layers-per-virtual-pipeline-stage and --pipeline-layers exclude each other"},
      {2, "--num-layers 4 --num-layers-per-virtual-pipeline-stage 1",
       "--num-layers-per-virtual-pipeline-stage needs --pipeline-model-parallel-size of at least 2"},
      {2, "--sequence-parallel", "--sequence-parallel needs --tensor-model-parallel-size of at least 2, got 1"},
      {4, "--tensor-model-parallel-size 4 --num-query-groups 4 --seq-length 30 --micro-batch-size 1 "
          "--sequence-parallel",
       "the 30 tokens of a micro-batch (--micro-batch-size 1 × --seq-length 30) are not divisible by "
       "--tensor-model-parallel-size 4"},
  };
  for (const Case& c : cases) {
    const RunResult r = run_shell("timeout 120 " + mpirun(c.ranks) + " train --config " + PRORES_SOURCE_DIR +
                                  "/configs/tiny.ini --data-path " + corpus() + " " + c.flags);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.exit_code, 124) << "timed out: a rank hung";
    EXPECT_EQ(count(r.err, "prores: error: "), static_cast<size_t>(c.ranks)) << r.err;
    EXPECT_EQ(count(r.err, c.message), static_cast<size_t>(c.ranks)) << r.err;
  }
}

#else

TEST(LayoutEquivalence, NeedsMpi) { GTEST_SKIP() << "built without MPI (PRORES_WITH_MPI=OFF)"; }

#endif

}  // namespace
