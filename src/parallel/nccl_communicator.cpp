// NcclCommunicator (parallel/nccl_communicator.h): the unique-id bootstrap over a host communicator,
// ncclAllReduce / ncclReduceScatter / ncclAllGather / ncclBroadcast / ncclSend / ncclRecv on one
// communication stream ordered against the default stream by events, ncclCommSplit, and NCCL results
// turned into prores::Error. Compiled only with PRORES_WITH_NCCL.
#include "parallel/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>
#include <type_traits>

#include "core/check.h"
#include "ops/cuda/device.h"
#include "parallel/communicator_checks.h"

namespace prores {

static_assert(std::is_same_v<ncclComm_t, ncclComm*>, "ncclComm_t is no longer struct ncclComm*");
static_assert(std::is_same_v<cudaStream_t, CUstream_st*>, "cudaStream_t is no longer struct CUstream_st*");
static_assert(std::is_same_v<cudaEvent_t, CUevent_st*>, "cudaEvent_t is no longer struct CUevent_st*");

namespace {

// The stream compute work is queued on (ops/cuda): the legacy default stream. Per-thread default streams
// synchronize with it too, so waiting for it also covers code built with --default-stream per-thread.
const cudaStream_t kComputeStream = cudaStreamLegacy;

// Bytes of the device scalar: the largest dtype (f64).
constexpr size_t kScalarBytes = 8;

// Throws prores::Error for a failed NCCL call: the call, the rank, NCCL's description of the result
// and its last error message (when it has one).
[[noreturn]] void throw_nccl(ncclResult_t result, const char* call, ncclComm_t comm, int rank, int size) {
  const char* last = ncclGetLastError(comm);
  PRORES_FAIL(call, " failed on rank ", rank, " of ", size, ": ", ncclGetErrorString(result),
              last != nullptr && *last != '\0' ? " (" : "", last != nullptr ? last : "",
              last != nullptr && *last != '\0' ? ")" : "");
}

void check_nccl(ncclResult_t result, const char* call, ncclComm_t comm, int rank, int size) {
  if (result != ncclSuccess) throw_nccl(result, call, comm, rank, size);
}

// Throws when NCCL has recorded an asynchronous error on comm (a failed peer or network), after `what`.
void check_async_error(ncclComm_t comm, const char* what, int rank, int size) {
  ncclResult_t async = ncclSuccess;
  check_nccl(ncclCommGetAsyncError(comm, &async), "ncclCommGetAsyncError", comm, rank, size);
  if (async != ncclSuccess) throw_nccl(async, what, comm, rank, size);
}

// ncclGroupStart; call(); ncclGroupEnd (ended even when call fails); the first failure is returned.
template <typename Call>
ncclResult_t group_of_one(Call call) {
  ncclResult_t result = ncclGroupStart();
  if (result != ncclSuccess) return result;
  result = call();
  const ncclResult_t end = ncclGroupEnd();
  return result != ncclSuccess ? result : end;
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::BF16: return ncclBfloat16;
    case DType::I32: return ncclInt32;
  }
  PRORES_FAIL("unknown dtype ", static_cast<int>(dtype));
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Sum ? ncclSum : ncclMax; }

// x is a CUDA tensor whose data (unless it is empty) is device or managed memory on `device`.
void device_tensor(const Tensor& x, int device, const char* op) {
  PRORES_CHECK(x.device == Device::CUDA, op, ": tensor ", x.shape_string(),
               " is in host memory; the NCCL communicator takes CUDA device tensors");
  if (x.numel() == 0) return;
  PRORES_CHECK(x.data != nullptr, op, ": tensor ", x.shape_string(), " has no data");
  cudaPointerAttributes attributes{};
  const bool known = cudaPointerGetAttributes(&attributes, x.data) == cudaSuccess;
  if (!known) cudaGetLastError();
  PRORES_CHECK(known && (attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged), op,
               ": tensor ", x.shape_string(), " is marked CUDA but its data is not CUDA device memory");
  PRORES_CHECK(attributes.type == cudaMemoryTypeManaged || attributes.device == device, op, ": tensor ",
               x.shape_string(), " is on GPU ", attributes.device, ", the communicator on GPU ", device);
}

// part (n) and whole (size·n): device tensors of one dtype with those sizes; part is either exactly
// chunk `rank` of whole (in place, which NCCL recognises) or does not overlap it.
void scatter_gather(const Tensor& part, const Tensor& whole, int rank, int size, int device, const char* op) {
  device_tensor(part, device, op);
  device_tensor(whole, device, op);
  PRORES_CHECK(part.dtype == whole.dtype, op, ": dtypes differ (", dtype_name(part.dtype), " chunk, ",
               dtype_name(whole.dtype), " full tensor)");
  PRORES_CHECK(whole.numel() == size * part.numel(), op, ": full tensor ", whole.shape_string(), " is not ", size,
               " x chunk ", part.shape_string());
  if (part.nbytes() == 0) return;
  const auto* p = static_cast<const char*>(part.data);
  const auto* w = static_cast<const char*>(whole.data);
  if (p == w + static_cast<size_t>(rank) * part.nbytes()) return;
  PRORES_CHECK(p + part.nbytes() <= w || w + whole.nbytes() <= p, op,
               ": the chunk overlaps the full tensor without being its chunk ", rank);
}

// Every rank's NCCL communicator over host's ranks, created with the unique id rank 0 broadcasts over
// host. Throws on every rank when some rank has no usable device or rank 0 cannot create the id.
ncclComm_t bootstrap(Communicator& host) {
  const int rank = host.rank(), size = host.size();
  std::string problem;
  int device = -1;
  if (ops::cuda::device_count() == 0) {
    problem = "no CUDA device is visible";
  } else if (const cudaError_t error = cudaGetDevice(&device); error != cudaSuccess) {
    cudaGetLastError();
    problem = detail::concat("cudaGetDevice failed: ", cudaGetErrorString(error));
  }
  ncclUniqueId id{};
  if (rank == 0 && problem.empty()) {
    if (const ncclResult_t result = ncclGetUniqueId(&id); result != ncclSuccess)
      problem = detail::concat("ncclGetUniqueId failed: ", ncclGetErrorString(result));
  }
  // size - (lowest failing rank), or 0 when every rank is ready.
  const double failing = host.all_reduce_scalar(problem.empty() ? 0.0 : size - rank, ReduceOp::Max);
  PRORES_CHECK(problem.empty(), "NCCL communicator: rank ", rank, " of ", size, " cannot join: ", problem);
  PRORES_CHECK(failing == 0.0, "NCCL communicator: rank ", size - static_cast<int>(failing), " of ", size,
               " cannot join (see its error); rank ", rank, " stops too");
  static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0);
  host.broadcast(Tensor(&id, DType::I32, Device::CPU, {static_cast<int64_t>(sizeof(id) / sizeof(int32_t))}), 0);
  ncclComm_t comm = nullptr;
  check_nccl(ncclCommInitRank(&comm, size, id, rank), "ncclCommInitRank", nullptr, rank, size);
  return comm;
}

