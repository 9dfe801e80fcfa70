// ParallelLayout: validation of a TP × DP × PP layout against the model and batch (pure arithmetic, so
// every rank throws the same message), the rank ↔ coordinate mapping, the layer split across pipeline
// stages, and the axis sub-communicators made from the world by split().
#include "parallel/layout.h"

#include <cctype>
#include <charconv>
#include <numeric>
#include <sstream>

#include "core/check.h"

namespace prores {

namespace {

// Strips leading and trailing whitespace.
std::string trim(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

// Checks that every TP-sharded model dimension divides evenly across the TP ranks.
void check_tensor_parallel_divisibility(int64_t tp, const ModelConfig& model) {
  PRORES_CHECK(model.num_attention_heads % tp == 0, "--num-attention-heads ", model.num_attention_heads,
               " is not divisible by --tensor-model-parallel-size ", tp);
  PRORES_CHECK(model.kv_groups() % tp == 0, "--num-query-groups ", model.kv_groups(),
               " is not divisible by --tensor-model-parallel-size ", tp);
  PRORES_CHECK(model.ffn_hidden_size % tp == 0, "--ffn-hidden-size ", model.ffn_hidden_size,
               " is not divisible by --tensor-model-parallel-size ", tp);
  PRORES_CHECK(model.vocab_size % tp == 0, "--vocab-size ", model.vocab_size,
               " is not divisible by --tensor-model-parallel-size ", tp);
}

// Layer counts per stage: the explicit --pipeline-layers list (validated) or the even split, where the
// first L mod PP stages hold one extra block.
std::vector<int64_t> stage_layer_counts(int64_t pp, const ParallelConfig& config, int64_t num_layers) {
  PRORES_CHECK(pp <= num_layers, "--pipeline-model-parallel-size ", pp, " exceeds --num-layers ", num_layers,
               " (every stage needs at least one layer)");
  if (config.pipeline_layers.empty()) {
    std::vector<int64_t> counts(static_cast<size_t>(pp), num_layers / pp);
    for (int64_t s = 0; s < num_layers % pp; ++s) ++counts[static_cast<size_t>(s)];
    return counts;
  }
  const auto& list = config.pipeline_layers;
  PRORES_CHECK(static_cast<int64_t>(list.size()) == pp, "--pipeline-layers has ", list.size(),
               " entries but --pipeline-model-parallel-size is ", pp);
  for (size_t s = 0; s < list.size(); ++s) {
    PRORES_CHECK(list[s] >= 1, "--pipeline-layers entry ", s, " is ", list[s],
                 " (every stage needs at least one layer)");
  }
  const int64_t sum = std::accumulate(list.begin(), list.end(), int64_t{0});
  PRORES_CHECK(sum == num_layers, "--pipeline-layers sums to ", sum, " but --num-layers is ", num_layers);
  return list;
}

}  // namespace

std::vector<int64_t> parse_pipeline_layers(const std::string& text) {
  std::vector<int64_t> counts;
  const std::string whole = trim(text);
  if (whole.empty()) return counts;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const std::string token = trim(item);
    int64_t value = 0;
    const char* end = token.data() + token.size();
    const auto [ptr, ec] = std::from_chars(token.data(), end, value);
    PRORES_CHECK(!token.empty() && ec == std::errc() && ptr == end, "--pipeline-layers: '", text,
                 "' is not a comma-separated list of layer counts (e.g. 8,8,7,7)");
    counts.push_back(value);
  }
  PRORES_CHECK(whole.back() != ',', "--pipeline-layers: '", text,
               "' is not a comma-separated list of layer counts (e.g. 8,8,7,7)");
  return counts;
}

LayoutShape LayoutShape::compute(int64_t world, int64_t rank, const ParallelConfig& config,
                                 const ModelConfig& model, int64_t global_batch, int64_t micro_batch) {
  PRORES_CHECK(world >= 1, "world size must be at least 1, got ", world);
  PRORES_CHECK(rank >= 0 && rank < world, "rank ", rank, " is outside the world of size ", world);
  PRORES_CHECK(config.tensor >= 1, "--tensor-model-parallel-size must be at least 1, got ", config.tensor);
  PRORES_CHECK(config.pipeline >= 1, "--pipeline-model-parallel-size must be at least 1, got ", config.pipeline);
  PRORES_CHECK(model.num_layers >= 1, "--num-layers must be at least 1, got ", model.num_layers);
  PRORES_CHECK(micro_batch >= 1, "--micro-batch-size must be at least 1, got ", micro_batch);
  PRORES_CHECK(global_batch >= 1, "--global-batch-size must be at least 1, got ", global_batch);

  LayoutShape s;
  s.world = world;
  s.rank = rank;
  s.tp = config.tensor;
  s.pp = config.pipeline;
  const int64_t model_parallel = s.tp * s.pp;
  PRORES_CHECK(world % model_parallel == 0, "--tensor-model-parallel-size ", s.tp,
               " × --pipeline-model-parallel-size ", s.pp, " = ", model_parallel, " does not divide the world size ",
               world);
  s.dp = world / model_parallel;
  check_tensor_parallel_divisibility(s.tp, model);
  if (config.sequence_parallel) {
    PRORES_CHECK(s.tp >= 2, "--sequence-parallel needs --tensor-model-parallel-size of at least 2, got ", s.tp);
    const int64_t tokens = micro_batch * model.seq_length;
    PRORES_CHECK(tokens % s.tp == 0, "--sequence-parallel: the ", tokens, " tokens of a micro-batch (--micro-batch-size ",
                 micro_batch, " × --seq-length ", model.seq_length, ") are not divisible by --tensor-model-parallel-size ", s.tp);
  }
  const std::vector<int64_t> counts = stage_layer_counts(s.pp, config, model.num_layers);
  PRORES_CHECK(global_batch % (micro_batch * s.dp) == 0, "--global-batch-size ", global_batch,
               " is not divisible by --micro-batch-size ", micro_batch, " × data-parallel size ", s.dp);

  s.tp_rank = rank % s.tp;
  s.dp_rank = (rank / s.tp) % s.dp;
  s.pp_rank = rank / (s.tp * s.dp);
  s.first_layer = 1 + std::accumulate(counts.begin(), counts.begin() + s.pp_rank, int64_t{0});
  s.num_layers = counts[static_cast<size_t>(s.pp_rank)];
  const int64_t n = config.virtual_stage_layers;
  if (n != 0) {
    PRORES_CHECK(n >= 1, "--num-layers-per-virtual-pipeline-stage must be at least 1, got ", n);
    PRORES_CHECK(s.pp >= 2, "--num-layers-per-virtual-pipeline-stage needs --pipeline-model-parallel-size of at least "
                 "2, got ", s.pp);
    PRORES_CHECK(config.pipeline_layers.empty(), "--num-layers-per-virtual-pipeline-stage and --pipeline-layers "
                 "exclude each other (virtual stages split the layers evenly)");
    PRORES_CHECK(model.num_layers % (s.pp * n) == 0, "--num-layers ", model.num_layers, " is not divisible by "
                 "--pipeline-model-parallel-size ", s.pp, " × --num-layers-per-virtual-pipeline-stage ", n);
    s.chunks = model.num_layers / (s.pp * n);
    const int64_t micro_batches = global_batch / (micro_batch * s.dp);
    PRORES_CHECK(s.chunks == 1 || micro_batches % s.pp == 0, "--num-layers-per-virtual-pipeline-stage: the ",
                 micro_batches, " micro-batches per pipeline (--global-batch-size ", global_batch, " / (",
                 "--micro-batch-size ", micro_batch, " × data-parallel size ", s.dp, ")) are not a multiple of "
                 "--pipeline-model-parallel-size ", s.pp, ", which the interleaved schedule needs");
    if (s.chunks > 1) {
      s.first_layer = s.pp_rank * n + 1;
      s.num_layers = s.chunks * n;
      s.chunk_stride = s.pp * n;
    }
  }
  return s;
}

std::string LayoutShape::describe() const {
  std::string layers;
  const int64_t n = num_layers / chunks;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t first = first_layer + c * chunk_stride;
    layers += detail::concat(c == 0 ? "" : ",", first);
    if (n > 1) layers += detail::concat("-", first + n - 1);
  }
  return detail::concat("rank ", rank, "/", world, ": tp ", tp_rank, "/", tp, ", dp ", dp_rank, "/", dp, ", pp ",
                        pp_rank, "/", pp, ", layers ", layers);
}

