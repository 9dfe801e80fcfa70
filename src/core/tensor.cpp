// Tensor view helpers: sizes, reshaping views and slicing along the leading dimension.
#include "core/tensor.h"

#include <sstream>

namespace prores {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
    case DType::I32: return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
  }
  return "?";
}

Tensor::Tensor(void* data_, DType dtype_, Device device_, std::initializer_list<int64_t> dims)
    : data(data_), dtype(dtype_), device(device_), ndim(static_cast<int>(dims.size())) {
  PRORES_CHECK(ndim >= 1 && ndim <= kMaxDims, "tensor rank ", ndim, " not in [1, ", kMaxDims, "]");
  int i = 0;
  for (int64_t d : dims) {
    PRORES_CHECK(d >= 0, "negative tensor dimension ", d);
    shape[i++] = d;
  }
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

int64_t Tensor::size(int dim) const {
  if (dim < 0) dim += ndim;
  PRORES_CHECK(dim >= 0 && dim < ndim, "dimension ", dim, " out of range for shape ", shape_string());
  return shape[dim];
}

Tensor Tensor::view(std::initializer_list<int64_t> dims) const {
  Tensor t(data, dtype, device, dims);
  PRORES_CHECK(t.numel() == numel(), "cannot view ", shape_string(), " as ", t.shape_string());
  return t;
}

Tensor Tensor::leading(std::initializer_list<int64_t> dims) const {
  Tensor t(data, dtype, device, dims);
  PRORES_CHECK(t.numel() <= numel(), "cannot view the leading elements of ", shape_string(), " as ", t.shape_string());
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t count) const {
  PRORES_CHECK(ndim >= 1 && begin >= 0 && begin + count <= shape[0], "row slice [", begin, ", ",
               begin + count, ") out of range for shape ", shape_string());
  Tensor t = *this;
  t.shape[0] = count;
  const int64_t row = shape[0] == 0 ? 0 : numel() / shape[0];
  t.data = static_cast<char*>(data) + static_cast<size_t>(begin * row) * dtype_size(dtype);
  return t;
}

std::string Tensor::shape_string() const {
  std::ostringstream os;
  os << "(";
  for (int i = 0; i < ndim; ++i) os << (i ? ", " : "") << shape[i];
  os << ")";
  return os.str();
}

}  // namespace prores
