// Communicator tests on any number of ranks (ctest runs 1, 2 and 4): every collective and point-to-point
// transfer against closed-form results on deterministic per-rank data (x[i] = rank·1000 + i + 0.5), on the
// world and on sub-communicators from split(), plus the errors every rank must raise alike. Checks use
// EXPECT (never ASSERT) between collectives, so that a failing rank still joins every later collective;
// main() all-reduces the failure flag, so every rank exits non-zero when one failed.
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

#include "mpi_test_main.h"
#include "parallel/communicator.h"
#include "test_util.h"

namespace prores {
namespace {

Communicator* g_world = nullptr;  // set by main() before the tests run

// Deterministic per-rank data: rank·1000 + index + 0.5 (no 0.5 for integers). Sums of these over up to
// a few ranks are exact in f32, so results are compared exactly.
template <typename T>
T value(int rank, int64_t index) {
  const double v = rank * 1000.0 + static_cast<double>(index) + (std::is_integral_v<T> ? 0.0 : 0.5);
  return static_cast<T>(v);
}

template <typename T>
std::vector<T> rank_data(int rank, int64_t n, int64_t first_index = 0) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = value<T>(rank, first_index + i);
  return v;
}

template <typename T>
Tensor view(std::vector<T>& v) {
  return Tensor(v.data(), dtype_of<T>(), Device::CPU, {static_cast<int64_t>(v.size())});
}

// Σ over ranks r < size of value(r, index), and the maximum (rank size-1).
template <typename T>
T sum_over_ranks(int size, int64_t index) {
  T total = 0;
  for (int r = 0; r < size; ++r) total += value<T>(r, index);
  return total;
}

template <typename T>
void check_all_reduce(Communicator& comm) {
  const int64_t n = 1037;
  auto sum = rank_data<T>(comm.rank(), n);
  auto max = rank_data<T>(comm.rank(), n);
  comm.all_reduce(view(sum), ReduceOp::Sum);
  comm.all_reduce(view(max), ReduceOp::Max);
  int64_t wrong_sum = 0, wrong_max = 0;
  for (int64_t i = 0; i < n; ++i) {
    wrong_sum += sum[static_cast<size_t>(i)] != sum_over_ranks<T>(comm.size(), i);
    wrong_max += max[static_cast<size_t>(i)] != value<T>(comm.size() - 1, i);
  }
  EXPECT_EQ(wrong_sum, 0) << dtype_name(dtype_of<T>()) << " sum, e.g. x[5] = " << sum[5];
  EXPECT_EQ(wrong_max, 0) << dtype_name(dtype_of<T>()) << " max, e.g. x[5] = " << max[5];
}

void check_all_reduce_async(Communicator& comm) {
  const int64_t n = 4099;
  auto a = rank_data<float>(comm.rank(), n);
  auto b = rank_data<double>(comm.rank(), n);
  auto c = rank_data<int32_t>(comm.rank(), n);
  auto request_a = comm.all_reduce_async(view(a), ReduceOp::Sum);
  auto request_b = comm.all_reduce_async(view(b), ReduceOp::Max);
  {
    auto request_c = comm.all_reduce_async(view(c), ReduceOp::Sum);  // completed by its destructor
  }
  request_b->wait();
  request_a->wait();
  request_a->wait();  // a second wait is harmless
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    wrong += a[k] != sum_over_ranks<float>(comm.size(), i);
    wrong += b[k] != value<double>(comm.size() - 1, i);
    wrong += c[k] != sum_over_ranks<int32_t>(comm.size(), i);
  }
  EXPECT_EQ(wrong, 0);
}

void check_reduce_scatter(Communicator& comm) {
  const int64_t n = 513;
  const int64_t total = n * comm.size();
  auto in = rank_data<float>(comm.rank(), total);
  std::vector<float> out(static_cast<size_t>(n), -1.0f);
  comm.reduce_scatter(view(out), view(in));
  auto in_place = rank_data<double>(comm.rank(), total);
  Tensor whole = view(in_place);
  comm.reduce_scatter(whole.slice_rows(comm.rank() * n, n), whole);
  int64_t wrong = 0, wrong_in_place = 0, input_changed = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t global = comm.rank() * n + i;
    wrong += out[static_cast<size_t>(i)] != sum_over_ranks<float>(comm.size(), global);
    wrong_in_place += in_place[static_cast<size_t>(global)] != sum_over_ranks<double>(comm.size(), global);
  }
  for (int64_t i = 0; i < total; ++i) input_changed += in[static_cast<size_t>(i)] != value<float>(comm.rank(), i);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(wrong_in_place, 0);
  EXPECT_EQ(input_changed, 0) << "reduce_scatter changed its input";
}

