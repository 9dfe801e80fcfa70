// Launch planning (`prores plan`, docs/parallel.md "Planning a launch"): for a model, a batch and a cluster,
// the TP × PP × DP layouts (× virtual pipeline stages, × full recomputation, × ZeRO-1) that divide, each with
// the memory of its fullest rank as this code allocates it (Model::plan_buffers, AdamW, DistributedOptimizer),
// the pipeline bubble, the bytes each rank communicates per step and an estimated step time and MFU. Pure
// arithmetic: nothing is allocated or run.
//
// The model of a step: every stage's compute at a calibrated share of the peak (achieved_efficiency), the
// tensor-parallel all-reduces on the critical path (f32 (N, C) tensors: this code reduces the residual
// stream's dtype), the pipeline's blocking sends, the 1F1B fill and drain, and the data-parallel reduction:
// bucketed all-reduce overlapped with the last micro-batch's backward, or under ZeRO-1 a reduce-scatter and an
// all-gather after it, both exposed. Ring collectives: 2(n − 1)/n of the bytes over the slowest link of the
// group (NVLink within a node, the network between nodes). Virtual pipeline stages (v > 1, the interleaved
// 1F1B of --num-layers-per-virtual-pipeline-stage): the interleaved bubble, v× the pipeline transfers, and the
// activation slots TrainStep allocates for the chunks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "train/train_config.h"

