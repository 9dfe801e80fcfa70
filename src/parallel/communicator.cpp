// Communicator: the backend-independent pieces: all_reduce_scalar, the argument checks shared by the
// host communicators, the world's creation, finalization and abort (MPI when built with it), and the
// GPU communicator's choice (NCCL when built with it).
#include "parallel/communicator.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "parallel/communicator_checks.h"
#include "parallel/single_process_communicator.h"
#if defined(PRORES_WITH_MPI)
#include "parallel/mpi_communicator.h"
#endif
#if defined(PRORES_WITH_NCCL)
#include "parallel/nccl_communicator.h"
#endif

namespace prores {

namespace comm_checks {

void host_tensor(const Tensor& x, const char* op) {
  PRORES_CHECK(x.device == Device::CPU, op, ": tensor ", x.shape_string(),
               " is in device memory; host communicators take host tensors");
  PRORES_CHECK(x.data != nullptr || x.numel() == 0, op, ": tensor ", x.shape_string(), " has no data");
}

void reducible(const Tensor& x, const char* op) {
  PRORES_CHECK(x.dtype != DType::BF16, op, ": bf16 reductions are not supported by host communicators "
               "(MPI has no bf16 type); reduce in f32");
}

bool scatter_gather(const Tensor& part, const Tensor& whole, int rank, int size, const char* op) {
  host_tensor(part, op);
  host_tensor(whole, op);
  PRORES_CHECK(part.dtype == whole.dtype, op, ": dtypes differ (", dtype_name(part.dtype), " chunk, ",
               dtype_name(whole.dtype), " full tensor)");
  PRORES_CHECK(whole.numel() == size * part.numel(), op, ": full tensor ", whole.shape_string(), " is not ", size,
               " x chunk ", part.shape_string());
  const auto* p = static_cast<const char*>(part.data);
  const auto* w = static_cast<const char*>(whole.data);
  if (part.nbytes() == 0) return false;
  if (p == w + static_cast<size_t>(rank) * part.nbytes()) return true;
  PRORES_CHECK(p + part.nbytes() <= w || w + whole.nbytes() <= p, op,
               ": the chunk overlaps the full tensor without being its chunk ", rank);
  return false;
}

void peer(int peer, int rank, int size, const char* op) {
  PRORES_CHECK(peer >= 0 && peer < size, op, ": peer ", peer, " is not a rank of a communicator of ", size);
  PRORES_CHECK(peer != rank, op, ": peer ", peer, " is this rank itself (no transfers to self)");
}

void root(int root, int size) {
  PRORES_CHECK(root >= 0 && root < size, "broadcast: root ", root, " is not a rank of a communicator of ", size);
}

void tag(int tag) { PRORES_CHECK(tag >= 0, "negative message tag ", tag); }

void color(int color) { PRORES_CHECK(color >= 0, "split: color ", color, " must be non-negative"); }

}  // namespace comm_checks

double Communicator::all_reduce_scalar(double value, ReduceOp op) {
  all_reduce(Tensor(&value, DType::F64, Device::CPU, {1}), op);
  return value;
}

std::unique_ptr<Communicator> make_world_communicator([[maybe_unused]] int* argc, [[maybe_unused]] char*** argv) {
#if defined(PRORES_WITH_MPI)
  return mpi_make_world(argc, argv);
#else
  return make_single_process_communicator();
#endif
}

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

std::unique_ptr<Communicator> make_gpu_communicator(Communicator& host) {
  if (host.size() == 1) return make_single_process_communicator();
#if defined(PRORES_WITH_NCCL)
  return std::make_unique<NcclCommunicator>(host);
#else
  PRORES_FAIL("--device cuda with more than one rank per group needs a build with NCCL");
#endif
}

void finalize_world() {
#if defined(PRORES_WITH_MPI)
  mpi_finalize_world();
#endif
}

void abort_world(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
#if defined(PRORES_WITH_MPI)
  mpi_abort_world(exit_code);
#endif
  std::exit(exit_code);
}

}  // namespace prores
