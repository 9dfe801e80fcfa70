// SingleProcessCommunicator: argument checks, then the one-rank result (nothing to do, or a copy). The
// operations that move nothing (all_reduce, broadcast) take tensors on any device, so that a one-rank
// group serves the CUDA path too; the copying ones take host tensors.
#include "parallel/single_process_communicator.h"

#include <cstring>

#include "parallel/communicator_checks.h"

namespace prores {

namespace {

// Nothing is pending on one rank.
class CompletedRequest final : public CommRequest {
 public:
  void wait() override {}
};

}  // namespace

void SingleProcessCommunicator::all_reduce(const Tensor& x, ReduceOp) {
  PRORES_CHECK(x.data != nullptr || x.numel() == 0, "all_reduce: tensor ", x.shape_string(), " has no data");
  comm_checks::reducible(x, "all_reduce");
}

std::unique_ptr<CommRequest> SingleProcessCommunicator::all_reduce_async(const Tensor& x, ReduceOp op) {
  all_reduce(x, op);
  return std::make_unique<CompletedRequest>();
}

void SingleProcessCommunicator::reduce_scatter(const Tensor& out, const Tensor& in) {
  const bool in_place = comm_checks::scatter_gather(out, in, 0, 1, "reduce_scatter");
  comm_checks::reducible(in, "reduce_scatter");
  if (!in_place) std::memcpy(out.data, in.data, out.nbytes());
}

void SingleProcessCommunicator::all_gather(const Tensor& out, const Tensor& in) {
  const bool in_place = comm_checks::scatter_gather(in, out, 0, 1, "all_gather");
  if (!in_place) std::memcpy(out.data, in.data, out.nbytes());
}

void SingleProcessCommunicator::broadcast(const Tensor& x, int root) {
  PRORES_CHECK(x.data != nullptr || x.numel() == 0, "broadcast: tensor ", x.shape_string(), " has no data");
  comm_checks::root(root, 1);
}

void SingleProcessCommunicator::send(const Tensor& x, int peer, int tag) {
  comm_checks::host_tensor(x, "send");
  comm_checks::tag(tag);
  comm_checks::peer(peer, 0, 1, "send");
}

void SingleProcessCommunicator::recv(const Tensor& x, int peer, int tag) {
  comm_checks::host_tensor(x, "recv");
  comm_checks::tag(tag);
  comm_checks::peer(peer, 0, 1, "recv");
}

std::unique_ptr<Communicator> SingleProcessCommunicator::split(int color, int) const {
  comm_checks::color(color);
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace prores
