// Global gradient-norm clipping as in torch.nn.utils.clip_grad_norm_ (Megatron's --clip-grad):
// a deterministic fp64 sum of squares over the flat gradient buffer and the clip coefficient, which the
// AdamW step applies to the gradients as it reads them (AdamW::step's grad_scale, ops::AdamWUpdate's).
// Under model/data parallelism the caller all-reduces sum_of_squares over the ranks owning distinct
// gradients and takes the square root itself.
#pragma once
#include <cstdint>
#include <span>

namespace prores {

// Σ g² in double. The buffer is cut into fixed-size chunks (independent of the thread count), each
// summed sequentially by one thread, and the chunk sums are added in order: the result is bitwise the
// same for any number of OpenMP threads. Non-finite inputs give a non-finite result.
double sum_of_squares(std::span<const float> grads);

// √sum_of_squares(grads); a non-finite norm is returned as is (the caller decides what to do).
double global_grad_norm(std::span<const float> grads);

// torch's clip coefficient: min(max_norm / (norm + 1e-6), 1). max_norm <= 0 disables clipping
// (returns 1). Like torch, an infinite norm gives 0 and a NaN norm gives NaN.
double clip_coefficient(double norm, double max_norm);

}  // namespace prores
