// SingleProcessCommunicator: argument checks, then the one-rank result (nothing to do, or a copy). The
// operations that move nothing (all_reduce, broadcast, and reduce_scatter / all_gather in place) take
// tensors on any device, so that a one-rank group serves the CUDA path too; the copying ones take host
// tensors.
#include "parallel/single_process_communicator.h"

#include <cstring>

#include "parallel/communicator_checks.h"

namespace prores {

namespace {

// True when a one-rank reduce_scatter / all_gather is in place: part and whole are one tensor, on any
// device. Otherwise the host checks of the communicators (and false: the call copies).
bool in_place_on_one_rank(const Tensor& part, const Tensor& whole, const char* op) {
  if (part.device == Device::CPU && whole.device == Device::CPU)
    return comm_checks::scatter_gather(part, whole, 0, 1, op);
  PRORES_CHECK(part.device == whole.device && part.data == whole.data && part.dtype == whole.dtype &&
                   part.numel() == whole.numel(),
               op, ": a one-rank group takes device tensors only in place (the chunk is the full tensor)");
  return true;
}

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
  const bool in_place = in_place_on_one_rank(out, in, "reduce_scatter");
  comm_checks::reducible(in, "reduce_scatter");
  if (!in_place) std::memcpy(out.data, in.data, out.nbytes());
}

void SingleProcessCommunicator::all_gather(const Tensor& out, const Tensor& in) {
  if (!in_place_on_one_rank(in, out, "all_gather")) std::memcpy(out.data, in.data, out.nbytes());
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
