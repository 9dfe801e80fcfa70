// Communicator: the collective and point-to-point operations the parallel code needs, behind one
// interface with an MPI implementation (host memory), a single-process one, and (CUDA issue) NCCL.
// No global state: the world communicator is created once at start-up and every sub-communicator is
// made from it by split(); the model and trainer receive them explicitly (parallel/layout.h).
#pragma once
#include <memory>
#include <string>

#include "core/tensor.h"

namespace prores {

enum class ReduceOp { Sum, Max };

// A pending non-blocking operation; wait() completes it (the destructor waits too).
class CommRequest {
 public:
  virtual ~CommRequest() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi", "single" or "nccl": for logs.
  virtual const char* backend() const = 0;

  // x (=) op over every rank's x, in place. Same dtype and numel on every rank.
  virtual void all_reduce(const Tensor& x, ReduceOp op) = 0;
  // Starts the same all-reduce without waiting (DP gradient buckets during backward).
  virtual std::unique_ptr<CommRequest> all_reduce_async(const Tensor& x, ReduceOp op) = 0;
  // out (n) (=) sum over ranks of chunk rank() of in (size()·n).
  virtual void reduce_scatter(const Tensor& out, const Tensor& in) = 0;
  // out (size()·n) (=) every rank's in (n), in rank order.
  virtual void all_gather(const Tensor& out, const Tensor& in) = 0;
  // x (=) root's x on every rank.
  virtual void broadcast(const Tensor& x, int root) = 0;
  // Blocking point-to-point transfer of x's bytes; tags match sends to receives between a pair.
  virtual void send(const Tensor& x, int peer, int tag) = 0;
  virtual void recv(const Tensor& x, int peer, int tag) = 0;
  virtual void barrier() = 0;
  // Ranks with the same color form a new communicator, ordered by key (MPI_Comm_split semantics).
  virtual std::unique_ptr<Communicator> split(int color, int key) const = 0;

  // Convenience: a double reduced over all ranks.
  double all_reduce_scalar(double value, ReduceOp op);
};

// The world: MPI_COMM_WORLD when built with MPI (MPI is initialised here, with the malloc settings of
// docs/parallel.md applied first), otherwise a single-process communicator. Call once, from main().
std::unique_ptr<Communicator> make_world_communicator(int* argc, char*** argv);

// A communicator of one rank (tests, tools, builds without MPI).
std::unique_ptr<Communicator> make_single_process_communicator();

// The communicator that carries `host`'s group's device tensors on the GPU: a single-process one for a
// group of one rank, otherwise an NCCL communicator bootstrapped over `host` (collective over `host`:
// make them in the same order on every rank). A group of several ranks in a build without NCCL is a
// one-line error.
std::unique_ptr<Communicator> make_gpu_communicator(Communicator& host);

// Ends MPI when it was started by make_world_communicator (normal exit).
void finalize_world();
// Terminates every rank after an error on this one (MPI_Abort), so that no rank hangs; plain exit
// without MPI.
[[noreturn]] void abort_world(int exit_code);

}  // namespace prores
