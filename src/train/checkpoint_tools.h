// Offline checkpoint tools (no MPI): resharding into another TP × PP layout, and the Hugging Face
// LlamaForCausalLM export (folding ProRes α and LayerNorm Scaling into the weights) and import.
#pragma once
#include <string>

#include "core/progress.h"
#include "parallel/layout.h"

namespace prores::train {

// Reads the checkpoint --load names (any layout) and writes it to save_dir laid out for `layout`'s TP and
// PP (DP = 1: ZeRO-1 optimizer shards are merged into the model files), parameters and AdamW moments.
// Each of the three tools reports the tensors it has read or written through `progress`.
void convert_checkpoint(const std::string& load, const std::string& save_dir, const ParallelConfig& layout,
                        const ProgressOptions& progress);

// Writes HF_DIR/config.json, HF_DIR/model.safetensors and, when the run had one, HF_DIR/tokenizer.model.
// Only Pre-LN models map onto LlamaForCausalLM (others are refused, naming --norm-placement); while α < 1
// it is folded into o_proj and down_proj, and LayerNorm Scaling's 1/√l into the block's norm weights, so
// the exported model computes the same function.
void export_hf(const std::string& load, const std::string& hf_dir, const ProgressOptions& progress);

// Turns a LlamaForCausalLM directory (config.json, model.safetensors) into a single-rank checkpoint at
// iteration 0 without optimizer state, which `prores train --load` continues from (with
// --prores-schedule none: any residual scaling is already in the weights).
void import_hf(const std::string& hf_dir, const std::string& save_dir, const ProgressOptions& progress);

}  // namespace prores::train
