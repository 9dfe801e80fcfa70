// Scorer (scorer.h).
#include "eval/scorer.h"

#include <algorithm>
#include <numeric>

#include "core/check.h"

namespace prores::eval {

Scorer::Scorer(train::TrainStep& step, const ParallelLayout& layout, int64_t micro_batches)
    : step_(step), layout_(layout), micro_batches_(micro_batches) {
  PRORES_CHECK(micro_batches >= 1, "scorer: micro-batches per pass must be positive, got ", micro_batches);
}

int64_t Scorer::max_length() const { return step_.model().config().seq_length; }

std::vector<RequestScore> Scorer::score(const std::vector<TokenRequest>& requests, const ScoreProgress& progress) {
  const LayoutShape& ls = layout_.shape();
  Model& model = step_.model();
  const int64_t R = static_cast<int64_t>(requests.size()), B = model.micro_batch();
  if (R == 0) return {};
  for (const TokenRequest& r : requests)
    PRORES_CHECK(r.tokens.size() >= 2 && static_cast<int64_t>(r.tokens.size()) <= max_length() + 1 &&
                     r.continuation >= 0 && r.continuation < static_cast<int64_t>(r.tokens.size()),
                 "scorer: a request of ", r.tokens.size(), " tokens scoring ", r.continuation,
                 " does not fit the model's ", max_length(), " positions");
  // Longest first (lm-eval's order), ties in request order: every rank forms the same groups.
  std::vector<int64_t> order(static_cast<size_t>(R));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return requests[static_cast<size_t>(a)].tokens.size() > requests[static_cast<size_t>(b)].tokens.size();
  });
  const int64_t group_rows = B * micro_batches_, groups = (R + group_rows - 1) / group_rows;
  // (logprob, greedy) per request, written by the one rank that scores it (last stage, TP rank 0) and summed.
  std::vector<double> results(static_cast<size_t>(2 * R), 0.0);
  const bool writer = ls.last_stage() && ls.tp_rank == 0;
  std::vector<double> log_probs;
  std::vector<uint8_t> greedy;
  int64_t mine = 0, done = 0;
  for (int64_t g = ls.dp_rank; g < groups; g += ls.dp) mine += std::min(group_rows, R - g * group_rows);
  tokens_read_ = 0;
  for (int64_t g = ls.dp_rank; g < groups; g += ls.dp) {
    const int64_t first = g * group_rows, count = std::min(group_rows, R - first);
    const auto request_at = [&](int64_t row) -> const TokenRequest* {
      return row < count ? &requests[static_cast<size_t>(order[static_cast<size_t>(first + row)])] : nullptr;
    };
    // The longest input of the group, padded to a window the model takes (sequence parallelism splits its tokens
    // over TP); the padding lies after every request's positions, which causal attention does not see.
    const int64_t longest = static_cast<int64_t>(request_at(0)->tokens.size()) - 1, multiple = model.window_multiple();
    const int64_t n = (longest + multiple - 1) / multiple * multiple;
    model.set_window(0, n);
    log_probs.resize(static_cast<size_t>(B * n));
    greedy.resize(static_cast<size_t>(B * n));
    const auto fill = [&](int64_t m, int32_t* tokens, int32_t* targets) {
      std::fill(tokens, tokens + B * n, 0);
      std::fill(targets, targets + B * n, 0);
      for (int64_t b = 0; b < B; ++b) {
        const TokenRequest* r = request_at(m * B + b);
        if (r == nullptr) continue;
        const int64_t len = static_cast<int64_t>(r->tokens.size()) - 1;
        std::copy_n(r->tokens.begin(), len, tokens + b * n);
        std::copy_n(r->tokens.begin() + 1, len, targets + b * n);
      }
    };
    const auto scored = [&](int64_t m) {
      if (!writer) return;
      model.target_log_probs(0, log_probs.data(), greedy.data());
      for (int64_t b = 0; b < B; ++b) {
        const TokenRequest* r = request_at(m * B + b);
        if (r == nullptr) continue;
        const int64_t len = static_cast<int64_t>(r->tokens.size()) - 1;
        double sum = 0;
        bool all_greedy = true;
        for (int64_t t = len - r->continuation; t < len; ++t) {
          sum += log_probs[static_cast<size_t>(b * n + t)];
          all_greedy = all_greedy && greedy[static_cast<size_t>(b * n + t)] != 0;
        }
        const size_t index = static_cast<size_t>(order[static_cast<size_t>(first + m * B + b)]);
        results[2 * index] = sum;
        results[2 * index + 1] = all_greedy ? 1.0 : 0.0;
      }
    };
    step_.forward_only((count + B - 1) / B, fill, scored);
    for (int64_t row = 0; row < count; ++row) tokens_read_ += static_cast<int64_t>(request_at(row)->tokens.size()) - 1;
    done += count;
    if (progress && ls.rank == 0) progress(done, mine);
  }
  model.set_window(0, max_length());
  layout_.world().all_reduce(Tensor(results.data(), DType::F64, Device::CPU, {2 * R}), ReduceOp::Sum);
  std::vector<RequestScore> scores(static_cast<size_t>(R));
  for (int64_t i = 0; i < R; ++i)
    scores[static_cast<size_t>(i)] = {results[static_cast<size_t>(2 * i)], results[static_cast<size_t>(2 * i + 1)] > 0.5};
  return scores;
}

}  // namespace prores::eval
