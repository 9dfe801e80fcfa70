// The 1F1B pipeline schedule as data: it validates for every small (stages, micro-batches) pair, keeps
// min(stages − s, M) activations alive on stage s, matches a hand-written list, and its unit-time
// simulation (Forward 1, Backward 2, free transfers) has exactly the ideal bubble (PP − 1)/(M + PP − 1);
// validate_schedule rejects broken schedules (missing receive, wrong order, a transfer into a buffer in use,
// deadlock). The interleaved 1F1B
// over v chunks validates for every small (stages, chunks, micro-batches), runs Megatron-LM's compute order
// (checked by hand for 2 stages × 2 chunks), and its simulated bubble is exactly (PP − 1)/(v·M + PP − 1).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "parallel/pipeline_schedule.h"

namespace prores {
namespace {

using K = PipelineAction::Kind;

// Expects validate_schedule to throw a message containing `expected`.
void expect_invalid(const PipelineSchedule& schedule, int64_t stages, int64_t micro_batches,
                    const std::string& expected, int64_t chunks = 1) {
  try {
    validate_schedule(schedule, stages, micro_batches, chunks);
    ADD_FAILURE() << "schedule accepted; expected: " << expected;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << "got: " << e.what();
  }
}

// Removes the first occurrence of `action` from `actions`.
void erase(std::vector<PipelineAction>& actions, PipelineAction action) {
  const auto it = std::find(actions.begin(), actions.end(), action);
  ASSERT_NE(it, actions.end()) << action;
  actions.erase(it);
}

TEST(OneFOneB, ValidatesForEverySmallPipeline) {
  for (int64_t stages = 1; stages <= 5; ++stages) {
    for (int64_t m = 1; m <= 9; ++m) {
      SCOPED_TRACE(testing::Message() << stages << " stages, " << m << " micro-batches");
      const PipelineSchedule schedule = one_f_one_b(stages, m);
      EXPECT_NO_THROW(validate_schedule(schedule, stages, m));
      for (int64_t s = 0; s < stages; ++s) {
        EXPECT_EQ(max_in_flight(schedule[static_cast<size_t>(s)]), std::min(stages - s, m)) << "stage " << s;
      }
    }
  }
}

TEST(OneFOneB, TwoStagesThreeMicroBatchesByHand) {
  // Stage 0: one warm-up forward, two steady rounds (receive the gradient, then send the next
  // activation), one cool-down backward. Stage 1 (last): no warm-up, forward / backward alternate.
  const PipelineSchedule expected = {
      {{K::Forward, 0}, {K::SendForward, 0},
       {K::Forward, 1}, {K::RecvBackward, 0}, {K::SendForward, 1}, {K::Backward, 0},
       {K::Forward, 2}, {K::RecvBackward, 1}, {K::SendForward, 2}, {K::Backward, 1},
       {K::RecvBackward, 2}, {K::Backward, 2}},
      {{K::RecvForward, 0},
       {K::Forward, 0}, {K::Backward, 0}, {K::SendBackward, 0}, {K::RecvForward, 1},
       {K::Forward, 1}, {K::Backward, 1}, {K::SendBackward, 1}, {K::RecvForward, 2},
       {K::Forward, 2}, {K::Backward, 2}, {K::SendBackward, 2}},
  };
  const PipelineSchedule schedule = one_f_one_b(2, 3);
  ASSERT_EQ(schedule.size(), 2u);
  EXPECT_EQ(schedule[0], expected[0]);
  EXPECT_EQ(schedule[1], expected[1]);
}

TEST(OneFOneB, SingleStageAlternatesForwardAndBackward) {
  const PipelineSchedule schedule = one_f_one_b(1, 2);
  const std::vector<PipelineAction> expected = {{K::Forward, 0}, {K::Backward, 0}, {K::Forward, 1}, {K::Backward, 1}};
  EXPECT_EQ(schedule, PipelineSchedule{expected});
}

TEST(OneFOneB, FewerMicroBatchesThanStagesRunsAllForwardsFirst) {
  const PipelineSchedule schedule = one_f_one_b(4, 2);
  const std::vector<PipelineAction> expected = {{K::Forward, 0},      {K::SendForward, 0}, {K::Forward, 1},
                                                {K::SendForward, 1},  {K::RecvBackward, 0}, {K::Backward, 0},
                                                {K::RecvBackward, 1}, {K::Backward, 1}};
  EXPECT_EQ(schedule[0], expected);
}

TEST(OneFOneB, SimulatedBubbleEqualsTheIdealFormula) {
  // With Forward = 1, Backward = 2 and free transfers the last stage is busy from time PP − 1 to the end
  // (3M units), and the last backward then crosses PP − 1 stages (2 units each): makespan
  // 3(M + PP − 1), so the idle share is exactly (PP − 1)/(M + PP − 1).
  for (int64_t stages = 1; stages <= 5; ++stages) {
    for (int64_t m = 1; m <= 9; ++m) {
      SCOPED_TRACE(testing::Message() << stages << " stages, " << m << " micro-batches");
      const PipelineSimulation sim = simulate_schedule(one_f_one_b(stages, m), 1.0, 2.0);
      EXPECT_DOUBLE_EQ(sim.makespan, 3.0 * static_cast<double>(m + stages - 1));
      ASSERT_EQ(sim.busy.size(), static_cast<size_t>(stages));
      for (double b : sim.busy) EXPECT_DOUBLE_EQ(b, 3.0 * static_cast<double>(m));
      EXPECT_NEAR(sim.bubble_fraction, bubble_fraction_ideal(stages, m), 1e-12);
    }
  }
}

TEST(OneFOneB, IdealBubbleFormula) {
  EXPECT_DOUBLE_EQ(bubble_fraction_ideal(1, 8), 0.0);
  EXPECT_DOUBLE_EQ(bubble_fraction_ideal(4, 8), 3.0 / 11.0);
  EXPECT_DOUBLE_EQ(bubble_fraction_ideal(2, 3), 0.25);
}

TEST(ValidateSchedule, RejectsAMissingReceive) {
  PipelineSchedule schedule = one_f_one_b(3, 4);
  erase(schedule[1], {K::RecvForward, 2});
  expect_invalid(schedule, 3, 4, "stage 1 has no RecvForward(2) matching stage 0's SendForward(2)");

  schedule = one_f_one_b(3, 4);
  erase(schedule[0], {K::RecvBackward, 1});
  expect_invalid(schedule, 3, 4, "stage 0 has no RecvBackward(1) matching stage 1's SendBackward(1)");
}

TEST(ValidateSchedule, RejectsADeadlock) {
  // Both stages send first: stage 0 blocks in SendForward(1) until stage 1 receives it, while stage 1
  // blocks in SendBackward(0) until stage 0 receives that.
  const PipelineSchedule schedule = {
      {{K::Forward, 0}, {K::SendForward, 0}, {K::Forward, 1}, {K::SendForward, 1},
       {K::RecvBackward, 0}, {K::Backward, 0}, {K::RecvBackward, 1}, {K::Backward, 1}},
      {{K::RecvForward, 0}, {K::Forward, 0}, {K::Backward, 0}, {K::SendBackward, 0},
       {K::RecvForward, 1}, {K::Forward, 1}, {K::Backward, 1}, {K::SendBackward, 1}},
  };
  expect_invalid(schedule, 2, 2,
                 "deadlocks with blocking transfers: stage 0 at SendForward(1), stage 1 at SendBackward(0)");
}

TEST(ValidateSchedule, MegatronPairOrderDeadlocksWithBlockingTransfers) {
  // Megatron posts "send forward, receive backward" as one batched pair; run as two blocking steps in
  // that order the neighbours wait on each other, which is why one_f_one_b receives first.
  PipelineSchedule schedule = one_f_one_b(3, 5);
  for (auto& stage : schedule) {
    for (size_t i = 0; i + 1 < stage.size(); ++i) {
      if (stage[i].kind == K::RecvBackward && stage[i + 1].kind == K::SendForward) std::swap(stage[i], stage[i + 1]);
    }
  }
  expect_invalid(schedule, 3, 5, "deadlocks");
}

TEST(ValidateSchedule, RejectsWrongOrderCountsAndEnds) {
  PipelineSchedule schedule = one_f_one_b(2, 2);
  std::swap(schedule[1][0], schedule[1][1]);  // Forward(0) before RecvForward(0)
  expect_invalid(schedule, 2, 2, "stage 1 runs Forward(0) before RecvForward(0)");

  schedule = one_f_one_b(1, 2);
  std::swap(schedule[0][0], schedule[0][1]);
  expect_invalid(schedule, 1, 2, "stage 0 runs Backward(0) before Forward(0)");

  schedule = one_f_one_b(1, 2);
  schedule[0].push_back({K::Forward, 1});
  expect_invalid(schedule, 1, 2, "stage 0 runs Forward(1) 2 times (expected 1)");

  schedule = one_f_one_b(1, 2);
  schedule[0].insert(schedule[0].begin(), {K::RecvForward, 0});
  expect_invalid(schedule, 1, 2, "stage 0 runs RecvForward(0) but has no stage -1 to exchange it with");

  schedule = one_f_one_b(2, 2);
  schedule[0].push_back({K::Forward, 2});
  expect_invalid(schedule, 2, 2, "names a micro-batch outside 0..1");

  expect_invalid(one_f_one_b(2, 2), 3, 2, "pipeline schedule has 2 stage lists for 3 stages");
}

TEST(InterleavedOneFOneB, ValidatesForEverySmallPipeline) {
  for (int64_t stages = 2; stages <= 4; ++stages) {
    for (int64_t chunks = 2; chunks <= 4; ++chunks) {
      for (int64_t m = stages; m <= 4 * stages; m += stages) {
        SCOPED_TRACE(testing::Message() << stages << " stages, " << chunks << " chunks, " << m << " micro-batches");
        const PipelineSchedule schedule = interleaved_one_f_one_b(stages, chunks, m);
        EXPECT_NO_THROW(validate_schedule(schedule, stages, m, chunks));
        for (int64_t s = 0; s < stages; ++s) {
          for (int64_t c = 0; c < chunks; ++c) {
            const int64_t live = max_in_flight(schedule[static_cast<size_t>(s)], c);
            EXPECT_GE(live, 1) << "stage " << s << " chunk " << c;
            EXPECT_LE(live, m) << "stage " << s << " chunk " << c;
          }
        }
      }
    }
  }
}

// The computes of each stage, in order, as (F or B, micro-batch, chunk).
std::vector<std::vector<std::string>> computes(const PipelineSchedule& schedule) {
  std::vector<std::vector<std::string>> out;
  for (const auto& stage : schedule) {
    out.emplace_back();
    for (const PipelineAction& a : stage)
      if (a.kind == K::Forward || a.kind == K::Backward)
        out.back().push_back((a.kind == K::Forward ? "F" : "B") + std::to_string(a.micro_batch) +
                             std::to_string(a.chunk));
  }
  return out;
}

TEST(InterleavedOneFOneB, MegatronsComputeOrderByHand) {
  // 2 stages × 2 chunks, 4 micro-batches: forwards in groups of p = 2 micro-batches per chunk (chunk 0 of
  // micro-batches 0, 1, chunk 1 of 0, 1, chunk 0 of 2, 3, ...), backwards the same groups from the last chunk.
  // Warm-up: (p − s − 1)·2 + (v − 1)·p = 4 forwards on stage 0, 2 on stage 1.
  const std::vector<std::vector<std::string>> expected = {
      {"F00", "F10", "F01", "F11", "F20", "B01", "F30", "B11", "F21", "B00", "F31", "B10", "B21", "B31", "B20",
       "B30"},
      {"F00", "F10", "F01", "B01", "F11", "B11", "F20", "B00", "F30", "B10", "F21", "B21", "F31", "B31", "B20",
       "B30"},
  };
  EXPECT_EQ(computes(interleaved_one_f_one_b(2, 2, 4)), expected);
}

TEST(InterleavedOneFOneB, SimulatedBubbleEqualsTheFormula) {
  for (int64_t stages = 2; stages <= 4; ++stages) {
    for (int64_t chunks = 2; chunks <= 4; ++chunks) {
      for (int64_t m = stages; m <= 4 * stages; m += stages) {
        SCOPED_TRACE(testing::Message() << stages << " stages, " << chunks << " chunks, " << m << " micro-batches");
        // A chunk holds 1/v of a stage's blocks: its forward and backward take 1/v of the plain stage's.
        const double v = static_cast<double>(chunks);
        const PipelineSimulation sim = simulate_schedule(interleaved_one_f_one_b(stages, chunks, m), 1.0 / v, 2.0 / v);
        EXPECT_NEAR(sim.bubble_fraction, bubble_fraction_ideal(stages, m, chunks), 1e-12);
      }
    }
  }
}

TEST(InterleavedOneFOneB, RefusesWhatMegatronRefuses) {
  EXPECT_THROW(interleaved_one_f_one_b(1, 2, 4), Error);
  EXPECT_THROW(interleaved_one_f_one_b(2, 1, 4), Error);
  try {
    interleaved_one_f_one_b(4, 2, 6);
    ADD_FAILURE() << "6 micro-batches on 4 stages accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the micro-batches (6) must be a multiple of the stages (4)"),
              std::string::npos) << e.what();
  }
}