void check_all_gather(Communicator& comm) {
  const int64_t n = 257;
  auto in = rank_data<int32_t>(comm.rank(), n);
  std::vector<int32_t> out(static_cast<size_t>(n * comm.size()), -1);
  comm.all_gather(view(out), view(in));
  std::vector<double> in_place(static_cast<size_t>(n * comm.size()), -1.0);
  const auto mine = rank_data<double>(comm.rank(), n);
  std::copy(mine.begin(), mine.end(), in_place.begin() + comm.rank() * n);
  Tensor whole = view(in_place);
  comm.all_gather(whole, whole.slice_rows(comm.rank() * n, n));
  int64_t wrong = 0;
  for (int r = 0; r < comm.size(); ++r)
    for (int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<size_t>(r * n + i);
      wrong += out[k] != value<int32_t>(r, i);
      wrong += in_place[k] != value<double>(r, i);
    }
  EXPECT_EQ(wrong, 0);
}

void check_broadcast(Communicator& comm) {
  const int root = comm.size() > 1 ? 1 : 0;
  const int64_t n = 301;
  auto x = rank_data<double>(comm.rank(), n);
  comm.broadcast(view(x), root);
  std::vector<uint16_t> bits(static_cast<size_t>(n));  // bf16 moves as raw 16-bit words
  for (int64_t i = 0; i < n; ++i) bits[static_cast<size_t>(i)] = static_cast<uint16_t>(comm.rank() * 1000 + i);
  comm.broadcast(Tensor(bits.data(), DType::BF16, Device::CPU, {n}), root);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    wrong += x[static_cast<size_t>(i)] != value<double>(root, i);
    wrong += bits[static_cast<size_t>(i)] != static_cast<uint16_t>(root * 1000 + i);
  }
  EXPECT_EQ(wrong, 0);
}

// Each rank sends to the next and receives from the previous one; 400 KB messages (past the eager limit),
// so even ranks send first and odd ranks receive first.
void check_ring(Communicator& comm) {
  const int n = comm.size();
  if (n == 1) {
    std::vector<float> x(4, 1.0f);
    EXPECT_THROW(comm.send(view(x), 0, 0), Error);
    EXPECT_THROW(comm.recv(view(x), 0, 0), Error);
    return;
  }
  const int next = (comm.rank() + 1) % n, previous = (comm.rank() + n - 1) % n;
  const int64_t count = 100000;
  auto outgoing = rank_data<float>(comm.rank(), count);
  std::vector<float> incoming(static_cast<size_t>(count), -1.0f);
  if (comm.rank() % 2 == 0) {
    comm.send(view(outgoing), next, 7);
    comm.recv(view(incoming), previous, 7);
  } else {
    comm.recv(view(incoming), previous, 7);
    comm.send(view(outgoing), next, 7);
  }
  int64_t wrong = 0;
  for (int64_t i = 0; i < count; ++i) wrong += incoming[static_cast<size_t>(i)] != value<float>(previous, i);
  EXPECT_EQ(wrong, 0) << "from rank " << previous;
}

void check_scalar(Communicator& comm) {
  const int n = comm.size();
  EXPECT_EQ(comm.all_reduce_scalar(comm.rank() + 1.5, ReduceOp::Sum), n * (n + 1) / 2.0 + n * 0.5);
  EXPECT_EQ(comm.all_reduce_scalar(-comm.rank(), ReduceOp::Max), 0.0);
  EXPECT_EQ(comm.all_reduce_scalar(comm.rank() * 2.0, ReduceOp::Max), 2.0 * (n - 1));
}

// Every collective of the interface on comm.
void check_collectives(Communicator& comm) {
  check_all_reduce<float>(comm);
  check_all_reduce<double>(comm);
  check_all_reduce<int32_t>(comm);
  check_all_reduce_async(comm);
  check_reduce_scatter(comm);
  check_all_gather(comm);
  check_broadcast(comm);
  check_ring(comm);
  check_scalar(comm);
  comm.barrier();
}

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
