// CUDA AdamW step over flat fp32 device buffers (ops/adamw.h has the formula): the twin of ops/cpu/adamw.h,
// same arguments, same order of operations, computed in double and stored fp32. Pointers are device memory
// (segments and u are host memory); plain C++ declarations (no CUDA headers). Runs asynchronously on the
// current device and the legacy default stream.
#pragma once
#include <cstdint>

#include "ops/adamw.h"

namespace prores::ops::cuda {

// One AdamW step at step count u.step (>= 1: the count after this step's increment, t) over
// segments[0, num_segments) of params, exp_avg (m), exp_avg_sq (v) (=) in place and grads (read, left
// unscaled): one grid-stride launch per segment, one thread per element. Bias corrections are computed on
// the host with std::pow, as on the CPU.
void adamw_step(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, const AdamWSegment* segments,
                int64_t num_segments, const AdamWUpdate& u);

}  // namespace prores::ops::cuda
