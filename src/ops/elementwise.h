// Elementwise helpers used by the residual stream, the optimizer and bf16 weight copies: fill, copy, bf16
// rounding, axpby, accumulate.
#pragma once
#include "core/tensor.h"

namespace prores::ops {

// x (=) 0.
void zero(const Tensor& x);

// dst (=) src (same dtype and numel).
void copy(const Tensor& dst, const Tensor& src);

// dst (bf16) (=) scale * src (f32), the product in f32, rounded to nearest even (same numel): the bf16 twin
// of axpby(dst, scale, src, 0, src).
void round_to_bf16(const Tensor& dst, const Tensor& src, double scale = 1.0);

// out (=) a * x + b * y (same numel). out may alias x or y. This is the residual add:
// h = x + alpha * F (Pre-LN, a = 1) and h = c * x + alpha * F (DeepNorm).
void axpby(const Tensor& out, double a, const Tensor& x, double b, const Tensor& y);

// dst (+=) a * src.
void accumulate(const Tensor& dst, double a, const Tensor& src);

// Sum of squares of x, accumulated in double.
double sum_squares(const Tensor& x);

// Sum of x (f32/f64), accumulated in double.
double sum(const Tensor& x);

}  // namespace prores::ops
