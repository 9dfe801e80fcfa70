// Attention dispatch: derives (B, T, NH, KV, HS) from q and k, validates every tensor's shape, dtype and
// device against them, then calls the CPU kernels (split_heads, with or without RoPE: f32, f64, bf16;
// attention: f32, f64, bf16 matmul precision f32 only). CUDA tensors go to ops/cuda/attention.h in builds
// with PRORES_WITH_CUDA (split_heads: f32, f64, bf16; attention: f32), flash attention to
// ops/cuda/flash_attention.h (CUDA, f32 or bf16 q, k, v, out and their gradients); other builds fail with a
// clear message.
#include "ops/attention.h"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "ops/device_check.h"
#include "ops/element_type.h"
#include "ops/cpu/attention.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/attention.h"
#include "ops/cuda/device.h"
#include "ops/cuda/flash_attention.h"
#endif

namespace prores::ops {
namespace {

using cpu::AttentionDims;

std::string dims_string(std::initializer_list<int64_t> dims) {
  std::string s = "(";
  for (int64_t d : dims) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
  return s + ")";
}

// Checks that t has exactly the given shape and ref's dtype and device.
void expect(const char* op, const char* name, const Tensor& t, std::initializer_list<int64_t> dims,
            const Tensor& ref, DType dtype) {
  bool ok = t.ndim == static_cast<int>(dims.size());
  int i = 0;
  for (int64_t d : dims) ok = ok && t.shape[i++] == d;
  PRORES_CHECK(ok, op, ": ", name, " has shape ", t.shape_string(), ", expected ", dims_string(dims));
  PRORES_CHECK(t.dtype == dtype, op, ": ", name, " is ", dtype_name(t.dtype), ", expected ", dtype_name(dtype));
  PRORES_CHECK(t.device == ref.device, op, ": ", name, " is on another device than the other tensors");
}

// The same with ref's dtype.
void expect(const char* op, const char* name, const Tensor& t, std::initializer_list<int64_t> dims,
            const Tensor& ref) {
  expect(op, name, t, dims, ref, ref.dtype);
}

// Flash attention takes CUDA tensors, f32 or bf16 (q's dtype; the others are checked against q by expect).
void check_flash_tensors(const char* op, const char* cpu_path, const Tensor& q) {
  PRORES_CHECK(q.device == Device::CUDA && (q.dtype == DType::F32 || q.dtype == DType::BF16), op,
               ": takes f32 or bf16 CUDA tensors (the CPU path is ", cpu_path, "), got ", dtype_name(q.dtype),
               q.device == Device::CUDA ? " on CUDA" : " on the host");
}

// Sizes from q (B, NH, T, HS) and k (B, KV, T, HS); checks that the heads divide into the groups.
AttentionDims attention_dims(const char* op, const Tensor& q, const Tensor& k) {
  PRORES_CHECK(q.ndim == 4, op, ": q must be (B, NH, T, HS), got ", q.shape_string());
  PRORES_CHECK(k.ndim == 4, op, ": k must be (B, KV, T, HS), got ", k.shape_string());
  const AttentionDims d{q.shape[0], q.shape[2], q.shape[1], k.shape[1], q.shape[3]};
  PRORES_CHECK(d.KV > 0 && d.NH % d.KV == 0, op, ": NH = ", d.NH, " is not a multiple of KV = ", d.KV, " (q ",
               q.shape_string(), ", k ", k.shape_string(), ")");
  PRORES_CHECK(d.HS > 0, op, ": head size must be positive, q ", q.shape_string());
  expect(op, "k", k, {d.B, d.KV, d.T, d.HS}, q);
  return d;
}

// RoPE tables for split_heads, both or neither: cos and sin (T, HS/2) in ref's compute dtype (f32 next to
// bf16) on ref's device.
void check_rope_tables(const char* op, const AttentionDims& d, const Tensor& ref, const Tensor& cos,
                       const Tensor& sin) {
  PRORES_CHECK(cos.defined() == sin.defined(), op, ": give both RoPE tables (rope_cos and rope_sin) or neither");
  if (!cos.defined()) return;
  PRORES_CHECK(d.HS % 2 == 0, op, ": RoPE needs an even head size, got ", d.HS);
  const DType table = ref.dtype == DType::BF16 ? DType::F32 : ref.dtype;
  expect(op, "rope_cos", cos, {d.T, d.HS / 2}, ref, table);
  expect(op, "rope_sin", sin, {d.T, d.HS / 2}, ref, table);
}

#if defined(PRORES_WITH_CUDA)
// Throws for attention on a dtype the CUDA kernels do not take.
[[noreturn]] void fail_cuda_dtype(const char* op, DType dtype) {
  PRORES_FAIL(op, ": unsupported dtype ", dtype_name(dtype), " on CUDA (f32)");
}
#endif

}  // namespace

void split_heads_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& qkv,
                         const Tensor& rope_cos, const Tensor& rope_sin) {
  const char* op = "split_heads_forward";
  const AttentionDims d = attention_dims(op, q, k);
  expect(op, "v", v, {d.B, d.KV, d.T, d.HS}, q);
  expect(op, "qkv", qkv, {d.B, d.T, (d.NH + 2 * d.KV) * d.HS}, q);
  check_rope_tables(op, d, q, rope_cos, rope_sin);
  if (q.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, {{"q", q}, {"k", k}, {"v", v}, {"qkv", qkv}, {"rope_cos", rope_cos},
                                     {"rope_sin", rope_sin}});
    return detail::with_element_type(op, q.dtype, [&]<typename E>(E) {
      using S = compute_type<E>;
      cuda::split_heads_forward(q.as<E>(), k.as<E>(), v.as<E>(), qkv.as<E>(), d, rope_cos.as_or_null<S>(),
                                rope_sin.as_or_null<S>());
    }, " on CUDA");
#else
    detail::fail_no_cuda(op);
#endif
  }
  detail::with_element_type(op, q.dtype, [&]<typename E>(E) {
    using S = compute_type<E>;
    cpu::split_heads_forward(q.as<E>(), k.as<E>(), v.as<E>(), qkv.as<E>(), d, rope_cos.as_or_null<S>(),
                             rope_sin.as_or_null<S>());
  });
}

