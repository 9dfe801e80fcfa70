// SingleProcessCommunicator: the Communicator of one rank (tests, tools, builds without MPI). Collectives
// reduce to no-ops or copies; it checks its arguments as the MPI communicator does, so that a call that
// would fail on many ranks already fails on one.
#pragma once
#include <memory>

#include "parallel/communicator.h"

namespace prores {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "single"; }

  // No-op (x is already the reduction over the one rank).
  void all_reduce(const Tensor& x, ReduceOp op) override;
  // No-op; the request's wait() returns at once.
  std::unique_ptr<CommRequest> all_reduce_async(const Tensor& x, ReduceOp op) override;
  // out (=) in (out may be in itself).
  void reduce_scatter(const Tensor& out, const Tensor& in) override;
  // out (=) in (in may be out itself).
  void all_gather(const Tensor& out, const Tensor& in) override;
  // No-op; root must be 0.
  void broadcast(const Tensor& x, int root) override;
  // There is no other rank: always throws.
  void send(const Tensor& x, int peer, int tag) override;
  void recv(const Tensor& x, int peer, int tag) override;
  void barrier() override {}
  // Another single-process communicator.
  std::unique_ptr<Communicator> split(int color, int key) const override;
};

}  // namespace prores
