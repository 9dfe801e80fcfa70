// Argument checks shared by the host communicators (MPI and single-process), so that a call that is
// wrong at scale is already wrong on one process. Internal to src/parallel; defined in communicator.cpp.
#pragma once
#include "core/tensor.h"

namespace prores::comm_checks {

// x lives in host memory and has data unless it is empty.
void host_tensor(const Tensor& x, const char* op);
// x can be reduced by a host communicator: bf16 cannot (no MPI type), so reduce in f32.
void reducible(const Tensor& x, const char* op);
// part (n) and whole (size·n): host tensors of one dtype with those sizes (reduce_scatter's out and in,
// all_gather's in and out). Returns true when part is exactly chunk `rank` of whole (in place); any other
// overlap of the two is refused.
bool scatter_gather(const Tensor& part, const Tensor& whole, int rank, int size, const char* op);
// peer is another rank of a communicator of `size` ranks (point-to-point; a transfer to self is refused).
void peer(int peer, int rank, int size, const char* op);
// root is a rank of a communicator of `size` ranks.
void root(int root, int size);
// tag is non-negative (MPI's upper bound is checked by the MPI communicator).
void tag(int tag);
// color is non-negative (MPI_UNDEFINED, which would leave a rank without a communicator, is refused).
void color(int color);

}  // namespace prores::comm_checks
