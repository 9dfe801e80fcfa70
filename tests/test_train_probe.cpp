// The probe batch (train/probe.h) on one CPU rank: the model's probe hands over each sublayer's branch output
// before α (the stream after a sandwich block is x + α·attn + α·mlp of what it saw), also for a block at α = 0,
// whose output stays its input; probed forwards give the unprobed forward's values; probe_norms averages the
// per-token L2 norms of the probed tensors over the probe batch; the layerwise similarity of a model to itself is
// 1 and does not see α (block 1's branch keeps similarity 1 when only α changes); and bad probe sizes are refused
// naming the option. The layouts' agreement is tested end to end in test_layout_equivalence.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "test_util.h"
#include "train/probe.h"
#include "train_test_util.h"

namespace {

using namespace prores;

data::ByteDataset text_with_validation(int64_t seq_length, std::array<double, 3> split = {8, 2, 0}) {
  std::mt19937 rng(23);
  std::vector<uint8_t> bytes(1 << 16);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng() % 96 + 32);
  return data::ByteDataset::from_bytes(std::move(bytes), split, seq_length, 5);
}

// What the probe saw in one forward of the first validation micro-batch: [block][point] → (N·C) values.
using Probed = std::map<std::pair<int64_t, ProbePoint>, std::vector<float>>;

Probed probe_first_micro_batch(train::TrainStep& step, const data::TokenDataset& data) {
  Model& model = step.model();
  const int64_t B = model.micro_batch(), T = model.config().seq_length;
  Probed probed;
  model.set_probe([&](int64_t block, ProbePoint point, const Tensor& values) {
    probed[{block, point}] = test::host_copy(values);
  });
  step.forward_only(1, [&](int64_t, int32_t* tokens, int32_t* targets) {
    for (int64_t b = 0; b < B; ++b) data.get_sample(data::Split::Valid, b, tokens + b * T, targets + b * T);
  }, [](int64_t) {});
  model.set_probe({});
  return probed;
}

// The stream into the first block and out of the last one in an unprobed forward of the same micro-batch.
std::pair<std::vector<float>, std::vector<float>> unprobed_stream(train::TrainStep& step,
                                                                  const data::TokenDataset& data) {
  Model& model = step.model();
  const int64_t B = model.micro_batch(), T = model.config().seq_length;
  std::vector<int32_t> tokens(static_cast<size_t>(B * T)), targets(tokens.size());
  for (int64_t b = 0; b < B; ++b) data.get_sample(data::Split::Valid, b, tokens.data() + b * T, targets.data() + b * T);
  model.forward(0, tokens.data(), targets.data());
  return {test::host_copy(model.stage_input(0)), test::host_copy(model.stage_output(0))};
}

TEST(Probe, HandsOverBranchOutputsBeforeAlphaAndRunsBlocksAtAlphaZero) {
  const data::ByteDataset data = text_with_validation(32);
  test::TrainRun run(Device::CPU, false);
  const std::vector<double> alpha = {0.0, 0.6, 0.25};
  run.step.model().set_residual_scales(alpha);
  const Probed probed = probe_first_micro_batch(run.step, data);
  const auto [embedding, last_unprobed] = unprobed_stream(run.step, data);
  std::vector<float> x = embedding;
  for (int64_t l = 0; l < 3; ++l) {
    const std::vector<float>& attn = probed.at({l, ProbePoint::AttentionBranch});
    const std::vector<float>& mlp = probed.at({l, ProbePoint::MlpBranch});
    const std::vector<float>& y = probed.at({l, ProbePoint::BlockOutput});
    ASSERT_EQ(y.size(), x.size());
    double branch_energy = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      const double want = x[i] + alpha[static_cast<size_t>(l)] * (static_cast<double>(attn[i]) + mlp[i]);
      ASSERT_NEAR(y[i], want, 1e-5 * (1 + std::abs(want))) << "block " << l << " element " << i;
      branch_energy += static_cast<double>(attn[i]) * attn[i] + static_cast<double>(mlp[i]) * mlp[i];
    }
    EXPECT_GT(branch_energy, 0) << "block " << l << ": the branches run even at α = 0";
    if (l == 0) EXPECT_EQ(y, embedding) << "a block at α = 0 passes its input on unchanged";
    x = y;
  }
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(x[i], last_unprobed[i], 1e-5 * (1 + std::abs(last_unprobed[i]))) << "the unprobed forward differs";
}

