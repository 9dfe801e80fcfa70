// ParallelLayout: how N ranks form a TP × DP × PP grid (Megatron's order: TP fastest, then DP, then PP:
// world rank = tp_rank + TP·(dp_rank + DP·pp_rank)), the sub-communicators of each axis, and which
// global layers this rank's pipeline stage holds. Built once at start-up and passed explicitly.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "parallel/communicator.h"

namespace prores {

struct ParallelConfig {
  int64_t tensor = 1;                    // --tensor-model-parallel-size
  int64_t pipeline = 1;                  // --pipeline-model-parallel-size
  std::vector<int64_t> pipeline_layers;  // --pipeline-layers 8,8,7,7 (empty: as even as possible)
  bool distributed_optimizer = false;    // --use-distributed-optimizer (ZeRO-1 over DP)
  int64_t virtual_stage_layers = 0;      // --num-layers-per-virtual-pipeline-stage (0: no interleaving)
  bool sequence_parallel = false;        // --sequence-parallel (ModelExecution::sequence_parallel)
};

// Parses "8,8,7,7" into layer counts; throws naming --pipeline-layers and the value.
std::vector<int64_t> parse_pipeline_layers(const std::string& text);

// The rank grid without communicators (pure arithmetic; validated).
struct LayoutShape {
  int64_t world = 1, tp = 1, dp = 1, pp = 1;
  int64_t rank = 0, tp_rank = 0, dp_rank = 0, pp_rank = 0;
  int64_t first_layer = 1;    // 1-based global index of this stage's first block
  int64_t num_layers = 0;     // blocks on this stage
  // Virtual stages (Megatron-LM's interleaving, parallel/pipeline_schedule.h): v = L / (PP·n) chunks of n =
  // --num-layers-per-virtual-pipeline-stage blocks per stage; chunk c of stage s holds the global layers of
  // virtual stage c·PP + s, so chunks lie chunk_stride = PP·n layers apart. chunks = 1: one run of blocks.
  int64_t chunks = 1, chunk_stride = 0;
  // Throws prores::Error with the same message on every rank when the layout cannot hold the model:
  // world not divisible by TP·PP; heads, query groups, ffn size or vocabulary not divisible by TP;
  // fewer layers than stages or a --pipeline-layers list that does not sum to L with PP positive entries;
  // global batch not divisible by micro-batch × DP; with virtual stages, PP < 2, --pipeline-layers, L not
  // divisible by PP·n, or micro-batches per pipeline not a multiple of PP; with sequence parallelism, TP < 2 or
  // micro-batch × --seq-length not divisible by TP.
  static LayoutShape compute(int64_t world, int64_t rank, const ParallelConfig& config, const ModelConfig& model,
                             int64_t global_batch, int64_t micro_batch);
  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp - 1; }
  int64_t rank_of(int64_t tp_r, int64_t dp_r, int64_t pp_r) const { return tp_r + tp * (dp_r + dp * pp_r); }
  std::string describe() const;  // "rank 3/8: tp 1/2, dp 1/2, pp 0/2, layers 1-6" ("layers 1-3,7-9", "layers 2,6" with chunks)
};

class ParallelLayout {
 public:
  // Collective over world: validates (identically on every rank) and splits the axis communicators.
  ParallelLayout(Communicator& world, const ParallelConfig& config, const ModelConfig& model, int64_t global_batch,
                 int64_t micro_batch);
  const LayoutShape& shape() const { return shape_; }
  const ParallelConfig& config() const { return config_; }
  Communicator& world() const { return world_; }
  Communicator& tp() const { return *tp_; }     // ranks of one TP group (same dp, pp), ordered by tp_rank
  Communicator& dp() const { return *dp_; }     // same tp, pp; ordered by dp_rank
  Communicator& pp() const { return *pp_; }     // same tp, dp; ordered by pp_rank
  Communicator& model_parallel() const { return *mp_; }  // same dp: all TP × PP ranks of one replica

 private:
  Communicator& world_;
  ParallelConfig config_;
  LayoutShape shape_;
  std::unique_ptr<Communicator> tp_, dp_, pp_, mp_;
};

}  // namespace prores
