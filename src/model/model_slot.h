// Model::Slot: the activations of one micro-batch in flight on one chunk of this stage (model.h), shared by the
// model's translation units.
#pragma once
#include <vector>

#include "model/block.h"
#include "model/model.h"

namespace prores {

struct Model::Slot {
  std::vector<BlockActivations> blocks;   // this stage's blocks (only the slot's chunk's are planned)
  Tensor tokens, targets;                 // (N) i32
  Tensor residual;                        // ((n + 1)·N, C): the stream entering each of the chunk's n blocks, then out
  Tensor logits;                          // (N, V/TP) on the last stage; bf16 with bf16 activations
  Tensor losses;                          // (N)
  Tensor final_norm_out, final_rstd;      // (N, C), (N)
  Tensor ce_stats;                        // (4, N): vocabulary-parallel cross-entropy statistics
};

}  // namespace prores
