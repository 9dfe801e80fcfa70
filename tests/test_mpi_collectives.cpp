// Communicator tests on any number of ranks (ctest runs 1, 2 and 4): every collective and point-to-point
// transfer against closed-form results (collective_checks.h, on host buffers), on the world and on
// sub-communicators from split(), plus the errors every rank must raise alike. Checks use EXPECT (never
// ASSERT) between collectives, so that a failing rank still joins every later collective; main()
// all-reduces the failure flag, so every rank exits non-zero when one failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "collective_checks.h"
#include "mpi_test_main.h"
#include "parallel/communicator.h"
#include "test_util.h"

namespace prores {
namespace {

Communicator* g_world = nullptr;  // set by main() before the tests run

template <typename T>
Tensor view(std::vector<T>& v) {
  return Tensor(v.data(), dtype_of<T>(), Device::CPU, {static_cast<int64_t>(v.size())});
}

// Every collective on comm with host buffers (test/collective_checks.h).
void check_collectives(Communicator& comm) { test::check_collectives<test::HostBuffer>(comm); }

TEST(MpiCollectives, Backend) {
#if defined(PRORES_WITH_MPI)
  EXPECT_STREQ(g_world->backend(), "mpi");
#else
  EXPECT_STREQ(g_world->backend(), "single");
#endif
  EXPECT_GE(g_world->rank(), 0);
  EXPECT_LT(g_world->rank(), g_world->size());
}

TEST(MpiCollectives, World) { check_collectives(*g_world); }

TEST(MpiCollectives, SplitEvenOdd) {
  const int rank = g_world->rank(), size = g_world->size();
  auto part = g_world->split(rank % 2, rank);
  EXPECT_EQ(part->rank(), rank / 2);
  EXPECT_EQ(part->size(), rank % 2 == 0 ? (size + 1) / 2 : size / 2);
  check_collectives(*part);
}

TEST(MpiCollectives, SplitReversedKey) {
  const int rank = g_world->rank(), size = g_world->size();
  auto reversed = g_world->split(0, size - rank);
  EXPECT_EQ(reversed->rank(), size - 1 - rank);
  EXPECT_EQ(reversed->size(), size);
  std::vector<int32_t> mine{rank};
  std::vector<int32_t> world_ranks(static_cast<size_t>(size), -1);
  reversed->all_gather(view(world_ranks), view(mine));
  for (int j = 0; j < size; ++j) EXPECT_EQ(world_ranks[static_cast<size_t>(j)], size - 1 - j);
  check_collectives(*reversed);
  auto nested = reversed->split(reversed->rank() % 2, reversed->rank());  // a split of a split
  EXPECT_EQ(nested->rank(), reversed->rank() / 2);
  check_collectives(*nested);
}

// Rank 0 arrives 200 ms late; every other rank must wait for it in the barrier.
TEST(MpiCollectives, BarrierWaitsForTheLastRank) {
  g_world->barrier();
  const auto start = std::chrono::steady_clock::now();
  if (g_world->rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  g_world->barrier();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (g_world->rank() != 0) {
    EXPECT_GT(waited, 0.1);
  }
}

// Errors raised by the argument checks, identically on every rank, before any communication.
TEST(MpiCollectives, ArgumentErrors) {
  Communicator& comm = *g_world;
  std::vector<uint16_t> bf16(64, 0x3f80);
  const Tensor b(bf16.data(), DType::BF16, Device::CPU, {64});
  EXPECT_THROW(comm.all_reduce(b, ReduceOp::Sum), Error);
  EXPECT_THROW(comm.all_reduce(b, ReduceOp::Max), Error);
  EXPECT_THROW(comm.all_reduce_async(b, ReduceOp::Sum), Error);
  std::vector<float> x(8, 1.0f);
  EXPECT_THROW(comm.broadcast(view(x), comm.size()), Error);
  EXPECT_THROW(comm.broadcast(view(x), -1), Error);
  std::vector<float> wrong_size(static_cast<size_t>(8 * comm.size() + 1));
  EXPECT_THROW(comm.reduce_scatter(view(x), view(wrong_size)), Error);
  EXPECT_THROW(comm.all_gather(view(wrong_size), view(x)), Error);
  std::vector<double> other_dtype(static_cast<size_t>(8 * comm.size()));
  EXPECT_THROW(comm.all_gather(view(other_dtype), view(x)), Error);
  if (std::string(comm.backend()) != "single")  // which moves nothing and so takes device tensors too
    EXPECT_THROW(comm.all_reduce(Tensor(x.data(), DType::F32, Device::CUDA, {8}), ReduceOp::Sum), Error);
  EXPECT_THROW(comm.send(view(x), comm.size(), 0), Error);
  EXPECT_THROW(comm.split(-1, 0), Error);
  try {
    comm.all_reduce(b, ReduceOp::Sum);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16"), std::string::npos) << e.what();
  }
}

// A receive whose buffer does not match the message's size fails on the receiving rank only; the
// message is consumed, so nothing is left pending.
TEST(MpiCollectives, RecvOfTheWrongSizeThrows) {
  Communicator& comm = *g_world;
  if (comm.size() == 1) GTEST_SKIP() << "needs two ranks";
  std::vector<float> message(16, 2.5f), shorter(8), longer(32);
  if (comm.rank() == 0) {
    comm.send(view(message), 1, 3);
    comm.send(view(message), 1, 4);
  } else if (comm.rank() == 1) {
    EXPECT_THROW(comm.recv(view(longer), 0, 3), Error);
    EXPECT_THROW(comm.recv(view(shorter), 0, 4), Error);
  }
  comm.barrier();
}

TEST(SingleProcessCommunicator, OneRankResults) {
  auto comm = make_single_process_communicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_STREQ(comm->backend(), "single");
  check_collectives(*comm);
  auto part = comm->split(3, 7);
  EXPECT_EQ(part->size(), 1);
  EXPECT_STREQ(part->backend(), "single");
  std::vector<uint16_t> bf16(4, 0x3f80);
  EXPECT_THROW(comm->all_reduce(Tensor(bf16.data(), DType::BF16, Device::CPU, {4}), ReduceOp::Sum), Error);
  // Nothing moves on one rank: all_reduce, broadcast and in-place reduce_scatter / all_gather leave a device
  // tensor alone (this one is a host buffer marked CUDA, which they must not touch); a device copy is
  // refused.
  std::vector<float> x = {1.5f, -2.0f}, y = {3.0f, 4.0f};
  const Tensor on_device(x.data(), DType::F32, Device::CUDA, {2}), other(y.data(), DType::F32, Device::CUDA, {2});
  comm->all_reduce(on_device, ReduceOp::Sum);
  comm->broadcast(on_device, 0);
  comm->reduce_scatter(on_device, on_device);
  comm->all_gather(on_device, on_device);
  EXPECT_EQ(x, (std::vector<float>{1.5f, -2.0f}));
  test::expect_error([&] { comm->all_gather(other, on_device); }, {"all_gather", "only in place"});
  test::expect_error([&] { comm->reduce_scatter(other, on_device); }, {"reduce_scatter", "only in place"});
}

}  // namespace
}  // namespace prores

int main(int argc, char** argv) {
  return prores::test::run_mpi_tests(argc, argv, "test_mpi_collectives",
                                     [](prores::Communicator& world) { prores::g_world = &world; });
}
