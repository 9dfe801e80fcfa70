// The closed-form checks of every Communicator collective and point-to-point transfer, shared by
// test_mpi_collectives (host buffers, on MPI and the single-process communicator) and test_mpi_nccl (CUDA
// device buffers, on NCCL). Deterministic per-rank data x[i] = rank·1000 + i + 0.5 (no 0.5 for integers),
// whose sums over a few ranks are exact in f32, so results are compared exactly. The checks use EXPECT
// (never ASSERT), so that a failing rank still joins every later collective. Each check is templated on
// its buffer: a class template over the element type with a constructor from a host vector, tensor() (a
// 1-D view) and download() (the contents as a host vector).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/check.h"
#include "core/tensor.h"
#include "parallel/communicator.h"

namespace prores::test {

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

// Σ over ranks r < size of value(r, index) (the maximum is value(size - 1, index)).
template <typename T>
T sum_over_ranks(int size, int64_t index) {
  T total = 0;
  for (int r = 0; r < size; ++r) total += value<T>(r, index);
  return total;
}

// The host buffer of the checks: a vector that hands out a CPU tensor view of itself.
template <typename T>
class HostBuffer {
 public:
  explicit HostBuffer(std::vector<T> host) : data_(std::move(host)) {}
  Tensor tensor() const { return Tensor(data_.data(), dtype_of<T>(), Device::CPU, {size()}); }
  std::vector<T> download() const { return data_; }

 private:
  int64_t size() const { return static_cast<int64_t>(data_.size()); }
  mutable std::vector<T> data_;  // a tensor view lets the communicator write it
};

template <template <typename> class Buffer, typename T>
void check_all_reduce(Communicator& comm) {
  const int64_t n = 1037;
  Buffer<T> sum(rank_data<T>(comm.rank(), n)), max(rank_data<T>(comm.rank(), n));
  comm.all_reduce(sum.tensor(), ReduceOp::Sum);
  comm.all_reduce(max.tensor(), ReduceOp::Max);
  const std::vector<T> s = sum.download(), m = max.download();
  int64_t wrong_sum = 0, wrong_max = 0;
  for (int64_t i = 0; i < n; ++i) {
    wrong_sum += s[static_cast<size_t>(i)] != sum_over_ranks<T>(comm.size(), i);
    wrong_max += m[static_cast<size_t>(i)] != value<T>(comm.size() - 1, i);
  }
  EXPECT_EQ(wrong_sum, 0) << dtype_name(dtype_of<T>()) << " sum, e.g. x[5] = " << s[5];
  EXPECT_EQ(wrong_max, 0) << dtype_name(dtype_of<T>()) << " max, e.g. x[5] = " << m[5];
}

template <template <typename> class Buffer>
void check_all_reduce_async(Communicator& comm) {
  const int64_t n = 4099;
  Buffer<float> a(rank_data<float>(comm.rank(), n));
  Buffer<double> b(rank_data<double>(comm.rank(), n));
  Buffer<int32_t> c(rank_data<int32_t>(comm.rank(), n));
  auto request_a = comm.all_reduce_async(a.tensor(), ReduceOp::Sum);
  auto request_b = comm.all_reduce_async(b.tensor(), ReduceOp::Max);
  {
    auto request_c = comm.all_reduce_async(c.tensor(), ReduceOp::Sum);  // completed by its destructor
  }
  request_b->wait();
  request_a->wait();
  request_a->wait();  // a second wait is harmless
  const std::vector<float> ha = a.download();
  const std::vector<double> hb = b.download();
  const std::vector<int32_t> hc = c.download();
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    wrong += ha[k] != sum_over_ranks<float>(comm.size(), i);
    wrong += hb[k] != value<double>(comm.size() - 1, i);
    wrong += hc[k] != sum_over_ranks<int32_t>(comm.size(), i);
  }
  EXPECT_EQ(wrong, 0);
}

// Into a separate output (the input left as it was) and in place (the rank's shard of the whole buffer).
template <template <typename> class Buffer>
void check_reduce_scatter(Communicator& comm) {
  const int64_t n = 513;
  const int64_t total = n * comm.size();
  Buffer<float> in(rank_data<float>(comm.rank(), total));
  Buffer<float> out(std::vector<float>(static_cast<size_t>(n), -1.0f));
  comm.reduce_scatter(out.tensor(), in.tensor());
  Buffer<double> in_place(rank_data<double>(comm.rank(), total));
  const Tensor whole = in_place.tensor();
  comm.reduce_scatter(whole.slice_rows(comm.rank() * n, n), whole);
  const std::vector<float> o = out.download(), input = in.download();
  const std::vector<double> w = in_place.download();
  int64_t wrong = 0, wrong_in_place = 0, input_changed = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t global = comm.rank() * n + i;
    wrong += o[static_cast<size_t>(i)] != sum_over_ranks<float>(comm.size(), global);
    wrong_in_place += w[static_cast<size_t>(global)] != sum_over_ranks<double>(comm.size(), global);
  }
  for (int64_t i = 0; i < total; ++i) input_changed += input[static_cast<size_t>(i)] != value<float>(comm.rank(), i);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(wrong_in_place, 0);
  EXPECT_EQ(input_changed, 0) << "reduce_scatter changed its input";
}

