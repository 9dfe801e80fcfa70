// GPU selection and NcclCommunicator tests on any number of ranks (ctest runs 1, 2 and 4). The GpuDevice
// tests run everywhere: select_local_gpu's error lines, and on a machine without a GPU its no-device line
// on every rank. The NcclCommunicator tests repeat test_mpi_collectives' closed-form checks on CUDA device
// tensors (x[i] = rank·1000 + i + 0.5), plus bf16 reductions and the ordering against compute kernels on
// the default stream; each skips with a message when the build has no NCCL, no GPU is visible, or a node
// has fewer GPUs than ranks. EXPECT (never ASSERT) between collectives, and main() all-reduces the failure
// flag over the host world, as in test_mpi_collectives.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "collective_checks.h"
#include "cuda_test_util.h"
#include "mpi_test_main.h"
#include "parallel/communicator.h"
#include "parallel/gpu_device.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/device.h"
#endif
#if defined(PRORES_WITH_NCCL)
#include "ops/elementwise.h"
#include "parallel/nccl_communicator.h"
#endif

namespace prores {
namespace {

Communicator* g_world = nullptr;  // the host world (MPI or single-process), set by main()
Communicator* g_nccl = nullptr;   // the NCCL world, when main() could create it
std::string g_no_nccl;            // why g_nccl is null: the skip message, or the creation error
bool g_nccl_failed = false;       // creation was attempted on GPUs and failed (a failure, not a skip)

// The message of the prores::Error f throws, or "" when it throws none.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#if defined(PRORES_WITH_CUDA)
std::string host_name() {
  std::array<char, 256> name{};
  gethostname(name.data(), name.size() - 1);
  return name.data();
}
#endif

int visible_devices() {
#if defined(PRORES_WITH_CUDA)
  return ops::cuda::device_count();
#else
  return 0;
#endif
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

TEST(GpuDevice, ErrorLines) {
  EXPECT_EQ(local_gpu_index(0, 1, "h", 3), 0);
  EXPECT_EQ(local_gpu_index(7, 8, "h", 7), 7);
  const std::string none = error_of([] { local_gpu_index(0, 0, "node17", 5); });
  EXPECT_TRUE(starts_with(none, "--device cuda: no CUDA device is visible on host node17 (rank 5)")) << none;
  const std::string short_of = error_of([] { local_gpu_index(4, 4, "node17", 12); });
  EXPECT_TRUE(starts_with(short_of, "--device cuda: local rank 4 on host node17 needs GPU 4 but only 4 are visible"))
      << short_of;
  EXPECT_EQ(short_of.find('\n'), std::string::npos) << "one line";
  EXPECT_EQ(local_gpu_index(4, 4, "node17", 12, true), 0) << "shared GPUs: local rank mod GPUs";
  EXPECT_EQ(local_gpu_index(5, 2, "node17", 5, true), 1);
  EXPECT_TRUE(starts_with(error_of([] { local_gpu_index(1, 0, "node17", 1, true); }), "--device cuda: no CUDA device"));
}

TEST(GpuDevice, CudaAvailableMatchesTheDeviceCount) { EXPECT_EQ(cuda_available(), visible_devices() > 0); }

// select_local_gpu on every rank: the no-device line without a GPU (this machine), the error of a rank
// short of a GPU on every rank when a node has more ranks than GPUs (unless PRORES_SHARE_GPUS=1), the
// local rank (modulo the GPUs) otherwise.
TEST(GpuDevice, SelectLocalGpu) {
  const int local = node_local_rank();
  EXPECT_GE(local, 0);
  EXPECT_LT(local, g_world->size());
  int selected = -1;
#if defined(PRORES_WITH_CUDA)
  const int devices = visible_devices();
  const bool short_of_a_gpu = local >= devices && !gpus_shared();
  const bool some_rank_short = g_world->all_reduce_scalar(short_of_a_gpu ? 1.0 : 0.0, ReduceOp::Max) > 0;
  const std::string error = error_of([&] { selected = select_local_gpu(); });
  if (devices == 0) {
    const std::string line = "--device cuda: no CUDA device is visible on host " + host_name() + " (rank " +
                             std::to_string(g_world->rank()) + ")";
    EXPECT_TRUE(starts_with(error, line)) << "got: " << error << "\nwant: " << line;
  } else if (some_rank_short) {
    EXPECT_NE(error.find("needs GPU"), std::string::npos) << error;
    EXPECT_NE(error.find("but only " + std::to_string(devices) + " are visible"), std::string::npos) << error;
  } else {
    EXPECT_EQ(error, "");
    EXPECT_EQ(selected, local % devices);
  }
#else
  const std::string error = error_of([&] { selected = select_local_gpu(); });
  EXPECT_TRUE(starts_with(error, "--device cuda: this build has no CUDA support")) << error;
  EXPECT_EQ(selected, -1);
#endif
  EXPECT_EQ(error.find('\n'), std::string::npos) << "one line: " << error;
}

#if defined(PRORES_WITH_NCCL)

#define PRORES_SKIP_WITHOUT_NCCL() \
  if (g_nccl == nullptr) GTEST_SKIP() << g_no_nccl

using test::DeviceBuffer;

// bf16 of a small integer (exact: at most 8 significant bits).
uint16_t bf16_of(int v) { return float_to_bf16(static_cast<float>(v)); }

// bf16 sum and max of x[i] = (rank + i) % 16 + 1: sums stay below 2^8, so they are exact.
void check_all_reduce_bf16(Communicator& comm) {
  const int64_t n = 999;
  std::vector<uint16_t> mine(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) mine[static_cast<size_t>(i)] = bf16_of(static_cast<int>((comm.rank() + i) % 16 + 1));
  DeviceBuffer<uint16_t> sum(mine), max(mine);
  comm.all_reduce(sum.tensor(), ReduceOp::Sum);
  comm.all_reduce(max.tensor(), ReduceOp::Max);
  const auto s = sum.download(), m = max.download();
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    int total = 0, largest = 0;
    for (int r = 0; r < comm.size(); ++r) {
      total += static_cast<int>((r + i) % 16 + 1);
      largest = std::max(largest, static_cast<int>((r + i) % 16 + 1));
    }
    wrong += s[static_cast<size_t>(i)] != bf16_of(total);
    wrong += m[static_cast<size_t>(i)] != bf16_of(largest);
  }
  EXPECT_EQ(wrong, 0);
}

// Every collective on comm with device buffers (collective_checks.h), and the bf16 reductions that NCCL
// has and the host communicators refuse.
void check_collectives(Communicator& comm) {
  test::check_collectives<DeviceBuffer>(comm);
  check_all_reduce_bf16(comm);
}

TEST(NcclCommunicator, Created) {
  if (g_nccl == nullptr && !g_nccl_failed) GTEST_SKIP() << g_no_nccl;
  ASSERT_NE(g_nccl, nullptr) << g_no_nccl;
  EXPECT_STREQ(g_nccl->backend(), "nccl");
  EXPECT_EQ(g_nccl->rank(), g_world->rank());
  EXPECT_EQ(g_nccl->size(), g_world->size());
}

TEST(NcclCommunicator, World) {
  PRORES_SKIP_WITHOUT_NCCL();
  check_collectives(*g_nccl);
}

TEST(NcclCommunicator, SplitEvenOdd) {
  PRORES_SKIP_WITHOUT_NCCL();
  const int rank = g_nccl->rank(), size = g_nccl->size();
  auto part = g_nccl->split(rank % 2, rank);
  EXPECT_STREQ(part->backend(), "nccl");
  EXPECT_EQ(part->rank(), rank / 2);
  EXPECT_EQ(part->size(), rank % 2 == 0 ? (size + 1) / 2 : size / 2);
  check_collectives(*part);
}

TEST(NcclCommunicator, SplitReversedKey) {
  PRORES_SKIP_WITHOUT_NCCL();
  const int rank = g_nccl->rank(), size = g_nccl->size();
  auto reversed = g_nccl->split(0, size - rank);
  EXPECT_EQ(reversed->rank(), size - 1 - rank);
  EXPECT_EQ(reversed->size(), size);
  DeviceBuffer<int32_t> mine(std::vector<int32_t>{rank});
  DeviceBuffer<int32_t> world_ranks(std::vector<int32_t>(static_cast<size_t>(size), -1));
  reversed->all_gather(world_ranks.tensor(), mine.tensor());
  const auto got = world_ranks.download();
  for (int j = 0; j < size; ++j) EXPECT_EQ(got[static_cast<size_t>(j)], size - 1 - j);
  check_collectives(*reversed);
  auto nested = reversed->split(reversed->rank() % 2, reversed->rank());
  EXPECT_EQ(nested->rank(), reversed->rank() / 2);
  check_collectives(*nested);
}

// Kernels on the default stream before and after an all-reduce, with no host synchronization between
// them: the all-reduce must see y = 2x and the kernel after it must see the sum (z = 3 Σ 2x). 2^24
// elements, so that an unordered collective would overtake the first kernel.
TEST(NcclCommunicator, OrderedWithComputeOnTheDefaultStream) {
  PRORES_SKIP_WITHOUT_NCCL();
  const int64_t n = int64_t{1} << 24;
  std::vector<float> host(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) host[static_cast<size_t>(i)] = g_nccl->rank() * 1000.0f + (i % 1000) + 0.5f;
  DeviceBuffer<float> x(host);
  const Tensor t = x.tensor();
  ops::axpby(t, 2.0, t, 0.0, t);
  g_nccl->all_reduce(t, ReduceOp::Sum);
  ops::axpby(t, 3.0, t, 0.0, t);
  const auto got = x.download();
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    float sum = 0;
    for (int r = 0; r < g_nccl->size(); ++r) sum += 2.0f * (r * 1000.0f + (i % 1000) + 0.5f);
    wrong += got[static_cast<size_t>(i)] != 3.0f * sum;
  }
  EXPECT_EQ(wrong, 0) << "e.g. z[1] = " << got[1];
}

// Rank 0 arrives 200 ms late; every other rank must wait for it in the barrier.
TEST(NcclCommunicator, BarrierWaitsForTheLastRank) {
  PRORES_SKIP_WITHOUT_NCCL();
  g_nccl->barrier();
  const auto start = std::chrono::steady_clock::now();
  if (g_nccl->rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  g_nccl->barrier();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (g_nccl->rank() != 0) {
    EXPECT_GT(waited, 0.1);
  }
}

// Errors raised by the argument checks, identically on every rank, before any communication.
TEST(NcclCommunicator, ArgumentErrors) {
  PRORES_SKIP_WITHOUT_NCCL();
  Communicator& comm = *g_nccl;
  std::vector<float> host(8, 1.0f);
  const Tensor on_host(host.data(), DType::F32, Device::CPU, {8});
  const std::string refused = error_of([&] { comm.all_reduce(on_host, ReduceOp::Sum); });
  EXPECT_NE(refused.find("host memory"), std::string::npos) << refused;
  EXPECT_THROW(comm.broadcast(on_host, 0), Error);
  EXPECT_THROW(comm.all_reduce(Tensor(host.data(), DType::F32, Device::CUDA, {8}), ReduceOp::Sum), Error);
  DeviceBuffer<float> x(host);
  EXPECT_THROW(comm.broadcast(x.tensor(), comm.size()), Error);
  EXPECT_THROW(comm.broadcast(x.tensor(), -1), Error);
  DeviceBuffer<float> wrong_size(std::vector<float>(static_cast<size_t>(8 * comm.size() + 1)));
  EXPECT_THROW(comm.reduce_scatter(x.tensor(), wrong_size.tensor()), Error);
  EXPECT_THROW(comm.all_gather(wrong_size.tensor(), x.tensor()), Error);
  DeviceBuffer<double> other_dtype(std::vector<double>(static_cast<size_t>(8 * comm.size())));
  EXPECT_THROW(comm.all_gather(other_dtype.tensor(), x.tensor()), Error);
  EXPECT_THROW(comm.send(x.tensor(), comm.size(), 0), Error);
  EXPECT_THROW(comm.send(x.tensor(), comm.rank(), 0), Error);
  EXPECT_THROW(comm.split(-1, 0), Error);
  float one = 2.0f;  // a one-element host tensor is staged (all_reduce_scalar's path)
  comm.all_reduce(Tensor(&one, DType::F32, Device::CPU, {1}), ReduceOp::Sum);
  EXPECT_EQ(one, 2.0f * comm.size());
}

#else

TEST(NcclCommunicator, Created) { GTEST_SKIP() << g_no_nccl; }

#endif

// The NCCL world over `world` when this machine can have one (g_no_nccl says why not otherwise).
std::unique_ptr<Communicator> make_nccl_world([[maybe_unused]] Communicator& world) {
#if defined(PRORES_WITH_NCCL)
  const std::string selection = error_of([] { select_local_gpu(); });  // the same outcome on every rank
  if (!selection.empty()) {
    g_no_nccl = "needs one GPU per rank (no GPU, or fewer GPUs than ranks on a node): " + selection;
    return nullptr;
  }
  try {
    return std::make_unique<NcclCommunicator>(world);
  } catch (const Error& e) {
    g_no_nccl = std::string("NcclCommunicator failed: ") + e.what();
    g_nccl_failed = true;
    return nullptr;
  }
#else
  g_no_nccl = "this build has no NCCL (PRORES_WITH_NCCL off)";
  return nullptr;
#endif
}

}  // namespace
}  // namespace prores

int main(int argc, char** argv) {
  std::unique_ptr<prores::Communicator> nccl;
  return prores::test::run_mpi_tests(
      argc, argv, "test_mpi_nccl",
      [&](prores::Communicator& world) {
        prores::g_world = &world;
        nccl = prores::make_nccl_world(world);
        prores::g_nccl = nccl.get();
      },
      [&] { nccl.reset(); });
}
