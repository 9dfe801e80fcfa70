// Launch planning (see launch_plan.h): memory of a rank from the reservations Model::plan_buffers,
// AdamW and DistributedOptimizer make, the step-time model, and the search over layouts.
#include "train/launch_plan.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/check.h"
#include "data/tokenizer.h"
#include "model/block.h"
#include "parallel/layout.h"
#include "train/trainer.h"

namespace prores::train {

namespace {

constexpr double kF32 = 4, kBf16 = 2, kI32 = 4;

// One block's linear weights on one of tp ranks: q|k|v, o, gate|up, down.
int64_t block_matmul_parameters(const ModelConfig& m, int64_t tp) {
  const int64_t C = m.hidden_size, HS = m.head_size(), NH = m.num_attention_heads / tp, KV = m.kv_groups() / tp;
  return (NH + 2 * KV) * HS * C + C * NH * HS + 3 * (m.ffn_hidden_size / tp) * C;
}

// An Arena reservation of `elements` of `bytes` each: rounded up to the arena's 256-byte slots (core/arena.cpp).
double slot_bytes(double elements, double bytes) { return std::ceil(elements * bytes / 256.0) * 256.0; }

// The arena of one rank's Model, in the pieces Model::plan_buffers and plan_activations reserve.
struct ArenaPieces {
  double params = 0, params16 = 0, grads = 0;
  double slot = 0;    // one activation slot
  double shared = 0;  // scratch, the recomputed blocks' activations, gradient buffers, RoPE tables
};

ArenaPieces arena_pieces(const ModelConfig& m, const TrainConfig& run, int64_t tp, int64_t layers, bool first,
                         bool last, int64_t recompute, bool sp) {
  const double B = static_cast<double>(run.micro_batch_size), T = static_cast<double>(m.seq_length);
  const double N = B * T, Nl = sp ? N / static_cast<double>(tp) : N;  // Nl: the residual stream's rows on a rank
  const double C = static_cast<double>(m.hidden_size), HS = static_cast<double>(m.head_size());
  const double F = static_cast<double>(m.ffn_hidden_size / tp), V = static_cast<double>(m.vocab_size / tp);
  const double NH = static_cast<double>(m.num_attention_heads / tp), KV = static_cast<double>(m.kv_groups() / tp);
  const double QKV = (NH + 2 * KV) * HS;
  const AttentionKernel kernel = attention_kernel(run, m);
  const bool fused = kernel != AttentionKernel::Unfused;  // keeps log-sum-exps, not probabilities
  const bool bf16 = run.bf16 && run.bf16_activations;
  const double d = kF32, a16 = bf16 ? kBf16 : kF32, attn16 = bf16 && fused ? kBf16 : kF32;
  const SublayerShape shape = sublayer_shape(m.norm_placement, m.num_layers);

  const auto block = [&] {  // plan_block: what one block keeps for its backward
    double sublayer = 0;
    if (shape.in_norm) sublayer += slot_bytes(Nl * C, a16) + slot_bytes(Nl, d);
    if (shape.out_norm) sublayer += slot_bytes(Nl * C, d) + slot_bytes(Nl, d);
    if (shape.post_norm) sublayer += slot_bytes(Nl * C, d) + slot_bytes(Nl, d);
    return 2 * sublayer + slot_bytes(Nl * C, d) + slot_bytes(B * NH * T * HS, attn16) +
           2 * slot_bytes(B * KV * T * HS, attn16) + slot_bytes(fused ? B * NH * T : B * NH * T * T, d) +
           slot_bytes(N * NH * HS, attn16) + slot_bytes(N * 2 * F, a16) + slot_bytes(N * F, a16);
  };
  ArenaPieces p;
  const double P = static_cast<double>(stage_parameters(m, tp, layers, first, last));
  p.params = slot_bytes(P, d);
  if (run.bf16) p.params16 = slot_bytes(P, kBf16);
  p.grads = slot_bytes(P, d);
  p.slot = static_cast<double>(layers - recompute) * block() + 2 * slot_bytes(N, kI32) +
           slot_bytes(static_cast<double>(layers + 1) * Nl * C, d);
  if (last)
    p.slot += slot_bytes(N * V, a16) + slot_bytes(N, d) + slot_bytes(Nl, d) + slot_bytes(4 * N, d) +
              slot_bytes(Nl * C, a16);
  if (recompute > 0) p.shared += block() + slot_bytes(Nl * C, d);
  p.shared += 2 * slot_bytes(N * QKV, attn16) + slot_bytes(B * NH * T * HS, attn16) +
              2 * slot_bytes(B * KV * T * HS, attn16) + slot_bytes(N * NH * HS, attn16);
  // cuDNN's workspace is its own to size (on a GPU); taken here as what its deterministic backward accumulates dq
  // in, f32 (B, NH, T, HS).
  if (kernel == AttentionKernel::Flash) p.shared += slot_bytes(B * NH * T, d);
  else if (kernel == AttentionKernel::Cudnn) p.shared += slot_bytes(B * NH * T * HS, d);
  else p.shared += 2 * slot_bytes(B * NH * T * HS, d) + slot_bytes(B * NH * T * T, d);
  const double db = shape.out_norm ? d : a16;
  p.shared += 5 * slot_bytes(Nl * C, d) + slot_bytes(N * C, d) + slot_bytes(Nl * C, db) + slot_bytes(N * 2 * F, a16) +
              slot_bytes(N * F, a16) + 2 * slot_bytes(Nl * C, d) + slot_bytes(N * C, d) + 2 * slot_bytes(T * HS / 2, d);
  if (sp)  // the gathered branch input and output gradient, the head's input, the partial sums, dfin_local, dnorms
    p.shared += slot_bytes(N * C, shape.in_norm ? a16 : d) + slot_bytes(N * C, db) + (last ? slot_bytes(N * C, a16) : 0) +
                slot_bytes(N * C, d) + slot_bytes(Nl * C, d) + slot_bytes(4 * C, d);
  return p;
}

// Seconds of a ring all-reduce of `bytes` over n ranks at `bandwidth` per rank and direction (a reduce-scatter
// or an all-gather: half of it).
double ring_all_reduce(double bytes, int64_t n, double bandwidth) {
  return n > 1 ? 2.0 * static_cast<double>(n - 1) / static_cast<double>(n) * bytes / bandwidth : 0.0;
}

// Rank order: TP fastest, then DP, then PP (parallel/layout.h). The ranks [a, a + count) and the same ranks
// shifted by `shift` lie on one node each pairwise when the whole span [a, a + count − 1 + shift] does.
bool crosses_nodes(int64_t first_rank, int64_t count, int64_t shift, int64_t gpus_per_node) {
  return first_rank / gpus_per_node != (first_rank + count - 1 + shift) / gpus_per_node;
}

MemoryBreakdown stage_memory(const ModelConfig& m, const TrainConfig& run, const PlanLayout& layout,
                             const Cluster& cluster, int64_t micro_batches, int64_t stage) {
  const bool first = stage == 0, last = stage == layout.pp - 1;
  const int64_t v = layout.virtual_stages, stage_layers = m.num_layers / layout.pp, chunk_layers = stage_layers / v;
  const int64_t P = stage_parameters(m, layout.tp, stage_layers, first, last);
  MemoryBreakdown mem;
  mem.stage = stage;
  mem.micro_batches_in_flight = micro_batches_in_flight(layout.pp, stage, micro_batches, v);
  const bool sp = layout.sequence_parallel;
  if (v == 1) {
    const ArenaPieces a = arena_pieces(m, run, layout.tp, stage_layers, first, last, layout.recompute_layers, sp);
    mem.parameters = a.params + a.params16;
    mem.gradients = a.grads;
    mem.activations_per_micro_batch = a.slot;
    mem.activation_working = a.shared;
  } else {
    // Modelled: a slot per in-flight chunk forward (its blocks and residual stream), the working set once, and
    // on the last stage the head's activations of one micro-batch.
    const ArenaPieces whole = arena_pieces(m, run, layout.tp, stage_layers, first, last, 0, sp);
    const ArenaPieces chunk = arena_pieces(m, run, layout.tp, chunk_layers, false, false, layout.recompute_layers, sp);
    const ArenaPieces chunk_last =
        arena_pieces(m, run, layout.tp, chunk_layers, false, true, layout.recompute_layers, sp);
    mem.parameters = whole.params + whole.params16;
    mem.gradients = whole.grads;
    mem.activations_per_micro_batch = chunk.slot;
    mem.activation_working = chunk.shared + (last ? chunk_last.slot - chunk.slot : 0.0);
  }
  const int64_t shard = layout.distributed_optimizer ? (P + layout.dp - 1) / layout.dp : P;
  mem.optimizer = 2 * slot_bytes(static_cast<double>(shard), kF32);
  if (layout.distributed_optimizer) mem.communication = slot_bytes(static_cast<double>(shard * layout.dp), kF32);
  mem.other = run.device == Device::CPU ? static_cast<double>(P) * kF32 : cluster.reserved_bytes;
  return mem;
}

// One stage's share of a micro-batch, on one rank.
struct StageWork {
  double compute = 0, forward = 0;  // seconds per micro-batch: all of it, and its forward pass
  double tp = 0, pp = 0;            // seconds of TP all-reduces and pipeline sends per micro-batch
  double tp_bytes = 0, pp_bytes = 0;  // bytes this rank sends per micro-batch
};

StageWork stage_work(const ModelConfig& m, const TrainConfig& run, const PlanLayout& l, const Cluster& cluster,
                     int64_t stage) {
  const bool first = stage == 0, last = stage == l.pp - 1;
  const int64_t v = l.virtual_stages, layers = m.num_layers / l.pp, recomputed = l.recompute_layers * v;
  const double tokens = static_cast<double>(run.micro_batch_size * m.seq_length);
  const double rate = cluster.peak_flops * achieved_efficiency(m, run) * static_cast<double>(l.tp);
  const double block = block_forward_flops(m), head = 2.0 * static_cast<double>(m.vocab_size * m.hidden_size);
  StageWork w;
  const double forward = static_cast<double>(layers) * block + (last ? head : 0.0);
  w.forward = tokens * forward / rate;  // the backward part (with the recomputed forwards) overlaps DP
  w.compute = tokens * (3 * forward + static_cast<double>(recomputed) * block) / rate;
  // The f32 (N, C) all-reduces: two per block forward (attention and MLP outputs), two per block backward (their
  // inputs' gradients), two per recomputed forward, the embedding's forward and the LM head's backward. With
  // sequence parallelism, in all-reduces' worth (a reduce-scatter or an all-gather is half of one): the same in
  // the forwards; in each sublayer's backward an all-gather more (the branch input, gathered again); the
  // embedding's forward and backward one; the head's forward and backward one and a half. The pipeline moves
  // 1/TP of the stream.
  const double activation = tokens * static_cast<double>(m.hidden_size) * kF32;
  const bool sp = l.sequence_parallel;
  const double all_reduces = sp ? 5.0 * layers + 2.0 * recomputed + (first ? 1.0 : 0.0) + (last ? 1.5 : 0.0)
                                : static_cast<double>(4 * layers + 2 * recomputed + (first ? 1 : 0) + (last ? 1 : 0));
  w.tp = all_reduces * ring_all_reduce(activation, l.tp, cluster.intra_node_bandwidth);
  w.tp_bytes = all_reduces * (l.tp > 1 ? 2.0 * static_cast<double>(l.tp - 1) / static_cast<double>(l.tp) : 0.0) *
               activation;
  if (l.pp > 1) {
    // Per micro-batch: an activation to the next stage per chunk (not from the last virtual stage) and a gradient
    // to the previous one (not from the first); interleaved, the last stage feeds the first's next chunk.
    const int64_t span = l.tp * l.dp, g = cluster.gpus_per_node;
    const int64_t next = (stage + 1) % l.pp, prev = (stage + l.pp - 1) % l.pp;
    const auto bandwidth = [&](int64_t peer) {
      const int64_t low = std::min(stage, peer), high = std::max(stage, peer);
      return crosses_nodes(low * span, span, (high - low) * span, g) ? cluster.inter_node_bandwidth
                                                                      : cluster.intra_node_bandwidth;
    };
    const int64_t forwards = last ? v - 1 : v, backwards = first ? v - 1 : v;
    const double sent = sp ? activation / static_cast<double>(l.tp) : activation;
    w.pp = sent *
           (static_cast<double>(forwards) / bandwidth(next) + static_cast<double>(backwards) / bandwidth(prev));
    w.pp_bytes = sent * static_cast<double>(forwards + backwards);
  }
  return w;
}

}  // namespace

void Cluster::validate() const {
  PRORES_CHECK(nodes >= 1, "--nodes must be at least 1, got ", nodes);
  PRORES_CHECK(gpus_per_node >= 1, "--gpus-per-node must be at least 1, got ", gpus_per_node);
  const auto positive = [](double x) { return std::isfinite(x) && x > 0; };
  PRORES_CHECK(positive(memory_bytes), "--gpu-memory must be a positive number of GB, got ", memory_bytes / 1e9);
  PRORES_CHECK(positive(peak_flops), "--peak-tflops must be positive, got ", peak_flops / 1e12);
  PRORES_CHECK(positive(intra_node_bandwidth), "--intra-node-bw must be a positive number of GB/s, got ",
               intra_node_bandwidth / 1e9);
  PRORES_CHECK(positive(inter_node_bandwidth), "--inter-node-bw must be a positive number of GB/s, got ",
               inter_node_bandwidth / 1e9);
  PRORES_CHECK(std::isfinite(reserved_bytes) && reserved_bytes >= 0 && reserved_bytes < memory_bytes,
               "--reserved-memory must be >= 0 GB and below --gpu-memory ", memory_bytes / 1e9, " GB, got ",
               reserved_bytes / 1e9);
}

std::string PlanLayout::describe() const {
  std::ostringstream os;
  os << "TP " << tp << " PP " << pp << " DP " << dp;
  if (virtual_stages > 1) os << " v " << virtual_stages;
  if (recompute_layers > 0) os << ", recompute " << recompute_layers;
  if (distributed_optimizer) os << ", ZeRO-1";
  if (sequence_parallel) os << ", SP";
  return os.str();
}

ModelConfig planned_model(const ModelConfig& model, const TrainConfig& run, int64_t tp) {
  ModelConfig m = model;
  m.vocab_size = data::padded_vocab_size(model.vocab_size, run.make_vocab_size_divisible_by, tp);
  return m;
}

int64_t stage_parameters(const ModelConfig& m, int64_t tp, int64_t layers, bool first, bool last) {
  const int64_t C = m.hidden_size, norms = m.norm_placement == NormPlacement::Sandwich ? 4 : 2;
  const int64_t vocab = (m.vocab_size / tp) * C;
  return layers * (norms * C + block_matmul_parameters(m, tp)) + (first ? vocab : 0) + (last ? C + vocab : 0);
}

int64_t matmul_parameters(const ModelConfig& m) {
  return m.num_layers * block_matmul_parameters(m, 1) + m.vocab_size * m.hidden_size;
}

double block_forward_flops(const ModelConfig& m) {
  return 2.0 * static_cast<double>(block_matmul_parameters(m, 1)) +
         4.0 * static_cast<double>(m.hidden_size * m.seq_length);
}

double model_arena_bytes(const ModelConfig& model, const TrainConfig& run, int64_t tp, int64_t layers, bool first,
                         bool last, int64_t slots, int64_t recompute_layers, bool sequence_parallel) {
  const ArenaPieces a = arena_pieces(model, run, tp, layers, first, last, recompute_layers, sequence_parallel);
  return a.params + a.params16 + a.grads + static_cast<double>(slots) * a.slot + a.shared;
}

int64_t micro_batches_in_flight(int64_t pp, int64_t stage, int64_t micro_batches, int64_t v) {
  if (v == 1) return std::min(pp - stage, micro_batches);
  // As TrainStep allocates them: every chunk gets the most slots any chunk of the stage keeps alive.
  const std::vector<PipelineAction> actions =
      interleaved_one_f_one_b(pp, v, micro_batches)[static_cast<size_t>(stage)];
  int64_t most = 0;
  for (int64_t c = 0; c < v; ++c) most = std::max(most, max_in_flight(actions, c));
  return v * most;
}

double achieved_efficiency(const ModelConfig& model, const TrainConfig& run) {
  // Measured MFU of one device (6N + 12·L·C·T per token): on the GPU the 350M model (24 × 1024, seq 1024,
  // micro-batch 8) on one H200, docs/gpu.md: bf16 + flash 103,338 tokens/s = 24.2 %, bf16 unfused 75,187 =
  // 17.6 %, fp32 17,873 = 4.2 % of 989 TFLOP/s; on the CPU the 71M width, docs/performance.md: fp32 45.4 % of
  // 0.442 TFLOP/s, bf16 34.8 % of 0.9.
  if (run.device == Device::CPU) return run.bf16 ? 0.348 : 0.454;
  if (!run.bf16) return 0.042;
  // cuDNN attention: flash's figure until one is measured.
  return attention_kernel(run, model) == AttentionKernel::Unfused ? 0.176 : 0.242;
}

double pipeline_bubble(int64_t pp, int64_t micro_batches, int64_t virtual_stages) {
  PRORES_CHECK(pp >= 1 && micro_batches >= 1 && virtual_stages >= 1, "pipeline bubble: stages ", pp,
               ", micro-batches ", micro_batches, " and virtual stages ", virtual_stages, " must be at least 1");
  return static_cast<double>(pp - 1) / static_cast<double>(virtual_stages * micro_batches + pp - 1);
}

void check_layout(const ModelConfig& model, const TrainConfig& run, const PlanLayout& l, const Cluster& cluster) {
  PRORES_CHECK(l.tp >= 1, "--tensor-model-parallel-size must be at least 1, got ", l.tp);
  PRORES_CHECK(l.pp >= 1, "--pipeline-model-parallel-size must be at least 1, got ", l.pp);
  const ModelConfig m = planned_model(model, run, l.tp);
  // The model's divisibility first (heads, groups, FFN width, vocabulary by TP; PP within the layers), then the
  // cluster's, then the batch's over DP.
  LayoutShape::compute(l.tp * l.pp, 0, ParallelConfig{l.tp, l.pp, {}, false, 0, l.sequence_parallel}, m,
                       run.global_batch_size, run.micro_batch_size);
  PRORES_CHECK(m.num_layers % l.pp == 0, "--num-layers ", m.num_layers, " is not divisible by --pipeline-model-"
               "parallel-size ", l.pp, " (the plan splits the layers evenly; prores train also takes --pipeline-layers)");
  PRORES_CHECK(l.tp <= cluster.gpus_per_node && cluster.gpus_per_node % l.tp == 0, "--tensor-model-parallel-size ",
               l.tp, " does not divide --gpus-per-node ", cluster.gpus_per_node,
               " (tensor parallelism stays within a node)");
  PRORES_CHECK(cluster.ranks() % (l.tp * l.pp) == 0, "--tensor-model-parallel-size ", l.tp,
               " x --pipeline-model-parallel-size ", l.pp, " does not divide the ", cluster.ranks(),
               " GPUs of --nodes ", cluster.nodes, " x --gpus-per-node ", cluster.gpus_per_node);
  PRORES_CHECK(l.dp == cluster.ranks() / (l.tp * l.pp) && l.virtual_stages >= 1, "layout ", l.describe(), " on ",
               cluster.ranks(), " GPUs: DP must be GPUs / (TP x PP) and v at least 1");
  LayoutShape::compute(cluster.ranks(), 0,
                       ParallelConfig{l.tp, l.pp, {}, l.distributed_optimizer, 0, l.sequence_parallel}, m,
                       run.global_batch_size, run.micro_batch_size);
  const int64_t micro_batches = run.global_batch_size / (run.micro_batch_size * l.dp);
  if (l.virtual_stages > 1) {
    PRORES_CHECK(l.pp > 1, "--num-layers-per-virtual-pipeline-stage needs --pipeline-model-parallel-size > 1");
    PRORES_CHECK(m.num_layers % (l.pp * l.virtual_stages) == 0, "--num-layers ", m.num_layers,
                 " is not divisible by --pipeline-model-parallel-size ", l.pp, " x ", l.virtual_stages,
                 " virtual stages (--num-layers-per-virtual-pipeline-stage)");
    PRORES_CHECK(micro_batches % l.pp == 0, "interleaved pipeline: ", micro_batches,
                 " micro-batches per pipeline (--global-batch-size / (--micro-batch-size x DP ", l.dp,
                 ")) are not a multiple of --pipeline-model-parallel-size ", l.pp);
  }
  const int64_t chunk_layers = m.num_layers / (l.pp * l.virtual_stages);
  PRORES_CHECK(l.recompute_layers >= 0 && l.recompute_layers <= chunk_layers, "layout ", l.describe(), ": ",
               l.recompute_layers, " recomputed blocks of ", chunk_layers, " per stage");
}

LayoutPlan plan_layout(const ModelConfig& model, const TrainConfig& run, const PlanLayout& l, const Cluster& cluster) {
  const ModelConfig m = planned_model(model, run, l.tp);
  LayoutPlan plan;
  plan.layout = l;
  plan.micro_batches = run.global_batch_size / (run.micro_batch_size * l.dp);
  const int64_t M = plan.micro_batches, v = l.virtual_stages;
  for (int64_t s : {int64_t{0}, l.pp - 1}) {  // even stages: the others hold stage 0's blocks, fewer in flight
    const MemoryBreakdown mem = stage_memory(m, run, l, cluster, M, s);
    if (s == 0 || mem.total() > plan.memory.total()) plan.memory = mem;
  }
  plan.fits = plan.memory.total() <= cluster.memory_bytes;

  // The pipeline: m micro-batches through the slowest stage plus the fill and drain through the others (1/v of
  // a stage each when interleaved); (m + p − 1)·t for equal stages.
  double slowest = 0, sum = 0, drained = 0, exposed = 0;
  for (int64_t s = 0; s < l.pp; ++s) {
    const StageWork w = stage_work(m, run, l, cluster, s);
    const double t = w.compute + w.tp + w.pp;
    if (t > slowest) {
      slowest = t;
      plan.time.compute = w.compute;
      plan.time.tp_comm = w.tp;
      plan.time.pp_comm = w.pp;
    }
    sum += t;
    plan.comm.tp = std::max(plan.comm.tp, static_cast<double>(M) * w.tp_bytes);
    plan.comm.pp = std::max(plan.comm.pp, static_cast<double>(M) * w.pp_bytes);
    // Data parallelism over the ranks of this stage's DP group (TP apart, one node or several).
    const int64_t span = l.tp * l.dp;
    const double bandwidth = crosses_nodes(s * span, span, 0, cluster.gpus_per_node) ? cluster.inter_node_bandwidth
                                                                                    : cluster.intra_node_bandwidth;
    const int64_t P = stage_parameters(m, l.tp, m.num_layers / l.pp, s == 0, s == l.pp - 1);
    const double backward = w.compute - w.forward;
    drained += backward;  // stage s's last backward ends after those of the stages behind it
    if (l.distributed_optimizer) {
      // Reduce-scatter of the padded gradients, then the all-gather of the updated parameters, after the pipeline.
      const double padded = static_cast<double>((P + l.dp - 1) / l.dp * l.dp) * kF32;
      exposed = std::max(exposed, ring_all_reduce(padded, l.dp, bandwidth));
      plan.comm.dp = std::max(plan.comm.dp, 2.0 * static_cast<double>(l.dp - 1) / static_cast<double>(l.dp) * padded);
    } else if (l.dp > 1) {
      // Bucketed all-reduce started during the last micro-batch's backward: hidden behind it and the drain of the
      // earlier stages, except the last bucket's (the embedding's, or one block's), which starts when it ends.
      const double grads = static_cast<double>(P) * kF32;
      const int64_t last_unit = s == 0 ? (m.vocab_size / l.tp) * m.hidden_size
                                       : stage_parameters(m, l.tp, 1, false, false);
      const double after = ring_all_reduce(static_cast<double>(last_unit) * kF32, l.dp, bandwidth);
      exposed = std::max(exposed, std::max(after, ring_all_reduce(grads, l.dp, bandwidth) - drained));
      plan.comm.dp = std::max(plan.comm.dp, 2.0 * static_cast<double>(l.dp - 1) / static_cast<double>(l.dp) * grads);
    }
  }
  plan.time.pipeline = static_cast<double>(M) * slowest + (sum - slowest) / static_cast<double>(v);
  plan.time.dp_exposed = exposed;
  plan.time.bubble = pipeline_bubble(l.pp, M, v);
  plan.time.step = plan.time.pipeline + plan.time.dp_exposed;
  const double tokens = static_cast<double>(run.global_batch_size * m.seq_length);
  plan.time.tokens_per_second = tokens / plan.time.step;
  const double flops_per_token = model_flops_per_token(m, matmul_parameters(m));
  plan.time.mfu = flops_per_token * plan.time.tokens_per_second /
                  (static_cast<double>(cluster.ranks()) * cluster.peak_flops);
  return plan;
}

LayoutSearch search_layouts(const ModelConfig& model, const TrainConfig& run, const Cluster& cluster,
                            const LayoutChoices& choices) {
  LayoutSearch search;
  const int64_t W = cluster.ranks(), L = model.num_layers;
  const auto consider = [&](const PlanLayout& l) {
    try {
      check_layout(model, run, l, cluster);
    } catch (const Error& e) {
      if (search.refusal.empty()) search.refusal = e.what();
      return;
    }
    search.layouts.push_back(plan_layout(model, run, l, cluster));
  };
  std::vector<int64_t> tps;
  for (int64_t tp = 1; tp <= cluster.gpus_per_node; ++tp)
    if (choices.tp > 0 ? tp == choices.tp : cluster.gpus_per_node % tp == 0) tps.push_back(tp);
  if (choices.tp > cluster.gpus_per_node) tps.push_back(choices.tp);  // refused by check_layout, naming it
  for (int64_t tp : tps) {
    std::vector<int64_t> pps;
    for (int64_t pp = 1; pp <= L; ++pp)
      if (choices.pp > 0 ? pp == choices.pp : L % pp == 0 && W % (tp * pp) == 0) pps.push_back(pp);
    if (pps.empty()) pps.push_back(choices.pp > 0 ? choices.pp : 1);  // refused by check_layout, which says why
    for (int64_t pp : pps) {
      const int64_t dp = W % (tp * pp) == 0 ? W / (tp * pp) : 0;
      std::vector<int64_t> chunks;  // v: model chunks per pipeline rank
      if (choices.layers_per_virtual_stage > 0) {
        if (L % (pp * choices.layers_per_virtual_stage) != 0) {
          if (search.refusal.empty())
            search.refusal = detail::concat("--num-layers ", L, " is not divisible by --pipeline-model-parallel-size ",
                                            pp, " x --num-layers-per-virtual-pipeline-stage ",
                                            choices.layers_per_virtual_stage);
          continue;
        }
        chunks.push_back(L / (pp * choices.layers_per_virtual_stage));
      } else {
        chunks.push_back(1);
        for (int64_t v = 2; pp > 1 && v <= L / pp; ++v)
          if (L % (pp * v) == 0) chunks.push_back(v);
      }
      for (int64_t v : chunks) {
        const int64_t chunk_layers = L / (pp * v);
        std::vector<int64_t> recomputes;
        if (choices.recompute != 1) recomputes.push_back(0);
        if (choices.recompute == 1) recomputes.push_back(recomputed_layers(run, chunk_layers));
        if (choices.recompute == -1) recomputes.push_back(chunk_layers);
        for (int64_t r : recomputes)
          for (int zero = 0; zero <= 1; ++zero)
            for (int sp = 0; sp <= 1; ++sp) {
              if (choices.distributed_optimizer >= 0 ? zero != choices.distributed_optimizer : zero && dp <= 1) continue;
              if (choices.sequence_parallel >= 0 ? sp != choices.sequence_parallel : sp && tp <= 1) continue;
              consider(PlanLayout{tp, pp, dp, v, r, zero == 1, sp == 1});
            }
      }
    }
  }
  std::stable_sort(search.layouts.begin(), search.layouts.end(), [](const LayoutPlan& a, const LayoutPlan& b) {
    if (a.time.step != b.time.step) return a.time.step < b.time.step;
    return a.memory.total() < b.memory.total();
  });
  return search;
}

}  // namespace prores::train
