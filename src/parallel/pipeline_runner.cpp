// The pipeline runner (see pipeline_runner.h). Tags keep the directions and virtual-stage boundaries apart: the
// forward activation from virtual stage k to k + 1 travels with tag 2k, the gradient from k + 1 back to k with
// tag 2k + 1.
#include "parallel/pipeline_runner.h"


namespace prores {

void run_pipeline(const std::vector<PipelineAction>& actions, const PipelineStage& stage, Communicator& pp) {
  const int64_t stages = pp.size(), s = pp.rank();
  for (const PipelineAction& a : actions) {
    const int64_t m = a.micro_batch, c = a.chunk, k = c * stages + s;
    const auto peer = [&] { return static_cast<int>(pipeline_peer(a, s, stages).stage); };
    const auto tag = [](int64_t boundary, int direction) { return static_cast<int>(2 * boundary + direction); };
    switch (a.kind) {
      case PipelineAction::RecvForward: pp.recv(stage.activation_in(m, c), peer(), tag(k - 1, 0)); break;
      case PipelineAction::Forward: stage.forward(m, c); break;
      case PipelineAction::SendForward: pp.send(stage.activation_out(m, c), peer(), tag(k, 0)); break;
      case PipelineAction::RecvBackward: pp.recv(stage.gradient_in(c), peer(), tag(k, 1)); break;
      case PipelineAction::Backward: stage.backward(m, c); break;
      case PipelineAction::SendBackward: pp.send(stage.gradient_out(c), peer(), tag(k - 1, 1)); break;
    }
  }
}

}  // namespace prores
