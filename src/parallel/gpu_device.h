// GPU selection for `--device cuda`: one rank per GPU, each rank taking the GPU whose index is its
// node-local rank, with one clear error line on every rank when that is impossible. Plain
// C++: no CUDA or MPI headers; compiled in every build (without CUDA there is never a device).
#pragma once
#include <string>

namespace prores {

// True when this build has the CUDA path and at least one CUDA device is visible. Never throws (no
// driver, no device or an error from the runtime all read as false).
bool cuda_available() noexcept;

// This rank's index among the ranks on its host: MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) of
// MPI_COMM_WORLD when MPI is initialised (collective: every rank of the world must call it), otherwise
// the launcher's OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID or SLURM_LOCALID, otherwise 0.
int node_local_rank();

// The GPU index a rank takes: local_rank itself, when visible_devices (the number of devices this
// process sees) has one of that index. Throws prores::Error with one line naming host and rank
// otherwise: "--device cuda: no CUDA device is visible on host H (rank R)" or "--device cuda: local rank
// L on host H needs GPU L but only G are visible". With `shared`, local_rank mod visible_devices instead
// (several ranks per GPU). Pure: select_local_gpu's decision, testable anywhere.
int local_gpu_index(int local_rank, int visible_devices, const std::string& host, int rank, bool shared = false);

// True when the environment sets PRORES_SHARE_GPUS=1: ranks then share GPUs (local rank L takes GPU L mod
// G) instead of needing one each. Meant for checking parallel layouts on fewer GPUs than ranks, e.g. TP = 2
// on one GPU; NCCL refuses two ranks on one GPU of one host, so each rank must then look like a host of
// its own to it (a distinct NCCL_HOSTID per rank, as launch/gpu_check_layouts.sh sets).
bool gpus_shared();

// Makes GPU local_gpu_index(node_local_rank(), ..., gpus_shared()) this process's current CUDA device
// (cudaSetDevice) and returns its index.
// Collective over MPI_COMM_WORLD when MPI is initialised: every rank must call it, and when any rank
// cannot take its GPU every rank throws, so that no rank goes on to wait for the others in a collective:
// a failing rank its own error line, the others the lowest failing rank's. Without MPI, the error is
// this process's own. In a
// build without CUDA it always throws "--device cuda: this build has no CUDA support".
int select_local_gpu();

}  // namespace prores
