// MpiCommunicator: collectives and point-to-point transfers over MPI on host memory (in-place
// MPI_Allreduce, MPI_Iallreduce, MPI_Reduce_scatter_block, MPI_Allgather, MPI_Bcast, MPI_Send/MPI_Recv,
// MPI_Comm_split), MPI errors turned into prores::Error, and MPI's start-up, finalization and abort.
#include "parallel/mpi_communicator.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/malloc_tuning.h"
#include "parallel/communicator_checks.h"

namespace prores {

namespace {

// Element (and byte) counts per MPI call: MPI counts are ints, so longer buffers go in chunks.
constexpr int64_t kMaxCount = int64_t{1} << 30;

// True once mpi_make_world has called MPI_Init_thread: then mpi_finalize_world owns MPI_Finalize.
bool g_mpi_started_here = false;

bool mpi_finalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

// Throws prores::Error for a failed MPI call, with MPI's own description of the error code (rank and
// size: of the communicator called, negative while not known yet).
void check_mpi(int rc, const char* call, int rank, int size) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  const std::string what = MPI_Error_string(rc, text, &length) == MPI_SUCCESS
                               ? std::string(text, static_cast<size_t>(length))
                               : "MPI error code " + std::to_string(rc);
  if (rank < 0) PRORES_FAIL(call, " failed: ", what);
  PRORES_FAIL(call, " failed on rank ", rank, " of ", size, ": ", what);
}

// The MPI datatype carrying dtype's elements. bf16 travels as 16-bit words (no reductions: see
// comm_checks::reducible).
MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::BF16: return MPI_UINT16_T;
    case DType::I32: return MPI_INT32_T;
  }
  PRORES_FAIL("unknown dtype ", static_cast<int>(dtype));
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : MPI_MAX; }

// n as an MPI count (reduce_scatter and all_gather are not chunked).
int int_count(int64_t n, const char* op) {
  PRORES_CHECK(n <= INT_MAX, op, " of ", n, " elements per rank exceeds MPI's int count (", INT_MAX, ")");
  return static_cast<int>(n);
}

// A started MPI_Iallreduce (one request per chunk); wait() completes it, the destructor too.
class MpiRequest final : public CommRequest {
 public:
  MpiRequest(std::vector<MPI_Request> requests, int rank, int size)
      : requests_(std::move(requests)), rank_(rank), size_(size) {}
  ~MpiRequest() override {
    if (mpi_finalized()) return;
    for (MPI_Request& r : requests_) MPI_Wait(&r, MPI_STATUS_IGNORE);
  }
  void wait() override {
    for (MPI_Request& r : requests_)
      check_mpi(MPI_Wait(&r, MPI_STATUS_IGNORE), "MPI_Wait (all_reduce_async)", rank_, size_);
  }

 private:
  std::vector<MPI_Request> requests_;  // MPI_REQUEST_NULL once completed, so waiting twice is harmless
  int rank_, size_;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
  check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", -1, -1);
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", -1, -1);
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", rank_, -1);
  void* tag_ub = nullptr;
  int found = 0;
  check_mpi(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &found), "MPI_Comm_get_attr", rank_, size_);
  if (found) tag_ub_ = *static_cast<int*>(tag_ub);
}

MpiCommunicator::~MpiCommunicator() {
  if (owned_ && !mpi_finalized()) MPI_Comm_free(&comm_);
}

void MpiCommunicator::all_reduce(const Tensor& x, ReduceOp op) {
  comm_checks::host_tensor(x, "all_reduce");
  comm_checks::reducible(x, "all_reduce");
  char* data = static_cast<char*>(x.data);
  const size_t element = dtype_size(x.dtype);
  for (int64_t begin = 0, n = x.numel(); begin < n; begin += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - begin));
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + begin * element, count, mpi_type(x.dtype), mpi_op(op), comm_),
              "MPI_Allreduce", rank_, size_);
  }
}

std::unique_ptr<CommRequest> MpiCommunicator::all_reduce_async(const Tensor& x, ReduceOp op) {
  comm_checks::host_tensor(x, "all_reduce_async");
  comm_checks::reducible(x, "all_reduce_async");
  char* data = static_cast<char*>(x.data);
  const size_t element = dtype_size(x.dtype);
  std::vector<MPI_Request> requests;
  for (int64_t begin = 0, n = x.numel(); begin < n; begin += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - begin));
    MPI_Request request = MPI_REQUEST_NULL;
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, data + begin * element, count, mpi_type(x.dtype), mpi_op(op),
                                  comm_, &request);
    if (rc != MPI_SUCCESS) {
      MpiRequest started(std::move(requests), rank_, size_);  // completes the chunks already started
      check_mpi(rc, "MPI_Iallreduce", rank_, size_);
    }
    requests.push_back(request);
  }
  return std::make_unique<MpiRequest>(std::move(requests), rank_, size_);
}

