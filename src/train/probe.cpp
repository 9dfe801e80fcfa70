// The probe batch, its norms and the layerwise similarity (see probe.h).
#include "train/probe.h"

#include <cmath>
#include <functional>

#include "core/check.h"
#include "ops/memory.h"

namespace prores::train {

namespace {

constexpr int64_t kPoints = 3;  // the ProbePoints, in this order

int64_t point_index(ProbePoint point) {
  switch (point) {
    case ProbePoint::AttentionBranch: return 0;
    case ProbePoint::MlpBranch: return 1;
    case ProbePoint::BlockOutput: return 2;
  }
  return 0;
}

// One probed tensor, in host memory: `rows` tokens of C values, the first of them token `first_row` of this
// replica's share of the probe batch.
struct ProbedRows {
  int64_t block = 0;  // local index on the stage
  int64_t point = 0;  // point_index
  const float* values = nullptr;
  int64_t rows = 0, first_row = 0;
};

// Runs this replica's share of the probe batch (samples / DP contiguous samples of the validation split)
// forward through its pipeline with the model's probe on, and hands every probed tensor to visit on TP rank 0
// (the other TP ranks hold the same values). Collective over the replica.
void run_probe(TrainStep& step, const ParallelLayout& layout, const data::TokenDataset& data, int64_t samples,
               const std::function<void(const ProbedRows&)>& visit) {
  const LayoutShape& ls = layout.shape();
  Model& model = step.model();
  const int64_t B = model.micro_batch(), T = model.config().seq_length, C = model.config().hidden_size;
  PRORES_CHECK(model.window_start() == 0 && model.window_length() == T, "probe: the model's window is not [0, T)");
  const int64_t per_replica = samples / ls.dp, first_sample = ls.dp_rank * per_replica;
  std::vector<float> host;
  int64_t micro = -1;  // the micro-batch in flight on this stage (forwards run in order)
  model.set_probe([&](int64_t block, ProbePoint point, const Tensor& values) {
    if (block == 0 && point == ProbePoint::AttentionBranch) ++micro;
    if (ls.tp_rank != 0) return;
    PRORES_CHECK(values.dtype == DType::F32, "probe: expected f32 activations, got ", dtype_name(values.dtype));
    const float* data_ptr = values.as<float>();
    if (values.device != Device::CPU) {
      host.resize(static_cast<size_t>(values.numel()));
      ops::copy_to_host(host.data(), values);
      data_ptr = host.data();
    }
    visit({block, point_index(point), data_ptr, values.numel() / C, micro * B * T});
  });
  struct ProbeOff {  // also when a forward throws
    Model& model;
    ~ProbeOff() { model.set_probe({}); }
  } probe_off{model};
  step.forward_only(per_replica / B, [&](int64_t m, int32_t* tokens, int32_t* targets) {
    for (int64_t b = 0; b < B; ++b)
      data.get_sample(data::Split::Valid, first_sample + m * B + b, tokens + b * T, targets + b * T);
  }, [](int64_t) {});
}

double row_norm(const float* x, int64_t C) {
  double sum = 0;
  for (int64_t c = 0; c < C; ++c) sum += static_cast<double>(x[c]) * x[c];
  return std::sqrt(sum);
}

// Sums of (points × L) values over the world, divided by the probe's token count.
std::vector<double> world_mean(const ParallelLayout& layout, std::vector<double> sums, int64_t tokens) {
  layout.world().all_reduce(Tensor(sums.data(), DType::F64, Device::CPU, {static_cast<int64_t>(sums.size())}),
                            ReduceOp::Sum);
  for (double& s : sums) s /= static_cast<double>(tokens);
  return sums;
}

std::vector<double> part(const std::vector<double>& values, int64_t index, int64_t L) {
  return {values.begin() + index * L, values.begin() + (index + 1) * L};
}

}  // namespace

void check_probe_samples(int64_t samples, const LayoutShape& ls, int64_t micro_batch_size,
                         const data::TokenDataset& data, const char* option) {
  PRORES_CHECK(samples > 0 && samples % (ls.dp * micro_batch_size) == 0, option, " ", samples,
               " must be a positive multiple of the data-parallel size times --micro-batch-size (", ls.dp, " x ",
               micro_batch_size, ")");
  const int64_t available = data.num_samples(data::Split::Valid);
  PRORES_CHECK(available > 0, "the probe batch comes from the validation split, but --split leaves it empty (set ",
               option, " within a split that has one, or --probe-interval 0)");
  PRORES_CHECK(samples <= available, option, " ", samples, " exceeds the ", available,
               " samples of the validation split");
}

ProbeNorms probe_norms(TrainStep& step, const ParallelLayout& layout, const data::TokenDataset& data,
                       int64_t samples) {
  const Model& model = step.model();
  const int64_t L = model.config().num_layers, C = model.config().hidden_size;
  const ModelShard& shard = model.shard();  // local block → global layer
  // Rows: attention, MLP, block output; then attention and MLP after α.
  std::vector<double> sums(static_cast<size_t>((kPoints + 2) * L), 0.0);
  run_probe(step, layout, data, samples, [&](const ProbedRows& p) {
    double sum = 0;
    for (int64_t r = 0; r < p.rows; ++r) sum += row_norm(p.values + r * C, C);
    const int64_t layer = shard.layer(p.block) - 1;
    sums[static_cast<size_t>(p.point * L + layer)] += sum;
    if (p.point < 2) {
      const double alpha = std::abs(model.residual_scales()[static_cast<size_t>(p.block)]);
      sums[static_cast<size_t>((kPoints + p.point) * L + layer)] += alpha * sum;
    }
  });
  ProbeNorms norms;
  norms.tokens = samples * model.config().seq_length;
  const std::vector<double> means = world_mean(layout, std::move(sums), norms.tokens);
  norms.attn_branch_norm = part(means, 0, L);
  norms.mlp_branch_norm = part(means, 1, L);
  norms.act_norm = part(means, 2, L);
  norms.attn_branch_scaled_norm = part(means, 3, L);
  norms.mlp_branch_scaled_norm = part(means, 4, L);
  return norms;
}

LayerwiseSimilarity::LayerwiseSimilarity(TrainStep& step, const ParallelLayout& layout,
                                         const data::TokenDataset& data, int64_t samples)
    : layout_(layout), data_(data), samples_(samples) {
  const LayoutShape& ls = layout.shape();
  const int64_t C = step.model().config().hidden_size;
  const int64_t rows = samples / ls.dp * step.model().config().seq_length;
  if (ls.tp_rank == 0)
    reference_.assign(static_cast<size_t>(kPoints * ls.num_layers), std::vector<float>(static_cast<size_t>(rows * C)));
  run_probe(step, layout, data, samples, [&](const ProbedRows& p) {
    std::vector<float>& ref = reference_[static_cast<size_t>(kPoints * p.block + p.point)];
    std::copy(p.values, p.values + p.rows * C, ref.begin() + p.first_row * C);
  });
}

Similarity LayerwiseSimilarity::compare(TrainStep& step) const {
  const int64_t L = step.model().config().num_layers, C = step.model().config().hidden_size;
  const ModelShard& shard = step.model().shard();  // local block → global layer
  std::vector<double> sums(static_cast<size_t>(kPoints * L), 0.0);
  run_probe(step, layout_, data_, samples_, [&](const ProbedRows& p) {
    const float* ref = reference_[static_cast<size_t>(kPoints * p.block + p.point)].data() + p.first_row * C;
    double sum = 0;
    for (int64_t r = 0; r < p.rows; ++r) {
      const float* x = p.values + r * C;
      const float* y = ref + r * C;
      double dot = 0;
      for (int64_t c = 0; c < C; ++c) dot += static_cast<double>(x[c]) * y[c];
      const double norms = row_norm(x, C) * row_norm(y, C);
      if (norms > 0) sum += dot / norms;
    }
    sums[static_cast<size_t>(p.point * L + shard.layer(p.block) - 1)] += sum;
  });
  Similarity similarity;
  similarity.tokens = samples_ * step.model().config().seq_length;
  const std::vector<double> means = world_mean(layout_, std::move(sums), similarity.tokens);
  similarity.attn_branch = part(means, 0, L);
  similarity.mlp_branch = part(means, 1, L);
  similarity.block_output = part(means, 2, L);
  return similarity;
}

}  // namespace prores::train
