// Runs one stage's pipeline action list (parallel/pipeline_schedule.h): compute actions call back into
// the trainer, communication actions move activations and their gradients to and from the neighbouring
// stages over the pipeline communicator (stage s talks to s − 1 and s + 1).
#pragma once
#include <functional>
#include <vector>

#include "core/tensor.h"
#include "parallel/communicator.h"
#include "parallel/pipeline_schedule.h"

namespace prores {

// What one stage does for micro-batch m, supplied by the trainer.
struct PipelineStage {
  std::function<void(int64_t m)> forward, backward;
  std::function<Tensor(int64_t m)> activation_in;   // where RecvForward(m) writes (not on the first stage)
  std::function<Tensor(int64_t m)> activation_out;  // what SendForward(m) sends (not on the last stage)
  std::function<Tensor()> gradient_in;              // where RecvBackward writes (not on the last stage)
  std::function<Tensor()> gradient_out;             // what SendBackward sends (not on the first stage)
};

// Executes actions in order on stage pp.rank() of pp.size(). Blocking sends and receives; the schedule
// must be deadlock-free under rendezvous semantics (validate_schedule checks that).
void run_pipeline(const std::vector<PipelineAction>& actions, const PipelineStage& stage, Communicator& pp);

}  // namespace prores
