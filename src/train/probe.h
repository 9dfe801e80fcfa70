// The probe batch and what is measured on it (docs/diagnostics.md): a fixed held-out batch, the first
// `samples` samples of the validation split (the same tokens for every step, every run with the same data and
// seed, and every layout), run forward only through the model with Model::set_probe. Two measurements:
//  - probe_norms: per block, the mean over tokens of the L2 norm of the residual stream after the block and of
//    each sublayer's branch output before and after α (training logs them every --probe-interval steps);
//  - LayerwiseSimilarity: per block, the mean over tokens of the cosine similarity between each checkpoint's
//    block output and branch outputs and those of a reference (final) checkpoint (`prores analyze`).
// Every function is collective over the layout's world: each data-parallel replica runs its contiguous share of
// the samples through its pipeline, TP rank 0 of each stage measures its blocks, and one all-reduce gathers the
// blocks of every stage and the tokens of every replica.
#pragma once
#include <cstdint>
#include <vector>

#include "data/byte_dataset.h"
#include "parallel/layout.h"
#include "train/train_step.h"

namespace prores::train {

// Checks that `samples` probe samples can be laid out over the layout and drawn from the validation split;
// throws prores::Error naming `option` (--probe-samples) otherwise.
void check_probe_samples(int64_t samples, const LayoutShape& ls, int64_t micro_batch_size,
                         const data::TokenDataset& data, const char* option);

struct ProbeNorms {
  int64_t tokens = 0;  // samples × sequence length
  // One value per block (layers 1..L), each the mean over the probe tokens of a per-token L2 norm.
  std::vector<double> act_norm;                                      // residual stream after the block
  std::vector<double> attn_branch_norm, attn_branch_scaled_norm;     // attention branch output, before / after α
  std::vector<double> mlp_branch_norm, mlp_branch_scaled_norm;       // MLP branch output, before / after α
};

// The norms of the model as it stands (weights, α and bf16 rounding as the caller set them).
ProbeNorms probe_norms(TrainStep& step, const ParallelLayout& layout, const data::TokenDataset& data,
                       int64_t samples);

// Per block, mean over the probe tokens of cos(x_t, r_t) for the block output and both branch outputs (before
// α: the cosine does not depend on α > 0, and the branch runs even where α = 0), x from the model as it stands,
// r from the reference. A token whose vector is zero on either side counts 0.
struct Similarity {
  int64_t tokens = 0;
  std::vector<double> block_output, attn_branch, mlp_branch;  // layers 1..L
};

class LayerwiseSimilarity {
 public:
  // Runs the probe batch through step's model as it stands now and keeps its outputs as the reference (each
  // rank the vectors of its blocks and tokens: samples/DP × T × C × 3 floats per block on TP rank 0).
  LayerwiseSimilarity(TrainStep& step, const ParallelLayout& layout, const data::TokenDataset& data,
                      int64_t samples);
  // The similarity of step's model as it stands now to the reference.
  Similarity compare(TrainStep& step) const;

 private:
  const ParallelLayout& layout_;
  const data::TokenDataset& data_;
  int64_t samples_;
  std::vector<std::vector<float>> reference_;  // [3 · block + point]: (tokens of this replica, C)
};

}  // namespace prores::train
