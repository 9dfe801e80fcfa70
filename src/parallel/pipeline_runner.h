// Runs one stage's pipeline action list (parallel/pipeline_schedule.h): compute actions call back into
// the trainer, communication actions move activations and their gradients to and from the neighbouring
// virtual stages over the pipeline communicator (virtual stage k talks to k − 1 and k + 1: stage s to s ± 1,
// and across chunks between the last and the first stage).
#pragma once
#include <functional>
#include <vector>

#include "core/tensor.h"
#include "parallel/communicator.h"
#include "parallel/pipeline_schedule.h"

namespace prores {

// What one stage does for micro-batch m on its model chunk c, supplied by the trainer.
struct PipelineStage {
  std::function<void(int64_t m, int64_t c)> forward, backward;
  std::function<Tensor(int64_t m, int64_t c)> activation_in;   // where RecvForward writes (not the first virtual stage)
  std::function<Tensor(int64_t m, int64_t c)> activation_out;  // what SendForward sends (not the last virtual stage)
  std::function<Tensor(int64_t c)> gradient_in;                // where RecvBackward writes (not the last)
  std::function<Tensor(int64_t c)> gradient_out;               // what SendBackward sends (not the first)
};

// Executes actions in order on stage pp.rank() of pp.size(). Blocking sends and receives; the schedule
// must be deadlock-free under rendezvous semantics (validate_schedule checks that), which also makes every
// pair of stages post its transfers in the same order: a transfer's tag names only the virtual-stage boundary
// and direction, and MPI's non-overtaking order matches the micro-batches.
void run_pipeline(const std::vector<PipelineAction>& actions, const PipelineStage& stage, Communicator& pp);

}  // namespace prores