double mean_row_norm(const std::vector<float>& values, int64_t C) {
  double sum = 0;
  const int64_t rows = static_cast<int64_t>(values.size()) / C;
  for (int64_t r = 0; r < rows; ++r) {
    double sq = 0;
    for (int64_t c = 0; c < C; ++c) sq += static_cast<double>(values[r * C + c]) * values[r * C + c];
    sum += std::sqrt(sq);
  }
  return sum / static_cast<double>(rows);
}

TEST(Probe, NormsAreTheMeanPerTokenL2NormsOfTheProbeBatch) {
  const data::ByteDataset data = text_with_validation(32);
  test::TrainRun run(Device::CPU, false);
  const std::vector<double> alpha = {1.0, 0.6, 0.25};
  // One micro-batch of 2 samples: the whole probe batch is the micro-batch probed above.
  const train::ProbeNorms norms = train::probe_norms(run.step, run.layout, data, 2);
  const Probed probed = probe_first_micro_batch(run.step, data);
  const int64_t C = run.model.hidden_size;
  EXPECT_EQ(norms.tokens, 2 * run.model.seq_length);
  ASSERT_EQ(norms.act_norm.size(), 3u);
  for (int64_t l = 0; l < 3; ++l) {
    const size_t i = static_cast<size_t>(l);
    const double attn = mean_row_norm(probed.at({l, ProbePoint::AttentionBranch}), C);
    const double mlp = mean_row_norm(probed.at({l, ProbePoint::MlpBranch}), C);
    EXPECT_NEAR(norms.act_norm[i], mean_row_norm(probed.at({l, ProbePoint::BlockOutput}), C), 1e-12 * norms.act_norm[i]);
    EXPECT_NEAR(norms.attn_branch_norm[i], attn, 1e-12 * attn);
    EXPECT_NEAR(norms.mlp_branch_norm[i], mlp, 1e-12 * mlp);
    EXPECT_NEAR(norms.attn_branch_scaled_norm[i], alpha[i] * attn, 1e-12 * attn);
    EXPECT_NEAR(norms.mlp_branch_scaled_norm[i], alpha[i] * mlp, 1e-12 * mlp);
  }
  // More samples: the norms average over every micro-batch, not the first one only.
  const train::ProbeNorms four = train::probe_norms(run.step, run.layout, data, 4);
  EXPECT_EQ(four.tokens, 4 * run.model.seq_length);
  EXPECT_NE(four.act_norm[2], norms.act_norm[2]);
}

TEST(Probe, LayerwiseSimilarityIsOneToItselfAndBlindToAlpha) {
  const data::ByteDataset data = text_with_validation(32);
  test::TrainRun run(Device::CPU, false);
  const train::LayerwiseSimilarity reference(run.step, run.layout, data, 4);
  const train::Similarity same = reference.compare(run.step);
  EXPECT_EQ(same.tokens, 4 * run.model.seq_length);
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_NEAR(same.block_output[l], 1.0, 1e-12);
    EXPECT_NEAR(same.attn_branch[l], 1.0, 1e-12);
    EXPECT_NEAR(same.mlp_branch[l], 1.0, 1e-12);
  }
  // Other α: block 1's attention branch sees the same input (the embedding), so the same output.
  run.step.model().set_residual_scales(std::vector<double>{0.5, 0.1, 0.9});
  const train::Similarity rescaled = reference.compare(run.step);
  EXPECT_NEAR(rescaled.attn_branch[0], 1.0, 1e-12);
  EXPECT_LT(rescaled.block_output[2], 1.0 - 1e-6);
  // Other weights: less similar everywhere.
  run.step.model().init_weights(99);
  const train::Similarity other = reference.compare(run.step);
  for (size_t l = 0; l < 3; ++l) EXPECT_LT(other.block_output[l], 0.99) << "block " << l;
}

TEST(Probe, RefusesProbeBatchesThatDoNotFit) {
  test::TrainRun run(Device::CPU, false);
  const LayoutShape& ls = run.layout.shape();
  const data::ByteDataset data = text_with_validation(32);
  test::expect_error([&] { train::check_probe_samples(3, ls, 2, data, "--probe-samples"); },
                     {"--probe-samples 3", "multiple"});
  test::expect_error([&] { train::check_probe_samples(1 << 20, ls, 2, data, "--probe-samples"); },
                     {"--probe-samples 1048576", "exceeds"});
  const data::ByteDataset no_validation = text_with_validation(32, {1, 0, 0});
  test::expect_error([&] { train::check_probe_samples(2, ls, 2, no_validation, "--probe-samples"); },
                     {"validation split", "--probe-interval 0"});
}

}  // namespace