void MpiCommunicator::reduce_scatter(const Tensor& out, const Tensor& in) {
  const bool in_place = comm_checks::scatter_gather(out, in, rank_, size_, "reduce_scatter");
  comm_checks::reducible(in, "reduce_scatter");
  const int count = int_count(out.numel(), "reduce_scatter");
  if (in_place) {
    // MPI_IN_PLACE leaves the result in chunk 0 of in; move it to chunk rank().
    check_mpi(MPI_Reduce_scatter_block(MPI_IN_PLACE, in.data, count, mpi_type(in.dtype), MPI_SUM, comm_),
              "MPI_Reduce_scatter_block", rank_, size_);
    if (out.data != in.data) std::memcpy(out.data, in.data, out.nbytes());
  } else {
    check_mpi(MPI_Reduce_scatter_block(in.data, out.data, count, mpi_type(in.dtype), MPI_SUM, comm_),
              "MPI_Reduce_scatter_block", rank_, size_);
  }
}

void MpiCommunicator::all_gather(const Tensor& out, const Tensor& in) {
  const bool in_place = comm_checks::scatter_gather(in, out, rank_, size_, "all_gather");
  const int count = int_count(in.numel(), "all_gather");
  const MPI_Datatype type = mpi_type(in.dtype);
  check_mpi(MPI_Allgather(in_place ? MPI_IN_PLACE : in.data, count, type, out.data, count, type, comm_),
            "MPI_Allgather", rank_, size_);
}

void MpiCommunicator::broadcast(const Tensor& x, int root) {
  comm_checks::host_tensor(x, "broadcast");
  comm_checks::root(root, size_);
  char* data = static_cast<char*>(x.data);
  const size_t element = dtype_size(x.dtype);
  for (int64_t begin = 0, n = x.numel(); begin < n; begin += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - begin));
    check_mpi(MPI_Bcast(data + begin * element, count, mpi_type(x.dtype), root, comm_), "MPI_Bcast", rank_, size_);
  }
}

void MpiCommunicator::send(const Tensor& x, int peer, int tag) {
  comm_checks::host_tensor(x, "send");
  comm_checks::peer(peer, rank_, size_, "send");
  comm_checks::tag(tag);
  PRORES_CHECK(tag <= tag_ub_, "send tag ", tag, " exceeds MPI_TAG_UB (", tag_ub_, ")");
  const char* data = static_cast<const char*>(x.data);
  for (int64_t begin = 0, n = static_cast<int64_t>(x.nbytes()); begin < n; begin += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - begin));
    check_mpi(MPI_Send(data + begin, count, MPI_BYTE, peer, tag, comm_), "MPI_Send", rank_, size_);
  }
}

void MpiCommunicator::recv(const Tensor& x, int peer, int tag) {
  comm_checks::host_tensor(x, "recv");
  comm_checks::peer(peer, rank_, size_, "recv");
  comm_checks::tag(tag);
  PRORES_CHECK(tag <= tag_ub_, "recv tag ", tag, " exceeds MPI_TAG_UB (", tag_ub_, ")");
  char* data = static_cast<char*>(x.data);
  for (int64_t begin = 0, n = static_cast<int64_t>(x.nbytes()); begin < n; begin += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - begin));
    MPI_Status status;
    check_mpi(MPI_Recv(data + begin, count, MPI_BYTE, peer, tag, comm_, &status), "MPI_Recv", rank_, size_);
    int received = 0;
    check_mpi(MPI_Get_count(&status, MPI_BYTE, &received), "MPI_Get_count", rank_, size_);
    PRORES_CHECK(received == count, "recv on rank ", rank_, " expected ", count, " bytes from rank ", peer, " (tag ",
                 tag, "), got ", received);
  }
}

void MpiCommunicator::barrier() { check_mpi(MPI_Barrier(comm_), "MPI_Barrier", rank_, size_); }

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) const {
  comm_checks::color(color);
  MPI_Comm part = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(comm_, color, key, &part), "MPI_Comm_split", rank_, size_);
  return std::make_unique<MpiCommunicator>(part, true);
}

std::unique_ptr<Communicator> mpi_make_world(int* argc, char*** argv) {
  PRORES_CHECK(!mpi_finalized(), "MPI was already finalized: make_world_communicator must come before finalize_world");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    keep_freed_memory_in_heap();  // before MPI_Init: Open MPI's collective buffers then stay mapped
    int provided = 0;
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    PRORES_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed with error code ", rc);
    g_mpi_started_here = true;
    PRORES_CHECK(provided >= MPI_THREAD_FUNNELED, "MPI provides thread level ", provided,
                 ", below MPI_THREAD_FUNNELED");
  }
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false);
}

void mpi_finalize_world() {
  if (g_mpi_started_here && !mpi_finalized()) MPI_Finalize();
}

void mpi_abort_world(int exit_code) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized && !mpi_finalized()) MPI_Abort(MPI_COMM_WORLD, exit_code);
}

}  // namespace prores
