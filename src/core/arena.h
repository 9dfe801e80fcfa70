// Arena: one aligned allocation carved into tensors up front, so that the training step never allocates.
// Usage: plan every tensor with reserve(&tensor, dtype, shape), then allocate() once: it points every
// reserved Tensor at its slot (the Tensor objects must stay at the same address until then). A device
// arena takes its memory from the DeviceMemory it is given (ops/memory.h supplies CUDA's), so that core
// depends on no device runtime.
#pragma once
#include <cstddef>
#include <initializer_list>
#include <vector>

#include "core/tensor.h"

namespace prores {

// Allocation functions of a device arena: allocate_zeroed returns `bytes` zero-filled bytes (throws on
// failure), release frees them.
struct DeviceMemory {
  void* (*allocate_zeroed)(size_t bytes) = nullptr;
  void (*release)(void* p) = nullptr;
};

class Arena {
 public:
  Arena() = default;
  // A device arena (device other than CPU) needs memory's functions.
  Arena(Device device, DeviceMemory memory);
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
  Device device_ = Device::CPU;
  DeviceMemory memory_;
  size_t size_ = 0;
  void* base_ = nullptr;
  std::vector<Pending> pending_;
};

}  // namespace prores
