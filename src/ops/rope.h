// Rotary position embedding, Hugging Face Llama's rotate-half convention, on head-major tensors.
#pragma once
#include "core/tensor.h"

namespace prores::ops {

// cos, sin (T, HS/2) (=): angle[t, i] = t * base^(-2i/HS).
void rope_table(const Tensor& cos, const Tensor& sin, double base);

// x (B, H, T, HS) rotated in place (=): for i < HS/2, with c = cos[t,i], s = sin[t,i]:
//   x[i] <- x[i]*c - x[i+HS/2]*s;  x[i+HS/2] <- x[i+HS/2]*c + x[i]*s.
// x has the table's dtype, or is bf16 next to an f32 table (computed in f32, rounded to nearest even).
void rope_forward(const Tensor& x, const Tensor& cos, const Tensor& sin);

// dx (B, H, T, HS): the gradient w.r.t. the rotation's input, in place (=) (the inverse rotation).
void rope_backward(const Tensor& dx, const Tensor& cos, const Tensor& sin);

}  // namespace prores::ops