namespace prores::train {

// The machines of a launch: `nodes` nodes of `gpus_per_node` accelerators (or CPU ranks with --device cpu).
struct Cluster {
  int64_t nodes = 1;
  int64_t gpus_per_node = 8;
  double memory_bytes = 80e9;         // per accelerator (--gpu-memory, GB)
  double peak_flops = 989e12;         // dense bf16 per accelerator (--peak-tflops)
  double intra_node_bandwidth = 450e9;  // bytes/s per accelerator and direction within a node (NVLink)
  double inter_node_bandwidth = 50e9;   // bytes/s per accelerator and direction between nodes (InfiniBand)
  double reserved_bytes = 2e9;        // per accelerator, outside the model's buffers (--reserved-memory)
  int64_t ranks() const { return nodes * gpus_per_node; }
  void validate() const;  // throws prores::Error naming the option of a value that is not positive and finite
};

// One layout. recompute_layers: the blocks of each pipeline stage (of each model chunk when v > 1) that
// recompute their activations (recomputed_layers of --recompute-granularity full).
struct PlanLayout {
  int64_t tp = 1, pp = 1, dp = 1;
  int64_t virtual_stages = 1;  // v model chunks per pipeline rank (interleaved 1F1B)
  int64_t recompute_layers = 0;
  bool distributed_optimizer = false;  // ZeRO-1 over DP
  bool sequence_parallel = false;      // --sequence-parallel (TP > 1)
  std::string describe() const;        // "TP 2 PP 4 DP 8 v 2, recompute 4, ZeRO-1, SP"
};

// The layout options a user fixed (prores plan --tensor-model-parallel-size ...); 0 (sizes) or -1 (switches)
// leaves the dimension to the search.
struct LayoutChoices {
  int64_t tp = 0, pp = 0;
  int64_t layers_per_virtual_stage = 0;  // --num-layers-per-virtual-pipeline-stage
  int recompute = -1;                    // 1: as the run's recompute options say, 0: none, -1: both
  int distributed_optimizer = -1;        // 1, 0, or -1: both
  int sequence_parallel = -1;            // 1, 0, or -1: both where TP > 1
};

// The model as a layout of tensor-parallel size tp holds it: the vocabulary padded to a multiple of
// --make-vocab-size-divisible-by × TP, as prores train pads a tokenizer's (Megatron's rule).
ModelConfig planned_model(const ModelConfig& model, const TrainConfig& run, int64_t tp);

// Parameters of one rank of a pipeline stage of `layers` blocks at tensor-parallel size tp (the shard
// ParamTable gives it), the first stage with the embedding, the last with the final norm and the LM head.
int64_t stage_parameters(const ModelConfig& model, int64_t tp, int64_t layers, bool first, bool last);

// Elements of the whole model's matrix-multiply weights, the LM head included (ParamTable::matmul_numel at TP
// 1: N in 6·N), and one block's forward FLOPs per token (a third of block_flops_per_token).
int64_t matmul_parameters(const ModelConfig& model);
double block_forward_flops(const ModelConfig& model);

// Bytes of a Model's arena (Model::allocated_bytes) for one rank of a stage of `layers` blocks with `slots`
// activation slots, `recompute_layers` of them recomputed, under run's precision, device and attention backend,
// with or without sequence parallelism.
double model_arena_bytes(const ModelConfig& model, const TrainConfig& run, int64_t tp, int64_t layers, bool first,
                         bool last, int64_t slots, int64_t recompute_layers, bool sequence_parallel = false);

// One rank's memory, in bytes.
struct MemoryBreakdown {
  int64_t stage = 0;         // the pipeline stage of the rank described (the fullest one)
  double parameters = 0;     // fp32 weights, plus their bf16 copy under --bf16
  double gradients = 0;      // fp32
  double optimizer = 0;      // AdamW's two fp32 moments: the whole stage, or its 1/DP shard under ZeRO-1
  double activations_per_micro_batch = 0;  // one activation slot: the kept activations and the residual stream
  int64_t micro_batches_in_flight = 1;     // slots (model chunks' slots summed for v > 1)
  double activation_working = 0;  // shared by the slots: one block's scratch and gradients, the recomputed set
  double communication = 0;  // ZeRO-1's padded gradient buffer (the DP all-reduce and PP transfers are in place)
  // CPU: the host vector of the initial weights (Model::init_weights), kept by the malloc settings; CUDA: the
  // reserved memory of the cluster (context, cuBLASLt workspace, NCCL buffers, kernels' temporaries).
  double other = 0;
  double activations() const { return activations_per_micro_batch * static_cast<double>(micro_batches_in_flight); }
  double total() const {
    return parameters + gradients + optimizer + activations() + activation_working + communication + other;
  }
};

// Bytes each rank sends in one step (the stage that sends most for each).
struct CommVolume {
  double tp = 0;  // all-reduces of the blocks (and embedding, LM head) over the TP group
  double pp = 0;  // activations and their gradients to the neighbouring stages
  double dp = 0;  // gradient all-reduce, or ZeRO-1's reduce-scatter + all-gather
};

struct StepEstimate {
  double compute = 0;      // seconds of compute per micro-batch on the slowest stage
  double tp_comm = 0;      // seconds of TP all-reduces per micro-batch on that stage
  double pp_comm = 0;      // seconds of pipeline transfers per micro-batch on that stage
  double pipeline = 0;     // seconds of the whole pipeline (fill, steady state, drain)
  double dp_exposed = 0;   // seconds of DP reduction not hidden behind the backward
  double bubble = 0;       // (p − 1)/(m + p − 1), interleaved (p − 1)/(v·m + p − 1)
  double step = 0;         // seconds per optimizer step
  double tokens_per_second = 0;
  double mfu = 0;          // 6N + 12·L·C·T per token (the repo's MFU convention) over all ranks' peak
};

struct LayoutPlan {
  PlanLayout layout;
  int64_t micro_batches = 1;  // per pipeline: global batch / (micro-batch · DP)
  MemoryBreakdown memory;
  CommVolume comm;
  StepEstimate time;
  bool fits = false;  // memory.total() <= the cluster's memory
};

// The activation slots pipeline stage `stage` of pp allocates (one model chunk's blocks each when v > 1): 1F1B's
// min(p − s, m) (max_in_flight of one_f_one_b); interleaved, as TrainStep allocates them, v times the most that any
// chunk keeps alive in interleaved_one_f_one_b (more than Megatron-LM's (p − s − 1)·2 + (v − 1)·p + 1 chunk
// forwards alive at once, which a pool shared by the chunks would need).
int64_t micro_batches_in_flight(int64_t pp, int64_t stage, int64_t micro_batches, int64_t v);

// The share of the peak the code's step reaches on one device with run's settings, measured (docs/gpu.md:
// the 350M model on one H200; docs/performance.md: the 71M width on the 2-core CPU).
double achieved_efficiency(const ModelConfig& model, const TrainConfig& run);

// Ideal bubble share of the step: (p − 1)/(m + p − 1), with v chunks per stage (p − 1)/(v·m + p − 1).
double pipeline_bubble(int64_t pp, int64_t micro_batches, int64_t virtual_stages);

// Throws prores::Error naming the option (--tensor-model-parallel-size, --num-attention-heads,
// --global-batch-size, --num-layers-per-virtual-pipeline-stage, --nodes ...) when the layout cannot hold the
// model on the cluster: TP beyond a node, TP not dividing heads, groups, FFN width or the padded vocabulary,
// PP not dividing the layers, TP·PP·DP not the cluster's ranks, the global batch not a multiple of
// micro-batch × DP, v with layers not divisible by PP·v, PP = 1 or micro-batches not a multiple of PP.
void check_layout(const ModelConfig& model, const TrainConfig& run, const PlanLayout& layout, const Cluster& cluster);

// The plan of one layout (check_layout first).
LayoutPlan plan_layout(const ModelConfig& model, const TrainConfig& run, const PlanLayout& layout,
                       const Cluster& cluster);

// Every layout of the cluster that divides and agrees with choices, fitting or not, fastest first (then the
// least memory). refusal: why none divides, when none does (the first check_layout message).
struct LayoutSearch {
  std::vector<LayoutPlan> layouts;
  std::string refusal;
};
LayoutSearch search_layouts(const ModelConfig& model, const TrainConfig& run, const Cluster& cluster,
                            const LayoutChoices& choices);

}  // namespace prores::train
