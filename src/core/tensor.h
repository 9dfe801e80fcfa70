// Tensor: a non-owning view {data, dtype, device, shape} over contiguous row-major memory.
// Ops take views; ownership lives in arenas (core/arena.h) and flat parameter buffers (model/).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/check.h"

namespace prores {

enum class DType { F32, F64, BF16, I32 };
enum class Device { CPU, CUDA };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::BF16; }  // bf16 held as its raw 16 bits

constexpr int kMaxDims = 4;

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};

  Tensor() = default;
  Tensor(void* data, DType dtype, Device device, std::initializer_list<int64_t> dims);

  int64_t numel() const;
  int64_t size(int dim) const;  // negative dims count from the back
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool defined() const { return data != nullptr; }

  // Typed pointer; checks that T matches dtype.
  template <typename T> T* as() const {
    PRORES_CHECK(dtype_of<T>() == dtype, "tensor dtype is ", dtype_name(dtype), ", accessed as ",
                 dtype_name(dtype_of<T>()));
    return static_cast<T*>(data);
  }
  // The same, or null for an undefined tensor (an optional argument left out).
  template <typename T> T* as_or_null() const { return defined() ? as<T>() : nullptr; }
  // Same memory viewed with another shape of equal numel.
  Tensor view(std::initializer_list<int64_t> dims) const;
  // The first numel(dims) elements viewed with shape dims (at most numel()).
  Tensor leading(std::initializer_list<int64_t> dims) const;
  // Rows [begin, begin+count) of the leading dimension.
  Tensor slice_rows(int64_t begin, int64_t count) const;
  std::string shape_string() const;
};

}  // namespace prores
