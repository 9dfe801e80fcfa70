// Model: one rank's part of a Llama-style decoder (token embedding, blocks, final RMSNorm, untied LM
// head, cross-entropy) with ProRes residual scaling and hand-written forward/backward over saved
// activations. A rank holds one pipeline stage's blocks (global layer indices; with virtual stages, several
// chunks of consecutive blocks, ModelShard) and, under tensor parallelism, its shard of every weight
// (Megatron's column/row split, vocabulary-parallel embedding and cross-entropy); the TP communication happens
// inside (the f/g pair of each branch; with sequence parallelism their all-gather / reduce-scatter halves).
// Activations exist in `slots` per chunk, one per micro-batch in flight
// (1F1B keeps up to PP of them on the first stage); each chunk has its own pair of gradient buffers (the
// received output gradient, the input gradient to send).
// Everything is allocated at construction; a step allocates nothing. f32 (training) or f64 (checks), on the
// host or, with device CUDA, in GPU memory (weights, gradients and activations; ids come from the host).
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/config.h"
#include "core/tensor.h"
#include "model/param_table.h"
#include "model/residual_schedule.h"
#include "ops/gemm.h"
#include "parallel/communicator.h"

namespace prores {

struct BlockActivations;
struct BlockScratch;
struct SublayerActivations;

// What a probe of the forward sees of each block (Model::set_probe): each sublayer's branch output, the (N, C)
// tensor that α multiplies (F(f_in), or N_out(F(f_in)) under sandwich), before α; and the residual stream after
// the block (N, C).
enum class ProbePoint { AttentionBranch, MlpBranch, BlockOutput };
using ProbeHook = std::function<void(int64_t block, ProbePoint point, const Tensor& values)>;

// Where and how a Model runs: the device holding its tensors, how its matmuls multiply (f32 models: exact,
// or bf16 operands with fp32 accumulation: the linear layers on both devices, the unfused attention on CUDA;
// with bf16 matmuls the activations that only connect matmuls are stored in bf16, see plan_buffers), which
// attention kernel runs, and how many blocks recompute their activations in the backward.
//
// Attention kernels: Unfused materializes the probabilities (B, NH, T, T) for the backward, on either device.
// On CUDA, Flash (our kernels, ops/cuda/flash_attention.h; f32 or bf16 q, k, v with bf16 tensor-core arithmetic)
// and Cudnn (cuDNN's fused attention, ops/cuda/cudnn_attention.h; bf16 q, k, v: bf16 matmuls and activations)
// keep each row's log-sum-exp (B, NH, T) instead; Cudnn also a workspace that cuDNN sizes.
enum class AttentionKernel { Unfused, Flash, Cudnn };

struct ModelExecution {
  Device device = Device::CPU;
  AttentionKernel attention = AttentionKernel::Unfused;
  ops::MatmulPrecision matmul_precision = ops::MatmulPrecision::Fp32;
  bool bf16_activations = true;  // with Bf16 matmuls; false keeps every activation in the model's dtype
  // Full activation recomputation (Megatron's --recompute-granularity full) of this stage's first
  // recompute_layers blocks: they keep only their input (the residual stream, kept anyway) and run their
  // forward again just before their backward, into one set of activations they share. Bitwise the same
  // gradients; one more block forward each; their activation memory becomes one block's.
  int64_t recompute_layers = 0;
  // false: a model for evaluation only, without the gradient buffer (grads() is undefined, backward() and
  // zero_grads() refuse).
  bool gradients = true;
  // A model for decoding (CPU, forward only): every block keeps the keys and values of the positions its
  // forwards have seen ((B, KV/TP, T, HS) each), and a forward over the window [start, start + n) attends to the
  // cached positions [0, start) as well (set_window).
  bool kv_cache = false;
  // Sequence parallelism (Megatron-LM's --sequence-parallel, with TP): what lies outside the branches' linear
  // layers and attention (the norms, the residual adds, the residual stream between blocks and stages, and the
  // gradients of all these) holds only this TP rank's share of the micro-batch's N = B·T token rows, rows
  // [r·N/TP, (r + 1)·N/TP) for TP rank r (local_rows()). A branch all-gathers its input before its first
  // linear and reduce-scatters the partial sums of its last (the two halves of the all-reduce it replaces); its
  // backward all-gathers the output gradient and the input again and reduce-scatters the input gradient; each
  // block's norm weight gradients sum over the TP ranks. The embedding reduce-scatters, the LM head gathers.
  // The same numbers up to the order of sums. N divisible by TP, no key/value cache, windows whose B·n tokens
  // divide over TP (window_multiple).
  bool sequence_parallel = false;
};

class Model {
 public:
  // tp: the tensor-parallel group of size shard.tp_size (nullptr: a single-process one); on CUDA it must take
  // device tensors (NCCL, or a single-process group). Flash attention needs CUDA, f32 and a supported head
  // size (ops::flash_attention_supports).
  Model(const ModelConfig& config, int64_t micro_batch, DType dtype = DType::F32, const ModelShard& shard = {},
        Communicator* tp = nullptr, int64_t num_slots = 1, const ModelExecution& execution = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const ModelShard& shard() const { return shard_; }
  const ParamTable& table() const { return table_; }
  int64_t micro_batch() const { return B_; }
  int64_t num_slots() const;  // per chunk
  int64_t num_chunks() const { return shard_.chunks; }
  DType dtype() const { return dtype_; }
  Device device() const { return execution_.device; }
  AttentionKernel attention_kernel() const { return execution_.attention; }
  ops::MatmulPrecision matmul_precision() const { return execution_.matmul_precision; }
  int64_t recompute_layers() const { return execution_.recompute_layers; }
  bool has_gradients() const { return execution_.gradients; }
  bool has_kv_cache() const { return execution_.kv_cache; }
  bool sequence_parallel() const { return execution_.sequence_parallel; }
  // Token rows of the residual stream on this rank: B·window_length(), its TP share with sequence parallelism.
  int64_t local_rows() const;
  // Bytes allocated at construction: weights, gradients, the bf16 weight copy, activations and scratch.
  size_t allocated_bytes() const { return arena_.bytes(); }

  Tensor params() const { return params_; }  // flat (P), ordered by table()
  Tensor grads() const { return grads_; }     // flat (P), same order
  Tensor param(const std::string& name) const;  // this rank's shard, with its local shape
  Tensor grad(const std::string& name) const;

  // Draws every parameter from the configured init scheme (docs/prores.md), deterministically from seed and
  // the parameter's global name: every layout holds shards of the same global weights. Rounds them for the
  // bf16 matmuls (round_matmul_weights).
  void init_weights(uint64_t seed);
  // With bf16 matmuls on f32 weights: the bf16 copy of params() that the linear layers multiply (=) params()
  // rounded to nearest even; nothing otherwise. Call it after writing params() and before the next forward:
  // forward does not, so that the micro-batches of one step (TrainStep calls it once per global batch) share
  // one rounding.
  void round_matmul_weights();
  // The ProRes residual scale α of every block of this stage: scales[i] for block i (global layer
  // shard().layer(i)), or the schedule's α(l, t) after t optimizer steps.
  void set_residual_scales(std::span<const double> scales);
  void set_residual_scales(const ResidualSchedule& schedule, int64_t t);
  const std::vector<double>& residual_scales() const { return residual_scale_; }

  // The positions each of the B rows holds in the next forwards: [start, start + length), 1 <= length,
  // start + length <= T (the default window is [0, T)). Every activation (and stage_input / stage_output, which
  // the pipeline moves) is viewed at `length` positions over the same memory, so a short window computes only
  // its positions: a forward of the first n positions gives their values of a full-length forward (attention is
  // causal). start > 0 needs kv_cache, holding positions [0, start) of each row from earlier forwards. Forward
  // only: backward needs the whole window [0, T).
  void set_window(int64_t start, int64_t length);
  // The window lengths set_window takes are multiples of this: 1, or with sequence parallelism the least n for
  // which the B·n tokens divide over TP (T is one: the model checks it).
  int64_t window_multiple() const;
  int64_t window_start() const { return window_start_; }
  int64_t window_length() const { return window_length_; }

  // Forward of one micro-batch through chunk `chunk` into its activation slot `slot`: tokens (B·n) i32 (host
  // memory), n = window_length(), feed the first stage's chunk 0 (the others read stage_input(chunk, slot),
  // received beforehand); targets (B·n) i32 feed the loss after the last stage's last chunk. Returns that mean
  // loss there, 0 elsewhere.
  double forward(int64_t chunk, int64_t slot, const int32_t* tokens, const int32_t* targets);
  double forward(int64_t slot, const int32_t* tokens, const int32_t* targets) {
    return forward(0, slot, tokens, targets);
  }
  // After a forward, on the last stage (its last chunk's slot): for each of slot's B·n positions, log_probs (=)
  // log p(target) over the whole vocabulary and greedy (=) 1 when the target's logit is the row's largest (an
  // argmax), else 0.
  void target_log_probs(int64_t slot, double* log_probs, uint8_t* greedy) const;
  // grads() (+=) loss_scale · d(mean loss)/d(params) for the forward held in chunk's slot. The last stage's
  // last chunk starts from its loss; the others from output_grad(chunk), received beforehand. Afterwards
  // input_grad(chunk) holds the gradient w.r.t. stage_input(chunk, slot) (not on the first stage's chunk 0), and
  // output_grad(chunk) is the chunk's other buffer: the next gradient may arrive while this one waits to be sent.
  void backward(int64_t chunk, int64_t slot, double loss_scale);
  void backward(int64_t slot, double loss_scale) { backward(0, slot, loss_scale); }
  void zero_grads();

  // Σ h² of the residual stream h after each of the chunk's blocks in slot's last forward, in block order, over
  // this rank's rows (every TP rank holds the whole stream, or with sequence parallelism its share).
  std::vector<double> block_output_sum_squares(int64_t chunk, int64_t slot) const;

  // The chunk's input and output streams and gradients, (local_rows(), C) each; without a chunk, chunk 0's.
  Tensor stage_input(int64_t chunk, int64_t slot) const { return residual(chunk, slot, 0); }
  Tensor stage_output(int64_t chunk, int64_t slot) const { return residual(chunk, slot, shard_.chunk_layers()); }
  Tensor output_grad(int64_t chunk) const { return chunk_grads(chunk).buffer[chunk_grads(chunk).received]; }
  Tensor input_grad(int64_t chunk) const { return chunk_grads(chunk).buffer[1 - chunk_grads(chunk).received]; }
  Tensor stage_input(int64_t slot) const { return stage_input(0, slot); }
  Tensor stage_output(int64_t slot) const { return stage_output(0, slot); }
  Tensor output_grad() const { return output_grad(0); }
  Tensor input_grad() const { return input_grad(0); }
  // Logits shard (B·n, V/TP) of slot's last forward (last stage; bf16 with bf16 activations), overwritten
  // by its gradient in the backward.
  Tensor logits(int64_t slot = 0) const;

  // Called during backward with each block's local index as soon as its gradients are final for this
  // backward, then with -1 after the embedding (first stage); the data-parallel reducer starts bucket
  // all-reduces from it while backward goes on. The last backward of each chunk (chunks in descending order,
  // as both 1F1B schedules run them) reports local indices in descending order.
  void set_grad_ready_hook(std::function<void(int64_t)> hook) { grad_ready_hook_ = std::move(hook); }
  // When on (the default), blocks whose α is exactly 0 skip their branches in forward and backward;
  // the result is bitwise the same either way.
  void set_skip_zero_residual_scale(bool on) { skip_zero_residual_scale_ = on; }
  // With a hook, every forward calls it for each block of this stage (its local index) with the attention
  // branch, the MLP branch and the block output, in that order, in the model's device memory and whole on every
  // TP rank (all-gathered with sequence parallelism). The branches then run even where α = 0 and add α· their
  // output to the stream outside their last linear: the same values up to rounding. An empty hook (the default)
  // turns probing off.
  void set_probe(ProbeHook hook) { probe_ = std::move(hook); }

 private:
  enum class Branch { Attention, Mlp };
  struct LayerWeights {  // views of one flat buffer: fused q|k|v and gate|up matrices
    Tensor attn_norm, qkv, o, attn_out_norm, mlp_norm, gate_up, down, mlp_out_norm;
  };
  struct Weights {
    Tensor embedding, final_norm, lm_head;
    std::vector<LayerWeights> layers;
  };
  struct Slot;

  using Shape = std::initializer_list<int64_t>;
  struct KvCache {
    Tensor k, v;  // (B, KV/TP, T, HS)
  };
  int64_t local_layers() const { return shard_.num_layers; }
  // A chunk's two gradient buffers (N, C): one receives the output gradient, the other holds the input gradient
  // its last backward computed; `received` says which is which.
  struct ChunkGrads {
    Tensor buffer[2];
    int received = 0;
  };
  const ChunkGrads& chunk_grads(int64_t chunk) const { return chunk_grads_[static_cast<size_t>(chunk)]; }
  Slot& slot_of(int64_t chunk, int64_t slot);
  const Slot& slot_of(int64_t chunk, int64_t slot) const;
  void plan_buffers();
  void plan_activations(int64_t length, const std::function<void(Tensor*, DType, Shape)>& place);
  Tensor residual(int64_t chunk, int64_t slot, int64_t index) const;  // the stream entering the chunk's block index
  Tensor view_of(const Tensor& flat, const std::string& name) const;
  Weights weights_of(const Tensor& flat) const;
  const Weights& matmul_weights() const { return params16_.defined() ? weights16_ : weights_; }
  double norm_scale(int64_t layer0) const;
  ops::MatmulPrecision attention_precision() const;
  // Sequence parallelism: whole (N, C) (=) every TP rank's local rows, returned; without it, local itself.
  Tensor whole_rows(const Tensor& whole, const Tensor& local) const;
  // A norm backward sees only this rank's rows under sequence parallelism: the norm weights' gradients collect in
  // scratch rows (norm_grad(row, grad): where the backward adds to grad; grad itself without sequence
  // parallelism), zeroed by begin_norm_grads, which end_norm_grads sums over TP and adds to their gradients, row
  // i to grads[i].
  void begin_norm_grads();
  Tensor norm_grad(int64_t row, const Tensor& grad) const;
  void end_norm_grads(std::initializer_list<Tensor> grads);
  void block_forward(Slot& slot, int64_t layer0, const Tensor& x, const Tensor& y);
  void block_backward(const Slot& slot, int64_t layer0, const Tensor& x, const Tensor& dy, const Tensor& dx);
  void sublayer_forward(BlockActivations& act, int64_t layer0, Branch branch, SublayerActivations& a,
                        const Tensor& u, const Tensor& v);
  void sublayer_backward(const BlockActivations& act, int64_t layer0, Branch branch, const SublayerActivations& a,
                         const Tensor& u, const Tensor& dv, const Tensor& du);
  // Where a branch's output goes: out (=) F(f_in); or, with a residual, out (=) c·residual + α·F(f_in), the sum
  // formed by the branch's last linear (and under TP by the all-reduce of its partial sums).
  struct BranchOutput {
    Tensor out, residual;
    double c = 1, residual_scale = 1;
  };
  void branch_forward(BlockActivations& act, int64_t layer0, Branch branch, const Tensor& f_in,
                      const BranchOutput& output);
  void branch_backward(const BlockActivations& act, int64_t layer0, Branch branch, const Tensor& f_in,
                       const Tensor& db, const Tensor& dfin);

  ModelConfig config_;
  ModelShard shard_;
  ParamTable table_;
  int64_t B_;
  DType dtype_;
  ModelExecution execution_;
  std::unique_ptr<Communicator> own_tp_;
  Communicator* tp_;
  int64_t vocab_start_ = 0;
  Arena arena_;
  Tensor params_, grads_;
  Weights weights_, dweights_;
  // With bf16 matmuls on f32 weights: params_ rounded to bf16 by round_matmul_weights(), and its weight views.
  // The linear layers multiply these instead of rounding the f32 weights on each call.
  Tensor params16_;
  Weights weights16_;
  std::vector<double> residual_scale_;
  bool skip_zero_residual_scale_ = true;
  ProbeHook probe_;
  std::function<void(int64_t)> grad_ready_hook_;
  std::vector<Slot> slots_;
  int64_t window_start_ = 0, window_length_ = 0;  // set_window; the length is T until then
  int64_t attention_workspace_words_ = 0;         // cuDNN attention's workspace at T, in f32 words
  std::vector<KvCache> kv_cache_;                // with kv_cache: one per block of this stage
  std::unique_ptr<BlockScratch> scratch_;
  std::unique_ptr<BlockActivations> recomputed_;  // the activations the recomputed blocks share
  Tensor recompute_out_;                           // (N, C): where a recomputed forward writes its output
  std::vector<ChunkGrads> chunk_grads_;
  Tensor dfinal_;
  Tensor rope_cos_, rope_sin_;
};

}  // namespace prores
