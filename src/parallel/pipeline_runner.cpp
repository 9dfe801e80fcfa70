// The pipeline runner (see pipeline_runner.h). Tags keep the two directions apart: a forward activation
// of micro-batch m travels with tag 2m, its gradient with tag 2m + 1.
#include "parallel/pipeline_runner.h"

#include "core/check.h"

namespace prores {

void run_pipeline(const std::vector<PipelineAction>& actions, const PipelineStage& stage, Communicator& pp) {
  const int prev = pp.rank() - 1, next = pp.rank() + 1;
  for (const PipelineAction& a : actions) {
    const int64_t m = a.micro_batch;
    const int forward_tag = static_cast<int>(2 * m), backward_tag = forward_tag + 1;
    switch (a.kind) {
      case PipelineAction::RecvForward: pp.recv(stage.activation_in(m), prev, forward_tag); break;
      case PipelineAction::Forward: stage.forward(m); break;
      case PipelineAction::SendForward: pp.send(stage.activation_out(m), next, forward_tag); break;
      case PipelineAction::RecvBackward: pp.recv(stage.gradient_in(), next, backward_tag); break;
      case PipelineAction::Backward: stage.backward(m); break;
      case PipelineAction::SendBackward: pp.send(stage.gradient_out(), prev, backward_tag); break;
    }
  }
}

}  // namespace prores
