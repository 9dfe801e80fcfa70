// The pipeline schedule as data: one list of actions per stage (receive / compute / send, forward and
// backward, per micro-batch and model chunk), built for Megatron's 1F1B, non-interleaved or interleaved over
// virtual stages, plus the tools that check a schedule (every micro-batch once per chunk, matching sends and
// receives, no deadlock under blocking rendezvous transfers) and measure it (activation slots per chunk,
// bubble of a unit-time simulation). The runner in the training loop executes these lists; nothing here
// communicates.
//
// Virtual stages (interleaving): with `chunks` = v model chunks per stage, the model is cut into p·v
// virtual stages of consecutive blocks, and virtual stage k = c·p + s is chunk c of stage s. Activations
// flow from virtual stage k to k + 1: from stage s to s + 1, and from the last stage's chunk c to the first
// stage's chunk c + 1. With v = 1 this is the plain pipeline.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// One step of a stage, on one of its model chunks. Forward activations flow from virtual stage k to k + 1;
// backward activation gradients from k + 1 to k. The first virtual stage never receives forwards nor sends
// backwards; the last never sends forwards nor receives backwards.
struct PipelineAction {
  enum Kind { RecvForward, Forward, SendForward, RecvBackward, Backward, SendBackward } kind;
  int64_t micro_batch;  // 0-based index within the global batch's micro-batches on this DP rank
  int64_t chunk = 0;    // the model chunk of this stage the action belongs to (0 without interleaving)
  bool operator==(const PipelineAction&) const = default;
};

// Where a transfer of `action` on stage `stage` goes (or comes from): the peer stage and its chunk.
struct PipelinePeer {
  int64_t stage, chunk;
};
PipelinePeer pipeline_peer(const PipelineAction& action, int64_t stage, int64_t stages);

// One action list per stage, stage 0 first.
using PipelineSchedule = std::vector<std::vector<PipelineAction>>;

// "RecvForward(3)", "Backward(0)", with the chunk when it is not 0, "Forward(2, chunk 1)": for messages and
// test output.
std::string to_string(const PipelineAction& action);
std::ostream& operator<<(std::ostream& os, const PipelineAction& action);

// Megatron's non-interleaved 1F1B for `stages` stages and `micro_batches` micro-batches (M). Stage s runs
// w = min(stages − s − 1, M) warm-up forwards, then M − w steady-state rounds of one forward and one
// backward, then w cool-down backwards. Where Megatron posts "send forward + receive backward" as one
// batched pair, this list receives the backward first and then sends the forward (and a stage sends its
// backward before receiving the next forward), so that the schedule also completes with blocking
// transfers: the two neighbours of every pair agree on the order.
PipelineSchedule one_f_one_b(int64_t stages, int64_t micro_batches);

// Megatron-LM's interleaved 1F1B over `chunks` (v >= 2) model chunks per stage; needs stages >= 2 and M a
// multiple of the stages. Compute order of stage s (Megatron's): the k-th of its M·v forwards runs chunk
// (k mod p·v) div p of micro-batch (k div p·v)·p + k mod p, its k-th backward the same micro-batch on chunk
// v − 1 − that; w = min((p − s − 1)·2 + (v − 1)·p, M·v) warm-up forwards (all M·v when M = p), then rounds of
// one forward and one backward, then the remaining backwards. Megatron posts its transfers as batched
// non-blocking pairs; here they are placed by a rendezvous execution (forwards 1, backwards 2, transfers
// free): a transfer happens as soon as both stages are between computes and the receiver's buffer is free
// (chunk c of a stage keeps max_in_flight(·, c) activation slots, micro-batch m in slot m mod slots, one
// received output gradient and one input gradient to send), and a stage starts its next compute once its
// input has arrived. Each list records its stage's actions in that execution's order, so every pair of
// stages meets its transfers in one global order: the schedule completes with blocking transfers whatever
// the compute times. Bubble of that execution: (p − 1)/(v·M + p − 1) of the step (tested).
PipelineSchedule interleaved_one_f_one_b(int64_t stages, int64_t chunks, int64_t micro_batches);

// Throws prores::Error (naming the stage, action and micro-batch) unless: there is one list per stage;
// every stage runs Forward(m) and Backward(m) exactly once for every m, the forward first; every stage
// receives its input before computing it and computes before sending; every SendForward(m) on stage s has
// exactly one matching RecvForward(m) on s + 1 (SendBackward(m) on s + 1 ↔ RecvBackward(m) on s) and the
// end stages have none of the transfers they cannot make; the runner's buffers are never overwritten while in
// use (per chunk: forwards and backwards each in micro-batch order, micro-batch m in activation slot
// m mod max_in_flight, filled by RecvForward(m) only after Backward(m − slots); one received output gradient
// that the chunk's next backward consumes; one input gradient, sent before the chunk's next backward); and a
// simulation where each send completes only when the peer posts the matching receive (rendezvous) runs every
// stage to the end without deadlock.
// Every check is per chunk, for chunks = v model chunks per stage (1: the plain pipeline).
void validate_schedule(const PipelineSchedule& schedule, int64_t stages, int64_t micro_batches, int64_t chunks = 1);

// The most micro-batches whose Forward on `chunk` has run but whose Backward has not, at any point of one
// stage's list: the activation slots that chunk keeps alive. For 1F1B, min(stages − s, M) on stage s.
int64_t max_in_flight(const std::vector<PipelineAction>& stage_actions, int64_t chunk = 0);

// The ideal pipeline bubble of 1F1B or GPipe, (PP − 1) / (M + PP − 1) of the step time idle, and of the
// interleaved 1F1B over v chunks per stage, (PP − 1) / (v·M + PP − 1).
double bubble_fraction_ideal(int64_t stages, int64_t micro_batches, int64_t chunks = 1);

// Timing of a schedule run with blocking rendezvous transfers that take no time: each stage executes its
// list in order, a Forward takes forward_time, a Backward backward_time (per chunk: give a v-chunk schedule
// 1/v of the plain one's times to compare them), and a send/receive pair completes when the later of the two
// stages reaches it.
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
