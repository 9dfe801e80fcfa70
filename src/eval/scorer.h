// Batched forward-only scoring of log-likelihood requests on a loaded model in any TP × PP × DP layout. The
// requests, the same list on every rank, are sorted longest first and cut into groups of micro_batches ×
// micro-batch-size rows; data-parallel replicas take the groups in turn; each group runs as one forward-only
// pipeline pass at the group's longest input (Model::set_window), rows right-padded (attention is causal,
// so padding after a row changes none of its positions).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "eval/requests.h"
#include "parallel/layout.h"
#include "train/train_step.h"

namespace prores::eval {

struct RequestScore {
  double logprob = 0;   // Σ log p of the continuation's tokens
  bool greedy = false;  // every continuation token an argmax
};

// Called on world rank 0 after each of its groups with the requests that rank's replica has scored so far
// and the number that replica will score.
using ScoreProgress = std::function<void(int64_t done, int64_t total)>;

class Scorer {
 public:
  // step: built for evaluation and loaded (train::load_for_inference) on every rank of layout; micro_batches per
  // pipeline pass (at least 1; the pipeline depth keeps every stage busy).
  Scorer(train::TrainStep& step, const ParallelLayout& layout, int64_t micro_batches);
  // Collective over the layout's world. Every request has at most max_length() + 1 tokens (make_request,
  // rolling_requests). Returns every request's score on every rank.
  std::vector<RequestScore> score(const std::vector<TokenRequest>& requests, const ScoreProgress& progress = {});
  int64_t max_length() const;
  // World rank 0: the rank that logs and writes files.
  bool is_reporter() const { return layout_.shape().rank == 0; }
  // Input tokens (padding excluded) of the requests this rank's replica scored in the last score().
  int64_t tokens_read() const { return tokens_read_; }

 private:
  train::TrainStep& step_;
  const ParallelLayout& layout_;
  int64_t micro_batches_;
  int64_t tokens_read_ = 0;
};

}  // namespace prores::eval
