// The argument checks and device checks shared by the op dispatchers (ops/dispatch.h).
#include "ops/dispatch.h"

#include <sstream>

#include "core/check.h"
#include "ops/cuda/device.h"

namespace prores::ops::detail {
namespace {

const char* device_name(Device device) { return device == Device::CUDA ? "cuda" : "cpu"; }

}  // namespace

Device common_device(const char* op, std::initializer_list<NamedTensor> tensors) {
  const NamedTensor* first = nullptr;
  for (const NamedTensor& t : tensors) {
    if (absent(t.tensor)) continue;
    if (!first) first = &t;
    PRORES_CHECK(t.tensor.device == first->tensor.device, op, ": ", t.name, " is on ",
                 device_name(t.tensor.device), " but ", first->name, " is on ", device_name(first->tensor.device),
                 ": all tensors must be on the same device");
  }
  return first ? first->tensor.device : Device::CPU;
}

void check_device_memory(const char* op, std::initializer_list<NamedTensor> tensors) {
  if constexpr (kWithCuda) {
    for (const NamedTensor& t : tensors) {
      PRORES_CHECK(!t.tensor.defined() || t.tensor.numel() == 0 || cuda::is_device_pointer(t.tensor.data), op,
                   ": ", t.name, " is a CUDA tensor but its memory is not CUDA device memory");
    }
  } else {
    fail_no_cuda(op);
  }
}

void fail_no_cuda(const char* op) {
  PRORES_FAIL(op, ": this build has no CUDA support (configure with nvcc available)");
}

Dims::Dims(std::initializer_list<int64_t> dims) : ndim_(static_cast<int>(dims.size())) {
  PRORES_CHECK(ndim_ <= kMaxDims, "Dims: rank ", ndim_, " above ", kMaxDims);
  int i = 0;
  for (int64_t d : dims) sizes_[i++] = d;
}

Dims::Dims(Kind kind, int64_t rows, int64_t cols) : kind_(kind), ndim_(2), sizes_{rows, cols} {}

Dims Dims::rows(int64_t n, int64_t last) { return Dims(Kind::Rows, n, last); }

Dims Dims::matrix(int64_t rows, int64_t cols) { return Dims(Kind::Matrix, rows, cols); }

bool Dims::matches(const Tensor& t) const {
  switch (kind_) {
    case Kind::Rows:
      return t.ndim >= 1 && t.size(-1) == sizes_[1] && t.numel() == sizes_[0] * sizes_[1];
    case Kind::Matrix:
      return t.numel() == sizes_[0] * sizes_[1] &&
             (t.ndim < 2 || t.size(-1) == sizes_[1] || sizes_[0] * sizes_[1] == 0);
    case Kind::Exact:
      break;
  }
  if (t.ndim != ndim_) return false;
  for (int i = 0; i < ndim_; ++i) {
    if (t.shape[i] != sizes_[i]) return false;
  }
  return true;
}

std::string Dims::str() const {
  std::ostringstream os;
  if (kind_ == Kind::Rows) {
    os << "(..., " << sizes_[1] << ") with " << sizes_[0] << " rows";
    return os.str();
  }
  os << "(";
  for (int i = 0; i < ndim_; ++i) os << (i ? ", " : "") << sizes_[i];
  os << ")";
  return os.str();
}

void check_shapes(const char* op, std::initializer_list<ShapeSpec> specs) {
  for (const ShapeSpec& bad : specs) {
    if ((bad.presence == Presence::Optional && absent(bad.tensor)) || bad.dims.matches(bad.tensor)) continue;
    std::ostringstream os;
    os << op << ": " << bad.name << " has shape " << bad.tensor.shape_string() << ", expected " << bad.dims.str();
    const char* sep = "; ";
    for (const ShapeSpec& s : specs) {
      if (s.presence == Presence::Optional && absent(s.tensor)) continue;
      os << sep << s.name << " " << s.pattern << " is " << s.tensor.shape_string();
      sep = ", ";
    }
    PRORES_FAIL(os.str());
  }
}

void check_dtype(const char* op, DType dtype, std::initializer_list<NamedTensor> tensors, const char* why) {
  for (const NamedTensor& t : tensors) {
    PRORES_CHECK(absent(t.tensor) || t.tensor.dtype == dtype, op, ": ", t.name, " must be ", dtype_name(dtype),
                 ", got ", dtype_name(t.tensor.dtype), why);
  }
}

void check_same_dtype(const char* op, std::initializer_list<NamedTensor> tensors, const char* note) {
  const Tensor* first = nullptr;
  bool same = true;
  for (const NamedTensor& t : tensors) {
    if (absent(t.tensor)) continue;
    if (!first) first = &t.tensor;
    same = same && t.tensor.dtype == first->dtype;
  }
  if (same) return;
  std::ostringstream os;
  os << op << ": dtype mismatch:";
  const char* sep = " ";
  for (const NamedTensor& t : tensors) {
    if (absent(t.tensor)) continue;
    os << sep << t.name << " " << dtype_name(t.tensor.dtype);
    sep = ", ";
  }
  os << note;
  PRORES_FAIL(os.str());
}

}  // namespace prores::ops::detail
