// TrainStep built for evaluation only (StepUse::Evaluate, what `prores eval` uses): on the CPU, with the
// trained weights of a training step, it gives bitwise the training step's validation loss (fp32 and bf16
// matmuls) from one activation slot whose blocks share their activations, allocates neither gradients nor
// optimizer state, and refuses to train.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/check.h"
#include "ops/elementwise.h"
#include "train_test_util.h"

namespace {

using namespace prores;

// Random text with a validation split.
data::ByteDataset text_with_validation(int64_t seq_length) {
  std::mt19937 rng(17);
  std::vector<uint8_t> bytes(1 << 16);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng() % 96 + 32);
  return data::ByteDataset::from_bytes(std::move(bytes), {8, 2, 0}, seq_length, 5);
}

// An evaluation-only step beside a training run's, on the same layout and configuration.
struct EvaluationStep {
  explicit EvaluationStep(const test::TrainRun& run)
      : step(run.model, run.config, run.layout, train::StepUse::Evaluate) {}
  train::TrainStep step;
};

void expect_evaluation_matches_training(bool bf16) {
  SCOPED_TRACE(bf16 ? "bf16 matmuls" : "fp32");
  const data::ByteDataset data = text_with_validation(32);
  test::TrainRun run(Device::CPU, bf16);
  test::train_steps(run, data, 0, 3);
  EvaluationStep eval(run);
  ops::copy(eval.step.model().params(), run.step.model().params());
  eval.step.model().set_residual_scales(run.step.model().residual_scales());
  const double want = run.step.evaluate(data, 2), got = eval.step.evaluate(data, 2);
  EXPECT_EQ(got, want);
  EXPECT_TRUE(std::isfinite(got));
  EXPECT_NE(got, train::TrainStep(run.model, run.config, run.layout, train::StepUse::Evaluate).evaluate(data, 2))
      << "an untrained model should evaluate differently";
}

TEST(TrainStepEvaluate, GivesTheTrainingStepsValidationLossBitwise) {
  expect_evaluation_matches_training(false);
  expect_evaluation_matches_training(true);
}

TEST(TrainStepEvaluate, AllocatesNoGradientsAndNoOptimizer) {
  test::TrainRun run(Device::CPU, false);
  EvaluationStep eval(run);
  const Model& model = eval.step.model();
  EXPECT_FALSE(model.has_gradients());
  EXPECT_FALSE(model.grads().defined());
  EXPECT_FALSE(eval.step.has_optimizer());
  EXPECT_EQ(model.num_slots(), 1);
  EXPECT_EQ(model.recompute_layers(), run.model.num_layers);
  const size_t gradient_bytes = static_cast<size_t>(model.table().total_numel()) * sizeof(float);
  EXPECT_LE(model.allocated_bytes() + gradient_bytes, run.step.model().allocated_bytes());
}

TEST(TrainStepEvaluate, RefusesToTrain) {
  const data::ByteDataset data = text_with_validation(32);
  test::TrainRun run(Device::CPU, false);
  EvaluationStep eval(run);
  EXPECT_THROW(eval.step.step(data, 0, 1e-3), Error);
  EXPECT_THROW(eval.step.optimizer(), Error);
  EXPECT_THROW(eval.step.model().backward(0, 1.0), Error);
  EXPECT_THROW(eval.step.model().zero_grads(), Error);
  EXPECT_THROW(eval.step.model().grad("lm_head.weight"), Error);
}

}  // namespace
