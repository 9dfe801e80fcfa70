// Model construction, buffer planning and the stage-level forward/backward (embedding → blocks → final
// norm → LM head → cross-entropy, each part on the stage that holds it). Blocks: block.cpp.
#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/model_slot.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/memory.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "parallel/vocab_parallel.h"

namespace prores {

namespace {

ModelShard resolve(const ModelConfig& config, ModelShard shard) {
  config.validate();
  if (shard.num_layers < 0) shard.num_layers = config.num_layers - shard.first_layer + 1;
  return shard;
}

// An f32 or f64 tensor's values in host memory, as doubles.
std::vector<double> host_values(const Tensor& t) {
  std::vector<double> values(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::F64) {
    ops::copy_to_host(values.data(), t);
    return values;
  }
  PRORES_CHECK(t.dtype == DType::F32, "model: expected f32 or f64 statistics, got ", dtype_name(t.dtype));
  std::vector<float> f(values.size());
  ops::copy_to_host(f.data(), t);
  std::copy(f.begin(), f.end(), values.begin());
  return values;
}

}  // namespace

Model::Model(const ModelConfig& config, int64_t micro_batch, DType dtype, const ModelShard& shard,
             Communicator* tp, int64_t num_slots, const ModelExecution& execution)
    : config_(config),
      shard_(resolve(config, shard)),
      table_(config_, shard_),
      B_(micro_batch),
      dtype_(dtype),
      execution_(execution),
      own_tp_(tp ? nullptr : make_single_process_communicator()),
      tp_(tp ? tp : own_tp_.get()),
      arena_(execution.device,
             execution.device == Device::CPU ? DeviceMemory{} : ops::device_memory(execution.device)) {
  PRORES_CHECK(micro_batch >= 1, "--micro-batch-size must be positive, got ", micro_batch);
  PRORES_CHECK(num_slots >= 1, "model: need at least one activation slot, got ", num_slots);
  PRORES_CHECK(dtype == DType::F32 || dtype == DType::F64, "model dtype must be f32 or f64, got ", dtype_name(dtype));
  PRORES_CHECK(execution.attention != AttentionKernel::Flash ||
                   (execution.device == Device::CUDA && dtype == DType::F32 &&
                    ops::flash_attention_supports(config_.head_size())),
               "flash attention needs --device cuda, f32 and a head size of 64 or 128, got head size ",
               config_.head_size(), " on ", execution.device == Device::CUDA ? "cuda" : "the cpu");
  PRORES_CHECK(execution.attention != AttentionKernel::Cudnn ||
                   (execution.device == Device::CUDA && dtype == DType::F32 &&
                    execution.matmul_precision == ops::MatmulPrecision::Bf16 && execution.bf16_activations),
               "cuDNN attention needs --device cuda and --bf16 with bf16 activations (bf16 q, k, v)");
  PRORES_CHECK(execution.matmul_precision == ops::MatmulPrecision::Fp32 || dtype == DType::F32,
               "bf16 matmuls need an f32 model, got ", dtype_name(dtype));
  PRORES_CHECK(execution.recompute_layers >= 0 && execution.recompute_layers <= local_layers(),
               "model: ", execution.recompute_layers, " layers to recompute, the stage has ", local_layers());
  PRORES_CHECK(!execution.kv_cache || shard_.chunks == 1, "model: a key/value cache needs a stage of one chunk");
  PRORES_CHECK(!execution.sequence_parallel || !execution.kv_cache,
               "model: sequence parallelism and a key/value cache exclude each other");
  PRORES_CHECK(!execution.sequence_parallel || micro_batch * config_.seq_length % shard_.tp_size == 0,
               "--sequence-parallel: the ", micro_batch * config_.seq_length, " tokens of a micro-batch are not "
               "divisible by --tensor-model-parallel-size ", shard_.tp_size);
  PRORES_CHECK(tp_->size() == shard_.tp_size && tp_->rank() == shard_.tp_rank, "model: tensor-parallel group is rank ",
               tp_->rank(), " of ", tp_->size(), ", the shard says ", shard_.tp_rank, " of ", shard_.tp_size);
  vocab_start_ = shard_.tp_rank * (config_.vocab_size / shard_.tp_size);
  residual_scale_.assign(static_cast<size_t>(local_layers()), 1.0);
  slots_.resize(static_cast<size_t>(num_slots * shard_.chunks));
  chunk_grads_.resize(static_cast<size_t>(shard_.chunks));
  if (execution.attention == AttentionKernel::Cudnn) {  // cuDNN sizes it, and refuses here what it cannot run
    const int64_t bytes = ops::cudnn_attention_workspace_bytes(
        micro_batch, config_.seq_length, config_.num_attention_heads / shard_.tp_size,
        config_.kv_groups() / shard_.tp_size, config_.head_size());
    attention_workspace_words_ = std::max<int64_t>(1, (bytes + 3) / 4);
  }
  plan_buffers();
  window_length_ = config_.seq_length;
  ops::rope_table(rope_cos_, rope_sin_, config_.rotary_base);
}

Model::~Model() = default;

int64_t Model::num_slots() const { return static_cast<int64_t>(slots_.size()) / shard_.chunks; }

// Chunk c's slots are slots_[c·S .. (c + 1)·S), S = num_slots().
Model::Slot& Model::slot_of(int64_t chunk, int64_t slot) {
  return slots_[static_cast<size_t>(chunk * num_slots() + slot)];
}
const Model::Slot& Model::slot_of(int64_t chunk, int64_t slot) const {
  return slots_[static_cast<size_t>(chunk * num_slots() + slot)];
}

// Every activation and scratch tensor of a forward over `length` positions per row, as place(&tensor, dtype,
// shape): arena reservations at construction (length T), new shapes over the same memory for a shorter window
// (set_window). The parameters, their gradients, the RoPE tables and the key/value cache are not among them.
void Model::plan_activations(int64_t length, const std::function<void(Tensor*, DType, Shape)>& place) {
  const int64_t T = length, N = B_ * T, C = config_.hidden_size;
  const int64_t TP = shard_.tp_size, Nl = execution_.sequence_parallel ? N / TP : N;
  const int64_t F = config_.ffn_hidden_size / TP, V = config_.vocab_size / TP;
  const int64_t NH = config_.num_attention_heads / TP, KV = config_.kv_groups() / TP, HS = config_.head_size();
  const int64_t QKV = (NH + 2 * KV) * HS;
  const SublayerShape shape = sublayer_shape(config_.norm_placement, config_.num_layers);
  const DType d = dtype_;
  // With bf16 matmuls, the activations that only feed and leave matmuls (and SwiGLU between them) are
  // stored in bf16: the normed branch inputs, the SwiGLU input and output and their gradients, and the LM
  // head's input and output (the logits, overwritten by their gradient); with flash or cuDNN attention too,
  // everything between the q|k|v and o projections (q, k, v, the attention output and their gradients). The
  // residual stream, the branch outputs and every norm's input stay in d.
  const bool bf16 = execution_.matmul_precision == ops::MatmulPrecision::Bf16 && execution_.bf16_activations;
  const bool fused = execution_.attention != AttentionKernel::Unfused;
  const DType a16 = bf16 ? DType::BF16 : d, attn16 = bf16 && fused ? DType::BF16 : d;
  // With a key/value cache the probabilities span every cached position: (B, NH, T, start + T) at most
  // (B, NH, T, T_max) whatever the window.
  const int64_t keys = execution_.kv_cache ? config_.seq_length : T;
  // The residual stream's tensors hold this rank's Nl rows (all N without sequence parallelism).
  auto nc = [&](Tensor* t) { place(t, d, {Nl, C}); };
  auto rows = [&](Tensor* t) { place(t, d, {Nl}); };
  auto plan_sublayer = [&](SublayerActivations& a) {
    if (shape.in_norm) { place(&a.f_in, a16, {Nl, C}); rows(&a.rstd_in); }
    if (shape.out_norm) { nc(&a.branch); rows(&a.rstd_out); }
    if (shape.post_norm) { nc(&a.s); rows(&a.rstd_post); }
  };
  auto plan_block = [&](BlockActivations& b) {
    plan_sublayer(b.attn);
    plan_sublayer(b.mlp);
    nc(&b.mid);
    place(&b.q, attn16, {B_, NH, T, HS});
    place(&b.k, attn16, {B_, KV, T, HS});
    place(&b.v, attn16, {B_, KV, T, HS});
    if (fused) place(&b.att, d, {B_, NH, T});
    else place(&b.att, d, {B_, NH, T, keys});
    place(&b.attn_out, attn16, {N, NH * HS});
    place(&b.gate_up, a16, {N, 2 * F});
    place(&b.swiglu_out, a16, {N, F});
  };
  const int64_t R = execution_.recompute_layers;
  if (R > 0) {
    plan_block(*recomputed_);
    nc(&recompute_out_);
  }
  const int64_t n = shard_.chunk_layers(), chunks = shard_.chunks;
  for (size_t index = 0; index < slots_.size(); ++index) {  // chunk c's slots plan only its blocks
    const int64_t c = static_cast<int64_t>(index) / num_slots();
    Slot& slot = slots_[index];
    for (int64_t l = std::max(R, c * n); l < (c + 1) * n; ++l) plan_block(slot.blocks[static_cast<size_t>(l)]);
    place(&slot.tokens, DType::I32, {N});
    place(&slot.targets, DType::I32, {N});
    place(&slot.residual, d, {(n + 1) * Nl, C});
    if (shard_.last_stage && c == chunks - 1) {
      place(&slot.logits, a16, {N, V});
      place(&slot.losses, d, {N});
      rows(&slot.final_rstd);
      place(&slot.ce_stats, d, {4, N});
      place(&slot.final_norm_out, a16, {Nl, C});
    }
  }
  BlockScratch& s = *scratch_;
  place(&s.qkv, attn16, {N, QKV});
  place(&s.dqkv, attn16, {N, QKV});
  place(&s.dq, attn16, {B_, NH, T, HS});
  for (Tensor* t : {&s.dk, &s.dv}) place(t, attn16, {B_, KV, T, HS});
  if (execution_.attention == AttentionKernel::Flash) {
    place(&s.datt, d, {B_, NH, T});
  } else if (execution_.attention == AttentionKernel::Cudnn) {
    // Sized at construction for T, whatever the window: a shorter window's graphs check that it suffices.
    place(&s.attention_workspace, DType::F32, {attention_workspace_words_});
  } else {
    for (Tensor* t : {&s.y_heads, &s.dy_heads}) place(t, d, {B_, NH, T, HS});
    place(&s.datt, d, {B_, NH, T, T});
  }
  place(&s.dattn_out, attn16, {N, NH * HS});
  for (Tensor* t : {&s.branch, &s.branch_normed, &s.dmid, &s.dsum, &s.dbranch}) nc(t);
  place(&s.dfin, d, {N, C});
  const DType db_dtype = shape.out_norm ? d : a16;  // bf16 where it only feeds the o / down backward
  place(&s.db, db_dtype, {Nl, C});
  place(&s.dgate_up, a16, {N, 2 * F});
  place(&s.dswiglu, a16, {N, F});
  if (execution_.sequence_parallel) {
    place(&s.gathered, shape.in_norm ? a16 : d, {N, C});
    place(&s.gathered_grad, db_dtype, {N, C});
    if (shard_.last_stage) place(&s.gathered_head, a16, {N, C});
    place(&s.partial, d, {N, C});
    nc(&s.dfin_local);
    place(&s.dnorms, d, {4, C});
  }
  for (ChunkGrads& g : chunk_grads_)
    for (Tensor& t : g.buffer) nc(&t);
  place(&dfinal_, d, {N, C});
  // The recomputed blocks of every slot share one set of activations (copies of the views).
  if (recomputed_) for (Slot& slot : slots_) std::fill_n(slot.blocks.begin(), R, *recomputed_);
}

void Model::plan_buffers() {
  const int64_t T = config_.seq_length, HS = config_.head_size(), L = local_layers();
  const int64_t KV = config_.kv_groups() / shard_.tp_size;
  const DType d = dtype_;
  arena_.reserve(&params_, d, {table_.total_numel()});
  if (execution_.matmul_precision == ops::MatmulPrecision::Bf16 && d == DType::F32)
    arena_.reserve(&params16_, DType::BF16, {table_.total_numel()});
  if (execution_.gradients) arena_.reserve(&grads_, d, {table_.total_numel()});
  if (execution_.recompute_layers > 0) recomputed_ = std::make_unique<BlockActivations>();
  for (Slot& slot : slots_) slot.blocks.resize(static_cast<size_t>(L));
  scratch_ = std::make_unique<BlockScratch>();
  if (execution_.kv_cache) {
    kv_cache_.resize(static_cast<size_t>(L));
    for (KvCache& c : kv_cache_)
      for (Tensor* t : {&c.k, &c.v}) arena_.reserve(t, d, {B_, KV, T, HS});
  }
  plan_activations(T, [&](Tensor* t, DType dtype, Shape shape) { arena_.reserve(t, dtype, shape); });
  arena_.reserve(&rope_cos_, d, {T, HS / 2});
  arena_.reserve(&rope_sin_, d, {T, HS / 2});
  arena_.allocate();
  if (recomputed_) for (Slot& slot : slots_) std::fill_n(slot.blocks.begin(), execution_.recompute_layers, *recomputed_);
  weights_ = weights_of(params_);
  if (execution_.gradients) dweights_ = weights_of(grads_);
  if (params16_.defined()) weights16_ = weights_of(params16_);
}

void Model::set_window(int64_t start, int64_t length) {
  const int64_t T = config_.seq_length;
  PRORES_CHECK(length >= 1 && start >= 0 && start + length <= T, "model: window of positions [", start, ", ",
               start + length, ") outside the sequence length ", T);
  PRORES_CHECK(start == 0 || execution_.kv_cache, "model: a window starting at position ", start,
               " needs a key/value cache (ModelExecution::kv_cache)");
  PRORES_CHECK(execution_.device == Device::CPU || !execution_.kv_cache,
               "model: decoding with a key/value cache runs on the CPU");
  PRORES_CHECK(length % window_multiple() == 0, "model: a window of ", length, " positions: under sequence "
               "parallelism its ", B_ * length, " tokens do not divide over ", shard_.tp_size, " TP ranks");
  if (length != window_length_)
    // Each shape at `length` <= T has at most the elements reserved at T: a new view of the same memory.
    plan_activations(length, [](Tensor* t, DType dtype, Shape shape) { *t = Tensor(t->data, dtype, t->device, shape); });
  window_start_ = start;
  window_length_ = length;
}

Tensor Model::view_of(const Tensor& flat, const std::string& name) const {
  const ParamEntry& e = table_.find(name);
  Tensor t = flat.slice_rows(e.offset, e.numel);
  t.ndim = static_cast<int>(e.shape.size());
  for (int i = 0; i < t.ndim; ++i) t.shape[i] = e.shape[static_cast<size_t>(i)];
  return t;
}

Tensor Model::param(const std::string& name) const { return view_of(params_, name); }
Tensor Model::grad(const std::string& name) const {
  PRORES_CHECK(execution_.gradients, "model: grad(", name, ") of a model built without gradients (evaluation only)");
  return view_of(grads_, name);
}

Model::Weights Model::weights_of(const Tensor& flat) const {
  const bool sandwich = config_.norm_placement == NormPlacement::Sandwich;
  Weights w;
  if (shard_.first_stage) w.embedding = view_of(flat, "model.embed_tokens.weight");
  if (shard_.last_stage) {
    w.final_norm = view_of(flat, "model.norm.weight");
    w.lm_head = view_of(flat, "lm_head.weight");
  }
  for (int64_t l = 0; l < local_layers(); ++l) {
    const int64_t i = shard_.layer(l) - 1;
    auto get = [&](const char* suffix) { return view_of(flat, layer_param(i, suffix)); };
    LayerWeights lw;
    lw.attn_norm = get("input_layernorm.weight");
    const Tensor q = get("self_attn.q_proj.weight"), k = get("self_attn.k_proj.weight");
    lw.qkv = q;  // q, k, v shards are adjacent: one ((NH + 2 KV)/TP · HS, C) matrix
    lw.qkv.shape[0] = q.shape[0] + 2 * k.shape[0];
    lw.o = get("self_attn.o_proj.weight");
    lw.mlp_norm = get("post_attention_layernorm.weight");
    lw.gate_up = get("mlp.gate_proj.weight");  // gate, up shards are adjacent: one (2F/TP, C) matrix
    lw.gate_up.shape[0] *= 2;
    lw.down = get("mlp.down_proj.weight");
    if (sandwich) {
      lw.attn_out_norm = get("attn_out_layernorm.weight");
      lw.mlp_out_norm = get("mlp_out_layernorm.weight");
    }
    w.layers.push_back(lw);
  }
  return w;
}

void Model::set_residual_scales(std::span<const double> scales) {
  PRORES_CHECK(static_cast<int64_t>(scales.size()) == local_layers(), "set_residual_scales: got ", scales.size(),
               " values for ", local_layers(), " layers");
  residual_scale_.assign(scales.begin(), scales.end());
}

void Model::set_residual_scales(const ResidualSchedule& schedule, int64_t t) {
  const int64_t n = shard_.chunk_layers();
  for (int64_t c = 0; c < shard_.chunks; ++c)
    schedule.alphas(t, shard_.layer(c * n), n, residual_scale_.data() + c * n);
}

void Model::zero_grads() {
  PRORES_CHECK(execution_.gradients, "model: zero_grads on a model built without gradients (evaluation only)");
  ops::zero(grads_);
}

void Model::round_matmul_weights() {
  if (params16_.defined()) ops::round_to_bf16(params16_, params_);
}

int64_t Model::window_multiple() const {
  return execution_.sequence_parallel ? shard_.tp_size / std::gcd(B_, shard_.tp_size) : 1;
}

int64_t Model::local_rows() const {
  const int64_t N = B_ * window_length_;
  return execution_.sequence_parallel ? N / shard_.tp_size : N;
}

Tensor Model::residual(int64_t chunk, int64_t slot, int64_t index) const {
  const int64_t N = local_rows();
  return slot_of(chunk, slot).residual.slice_rows(index * N, N);
}

Tensor Model::logits(int64_t slot) const { return slot_of(shard_.chunks - 1, slot).logits; }

std::vector<double> Model::block_output_sum_squares(int64_t chunk, int64_t slot) const {
  PRORES_CHECK(chunk >= 0 && chunk < shard_.chunks && slot >= 0 && slot < num_slots(), "model: activation slot ", slot,
               " of chunk ", chunk, " out of range");
  std::vector<double> sums(static_cast<size_t>(shard_.chunk_layers()));
  for (size_t j = 0; j < sums.size(); ++j)
    sums[j] = ops::sum_squares(residual(chunk, slot, static_cast<int64_t>(j) + 1));
  return sums;
}

double Model::forward(int64_t chunk, int64_t slot_index, const int32_t* tokens, const int32_t* targets) {
  PRORES_CHECK(chunk >= 0 && chunk < shard_.chunks && slot_index >= 0 && slot_index < num_slots(),
               "model: activation slot ", slot_index, " of chunk ", chunk, " out of range");
  Slot& slot = slot_of(chunk, slot_index);
  const int64_t N = B_ * window_length_, n = shard_.chunk_layers();
  // Token and target ids are checked against the vocabulary by the vocabulary-parallel ops.
  if (shard_.first_stage && chunk == 0) {
    ops::copy_from_host(slot.tokens, tokens);
    vocab_parallel_embedding_forward(residual(chunk, slot_index, 0), slot.tokens, weights_.embedding, vocab_start_,
                                     *tp_, execution_.sequence_parallel ? scratch_->partial : Tensor());
  }
  for (int64_t j = 0; j < n; ++j)
    block_forward(slot, chunk * n + j, residual(chunk, slot_index, j), residual(chunk, slot_index, j + 1));
  if (!shard_.last_stage || chunk != shard_.chunks - 1) return 0.0;
  ops::copy_from_host(slot.targets, targets);
  ops::rmsnorm_forward(slot.final_norm_out, slot.final_rstd, residual(chunk, slot_index, n), weights_.final_norm,
                       config_.norm_eps, 1.0);
  ops::linear_forward(slot.logits, whole_rows(scratch_->gathered_head, slot.final_norm_out), matmul_weights().lm_head,
                      execution_.matmul_precision);
  vocab_parallel_cross_entropy_forward(slot.losses, slot.logits, slot.targets, vocab_start_,
                                       VocabParallelCrossEntropy::from_buffer(slot.ce_stats), *tp_);
  return ops::sum(slot.losses) / static_cast<double>(N);
}

void Model::target_log_probs(int64_t slot_index, double* log_probs, uint8_t* greedy) const {
  PRORES_CHECK(shard_.last_stage, "model: target log-probabilities live on the last pipeline stage");
  PRORES_CHECK(slot_index >= 0 && slot_index < num_slots(), "model: activation slot ", slot_index, " out of range");
  const Slot& slot = slot_of(shard_.chunks - 1, slot_index);
  const int64_t N = B_ * window_length_;
  const std::vector<double> losses = host_values(slot.losses), stats = host_values(slot.ce_stats);
  // ce_stats rows: row_max, row_sumexp, target_logit, shard_max (VocabParallelCrossEntropy::from_buffer).
  for (int64_t n = 0; n < N; ++n) {
    log_probs[n] = -losses[static_cast<size_t>(n)];
    greedy[n] = stats[static_cast<size_t>(2 * N + n)] >= stats[static_cast<size_t>(n)] ? 1 : 0;
  }
}

void Model::backward(int64_t chunk, int64_t slot_index, double loss_scale) {
  PRORES_CHECK(execution_.gradients, "model: backward on a model built without gradients (evaluation only)");
  PRORES_CHECK(chunk >= 0 && chunk < shard_.chunks && slot_index >= 0 && slot_index < num_slots(),
               "model: activation slot ", slot_index, " of chunk ", chunk, " out of range");
  PRORES_CHECK(window_length_ == config_.seq_length, "model: backward after a forward over ", window_length_,
               " positions; training runs the whole sequence of ", config_.seq_length);
  Slot& slot = slot_of(chunk, slot_index);
  const int64_t N = B_ * config_.seq_length, n = shard_.chunk_layers();
  ChunkGrads& grads = chunk_grads_[static_cast<size_t>(chunk)];
  Tensor dy = grads.buffer[grads.received], dx = grads.buffer[1 - grads.received];
  if (shard_.last_stage && chunk == shard_.chunks - 1) {
    vocab_parallel_cross_entropy_backward(slot.logits, slot.logits, slot.targets, vocab_start_,
                                          VocabParallelCrossEntropy::from_buffer(slot.ce_stats),
                                          loss_scale / static_cast<double>(N));
    ops::linear_backward(dfinal_, dweights_.lm_head, slot.logits,
                         whole_rows(scratch_->gathered_head, slot.final_norm_out), matmul_weights().lm_head,
                         execution_.matmul_precision, ops::InputGrad::Overwrite);
    // Column-parallel head: the input gradient sums over shards (this rank's rows of the sum under sequence
    // parallelism).
    Tensor dnormed = dfinal_;
    if (execution_.sequence_parallel) {
      tp_->reduce_scatter(scratch_->dfin_local, dfinal_);
      dnormed = scratch_->dfin_local;
    } else {
      tp_->all_reduce(dfinal_, ReduceOp::Sum);
    }
    begin_norm_grads();
    ops::rmsnorm_backward(dy, norm_grad(0, dweights_.final_norm), dnormed, residual(chunk, slot_index, n),
                          weights_.final_norm, slot.final_rstd, 1.0, ops::InputGrad::Overwrite);
    end_norm_grads({dweights_.final_norm});
  }
  for (int64_t j = n - 1; j >= 0; --j) {
    const int64_t l = chunk * n + j;
    if (l < execution_.recompute_layers)  // the activations the backward reads, as the forward left them
      block_forward(slot, l, residual(chunk, slot_index, j), recompute_out_);
    block_backward(slot, l, residual(chunk, slot_index, j), dy, dx);
    if (grad_ready_hook_) grad_ready_hook_(l);
    std::swap(dx, dy);
  }
  grads.received = dy.data == grads.buffer[0].data ? 1 : 0;  // dy holds the input gradient
  if (shard_.first_stage && chunk == 0) {
    vocab_parallel_embedding_backward(dweights_.embedding, whole_rows(scratch_->partial, dy), slot.tokens,
                                      vocab_start_);
    if (grad_ready_hook_) grad_ready_hook_(-1);
  }
}

}  // namespace prores
