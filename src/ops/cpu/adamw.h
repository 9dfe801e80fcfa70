// CPU AdamW step over flat fp32 host buffers (ops/adamw.h has the formula): the twin of ops/cuda/adamw.h,
// same arguments, same order of operations, computed in double and stored fp32. OpenMP-threaded over each
// segment's elements with static schedules; each element's result does not depend on the thread count.
#pragma once
#include <cstdint>

#include "ops/adamw.h"

namespace prores::ops::cpu {

// One AdamW step at step count u.step (>= 1: the count after this step's increment, t) over
// segments[0, num_segments) of params, exp_avg (m), exp_avg_sq (v) (=) in place and grads (read, left
// unscaled). Bias corrections are computed once with std::pow.
void adamw_step(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, const AdamWSegment* segments,
                int64_t num_segments, const AdamWUpdate& u);

}  // namespace prores::ops::cpu
