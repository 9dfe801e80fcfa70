// Global gradient-norm clipping as in torch.nn.utils.clip_grad_norm_ (Megatron's --clip-grad): the sum of
// squares of the gradients (ops::sum_squares, the one deterministic fp64 reduction for both devices) and
// the clip coefficient, which the AdamW step applies to the gradients as it reads them (AdamW::step's
// grad_scale, ops::AdamWUpdate's). Under model/data parallelism the caller all-reduces the sums over the
// ranks owning distinct gradients and takes the square root itself (DistributedOptimizer does the local part).
#pragma once
#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace prores {

// Σ g² in double over an f32 or f64 tensor on any device: ops::sum_squares. On the CPU the buffer is cut
// into fixed-size blocks (independent of the thread count) whose sums are added in order, so the result is
// bitwise the same for any number of OpenMP threads; on a GPU it is a fixed-order two-pass reduction.
// Non-finite inputs give a non-finite result.
double sum_of_squares(const Tensor& grads);
// The same over host memory.
double sum_of_squares(std::span<const float> grads);

// √sum_of_squares(grads); a non-finite norm is returned as is (the caller decides what to do).
double global_grad_norm(std::span<const float> grads);

// torch's clip coefficient: min(max_norm / (norm + 1e-6), 1). max_norm <= 0 disables clipping
// (returns 1). Like torch, an infinite norm gives 0 and a NaN norm gives NaN.
double clip_coefficient(double norm, double max_norm);

}  // namespace prores
