// The launch planner's model (train/launch_plan.h) against hand-computed values and the code it models: parameter
// counts against ParamTable, the arena bytes against a constructed Model's allocated_bytes, the memory pieces,
// in-flight micro-batches against the 1F1B schedule, the bubble, the communication volumes, the step-time model
// against the measured single-GPU throughput of docs/gpu.md, the refusals of layouts that do not divide, and the
// order of the search.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/check.h"
#include "model/model.h"
#include "model/param_table.h"
#include "parallel/pipeline_schedule.h"
#include "train/launch_plan.h"
#include "train/trainer.h"

namespace {

using namespace prores;
using namespace prores::train;

// L 2, C 64, F 128, NH 4 (HS 16), T 32, V 256.
ModelConfig small_model() {
  ModelConfig m;
  m.num_layers = 2;
  m.hidden_size = 64;
  m.ffn_hidden_size = 128;
  m.num_attention_heads = 4;
  m.seq_length = 32;
  m.vocab_size = 256;
  return m;
}

TrainConfig cpu_run(int64_t micro, int64_t global) {
  TrainConfig run;
  run.micro_batch_size = micro;
  run.global_batch_size = global;
  run.device = Device::CPU;
  return run;
}

Cluster cpu_cluster(int64_t ranks) {
  Cluster c;
  c.gpus_per_node = ranks;
  c.memory_bytes = 1e12;
  c.peak_flops = 0.442e12;
  c.reserved_bytes = 0;
  return c;
}

std::string refusal(const ModelConfig& m, const TrainConfig& run, const PlanLayout& l, const Cluster& c) {
  try {
    check_layout(m, run, l, c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchPlan, ParameterCountsByHand) {
  const ModelConfig m = small_model();
  // Per block: norms 2·64, q|k|v 3·64·64 = 12288, o 4096, gate|up|down 3·128·64 = 24576: 41088.
  // Embedding and LM head 256·64 = 16384 each, final norm 64.
  EXPECT_EQ(stage_parameters(m, 1, 2, true, true), 2 * 41088 + 16384 + 16384 + 64);
  // TP 2 halves every matrix (the vocabulary rows too), not the norms: 128 + 20480 per block.
  EXPECT_EQ(stage_parameters(m, 2, 1, true, false), 128 + 20480 + 8192);
  EXPECT_EQ(stage_parameters(m, 2, 1, false, true), 128 + 20480 + 64 + 8192);
  EXPECT_EQ(matmul_parameters(m), 2 * 40960 + 16384);
  EXPECT_EQ(model_flops_per_token(m, matmul_parameters(m)), 6.0 * (2 * 40960 + 16384) + 12.0 * 2 * 64 * 32);
}

TEST(LaunchPlan, ParameterCountsMatchTheParamTable) {
  ModelConfig gqa = small_model();
  gqa.num_layers = 6;
  gqa.num_attention_heads = 8;
  gqa.num_query_groups = 2;
  ModelConfig sandwich = gqa;
  sandwich.norm_placement = NormPlacement::Sandwich;
  for (const ModelConfig& m : {small_model(), gqa, sandwich}) {
    EXPECT_EQ(matmul_parameters(m), ParamTable(m).matmul_numel());
    EXPECT_DOUBLE_EQ(3 * block_forward_flops(m), block_flops_per_token(m));
    for (int64_t tp : {1, 2})
      for (const ModelShard& shard :
           {ModelShard{tp, 0, 1, m.num_layers, true, true}, ModelShard{tp, tp - 1, 1, 1, true, false},
            ModelShard{tp, 0, 2, 1, false, false}, ModelShard{tp, tp - 1, 2, 1, false, true}})
        EXPECT_EQ(stage_parameters(m, tp, shard.num_layers, shard.first_stage, shard.last_stage),
                  ParamTable(m, shard).total_numel())
            << "tp " << tp << " layers " << shard.first_layer << "+" << shard.num_layers;
  }
}

// A tensor-parallel group that only has a size: enough to construct a rank's Model, refusing any communication.
class SizeOnlyGroup final : public Communicator {
 public:
  SizeOnlyGroup(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "size-only"; }
  void all_reduce(const Tensor&, ReduceOp) override { refuse(); }
  std::unique_ptr<CommRequest> all_reduce_async(const Tensor&, ReduceOp) override { refuse(); }
  void reduce_scatter(const Tensor&, const Tensor&) override { refuse(); }
  void all_gather(const Tensor&, const Tensor&) override { refuse(); }
  void broadcast(const Tensor&, int) override { refuse(); }
  void send(const Tensor&, int, int) override { refuse(); }
  void recv(const Tensor&, int, int) override { refuse(); }
  void barrier() override { refuse(); }
  std::unique_ptr<Communicator> split(int, int) const override { refuse(); }

 private:
  [[noreturn]] static void refuse() { PRORES_FAIL("SizeOnlyGroup: no communication in this test"); }
  int rank_, size_;
};

TEST(LaunchPlan, ArenaBytesAreTheModelsAllocation) {
  ModelConfig post = small_model();
  post.norm_placement = NormPlacement::Post;
  post.num_query_groups = 2;
  ModelConfig sandwich = small_model();
  sandwich.norm_placement = NormPlacement::Sandwich;
  struct Case {
    ModelConfig model;
    bool bf16;
    int64_t layers, slots, recompute;
    bool first, last;
  };
  const Case cases[] = {{small_model(), false, 2, 1, 0, true, true}, {small_model(), false, 2, 3, 1, true, false},
                        {small_model(), true, 2, 2, 2, false, true},  {post, false, 2, 2, 0, true, true},
                        {sandwich, true, 1, 1, 0, true, true},       {sandwich, false, 2, 4, 2, false, false}};
  for (const Case& c : cases) {
    TrainConfig run = cpu_run(3, 6);
    run.bf16 = c.bf16;
    const int64_t first_layer = c.first ? 1 : c.model.num_layers - c.layers + 1;
    const Model model(c.model, run.micro_batch_size, DType::F32,
                      ModelShard{1, 0, first_layer, c.layers, c.first, c.last}, nullptr, c.slots,
                      ModelExecution{Device::CPU, AttentionKernel::Unfused,
                                     c.bf16 ? ops::MatmulPrecision::Bf16 : ops::MatmulPrecision::Fp32, true,
                                     c.recompute});
    EXPECT_EQ(model_arena_bytes(c.model, run, 1, c.layers, c.first, c.last, c.slots, c.recompute),
              static_cast<double>(model.allocated_bytes()))
        << norm_placement_name(c.model.norm_placement) << " bf16 " << c.bf16 << " slots " << c.slots << " recompute "
        << c.recompute;
    // One rank of TP 2, with and without sequence parallelism.
    for (bool sp : {false, true}) {
      SizeOnlyGroup tp(1, 2);
      const Model shard(c.model, run.micro_batch_size, DType::F32,
                        ModelShard{2, 1, first_layer, c.layers, c.first, c.last}, &tp, c.slots,
                        ModelExecution{Device::CPU, AttentionKernel::Unfused,
                                       c.bf16 ? ops::MatmulPrecision::Bf16 : ops::MatmulPrecision::Fp32, true,
                                       c.recompute, true, false, sp});
      EXPECT_EQ(model_arena_bytes(c.model, run, 2, c.layers, c.first, c.last, c.slots, c.recompute, sp),
                static_cast<double>(shard.allocated_bytes()))
          << norm_placement_name(c.model.norm_placement) << " TP 2, sequence parallel " << sp << ", bf16 " << c.bf16
          << " slots " << c.slots << " recompute " << c.recompute;
    }
  }
}

TEST(LaunchPlan, MemoryPiecesByHand) {
  const ModelConfig m = small_model();
  const TrainConfig run = cpu_run(2, 16);
  // DP 4 with ZeRO-1 on 4 CPU ranks: P = 115008 fp32 parameters and gradients; the moments of the
  // 28752-element shard; the padded buffer of 4 shards; the initial weights' host vector (P floats).
  const LayoutPlan zero = plan_layout(m, run, PlanLayout{1, 1, 4, 1, 0, true}, cpu_cluster(4));
  const double P = 115008;
  EXPECT_EQ(zero.memory.parameters, P * 4);  // 460032 bytes: a multiple of 256
  EXPECT_EQ(zero.memory.gradients, P * 4);
  EXPECT_EQ(zero.memory.optimizer, 2 * 115200.0);  // 28752 · 4 = 115008 bytes each, in 450 slots of 256
  EXPECT_EQ(zero.memory.communication, P * 4);
  EXPECT_EQ(zero.memory.other, P * 4);
  EXPECT_EQ(zero.micro_batches, 2);
  EXPECT_EQ(zero.memory.micro_batches_in_flight, 1);
  // One slot (N = 64 tokens, C = 64): per block f_in 2 · 16 KiB, rstd 2 · 256 (rounded), mid 16 KiB, q|k|v
  // 3 · 16 KiB, probabilities 2·4·32·32·4 = 32 KiB, attention output 16 KiB, gate|up 64 KiB, SwiGLU 32 KiB;
  // tokens and targets 256 each; the residual stream 3 · 16 KiB; the last stage's logits 64 KiB, losses and
  // rstd 256 each, cross-entropy statistics 1 KiB, final norm output 16 KiB.
  const double block = 2 * 16384 + 2 * 256 + 16384 + 3 * 16384 + 32768 + 16384 + 65536 + 32768;
  EXPECT_EQ(zero.memory.activations_per_micro_batch,
            2 * block + 2 * 256 + 3 * 16384 + 65536 + 2 * 256 + 1024 + 16384);
  EXPECT_DOUBLE_EQ(zero.memory.total(), zero.memory.parameters + zero.memory.gradients + zero.memory.optimizer +
                                            zero.memory.activations_per_micro_batch + zero.memory.activation_working +
                                            zero.memory.communication + zero.memory.other);
  // Without ZeRO-1 the moments are the stage's and there is no padded buffer; on a GPU the reserved memory
  // replaces the host copy, and --bf16 adds the bf16 weight copy.
  TrainConfig gpu = run;
  gpu.device = Device::CUDA;
  gpu.bf16 = true;
  Cluster c = cpu_cluster(4);
  c.reserved_bytes = 2e9;
  const LayoutPlan plain = plan_layout(m, gpu, PlanLayout{1, 1, 4, 1, 0, false}, c);
  EXPECT_EQ(plain.memory.optimizer, 2 * P * 4);
  EXPECT_EQ(plain.memory.communication, 0);
  EXPECT_EQ(plain.memory.other, 2e9);
  EXPECT_EQ(plain.memory.parameters, P * 4 + std::ceil(P * 2 / 256) * 256);
}

TEST(LaunchPlan, InFlightMicroBatchesFollowTheSchedule) {
  ModelConfig m = small_model();
  m.num_layers = 8;
  for (int64_t pp : {2, 4, 8})
    for (int64_t global : {2, 4, 16}) {  // micro-batch 1, DP 1: M = global
      const LayoutPlan plan = plan_layout(m, cpu_run(1, global), PlanLayout{1, pp, 1, 1, 0, false}, cpu_cluster(pp));
      ASSERT_EQ(plan.memory.stage, 0) << "pp " << pp << " M " << global;  // the most slots and the embedding
      EXPECT_EQ(plan.memory.micro_batches_in_flight, max_in_flight(one_f_one_b(pp, global)[0]));
    }
  // Interleaved: v times the most slots any chunk of the stage keeps alive in the schedule TrainStep runs, one
  // chunk's blocks each; at least Megatron-LM's count of chunk forwards alive at once.
  for (int64_t pp : {2, 4, 8})
    for (int64_t v : {2, 3, 4})
      for (int64_t micro : {pp, 2 * pp, 4 * pp}) {
        const PipelineSchedule schedule = interleaved_one_f_one_b(pp, v, micro);
        for (int64_t s = 0; s < pp; ++s) {
          const auto& actions = schedule[static_cast<size_t>(s)];
          int64_t live = 0, alive = 0, per_chunk = 0;
          for (const PipelineAction& a : actions) {
            if (a.kind == PipelineAction::Forward) alive = std::max(alive, ++live);
            if (a.kind == PipelineAction::Backward) --live;
          }
          for (int64_t c = 0; c < v; ++c) per_chunk = std::max(per_chunk, max_in_flight(actions, c));
          EXPECT_EQ(micro_batches_in_flight(pp, s, micro, v), v * per_chunk)
              << "p " << pp << " v " << v << " m " << micro;
          EXPECT_GE(v * per_chunk, alive);
        }
      }
}

TEST(LaunchPlan, Bubble) {
  EXPECT_EQ(pipeline_bubble(1, 8, 1), 0);
  EXPECT_DOUBLE_EQ(pipeline_bubble(4, 8, 1), 3.0 / 11);
  EXPECT_DOUBLE_EQ(pipeline_bubble(4, 8, 2), 3.0 / 19);
  for (int64_t pp : {2, 4, 8})
    for (int64_t m : {1, 4, 32}) EXPECT_DOUBLE_EQ(pipeline_bubble(pp, m, 1), bubble_fraction_ideal(pp, m));
}

TEST(LaunchPlan, CommunicationVolumesByHand) {
  const ModelConfig m = small_model();
  const double activation = 2 * 32 * 64 * 4;  // N · C f32 per micro-batch of 2
  // TP 2: per micro-batch 4 all-reduces per block, the embedding's and the LM head's, each 2·(2 − 1)/2 of the
  // tensor; M = 8 micro-batches.
  const LayoutPlan tp = plan_layout(m, cpu_run(2, 16), PlanLayout{2, 1, 1, 1, 0, false}, cpu_cluster(2));
  EXPECT_DOUBLE_EQ(tp.comm.tp, 8 * (4 * 2 + 2) * activation);
  // Recomputation reruns the forward's two all-reduces per block.
  const LayoutPlan rc = plan_layout(m, cpu_run(2, 16), PlanLayout{2, 1, 1, 1, 2, false}, cpu_cluster(2));
  EXPECT_DOUBLE_EQ(rc.comm.tp, 8 * (6 * 2 + 2) * activation);
  // PP 2: each stage sends one tensor per micro-batch (activations forward, gradients backward).
  const LayoutPlan pp = plan_layout(m, cpu_run(2, 16), PlanLayout{1, 2, 1, 1, 0, false}, cpu_cluster(2));
  EXPECT_DOUBLE_EQ(pp.comm.pp, 8 * activation);
  EXPECT_EQ(pp.comm.tp, 0);
  // Sequence parallelism, in all-reduces' worth: 5 per block (the backward gathers each branch input again), the
  // embedding's 1 and the head's 1.5; the pipeline sends each TP rank's half of the stream.
  const LayoutPlan sp = plan_layout(m, cpu_run(2, 16), PlanLayout{2, 1, 1, 1, 0, false, true}, cpu_cluster(2));
  EXPECT_DOUBLE_EQ(sp.comm.tp, 8 * (5 * 2 + 2.5) * activation);
  const LayoutPlan tp_pp_sp = plan_layout(m, cpu_run(2, 16), PlanLayout{2, 2, 1, 1, 0, false, true}, cpu_cluster(4));
  EXPECT_DOUBLE_EQ(tp_pp_sp.comm.pp, 8 * activation / 2);
  // DP 4: the gradients' all-reduce, 2·3/4 of 4P bytes; ZeRO-1 reduce-scatters and all-gathers the padded buffer.
  const double P = 115008;
  EXPECT_DOUBLE_EQ(plan_layout(m, cpu_run(2, 16), PlanLayout{1, 1, 4, 1, 0, false}, cpu_cluster(4)).comm.dp,
                   1.5 * 4 * P);
  EXPECT_DOUBLE_EQ(plan_layout(m, cpu_run(2, 16), PlanLayout{1, 1, 4, 1, 0, true}, cpu_cluster(4)).comm.dp,
                   1.5 * 4 * P);
}

// docs/gpu.md, "Training throughput": bench_train_step at seq 1024, micro-batch 8, bf16 with flash attention on one
// H200 (989 TFLOP/s by 6N + 12LCT): 350M 103,338 tokens/s, the calibration point; 1B (ffn 5461) 23,928.
TEST(LaunchPlan, StepTimeAgainstTheMeasuredGpuThroughput) {
  TrainConfig run;
  run.micro_batch_size = run.global_batch_size = 8;
  run.device = Device::CUDA;
  run.bf16 = true;
  Cluster one;
  one.gpus_per_node = 1;
  ModelConfig m350;
  m350.num_layers = 24;
  m350.hidden_size = 1024;
  m350.ffn_hidden_size = 2736;
  m350.num_attention_heads = 16;
  m350.seq_length = 1024;
  m350.vocab_size = 32000;
  const LayoutPlan p350 = plan_layout(m350, run, PlanLayout{}, one);
  EXPECT_NEAR(p350.time.tokens_per_second / 103338, 1.0, 0.01);
  EXPECT_NEAR(p350.time.mfu, 0.242, 0.001);
  ModelConfig m1b = m350;
  m1b.hidden_size = 2048;
  m1b.ffn_hidden_size = 5461;
  m1b.num_attention_heads = 32;
  // The 1B measurement ran with rows of 10,922 bytes (ffn 5461), too misaligned for the fast GEMMs: the plan,
  // which has one efficiency for every shape, is 22 % above it.
  const double ratio = plan_layout(m1b, run, PlanLayout{}, one).time.tokens_per_second / 23928;
  EXPECT_GT(ratio, 1.15);
  EXPECT_LT(ratio, 1.25);
}

TEST(LaunchPlan, RecomputationCostsAForwardOfTheBlocks) {
  const ModelConfig m = small_model();
  const TrainConfig run = cpu_run(2, 2);
  const LayoutPlan kept = plan_layout(m, run, PlanLayout{}, cpu_cluster(1));
  const LayoutPlan recomputed = plan_layout(m, run, PlanLayout{1, 1, 1, 1, 2, false}, cpu_cluster(1));
  const double blocks = 2 * block_forward_flops(m), head = 2.0 * 256 * 64;
  EXPECT_NEAR(recomputed.time.compute / kept.time.compute, (3 * (blocks + head) + blocks) / (3 * (blocks + head)),
              1e-12);
  EXPECT_LT(recomputed.memory.total(), kept.memory.total());
  EXPECT_EQ(recomputed.memory.micro_batches_in_flight, 1);
}

TEST(LaunchPlan, RefusesLayoutsThatDoNotDivide) {
  ModelConfig m = small_model();
  m.num_layers = 8;
  const TrainConfig run = cpu_run(2, 16);
  Cluster node = cpu_cluster(8);
  EXPECT_NE(refusal(m, run, PlanLayout{3, 1, 1}, node).find("--num-attention-heads 4 is not divisible by "
                                                          "--tensor-model-parallel-size 3"), std::string::npos);
  Cluster two = cpu_cluster(2);
  two.nodes = 4;
  EXPECT_NE(refusal(m, run, PlanLayout{4, 1, 2}, two).find("--tensor-model-parallel-size 4 does not divide "
                                                         "--gpus-per-node 2"), std::string::npos);
  EXPECT_NE(refusal(m, run, PlanLayout{1, 3, 1}, cpu_cluster(3)).find("--num-layers 8 is not divisible by "
                                                                    "--pipeline-model-parallel-size 3"),
            std::string::npos);
  Cluster three = node;
  three.nodes = 3;
  EXPECT_NE(refusal(m, run, PlanLayout{4, 4, 1}, three).find("does not divide the 24 GPUs of --nodes 3 x "
                                                           "--gpus-per-node 8"), std::string::npos);
  EXPECT_NE(refusal(m, cpu_run(2, 6), PlanLayout{1, 1, 8}, node).find("--global-batch-size 6 is not divisible"),
            std::string::npos);
  EXPECT_NE(refusal(m, run, PlanLayout{1, 4, 2, 4}, node).find("not divisible by --pipeline-model-parallel-size 4 x 4"),
            std::string::npos);
  // Interleaving needs the micro-batches per pipeline (8 / (2 · 4) = 1) to be a multiple of PP.
  EXPECT_NE(refusal(m, cpu_run(2, 8), PlanLayout{1, 2, 4, 2}, node).find("not a multiple of "
                                                                        "--pipeline-model-parallel-size 2"),
            std::string::npos);
  EXPECT_EQ(refusal(m, run, PlanLayout{2, 2, 2, 2}, node), "");
  // Sequence parallelism needs TP > 1.
  EXPECT_NE(refusal(m, run, PlanLayout{1, 2, 4, 1, 0, false, true}, node).find("--sequence-parallel needs "
                                                                              "--tensor-model-parallel-size of at "
                                                                              "least 2, got 1"),
            std::string::npos);
  EXPECT_EQ(refusal(m, run, PlanLayout{2, 2, 2, 2, 0, false, true}, node), "");
}

TEST(LaunchPlan, SearchListsDividingLayoutsFastestFirst) {
  ModelConfig m = small_model();
  m.num_layers = 4;
  const TrainConfig run = cpu_run(1, 16);
  Cluster c = cpu_cluster(4);
  c.nodes = 2;
  const LayoutSearch all = search_layouts(m, run, c, LayoutChoices{});
  ASSERT_FALSE(all.layouts.empty());
  for (size_t i = 0; i < all.layouts.size(); ++i) {
    const PlanLayout& l = all.layouts[i].layout;
    EXPECT_EQ(refusal(m, run, l, c), "") << l.describe();
    EXPECT_EQ(l.tp * l.pp * l.dp, 8);
    if (i > 0) EXPECT_LE(all.layouts[i - 1].time.step, all.layouts[i].time.step);
  }
  // Every combination once: TP 1, 2, 4 × PP 1, 2, 4 (TP · PP dividing 8), v = 2 where PP = 2 (and M a multiple of 2),
  // with and without recomputation, with and without ZeRO-1 where DP > 1, with and without sequence parallelism
  // where TP > 1: TP 1 PP 1, 2, 4: 4 + 8 + 4; TP 2: 2 · (4 + 8 + 2); TP 4 PP 1, 2: 2 · (4 + 4).
  EXPECT_EQ(all.layouts.size(), 4u + 8 + 4 + 2 * (4 + 8 + 2) + 2 * (4 + 4));
  // Fixed choices restrict the search; a fixed TP that does not divide says why.
  const LayoutSearch tp2 = search_layouts(m, run, c, LayoutChoices{2, 2, 0, 0, 1, 1});
  ASSERT_EQ(tp2.layouts.size(), 2u);  // v 1 and 2
  for (const LayoutPlan& p : tp2.layouts) {
    EXPECT_EQ(p.layout.tp, 2);
    EXPECT_EQ(p.layout.pp, 2);
    EXPECT_TRUE(p.layout.distributed_optimizer);
    EXPECT_TRUE(p.layout.sequence_parallel);
    EXPECT_EQ(p.layout.recompute_layers, 0);
  }
  const LayoutSearch tp3 = search_layouts(m, run, c, LayoutChoices{3});
  EXPECT_TRUE(tp3.layouts.empty());
  EXPECT_NE(tp3.refusal.find("--num-attention-heads 4 is not divisible by --tensor-model-parallel-size 3"),
            std::string::npos);
  // Memory decides what fits: the same search on 100 kB per rank lists the layouts, none fitting.
  c.memory_bytes = 1e5;
  for (const LayoutPlan& p : search_layouts(m, run, c, LayoutChoices{}).layouts) EXPECT_FALSE(p.fits);
}

}  // namespace