void split_heads_backward(const Tensor& dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                          const Tensor& rope_cos, const Tensor& rope_sin) {
  const char* op = "split_heads_backward";
  const AttentionDims d = attention_dims(op, dq, dk);
  expect(op, "dv", dv, {d.B, d.KV, d.T, d.HS}, dq);
  expect(op, "dqkv", dqkv, {d.B, d.T, (d.NH + 2 * d.KV) * d.HS}, dq);
  check_rope_tables(op, d, dq, rope_cos, rope_sin);
  if (dq.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, {{"dqkv", dqkv}, {"dq", dq}, {"dk", dk}, {"dv", dv}, {"rope_cos", rope_cos},
                                     {"rope_sin", rope_sin}});
    return detail::with_element_type(op, dq.dtype, [&]<typename E>(E) {
      using S = compute_type<E>;
      cuda::split_heads_backward(dqkv.as<E>(), dq.as<E>(), dk.as<E>(), dv.as<E>(), d, rope_cos.as_or_null<S>(),
                                 rope_sin.as_or_null<S>());
    }, " on CUDA");
#else
    detail::fail_no_cuda(op);
#endif
  }
  detail::with_element_type(op, dq.dtype, [&]<typename E>(E) {
    using S = compute_type<E>;
    cpu::split_heads_backward(dqkv.as<E>(), dq.as<E>(), dk.as<E>(), dv.as<E>(), d, rope_cos.as_or_null<S>(),
                              rope_sin.as_or_null<S>());
  });
}

void attention_forward(const Tensor& out, const Tensor& att, const Tensor& y_heads, const Tensor& q,
                       const Tensor& k, const Tensor& v, MatmulPrecision precision) {
  const char* op = "attention_forward";
  const AttentionDims d = attention_dims(op, q, k);
  const bool bf16 = detail::bf16_matmuls(op, precision, q.dtype);
  expect(op, "v", v, {d.B, d.KV, d.T, d.HS}, q);
  expect(op, "att", att, {d.B, d.NH, d.T, d.T}, q);
  expect(op, "y_heads", y_heads, {d.B, d.NH, d.T, d.HS}, q);
  expect(op, "out", out, {d.B, d.T, d.NH * d.HS}, q);
  if (q.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, {{"out", out}, {"att", att}, {"y_heads", y_heads}, {"q", q}, {"k", k}, {"v", v}});
    if (q.dtype != DType::F32) fail_cuda_dtype(op, q.dtype);
    return cuda::attention_forward(out.as<float>(), att.as<float>(), y_heads.as<float>(), q.as<float>(),
                                   k.as<float>(), v.as<float>(), d, bf16);
#else
    detail::fail_no_cuda(op);
#endif
  }
  detail::with_float_type(op, q.dtype, [&]<typename E>(E) {  // bf16 is false for f64 (bf16_matmuls)
    cpu::attention_forward(out.as<E>(), att.as<E>(), q.as<E>(), k.as<E>(), v.as<E>(), d, bf16);
  });
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& datt,
                        const Tensor& dy_heads, const Tensor& dout, const Tensor& att, const Tensor& q,
                        const Tensor& k, const Tensor& v, MatmulPrecision precision) {
  const char* op = "attention_backward";
  const AttentionDims d = attention_dims(op, q, k);
  const bool bf16 = detail::bf16_matmuls(op, precision, q.dtype);
  expect(op, "v", v, {d.B, d.KV, d.T, d.HS}, q);
  expect(op, "att", att, {d.B, d.NH, d.T, d.T}, q);
  expect(op, "dout", dout, {d.B, d.T, d.NH * d.HS}, q);
  expect(op, "dq", dq, {d.B, d.NH, d.T, d.HS}, q);
  expect(op, "dk", dk, {d.B, d.KV, d.T, d.HS}, q);
  expect(op, "dv", dv, {d.B, d.KV, d.T, d.HS}, q);
  expect(op, "datt", datt, {d.B, d.NH, d.T, d.T}, q);
  expect(op, "dy_heads", dy_heads, {d.B, d.NH, d.T, d.HS}, q);
  if (q.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"datt", datt}, {"dy_heads", dy_heads},
                                     {"dout", dout}, {"att", att}, {"q", q}, {"k", k}, {"v", v}});
    if (q.dtype != DType::F32) fail_cuda_dtype(op, q.dtype);
    return cuda::attention_backward(dq.as<float>(), dk.as<float>(), dv.as<float>(), datt.as<float>(),
                                    dy_heads.as<float>(), dout.as<float>(), att.as<float>(), q.as<float>(),
                                    k.as<float>(), v.as<float>(), d, bf16);
