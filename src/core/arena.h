// Arena: one aligned allocation carved into tensors up front, so that the training step never allocates.
// Usage: plan every tensor with reserve() (returns an offset), then allocate() once, then tensor(offset,...).
#pragma once
#include <cstddef>
#include <initializer_list>
#include <memory>

#include "core/tensor.h"

namespace prores {

class Arena {
 public:
  explicit Arena(Device device = Device::CPU) : device_(device) {}
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Reserves room for a tensor of the given dtype and shape; returns a handle valid after allocate().
  struct Slot {
    size_t offset = 0;
    DType dtype = DType::F32;
    std::array<int64_t, kMaxDims> shape{};
    int ndim = 0;
  };
  Slot reserve(DType dtype, std::initializer_list<int64_t> dims);
  // Allocates (and zero-fills, touching every page once) everything reserved so far.
  void allocate();
  Tensor tensor(const Slot& slot) const;
  size_t bytes() const { return size_; }

 private:
  Device device_;
  size_t size_ = 0;
  void* base_ = nullptr;
};

}  // namespace prores