// A started all_reduce_async: wait() blocks the host on the event recorded after the all-reduce.
class NcclRequest final : public CommRequest {
 public:
  NcclRequest(cudaEvent_t done, ncclComm_t comm, int rank, int size)
      : done_(done), comm_(comm), rank_(rank), size_(size) {}
  ~NcclRequest() override {
    if (done_ == nullptr) return;
    cudaEventSynchronize(done_);
    cudaEventDestroy(done_);
  }
  NcclRequest(const NcclRequest&) = delete;
  NcclRequest& operator=(const NcclRequest&) = delete;

  void wait() override {
    if (done_ == nullptr) return;  // waited already
    PRORES_CUDA_CHECK(cudaEventSynchronize(done_));
    cudaEventDestroy(done_);
    done_ = nullptr;
    check_async_error(comm_, "ncclAllReduce (all_reduce_async)", rank_, size_);
  }

 private:
  cudaEvent_t done_;
  ncclComm_t comm_;
  int rank_, size_;
};

}  // namespace

NcclCommunicator::NcclCommunicator(Communicator& host) : NcclCommunicator(bootstrap(host), host.rank(), host.size()) {}

NcclCommunicator::NcclCommunicator(ncclComm* comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {
  try {
    check_nccl(ncclCommCuDevice(comm_, &device_), "ncclCommCuDevice", comm_, rank_, size_);
    PRORES_CUDA_CHECK(cudaSetDevice(device_));
    PRORES_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    PRORES_CUDA_CHECK(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming));
    PRORES_CUDA_CHECK(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming));
    scalar_ = ops::cuda::device_alloc(kScalarBytes);
  } catch (...) {
    release();
    throw;
  }
}

NcclCommunicator::~NcclCommunicator() { release(); }

void NcclCommunicator::release() noexcept {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  if (scalar_ != nullptr) cudaFree(scalar_);
  if (comm_done_ != nullptr) cudaEventDestroy(comm_done_);
  if (compute_ready_ != nullptr) cudaEventDestroy(compute_ready_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  cudaGetLastError();
  comm_ = nullptr;
  scalar_ = nullptr;
  comm_done_ = compute_ready_ = nullptr;
  stream_ = nullptr;
}

void NcclCommunicator::after_compute() {
  PRORES_CUDA_CHECK(cudaEventRecord(compute_ready_, kComputeStream));
  PRORES_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_ready_, 0));
}

void NcclCommunicator::before_compute() {
  PRORES_CUDA_CHECK(cudaEventRecord(comm_done_, stream_));
  PRORES_CUDA_CHECK(cudaStreamWaitEvent(kComputeStream, comm_done_, 0));
}

void NcclCommunicator::all_reduce(const Tensor& x, ReduceOp op) {
  if (x.device == Device::CPU && x.numel() == 1) {
    all_reduce_host_scalar(x, op);
    return;
  }
  device_tensor(x, device_, "all_reduce");
  if (x.numel() == 0) return;
  after_compute();
  check_nccl(ncclAllReduce(x.data, x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), nccl_op(op), comm_,
                           stream_),
             "ncclAllReduce", comm_, rank_, size_);
  before_compute();
}

