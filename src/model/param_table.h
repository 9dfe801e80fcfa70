// ParamTable: the ordered list of one rank's parameters (Hugging Face Llama names, global layer indices),
// each with its global shape, the shard this rank holds (tensor-parallel split axis and offset), and its
// offset in the rank's flat parameter / gradient buffers. DP buckets, ZeRO shards, checkpoints and the
// optimizer's weight-decay segments all key on this one table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "parallel/layout.h"

namespace prores {

// Which part of the model one rank holds: its tensor-parallel coordinate and its pipeline stage's blocks: one run
// of consecutive blocks, or with virtual stages `chunks` runs of num_layers / chunks blocks, chunk_stride global
// layers apart (local block i is global layer first_layer + (i div n)·chunk_stride + i mod n).
struct ModelShard {
  int64_t tp_size = 1, tp_rank = 0;
  int64_t first_layer = 1;  // 1-based global index of the stage's first block
  int64_t num_layers = -1;  // blocks on this stage; -1: all of them (a single stage)
  bool first_stage = true;  // holds the token embedding (before its first chunk)
  bool last_stage = true;   // holds the final norm and the LM head (after its last chunk)
  int64_t chunks = 1;       // model chunks (virtual pipeline stages) of this stage
  int64_t chunk_stride = 0;  // with chunks > 1: global layers from one chunk's first block to the next one's
  int64_t chunk_layers() const { return num_layers / chunks; }
  // The 1-based global layer of local block i (num_layers resolved, >= 0).
  int64_t layer(int64_t i) const {
    const int64_t n = chunk_layers();
    return first_layer + (i / n) * chunk_stride + i % n;
  }
};

// The part of the model the rank at layout coordinate ls holds.
inline ModelShard shard_of(const LayoutShape& ls) {
  return {ls.tp, ls.tp_rank, ls.first_layer, ls.num_layers, ls.first_stage(), ls.last_stage(), ls.chunks,
          ls.chunk_stride};
}

// What a parameter is to the model, for the code that treats kinds of parameters differently (weight decay,
// initialization, folding α into the weights on export).
enum class ParamRole {
  Embedding,    // model.embed_tokens.weight
  Norm,         // an RMSNorm gain: input, post-attention, sandwich output and final norms
  QueryKey,     // q_proj, k_proj
  Value,        // v_proj
  ResidualOut,  // o_proj, down_proj: the last matmul of a residual branch, whose output α(l, t) scales
  MlpIn,        // gate_proj, up_proj
  LmHead,       // lm_head.weight
};

struct ParamEntry {
  std::string name;                  // e.g. "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> global_shape;
  std::vector<int64_t> shape;        // this rank's shard
  int shard_axis = -1;               // -1: replicated over TP; 0: rows split; 1: columns split
  int64_t shard_offset = 0;          // first global index along shard_axis held here
  int64_t offset = 0;                // element offset in the flat buffer
  int64_t numel = 0;                 // of the shard
  ParamRole role = ParamRole::Norm;
  bool weight_decay = false;         // linear weights (LM head included); not norms, not the embedding
  int64_t layer = 0;                 // 1-based global block index; 0 for embedding / final norm / head
  bool tp_replicated() const { return shard_axis < 0; }
};

class ParamTable {
 public:
  explicit ParamTable(const ModelConfig& config, const ModelShard& shard = {});
  const std::vector<ParamEntry>& entries() const { return entries_; }
  const ParamEntry& find(const std::string& name) const;  // throws naming the parameter
  bool contains(const std::string& name) const;
  int64_t total_numel() const { return total_; }
  // Elements of this rank's matrix-multiply parameters (linear weights, LM head included): N in 6·N.
  int64_t matmul_numel() const;

 private:
  void add(const std::string& name, std::vector<int64_t> global_shape, int shard_axis, ParamRole role,
           int64_t layer);
  std::vector<ParamEntry> entries_;
  int64_t total_ = 0;
  int64_t tp_size_, tp_rank_;
};

// "model.layers.<i>.<suffix>" for the 0-based global block index i (Hugging Face's numbering).
std::string layer_param(int64_t layer_index0, const std::string& suffix);

}  // namespace prores
