// cuDNN's fused attention (scaled dot-product attention through the cuDNN frontend's graph API): causal
// grouped-query attention in bf16 with f32 softmax statistics, the same function as flash_attention_forward /
// _backward (ops/cuda/flash_attention.h) in the same layouts, so the model swaps one for the other. Each
// (device, dims) builds its forward and backward graph once, on first use, and keeps them; the workspace is the
// caller's (the model's arena). The backward runs cuDNN's deterministic algorithm, so runs repeat bitwise as with
// our kernels. Plain C++ declarations; pointers are device memory, asynchronous on the legacy default stream of
// the current device. Without the cuDNN frontend at build time (cudnn_attention_built() false) every call but
// cudnn_attention_built throws prores::Error saying so.
#pragma once

#include <cstdint>
#include <string>

#include "ops/cpu/attention.h"

namespace prores::ops::cuda {

using cpu::AttentionDims;

// True when this build has the cuDNN frontend (CMake found its headers and libcudnn).
bool cudnn_attention_built();

// The bytes of workspace the forward and the backward of dims need (the larger of the two), building both graphs
// on the current device if they are not yet. Throws prores::Error with cuDNN's reason when cuDNN has no fused
// attention for dims (a head size it refuses, say).
int64_t cudnn_attention_workspace_bytes(const AttentionDims& d);

// q (B, NH, T, HS); k, v (B, KV, T, HS) head-major (as split_heads_forward writes them), bf16 bits.
// out (B, T, NH * HS) (=) causal softmax(q k^T / sqrt(HS)) v per head, heads concatenated along the last axis;
// stats (B, NH, T) (=) each row's natural-log log-sum-exp of the scaled, masked scores (cuDNN's softmax
// statistics, what the backward needs). workspace: at least cudnn_attention_workspace_bytes(d) bytes.
void cudnn_attention_forward(uint16_t* out, float* stats, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                             void* workspace, int64_t workspace_bytes, const AttentionDims& d);

// dq (B, NH, T, HS) (=), dk, dv (B, KV, T, HS) (=) from dout (B, T, NH * HS) and the forward's out, stats and
// inputs; dk and dv sum over the NH / KV heads of each group.
void cudnn_attention_backward(uint16_t* dq, uint16_t* dk, uint16_t* dv, const uint16_t* dout, const uint16_t* out,
                              const float* stats, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                              void* workspace, int64_t workspace_bytes, const AttentionDims& d);

}  // namespace prores::ops::cuda