void NcclCommunicator::all_reduce_host_scalar(const Tensor& x, ReduceOp op) {
  PRORES_CHECK(x.data != nullptr, "all_reduce: host scalar ", x.shape_string(), " has no data");
  PRORES_CUDA_CHECK(cudaMemcpyAsync(scalar_, x.data, x.nbytes(), cudaMemcpyHostToDevice, stream_));
  check_nccl(ncclAllReduce(scalar_, scalar_, 1, nccl_type(x.dtype), nccl_op(op), comm_, stream_),
             "ncclAllReduce (host scalar)", comm_, rank_, size_);
  PRORES_CUDA_CHECK(cudaMemcpyAsync(x.data, scalar_, x.nbytes(), cudaMemcpyDeviceToHost, stream_));
  PRORES_CUDA_CHECK(cudaStreamSynchronize(stream_));
  check_async_error(comm_, "ncclAllReduce (host scalar)", rank_, size_);
}

std::unique_ptr<CommRequest> NcclCommunicator::all_reduce_async(const Tensor& x, ReduceOp op) {
  device_tensor(x, device_, "all_reduce_async");
  cudaEvent_t done = nullptr;
  PRORES_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  auto request = std::make_unique<NcclRequest>(done, comm_, rank_, size_);  // owns done from here
  if (x.numel() != 0) {
    after_compute();
    check_nccl(ncclAllReduce(x.data, x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), nccl_op(op), comm_,
                             stream_),
               "ncclAllReduce (all_reduce_async)", comm_, rank_, size_);
  }
  PRORES_CUDA_CHECK(cudaEventRecord(done, stream_));
  return request;
}

void NcclCommunicator::reduce_scatter(const Tensor& out, const Tensor& in) {
  scatter_gather(out, in, rank_, size_, device_, "reduce_scatter");
  if (out.numel() == 0) return;
  after_compute();
  check_nccl(ncclReduceScatter(in.data, out.data, static_cast<size_t>(out.numel()), nccl_type(in.dtype), ncclSum,
                               comm_, stream_),
             "ncclReduceScatter", comm_, rank_, size_);
  before_compute();
}

void NcclCommunicator::all_gather(const Tensor& out, const Tensor& in) {
  scatter_gather(in, out, rank_, size_, device_, "all_gather");
  if (in.numel() == 0) return;
  after_compute();
  check_nccl(ncclAllGather(in.data, out.data, static_cast<size_t>(in.numel()), nccl_type(in.dtype), comm_, stream_),
             "ncclAllGather", comm_, rank_, size_);
  before_compute();
}

void NcclCommunicator::broadcast(const Tensor& x, int root) {
  device_tensor(x, device_, "broadcast");
  comm_checks::root(root, size_);
  if (x.numel() == 0) return;
  after_compute();
  check_nccl(ncclBroadcast(x.data, x.data, static_cast<size_t>(x.numel()), nccl_type(x.dtype), root, comm_, stream_),
             "ncclBroadcast", comm_, rank_, size_);
  before_compute();
}

void NcclCommunicator::send(const Tensor& x, int peer, int tag) {
  device_tensor(x, device_, "send");
  comm_checks::peer(peer, rank_, size_, "send");
  comm_checks::tag(tag);
  if (x.nbytes() == 0) return;
  after_compute();
  check_nccl(group_of_one([&] { return ncclSend(x.data, x.nbytes(), ncclUint8, peer, comm_, stream_); }),
             "ncclSend", comm_, rank_, size_);
  before_compute();
}

void NcclCommunicator::recv(const Tensor& x, int peer, int tag) {
  device_tensor(x, device_, "recv");
  comm_checks::peer(peer, rank_, size_, "recv");
  comm_checks::tag(tag);
  if (x.nbytes() == 0) return;
  after_compute();
  check_nccl(group_of_one([&] { return ncclRecv(x.data, x.nbytes(), ncclUint8, peer, comm_, stream_); }),
             "ncclRecv", comm_, rank_, size_);
  before_compute();
}

void NcclCommunicator::barrier() {
  after_compute();
  check_nccl(ncclAllReduce(scalar_, scalar_, 1, ncclInt32, ncclSum, comm_, stream_), "ncclAllReduce (barrier)",
             comm_, rank_, size_);
  PRORES_CUDA_CHECK(cudaStreamSynchronize(stream_));
  check_async_error(comm_, "ncclAllReduce (barrier)", rank_, size_);
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) const {
  comm_checks::color(color);
  ncclComm_t part = nullptr;
  check_nccl(ncclCommSplit(comm_, color, key, &part, nullptr), "ncclCommSplit", comm_, rank_, size_);
  int rank = 0, size = 0;
  ncclResult_t result = ncclCommUserRank(part, &rank);
  if (result == ncclSuccess) result = ncclCommCount(part, &size);
  if (result != ncclSuccess) {
    ncclCommDestroy(part);
    throw_nccl(result, "ncclCommUserRank/ncclCommCount (split)", nullptr, rank_, size_);
  }
  return std::unique_ptr<Communicator>(new NcclCommunicator(part, rank, size));
}

}  // namespace prores
