// GPU selection (parallel/gpu_device.h): the node-local rank from MPI or the launcher's environment,
// the device it maps to, cudaSetDevice plus a context check, and the agreement on one error line across
// MPI_COMM_WORLD. mpi.h and cuda_runtime.h stay inside this file.
#include "parallel/gpu_device.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "core/check.h"
#if defined(PRORES_WITH_CUDA)
#include <cuda_runtime.h>

#include "ops/cuda/device.h"
#endif
#if defined(PRORES_WITH_MPI)
#include <mpi.h>
#endif

namespace prores {

namespace {

// The non-negative integer in environment variable `name`, or -1 when it is unset or not one.
int env_int(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return -1;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0 || value > INT_MAX) return -1;
  return static_cast<int>(value);
}

// The first of the environment variables `names` that holds a non-negative integer, or -1.
int first_env_int(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const int value = env_int(name);
    if (value >= 0) return value;
  }
  return -1;
}

// local_gpu_index's error line, or "" when local_rank has a GPU.
std::string gpu_error(int local_rank, int visible_devices, const std::string& host, int rank, bool shared) {
  if (visible_devices <= 0)
    return detail::concat("--device cuda: no CUDA device is visible on host ", host, " (rank ", rank, ")");
  if (local_rank >= visible_devices && !shared)
    return detail::concat("--device cuda: local rank ", local_rank, " on host ", host, " needs GPU ", local_rank,
                          " but only ", visible_devices, " are visible");
  return "";
}

#if defined(PRORES_WITH_MPI)
// MPI is initialised and not finalized: MPI_COMM_WORLD may be used.
bool mpi_active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

// Throws prores::Error naming the MPI call unless rc is MPI_SUCCESS.
void check_mpi(int rc, const char* call) {
  PRORES_CHECK(rc == MPI_SUCCESS, "select_local_gpu: ", call, " failed with MPI error code ", rc);
}
#endif

#if defined(PRORES_WITH_CUDA)
// This machine's host name, for error lines.
std::string host_name() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "?";
  return name.data();
}

// This process's rank in the world: MPI_COMM_WORLD's when MPI is active, else the launcher's, else 0.
int world_rank() {
#if defined(PRORES_WITH_MPI)
  if (mpi_active()) {
    int rank = 0;
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
    return rank;
  }
#endif
  const int rank = first_env_int({"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"});
  return rank >= 0 ? rank : 0;
}

// Makes GPU `index` current and creates its context now (so that an unusable device, e.g. one held by
// another process in exclusive mode, fails here); returns an error line, or "" on success. Its default memory
// pool (where the device has memory pools) keeps what the stream-ordered allocations (bf16 operand copies, op
// scratch) free: with the default release threshold of 0 it would hand that memory back to the driver at
// every synchronization, and each training step would map it again.
std::string set_device(int index, const std::string& host, int rank) {
  cudaError_t error = cudaSetDevice(index);
  if (error == cudaSuccess) error = cudaFree(nullptr);
  int pools = 0;
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, index);
  cudaMemPool_t pool = nullptr;
  if (error == cudaSuccess && pools != 0) error = cudaDeviceGetDefaultMemPool(&pool, index);
  uint64_t keep_all = std::numeric_limits<uint64_t>::max();
  if (error == cudaSuccess && pools != 0)
    error = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all);
  if (error == cudaSuccess) return "";
  cudaGetLastError();
  return detail::concat("--device cuda: cannot use GPU ", index, " on host ", host, " (rank ", rank,
                        "): ", cudaGetErrorName(error), ": ", cudaGetErrorString(error));
}

// The error line this rank reports: its own `mine` when it has one, else the lowest world rank's non-empty
// `mine` (sent to all ranks when MPI is active; collective then), else "". Without MPI, `mine` itself.
std::string agreed_error(const std::string& mine) {
#if defined(PRORES_WITH_MPI)
  if (!mpi_active()) return mine;
  int rank = 0;
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
  int first = mine.empty() ? INT_MAX : rank;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  if (first == INT_MAX) return "";
  if (!mine.empty()) return mine;
  std::array<char, 1024> text{};
  if (rank == first) std::strncpy(text.data(), mine.c_str(), text.size() - 1);
  check_mpi(MPI_Bcast(text.data(), static_cast<int>(text.size()), MPI_CHAR, first, MPI_COMM_WORLD), "MPI_Bcast");
  return text.data();
#else
  return mine;
#endif
}
#endif

}  // namespace

bool cuda_available() noexcept {
#if defined(PRORES_WITH_CUDA)
  return ops::cuda::device_count() > 0;
#else
  return false;
#endif
}

int node_local_rank() {
#if defined(PRORES_WITH_MPI)
  if (mpi_active()) {
    MPI_Comm node = MPI_COMM_NULL;
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
              "MPI_Comm_split_type");
    int rank = 0;
    const int rc = MPI_Comm_rank(node, &rank);
    MPI_Comm_free(&node);
    check_mpi(rc, "MPI_Comm_rank");
    return rank;
  }
#endif
  const int rank = first_env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"});
  return rank >= 0 ? rank : 0;
}

int local_gpu_index(int local_rank, int visible_devices, const std::string& host, int rank, bool shared) {
  const std::string error = gpu_error(local_rank, visible_devices, host, rank, shared);
  if (!error.empty()) PRORES_FAIL(error);
  return local_rank % visible_devices;
}

bool gpus_shared() { return env_int("PRORES_SHARE_GPUS") == 1; }

int select_local_gpu() {
#if defined(PRORES_WITH_CUDA)
  const int local_rank = node_local_rank();
  const int rank = world_rank();
  const std::string host = host_name();
  const int devices = ops::cuda::device_count();
  std::string error = gpu_error(local_rank, devices, host, rank, gpus_shared());
  const int index = error.empty() ? local_rank % devices : -1;
  if (error.empty()) error = set_device(index, host, rank);
  error = agreed_error(error);
  if (!error.empty()) PRORES_FAIL(error);
  return index;
#else
  PRORES_FAIL("--device cuda: this build has no CUDA support (configured without nvcc or with "
              "-DPRORES_WITH_CUDA=OFF)");
#endif
}

}  // namespace prores