ParallelLayout::ParallelLayout(Communicator& world, const ParallelConfig& config, const ModelConfig& model,
                               int64_t global_batch, int64_t micro_batch)
    : world_(world),
      config_(config),
      shape_(LayoutShape::compute(world.size(), world.rank(), config, model, global_batch, micro_batch)) {
  const LayoutShape& s = shape_;
  // Each axis groups the ranks whose other coordinates agree (color) and orders them along the axis (key).
  // Every rank makes the four split() calls in the same order: they are collective over the world.
  tp_ = world.split(static_cast<int>(s.dp_rank + s.dp * s.pp_rank), static_cast<int>(s.tp_rank));
  dp_ = world.split(static_cast<int>(s.tp_rank + s.tp * s.pp_rank), static_cast<int>(s.dp_rank));
  pp_ = world.split(static_cast<int>(s.tp_rank + s.tp * s.dp_rank), static_cast<int>(s.pp_rank));
  mp_ = world.split(static_cast<int>(s.dp_rank), static_cast<int>(s.tp_rank + s.tp * s.pp_rank));
  PRORES_CHECK(tp_->size() == s.tp && tp_->rank() == s.tp_rank && dp_->size() == s.dp && dp_->rank() == s.dp_rank &&
                   pp_->size() == s.pp && pp_->rank() == s.pp_rank && mp_->size() == s.tp * s.pp,
               "communicator split does not match the layout (", s.describe(), "): tp ", tp_->rank(), "/",
               tp_->size(), ", dp ", dp_->rank(), "/", dp_->size(), ", pp ", pp_->rank(), "/", pp_->size(),
               ", model-parallel size ", mp_->size());
}

}  // namespace prores
