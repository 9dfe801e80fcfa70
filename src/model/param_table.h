// ParamTable: the ordered list of model parameters (Hugging Face Llama names), each with its shape and
// its offset in the flat parameter / gradient buffers. DP buckets, ZeRO shards, checkpoints and the
// optimizer's weight-decay segments all key on this one table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace prores {

struct ParamEntry {
  std::string name;             // e.g. "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;   // global shape
  int64_t offset = 0;           // element offset in the flat buffer
  int64_t numel = 0;
  bool weight_decay = false;    // true for linear weights (LM head included); false for norms, embedding
  int64_t layer = 0;            // 1-based block index, 0 for embedding / final norm / head
};

class ParamTable {
 public:
  explicit ParamTable(const ModelConfig& config);
  const std::vector<ParamEntry>& entries() const { return entries_; }
  const ParamEntry& find(const std::string& name) const;  // throws naming the parameter
  bool contains(const std::string& name) const;
  int64_t total_numel() const { return total_; }
  // Parameters that take part in matrix multiplies (every linear weight, LM head included): N in 6·N.
  int64_t matmul_numel() const;

 private:
  void add(const std::string& name, std::vector<int64_t> shape, bool weight_decay, int64_t layer);
  std::vector<ParamEntry> entries_;
  int64_t total_ = 0;
};

// Name helpers shared by the model, initialisation and checkpoint code.
std::string layer_param(int64_t layer_index0, const std::string& suffix);  // "model.layers.<i>.<suffix>"

}  // namespace prores
