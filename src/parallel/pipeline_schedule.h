// The pipeline schedule as data: one list of actions per stage (receive / compute / send, forward and
// backward, per micro-batch), built for Megatron's non-interleaved 1F1B, plus the tools that check a
// schedule (every micro-batch once, matching sends and receives, no deadlock under blocking rendezvous
// transfers) and measure it (activation slots per stage, bubble of a unit-time simulation). The runner
// in the training loop executes these lists; nothing here communicates.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// One step of a stage. Forward activations flow from stage s to s + 1; backward activation gradients
// from s + 1 to s. The first stage never receives forwards nor sends backwards; the last stage never
// sends forwards nor receives backwards.
struct PipelineAction {
  enum Kind { RecvForward, Forward, SendForward, RecvBackward, Backward, SendBackward } kind;
  int64_t micro_batch;  // 0-based index within the global batch's micro-batches on this DP rank
  bool operator==(const PipelineAction&) const = default;
};

// One action list per stage, stage 0 first.
using PipelineSchedule = std::vector<std::vector<PipelineAction>>;

// "RecvForward(3)", "Backward(0)", ...: for messages and test output.
std::string to_string(const PipelineAction& action);
std::ostream& operator<<(std::ostream& os, const PipelineAction& action);

// Megatron's non-interleaved 1F1B for `stages` stages and `micro_batches` micro-batches (M). Stage s runs
// w = min(stages − s − 1, M) warm-up forwards, then M − w steady-state rounds of one forward and one
// backward, then w cool-down backwards. Where Megatron posts "send forward + receive backward" as one
// batched pair, this list receives the backward first and then sends the forward (and a stage sends its
// backward before receiving the next forward), so that the schedule also completes with blocking
// transfers: the two neighbours of every pair agree on the order.
PipelineSchedule one_f_one_b(int64_t stages, int64_t micro_batches);

// Throws prores::Error (naming the stage, action and micro-batch) unless: there is one list per stage;
// every stage runs Forward(m) and Backward(m) exactly once for every m, the forward first; every stage
// receives its input before computing it and computes before sending; every SendForward(m) on stage s has
// exactly one matching RecvForward(m) on s + 1 (SendBackward(m) on s + 1 ↔ RecvBackward(m) on s) and the
// end stages have none of the transfers they cannot make; and a simulation where each send completes only
// when the peer posts the matching receive (rendezvous) runs every stage to the end without deadlock.
void validate_schedule(const PipelineSchedule& schedule, int64_t stages, int64_t micro_batches);

// The most micro-batches whose Forward has run but whose Backward has not, at any point of one stage's
// list: the activation slots that stage keeps alive. For 1F1B, min(stages − s, M) on stage s.
int64_t max_in_flight(const std::vector<PipelineAction>& stage_actions);

// The ideal pipeline bubble of 1F1B or GPipe: (PP − 1) / (M + PP − 1) of the step time is idle.
double bubble_fraction_ideal(int64_t stages, int64_t micro_batches);

// Timing of a schedule run with blocking rendezvous transfers that take no time: each stage executes its
// list in order, a Forward takes forward_time, a Backward backward_time, and a send/receive pair completes
// when the later of the two stages reaches it.
struct PipelineSimulation {
  double makespan = 0;          // time when the last stage finishes
  std::vector<double> busy;     // compute time of each stage
  double bubble_fraction = 0;   // idle share of stages × makespan: 1 − Σ busy / (stages · makespan)
};

// Simulates `schedule`; throws prores::Error describing the blocked actions when it deadlocks (or a
// transfer names a stage outside the pipeline). The schedule is not otherwise checked: see
// validate_schedule.
PipelineSimulation simulate_schedule(const PipelineSchedule& schedule, double forward_time = 1.0,
                                     double backward_time = 2.0);

}  // namespace prores
