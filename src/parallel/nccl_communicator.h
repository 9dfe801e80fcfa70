// NcclCommunicator: the Communicator over NCCL, on tensors in CUDA device memory, bootstrapped through a
// host communicator (the MPI world). Built only with PRORES_WITH_NCCL (CUDA on and NCCL found); plain
// C++ (nccl.h and cuda_runtime.h stay in the .cpp), so host-compiled code may include it.
//
// Streams: every communicator owns one non-blocking communication stream. Compute runs on the legacy
// default stream (ops/cuda/device.h); each collective first makes the communication stream wait for the
// work already queued on the default stream (an event), then makes the default stream wait for the
// collective (another event). So a blocking call returns once the operation is queued, and its result
// is ordered before everything queued later on the default stream, synchronous cudaMemcpy included;
// the host does not wait, except where noted (barrier, the one-element host tensor of
// all_reduce_scalar, and CommRequest::wait).
#pragma once
#include <memory>

#include "parallel/communicator.h"

struct ncclComm;
struct CUstream_st;
struct CUevent_st;

namespace prores {

// Tensors must have Device::CUDA and point into device memory of the communicator's GPU (the current
// device when it was made); host tensors are refused with an error, except a one-element host tensor
// passed to all_reduce (all_reduce_scalar's), which is staged through a device scalar. Reductions take
// f32, f64, bf16 and i32. Calls that NCCL matches across ranks (all of them) must be made in the same
// order on every rank of the communicator. Errors become prores::Error with NCCL's description.
class NcclCommunicator final : public Communicator {
 public:
  // Collective over `host`: rank 0 creates the NCCL unique id, host.broadcast sends it to every rank,
  // and each rank joins with ncclCommInitRank under its host rank. The current CUDA device (see
  // select_local_gpu) becomes this communicator's; ranks of one communicator need distinct GPUs (NCCL
  // refuses two on one GPU of one host: see gpus_shared for the layout check's way round it). When
  // a rank has no usable device or rank 0 cannot create the id, every rank throws (no rank is left
  // waiting). `host` is only used during construction.
  explicit NcclCommunicator(Communicator& host);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }

  void all_reduce(const Tensor& x, ReduceOp op) override;
  // Queued on the communication stream after the default stream's earlier work; the request's wait()
  // blocks the host until the all-reduce has finished (its event). The default stream does not wait
  // for it before wait() returns. Wait for (or destroy) the request before destroying the communicator.
  std::unique_ptr<CommRequest> all_reduce_async(const Tensor& x, ReduceOp op) override;
  // out may be chunk rank() of in (in place); in's other chunks are then left unspecified.
  void reduce_scatter(const Tensor& out, const Tensor& in) override;
  // in may be chunk rank() of out (in place).
  void all_gather(const Tensor& out, const Tensor& in) override;
  void broadcast(const Tensor& x, int root) override;
  // NCCL has no tags (checked to be non-negative, otherwise ignored): transfers between a pair of ranks
  // match in the order they are posted, and their sizes must agree (NCCL cannot check that).
  void send(const Tensor& x, int peer, int tag) override;
  void recv(const Tensor& x, int peer, int tag) override;
  // A one-element all-reduce, then the host waits for the communication stream.
  void barrier() override;
  // ncclCommSplit: collective over this communicator; the new one shares this GPU and has its own stream.
  std::unique_ptr<Communicator> split(int color, int key) const override;

 private:
  // Takes ownership of an initialised NCCL communicator; creates the stream, events and device scalar.
  NcclCommunicator(ncclComm* comm, int rank, int size);
  // Frees whatever the constructor created (null handles are skipped).
  void release() noexcept;
  // Makes the communication stream wait for the work queued so far on the default stream.
  void after_compute();
  // Makes the default stream wait for the work queued so far on the communication stream.
  void before_compute();
  // all_reduce of a one-element host tensor through scalar_, synchronously.
  void all_reduce_host_scalar(const Tensor& x, ReduceOp op);

  ncclComm* comm_ = nullptr;
  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
  CUstream_st* stream_ = nullptr;         // the communication stream (cudaStreamNonBlocking)
  CUevent_st* compute_ready_ = nullptr;   // recorded on the default stream, waited for by stream_
  CUevent_st* comm_done_ = nullptr;       // recorded on stream_, waited for by the default stream
  void* scalar_ = nullptr;                // 8 bytes of device memory for host scalars and barrier()
};

}  // namespace prores
