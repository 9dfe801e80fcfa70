// --bf16 on the CPU, through TrainStep (the trainer's own optimizer step) on the tiny GQA model of
// train_test_util.h: 20 steps with bf16 matmuls track the f32 run's losses and gradient norms within 2e-2
// (and differ from them: the rounding is in effect), also with the activations kept in f32, the loss falls,
// and the precision belongs to the model: an f32 run stepped in turn with a bf16 one gives bitwise the
// numbers it gives alone.
#include <gtest/gtest.h>

#include "train_test_util.h"

namespace {

using namespace prores;
using test::expect_tracks;
using test::random_text;
using test::Trace;
using test::train_steps;
using test::TrainRun;

TEST(TrainBf16, MatmulsTrackF32OnTheCpu) {
  const data::ByteDataset data = random_text(32);
  TrainRun f32(Device::CPU, false), bf16(Device::CPU, true);
  ASSERT_EQ(bf16.step.model().matmul_precision(), ops::MatmulPrecision::Bf16);
  const Trace want = train_steps(f32, data, 0, 20), got = train_steps(bf16, data, 0, 20);
  expect_tracks(got, want, 2e-2, "bf16 matmuls");
  EXPECT_NE(got.loss, want.loss) << "bf16 rounding should change the losses";
  EXPECT_LT(got.loss.back(), got.loss.front() - 0.5) << "the bf16 run should learn";
}

// With the activations between the matmuls kept in f32 (the A/B switch of bench_train_step) the run still
// tracks f32, and differs from the bf16-activation run: the storage is in effect.
TEST(TrainBf16, F32ActivationsTrackF32Too) {
  const data::ByteDataset data = random_text(32);
  TrainRun f32(Device::CPU, false), mixed(Device::CPU, true, "unfused", 16, false), bf16(Device::CPU, true);
  const Trace want = train_steps(f32, data, 0, 20), got = train_steps(mixed, data, 0, 20);
  expect_tracks(got, want, 2e-2, "bf16 matmuls, f32 activations");
  EXPECT_NE(got.loss, train_steps(bf16, data, 0, 20).loss);
}

TEST(TrainBf16, PrecisionBelongsToTheModel) {
  const data::ByteDataset data = random_text(32);
  TrainRun alone(Device::CPU, false);
  const Trace want = train_steps(alone, data, 0, 4);
  TrainRun f32(Device::CPU, false), bf16(Device::CPU, true);
  Trace got;
  for (int64_t i = 0; i < 4; ++i) {
    train_steps(bf16, data, i, 1);
    const Trace one = train_steps(f32, data, i, 1);
    got.loss.push_back(one.loss[0]);
    got.grad_norm.push_back(one.grad_norm[0]);
  }
  EXPECT_EQ(got.loss, want.loss);
  EXPECT_EQ(got.grad_norm, want.grad_norm);
}

}  // namespace