// Into a separate output and in place (the rank's shard already in the whole buffer).
template <template <typename> class Buffer>
void check_all_gather(Communicator& comm) {
  const int64_t n = 257;
  Buffer<int32_t> in(rank_data<int32_t>(comm.rank(), n));
  Buffer<int32_t> out(std::vector<int32_t>(static_cast<size_t>(n * comm.size()), -1));
  comm.all_gather(out.tensor(), in.tensor());
  std::vector<double> start(static_cast<size_t>(n * comm.size()), -1.0);
  const std::vector<double> mine = rank_data<double>(comm.rank(), n);
  std::copy(mine.begin(), mine.end(), start.begin() + comm.rank() * n);
  Buffer<double> in_place(start);
  const Tensor whole = in_place.tensor();
  comm.all_gather(whole, whole.slice_rows(comm.rank() * n, n));
  const std::vector<int32_t> o = out.download();
  const std::vector<double> w = in_place.download();
  int64_t wrong = 0;
  for (int r = 0; r < comm.size(); ++r)
    for (int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<size_t>(r * n + i);
      wrong += o[k] != value<int32_t>(r, i);
      wrong += w[k] != value<double>(r, i);
    }
  EXPECT_EQ(wrong, 0);
}

// f64, and bf16 moved as raw 16-bit words.
template <template <typename> class Buffer>
void check_broadcast(Communicator& comm) {
  const int root = comm.size() > 1 ? 1 : 0;
  const int64_t n = 301;
  Buffer<double> x(rank_data<double>(comm.rank(), n));
  comm.broadcast(x.tensor(), root);
  std::vector<uint16_t> bits(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) bits[static_cast<size_t>(i)] = static_cast<uint16_t>(comm.rank() * 1000 + i);
  Buffer<uint16_t> b(bits);
  comm.broadcast(b.tensor(), root);
  const std::vector<double> hx = x.download();
  const std::vector<uint16_t> hb = b.download();
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    wrong += hx[static_cast<size_t>(i)] != value<double>(root, i);
    wrong += hb[static_cast<size_t>(i)] != static_cast<uint16_t>(root * 1000 + i);
  }
  EXPECT_EQ(wrong, 0);
}

// Each rank sends to the next and receives from the previous one; 400 KB messages (past MPI's eager
// limit), so even ranks send first and odd ranks receive first. One rank has no peer: both throw.
template <template <typename> class Buffer>
void check_ring(Communicator& comm) {
  const int n = comm.size();
  const int64_t count = 100000;
  Buffer<float> outgoing(rank_data<float>(comm.rank(), count));
  if (n == 1) {
    EXPECT_THROW(comm.send(outgoing.tensor(), 0, 0), Error);
    EXPECT_THROW(comm.recv(outgoing.tensor(), 0, 0), Error);
    return;
  }
  const int next = (comm.rank() + 1) % n, previous = (comm.rank() + n - 1) % n;
  Buffer<float> incoming(std::vector<float>(static_cast<size_t>(count), -1.0f));
  if (comm.rank() % 2 == 0) {
    comm.send(outgoing.tensor(), next, 7);
    comm.recv(incoming.tensor(), previous, 7);
  } else {
    comm.recv(incoming.tensor(), previous, 7);
    comm.send(outgoing.tensor(), next, 7);
  }
  const std::vector<float> got = incoming.download();
  int64_t wrong = 0;
  for (int64_t i = 0; i < count; ++i) wrong += got[static_cast<size_t>(i)] != value<float>(previous, i);
  EXPECT_EQ(wrong, 0) << "from rank " << previous;
}

inline void check_scalar(Communicator& comm) {
  const int n = comm.size();
  EXPECT_EQ(comm.all_reduce_scalar(comm.rank() + 1.5, ReduceOp::Sum), n * (n + 1) / 2.0 + n * 0.5);
  EXPECT_EQ(comm.all_reduce_scalar(-comm.rank(), ReduceOp::Max), 0.0);
  EXPECT_EQ(comm.all_reduce_scalar(comm.rank() * 2.0, ReduceOp::Max), 2.0 * (n - 1));
}

// Every collective of the interface on comm, with buffers of kind Buffer.
template <template <typename> class Buffer>
void check_collectives(Communicator& comm) {
  check_all_reduce<Buffer, float>(comm);
  check_all_reduce<Buffer, double>(comm);
  check_all_reduce<Buffer, int32_t>(comm);
  check_all_reduce_async<Buffer>(comm);
  check_reduce_scatter<Buffer>(comm);
  check_all_gather<Buffer>(comm);
  check_broadcast<Buffer>(comm);
  check_ring<Buffer>(comm);
  check_scalar(comm);
  comm.barrier();
}

}  // namespace prores::test
