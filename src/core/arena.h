// Arena: one aligned allocation carved into tensors up front, so that the training step never allocates.
// Usage: plan every tensor with reserve(&tensor, dtype, shape), then allocate() once: it points every
// reserved Tensor at its slot (the Tensor objects must stay at the same address until then).
#pragma once
#include <cstddef>
#include <initializer_list>
#include <vector>

#include "core/tensor.h"

namespace prores {

class Arena {
 public:
  explicit Arena(Device device = Device::CPU) : device_(device) {}
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Plans room for *target with the given dtype and shape; *target is filled in by allocate().
  void reserve(Tensor* target, DType dtype, std::initializer_list<int64_t> dims);
  // Allocates and zero-fills (touching every page once) all that was reserved, and fills the targets.
  void allocate();
  size_t bytes() const { return size_; }

 private:
  struct Pending {
    Tensor* target;
    size_t offset;
  };
  Device device_;
  size_t size_ = 0;
  void* base_ = nullptr;
  std::vector<Pending> pending_;
};

}  // namespace prores