TEST(ValidateSchedule, ChecksTheChunksOfAnInterleavedSchedule) {
  PipelineSchedule schedule = interleaved_one_f_one_b(2, 2, 2);
  // Stage 1's chunk 0 sends its forward on to stage 0's chunk 1 (the wrap-around of the virtual stages).
  erase(schedule[0], {K::RecvForward, 1, 1});
  expect_invalid(schedule, 2, 2, "stage 0 has no RecvForward(1, chunk 1) matching virtual stage 1 (stage 1)'s "
                 "SendForward(1)", 2);
  schedule = interleaved_one_f_one_b(2, 2, 2);
  schedule[1].push_back({K::SendForward, 0, 1});
  expect_invalid(schedule, 2, 2, "but has no virtual stage 4 (stage 0) to exchange it with", 2);
  schedule = interleaved_one_f_one_b(2, 2, 2);
  schedule[0].push_back({K::Forward, 0, 2});
  expect_invalid(schedule, 2, 2, "names a chunk outside 0..1", 2);
}

TEST(ValidateSchedule, RejectsTransfersIntoBuffersInUse) {
  // Plain 1F1B, 2 stages × 3 micro-batches: stage 1 keeps one activation slot.
  PipelineSchedule schedule = one_f_one_b(2, 3);
  erase(schedule[1], {K::RecvForward, 1});
  schedule[1].insert(schedule[1].begin() + 1, {K::RecvForward, 1});
  expect_invalid(schedule, 2, 3, "stage 1 runs RecvForward(1) into the slot of Backward(0), which has not run");

  // Stage 0 receives the gradient of micro-batch 1 before Backward(0) has used micro-batch 0's.
  schedule = one_f_one_b(2, 3);
  erase(schedule[0], {K::RecvBackward, 1});
  const auto backward0 = std::find(schedule[0].begin(), schedule[0].end(), PipelineAction{K::Backward, 0});
  schedule[0].insert(backward0, {K::RecvBackward, 1});
  expect_invalid(schedule, 2, 3, "stage 0 runs RecvBackward(1) over the unused gradient of RecvBackward(0)");

  // Stage 1 runs Backward(1) before sending Backward(0)'s input gradient.
  schedule = {{{K::Forward, 0}, {K::SendForward, 0}, {K::Forward, 1}, {K::SendForward, 1}, {K::RecvBackward, 0},
               {K::Backward, 0}, {K::RecvBackward, 1}, {K::Backward, 1}},
              {{K::RecvForward, 0}, {K::Forward, 0}, {K::RecvForward, 1}, {K::Forward, 1}, {K::Backward, 0},
               {K::Backward, 1}, {K::SendBackward, 0}, {K::SendBackward, 1}}};
  expect_invalid(schedule, 2, 2, "stage 1 runs Backward(1) before SendBackward(0) has sent the gradient it overwrites");

  // Backwards out of micro-batch order.
  schedule = {{{K::Forward, 0}, {K::Forward, 1}, {K::Backward, 1}, {K::Backward, 0}}};
  expect_invalid(schedule, 1, 2, "stage 0 runs Backward(1) out of micro-batch order (expected Backward(0))");
}

TEST(MaxInFlight, CountsLiveActivations) {
  const std::vector<PipelineAction> gpipe = {{K::Forward, 0}, {K::Forward, 1}, {K::Forward, 2},
                                             {K::Backward, 0}, {K::Backward, 1}, {K::Backward, 2}};
  EXPECT_EQ(max_in_flight(gpipe), 3);
  EXPECT_EQ(max_in_flight({}), 0);
}

}  // namespace
}  // namespace prores