#else
    detail::fail_no_cuda(op);
#endif
  }
  detail::with_float_type(op, q.dtype, [&]<typename E>(E) {  // bf16 is false for f64 (bf16_matmuls)
    cpu::attention_backward(dq.as<E>(), dk.as<E>(), dv.as<E>(), datt.as<E>(), dout.as<E>(), att.as<E>(), q.as<E>(),
                            k.as<E>(), v.as<E>(), d, bf16);
  });
}

bool flash_attention_supports(int64_t head_size) {
#if defined(PRORES_WITH_CUDA)
  return cuda::flash_attention_supports(AttentionDims{1, 1, 1, 1, head_size});
#else
  (void)head_size;
  return false;
#endif
}

void flash_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v) {
  const char* op = "flash_attention_forward";
  const AttentionDims d = attention_dims(op, q, k);
  expect(op, "v", v, {d.B, d.KV, d.T, d.HS}, q);
  expect(op, "lse", lse, {d.B, d.NH, d.T}, q, DType::F32);
  expect(op, "out", out, {d.B, d.T, d.NH * d.HS}, q);
  check_flash_tensors(op, "attention_forward", q);
#if defined(PRORES_WITH_CUDA)
  detail::check_device_memory(op, {{"out", out}, {"lse", lse}, {"q", q}, {"k", k}, {"v", v}});
  if (q.dtype == DType::BF16)
    return cuda::flash_attention_forward(out.as<uint16_t>(), lse.as<float>(), q.as<uint16_t>(),
                                         k.as<uint16_t>(), v.as<uint16_t>(), d);
  cuda::flash_attention_forward(out.as<float>(), lse.as<float>(), q.as<float>(), k.as<float>(), v.as<float>(), d);
#else
  detail::fail_no_cuda(op);
#endif
}

void flash_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& delta,
                              const Tensor& dout, const Tensor& out, const Tensor& lse, const Tensor& q,
                              const Tensor& k, const Tensor& v) {
  const char* op = "flash_attention_backward";
  const AttentionDims d = attention_dims(op, q, k);
  expect(op, "v", v, {d.B, d.KV, d.T, d.HS}, q);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"lse", &lse}, {"delta", &delta}})
    expect(op, name, *t, {d.B, d.NH, d.T}, q, DType::F32);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"out", &out}, {"dout", &dout}})
    expect(op, name, *t, {d.B, d.T, d.NH * d.HS}, q);
  expect(op, "dq", dq, {d.B, d.NH, d.T, d.HS}, q);
  expect(op, "dk", dk, {d.B, d.KV, d.T, d.HS}, q);
  expect(op, "dv", dv, {d.B, d.KV, d.T, d.HS}, q);
  check_flash_tensors(op, "attention_backward", q);
#if defined(PRORES_WITH_CUDA)
  detail::check_device_memory(op, {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"delta", delta}, {"dout", dout},
                                   {"out", out}, {"lse", lse}, {"q", q}, {"k", k}, {"v", v}});
  if (q.dtype == DType::BF16)
    return cuda::flash_attention_backward(dq.as<uint16_t>(), dk.as<uint16_t>(), dv.as<uint16_t>(), delta.as<float>(),
                                          dout.as<uint16_t>(), out.as<uint16_t>(), lse.as<float>(),
                                          q.as<uint16_t>(), k.as<uint16_t>(), v.as<uint16_t>(), d);
  cuda::flash_attention_backward(dq.as<float>(), dk.as<float>(), dv.as<float>(), delta.as<float>(),
                                 dout.as<float>(), out.as<float>(), lse.as<float>(), q.as<float>(), k.as<float>(),
                                 v.as<float>(), d);
#else
  detail::fail_no_cuda(op);
#endif
}

}  // namespace prores::ops
