// How a backward op writes an input gradient that it could also accumulate into: adding to it (+=), or
// overwriting it (=) without reading it (the first and only contribution to a gradient, which then needs no
// zero-fill). Used by ops/linear.h and ops/rmsnorm.h.
#pragma once

namespace prores::ops {

enum class InputGrad { Accumulate, Overwrite };

}  // namespace prores::ops
