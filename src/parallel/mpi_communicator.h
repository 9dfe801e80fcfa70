// MpiCommunicator: the Communicator over an MPI communicator, on host memory, plus the start-up and
// shut-down of MPI itself. The only header that includes mpi.h: include it from .cpp files in
// src/parallel only (the model and trainer see parallel/communicator.h). Built with PRORES_WITH_MPI.
#pragma once
#include <mpi.h>

#include <memory>

#include "parallel/communicator.h"

namespace prores {

// Wraps an MPI communicator whose error handler returns (MPI_ERRORS_RETURN): every failing MPI call
// throws prores::Error naming the call, this rank and MPI's message. Calls must come from the thread that
// initialised MPI (MPI_THREAD_FUNNELED). Tensors must be in host memory.
class MpiCommunicator final : public Communicator {
 public:
  // owned: MPI_Comm_free it on destruction (communicators made by split(); not MPI_COMM_WORLD).
  MpiCommunicator(MPI_Comm comm, bool owned);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }

  void all_reduce(const Tensor& x, ReduceOp op) override;
  // The request must be waited for (or destroyed) before this communicator is destroyed.
  std::unique_ptr<CommRequest> all_reduce_async(const Tensor& x, ReduceOp op) override;
  // out may be chunk rank() of in (in place); in's other chunks are then left unspecified.
  void reduce_scatter(const Tensor& out, const Tensor& in) override;
  // in may be chunk rank() of out (in place).
  void all_gather(const Tensor& out, const Tensor& in) override;
  void broadcast(const Tensor& x, int root) override;
  void send(const Tensor& x, int peer, int tag) override;
  void recv(const Tensor& x, int peer, int tag) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key) const override;

 private:
  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0;
  int size_ = 1;
  int tag_ub_ = 32767;  // MPI's guaranteed minimum for MPI_TAG_UB
};

// Initialises MPI (MPI_Init_thread, MPI_THREAD_FUNNELED) after applying the malloc settings of
// docs/parallel.md, unless MPI is already initialised (then it is used as it is and left to its owner), and
// returns MPI_COMM_WORLD with MPI_ERRORS_RETURN set. Throws when MPI was already finalized.
std::unique_ptr<Communicator> mpi_make_world(int* argc, char*** argv);
// MPI_Finalize when mpi_make_world initialised MPI and it is not finalized yet.
void mpi_finalize_world();
// MPI_Abort(MPI_COMM_WORLD, exit_code) when MPI is initialised and not finalized; returns otherwise.
void mpi_abort_world(int exit_code);

}  // namespace prores
