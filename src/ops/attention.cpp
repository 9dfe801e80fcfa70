// Attention dispatch: derives (B, T, NH, KV, HS) from q and k, validates every tensor's shape, dtype and
// device against them, then calls the kernels on the tensors' device (ops/dispatch.h): split_heads, with or
// without RoPE, in f32, f64 or bf16 on either device; attention in f32, f64 or bf16 matmul precision f32 on
// the CPU, f32 on CUDA; flash attention (ops/cuda/flash_attention.h) on CUDA only, f32 or bf16 q, k, v, out
// and their gradients; cuDNN's attention (ops/cuda/cudnn_attention.h) on CUDA only, bf16.
#include "ops/attention.h"

#include <cstdint>

#include "ops/cpu/attention.h"
#include "ops/cuda/attention.h"
#include "ops/cuda/cudnn_attention.h"
#include "ops/cuda/flash_attention.h"
#include "ops/dispatch.h"
#include "ops/element_type.h"

namespace prores::ops {
namespace {

using cpu::AttentionDims;
using detail::ShapeSpec;

// The shape checks of attention's tensors (argument name n, tensor t), from its sizes.
struct Shapes {
  const AttentionDims& d;
  ShapeSpec heads(const char* n, const Tensor& t) const { return {n, t, {d.B, d.NH, d.T, d.HS}, "(B, NH, T, HS)"}; }
  ShapeSpec groups(const char* n, const Tensor& t) const { return {n, t, {d.B, d.KV, d.T, d.HS}, "(B, KV, T, HS)"}; }
  ShapeSpec tokens(const char* n, const Tensor& t) const { return {n, t, {d.B, d.T, d.NH * d.HS}, "(B, T, NH HS)"}; }
  ShapeSpec scores(const char* n, const Tensor& t) const { return {n, t, {d.B, d.NH, d.T, d.T}, "(B, NH, T, T)"}; }
  ShapeSpec rows(const char* n, const Tensor& t) const { return {n, t, {d.B, d.NH, d.T}, "(B, NH, T)"}; }
  ShapeSpec qkv(const char* n, const Tensor& t) const {
    return {n, t, {d.B, d.T, (d.NH + 2 * d.KV) * d.HS}, "(B, T, (NH + 2 KV) HS)"};
  }
};

// Flash attention takes CUDA tensors, f32 or bf16 (q's dtype; the others are checked against q).
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
  return d;
}

// RoPE tables for split_heads, both or neither: cos and sin (T, HS/2) in ref's compute dtype (f32 next to
// bf16).
void check_rope_tables(const char* op, const AttentionDims& d, const Tensor& ref, const Tensor& cos,
                       const Tensor& sin) {
  PRORES_CHECK(cos.defined() == sin.defined(), op, ": give both RoPE tables (rope_cos and rope_sin) or neither");
  if (!cos.defined()) return;
  PRORES_CHECK(d.HS % 2 == 0, op, ": RoPE needs an even head size, got ", d.HS);
  detail::check_shapes(op, {{"rope_cos", cos, {d.T, d.HS / 2}, "(T, HS/2)"},
                            {"rope_sin", sin, {d.T, d.HS / 2}, "(T, HS/2)"}});
  detail::check_dtype(op, ref.dtype == DType::BF16 ? DType::F32 : ref.dtype, {{"rope_cos", cos}, {"rope_sin", sin}},
                      " (the tables are in the compute dtype of the heads)");
}

}  // namespace

void split_heads_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& qkv,
                         const Tensor& rope_cos, const Tensor& rope_sin) {
  constexpr const char* op = "split_heads_forward";
  const AttentionDims d = attention_dims(op, q, k);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("q", q), s.groups("k", k), s.groups("v", v), s.qkv("qkv", qkv)});
  detail::check_same_dtype(op, {{"q", q}, {"k", k}, {"v", v}, {"qkv", qkv}});
  check_rope_tables(op, d, q, rope_cos, rope_sin);
  detail::dispatch(op, {{"q", q}, {"k", k}, {"v", v}, {"qkv", qkv}, {"rope_cos", rope_cos},
                        {"rope_sin", rope_sin}}, [&](auto be) {
    detail::with_element_type(op, q.dtype, [&]<typename E>(E) {
      using S = compute_type<E>;
      PRORES_KERNEL(be, split_heads_forward)(q.as<E>(), k.as<E>(), v.as<E>(), qkv.as<E>(), d,
                                             rope_cos.as_or_null<S>(), rope_sin.as_or_null<S>());
    }, be.where);
  });
}

void split_heads_backward(const Tensor& dqkv, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                          const Tensor& rope_cos, const Tensor& rope_sin) {
  constexpr const char* op = "split_heads_backward";
  const AttentionDims d = attention_dims(op, dq, dk);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("dq", dq), s.groups("dk", dk), s.groups("dv", dv), s.qkv("dqkv", dqkv)});
  detail::check_same_dtype(op, {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"dqkv", dqkv}});
  check_rope_tables(op, d, dq, rope_cos, rope_sin);
  detail::dispatch(op, {{"dqkv", dqkv}, {"dq", dq}, {"dk", dk}, {"dv", dv}, {"rope_cos", rope_cos},
                        {"rope_sin", rope_sin}}, [&](auto be) {
    detail::with_element_type(op, dq.dtype, [&]<typename E>(E) {
      using S = compute_type<E>;
      PRORES_KERNEL(be, split_heads_backward)(dqkv.as<E>(), dq.as<E>(), dk.as<E>(), dv.as<E>(), d,
                                              rope_cos.as_or_null<S>(), rope_sin.as_or_null<S>());
    }, be.where);
  });
}

void attention_forward(const Tensor& out, const Tensor& att, const Tensor& y_heads, const Tensor& q,
                       const Tensor& k, const Tensor& v, MatmulPrecision precision) {
  constexpr const char* op = "attention_forward";
  const AttentionDims d = attention_dims(op, q, k);
  const bool bf16 = detail::bf16_matmuls(op, precision, q.dtype);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("q", q), s.groups("k", k), s.groups("v", v), s.scores("att", att),
                            s.heads("y_heads", y_heads), s.tokens("out", out)});
  const std::initializer_list<detail::NamedTensor> tensors = {
      {"out", out}, {"att", att}, {"y_heads", y_heads}, {"q", q}, {"k", k}, {"v", v}};
  detail::check_same_dtype(op, tensors);
  detail::dispatch(op, tensors, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      PRORES_CHECK(q.dtype == DType::F32, op, ": unsupported dtype ", dtype_name(q.dtype), " on CUDA (f32)");
      cuda::attention_forward(out.as<float>(), att.as<float>(), y_heads.as<float>(), q.as<float>(), k.as<float>(),
                              v.as<float>(), d, bf16);
    } else {
      detail::with_float_type(op, q.dtype, [&]<typename E>(E) {  // bf16 is false for f64 (bf16_matmuls)
        cpu::attention_forward(out.as<E>(), att.as<E>(), q.as<E>(), k.as<E>(), v.as<E>(), d, bf16);
      });
    }
  });
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& datt,
                        const Tensor& dy_heads, const Tensor& dout, const Tensor& att, const Tensor& q,
                        const Tensor& k, const Tensor& v, MatmulPrecision precision) {
  constexpr const char* op = "attention_backward";
  const AttentionDims d = attention_dims(op, q, k);
  const bool bf16 = detail::bf16_matmuls(op, precision, q.dtype);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("q", q), s.groups("k", k), s.groups("v", v), s.scores("att", att),
                            s.tokens("dout", dout), s.heads("dq", dq), s.groups("dk", dk), s.groups("dv", dv),
                            s.scores("datt", datt), s.heads("dy_heads", dy_heads)});
  const std::initializer_list<detail::NamedTensor> tensors = {
      {"dq", dq}, {"dk", dk}, {"dv", dv}, {"datt", datt}, {"dy_heads", dy_heads}, {"dout", dout}, {"att", att},
      {"q", q}, {"k", k}, {"v", v}};
  detail::check_same_dtype(op, tensors);
  detail::dispatch(op, tensors, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      PRORES_CHECK(q.dtype == DType::F32, op, ": unsupported dtype ", dtype_name(q.dtype), " on CUDA (f32)");
      cuda::attention_backward(dq.as<float>(), dk.as<float>(), dv.as<float>(), datt.as<float>(), dy_heads.as<float>(),
                               dout.as<float>(), att.as<float>(), q.as<float>(), k.as<float>(), v.as<float>(), d,
                               bf16);
    } else {
      detail::with_float_type(op, q.dtype, [&]<typename E>(E) {  // bf16 is false for f64 (bf16_matmuls)
        cpu::attention_backward(dq.as<E>(), dk.as<E>(), dv.as<E>(), datt.as<E>(), dout.as<E>(), att.as<E>(),
                                q.as<E>(), k.as<E>(), v.as<E>(), d, bf16);
      });
    }
  });
}

void cached_attention_forward(const Tensor& out, const Tensor& att, const Tensor& q, const Tensor& k_cache,
                              const Tensor& v_cache, int64_t start, MatmulPrecision precision) {
  constexpr const char* op = "cached_attention_forward";
  const AttentionDims d = attention_dims(op, q, k_cache);
  const int64_t Tc = k_cache.shape[2];
  PRORES_CHECK(start >= 0 && start + d.T <= Tc, op, ": positions [", start, ", ", start + d.T,
               ") do not fit the cache of ", Tc);
  const bool bf16 = detail::bf16_matmuls(op, precision, q.dtype);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("q", q), {"k_cache", k_cache, {d.B, d.KV, Tc, d.HS}, "(B, KV, Tc, HS)"},
                            {"v_cache", v_cache, {d.B, d.KV, Tc, d.HS}, "(B, KV, Tc, HS)"},
                            {"att", att, {d.B, d.NH, d.T, start + d.T}, "(B, NH, T, start + T)"},
                            s.tokens("out", out)});
  const std::initializer_list<detail::NamedTensor> tensors = {
      {"out", out}, {"att", att}, {"q", q}, {"k_cache", k_cache}, {"v_cache", v_cache}};
  detail::check_same_dtype(op, tensors);
  detail::dispatch(op, tensors, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      PRORES_FAIL(op, ": no CUDA kernel yet (decoding with a key/value cache runs on the CPU)");
    } else {
      detail::with_float_type(op, q.dtype, [&]<typename E>(E) {
        cpu::cached_attention_forward(out.as<E>(), att.as<E>(), q.as<E>(), k_cache.as<E>(), v_cache.as<E>(), d, Tc,
                                      start, bf16);
      });
    }
  });
}

void kv_cache_write(const Tensor& cache, const Tensor& rows, int64_t start) {
  constexpr const char* op = "kv_cache_write";
  PRORES_CHECK(cache.ndim == 4 && rows.ndim == 4, op, ": cache (B, KV, Tc, HS) and rows (B, KV, T, HS), got ",
               cache.shape_string(), " and ", rows.shape_string());
  const int64_t B = rows.shape[0], KV = rows.shape[1], T = rows.shape[2], HS = rows.shape[3], Tc = cache.shape[2];
  PRORES_CHECK(start >= 0 && start + T <= Tc, op, ": positions [", start, ", ", start + T, ") do not fit the cache of ",
               Tc);
  detail::check_shapes(op, {{"cache", cache, {B, KV, Tc, HS}, "(B, KV, Tc, HS)"}});
  detail::check_same_dtype(op, {{"cache", cache}, {"rows", rows}});
  detail::dispatch(op, {{"cache", cache}, {"rows", rows}}, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      PRORES_FAIL(op, ": no CUDA kernel yet (decoding with a key/value cache runs on the CPU)");
    } else {
      detail::with_float_type(op, cache.dtype, [&]<typename E>(E) {
        cpu::kv_cache_write(cache.as<E>(), rows.as<E>(), B * KV, Tc, start, T, HS);
      });
    }
  });
}

bool flash_attention_supports(int64_t head_size) {
  if constexpr (detail::kWithCuda) {
    return cuda::flash_attention_supports(AttentionDims{1, 1, 1, 1, head_size});
  } else {
    return false;
  }
}

void flash_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v) {
  constexpr const char* op = "flash_attention_forward";
  const AttentionDims d = attention_dims(op, q, k);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("q", q), s.groups("k", k), s.groups("v", v), s.rows("lse", lse),
                            s.tokens("out", out)});
  detail::check_same_dtype(op, {{"q", q}, {"k", k}, {"v", v}, {"out", out}});
  detail::check_dtype(op, DType::F32, {{"lse", lse}});
  check_flash_tensors(op, "attention_forward", q);
  detail::dispatch(op, {{"out", out}, {"lse", lse}, {"q", q}, {"k", k}, {"v", v}}, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      if (q.dtype == DType::BF16)
        return cuda::flash_attention_forward(out.as<uint16_t>(), lse.as<float>(), q.as<uint16_t>(), k.as<uint16_t>(),
                                             v.as<uint16_t>(), d);
      cuda::flash_attention_forward(out.as<float>(), lse.as<float>(), q.as<float>(), k.as<float>(), v.as<float>(),
                                    d);
    } else {
      PRORES_FAIL(op, ": takes CUDA tensors only");  // not reached: check_flash_tensors took CUDA q only
    }
  });
}

void flash_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& delta,
                              const Tensor& dout, const Tensor& out, const Tensor& lse, const Tensor& q,
                              const Tensor& k, const Tensor& v) {
  constexpr const char* op = "flash_attention_backward";
  const AttentionDims d = attention_dims(op, q, k);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("q", q), s.groups("k", k), s.groups("v", v), s.rows("lse", lse),
                            s.rows("delta", delta), s.tokens("out", out), s.tokens("dout", dout), s.heads("dq", dq),
                            s.groups("dk", dk), s.groups("dv", dv)});
  detail::check_same_dtype(op, {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"dout", dout}, {"dq", dq},
                                {"dk", dk}, {"dv", dv}});
  detail::check_dtype(op, DType::F32, {{"lse", lse}, {"delta", delta}});
  check_flash_tensors(op, "attention_backward", q);
  detail::dispatch(op, {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"delta", delta}, {"dout", dout}, {"out", out},
                        {"lse", lse}, {"q", q}, {"k", k}, {"v", v}}, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      if (q.dtype == DType::BF16)
        return cuda::flash_attention_backward(dq.as<uint16_t>(), dk.as<uint16_t>(), dv.as<uint16_t>(),
                                              delta.as<float>(), dout.as<uint16_t>(), out.as<uint16_t>(),
                                              lse.as<float>(), q.as<uint16_t>(), k.as<uint16_t>(), v.as<uint16_t>(), d);
      cuda::flash_attention_backward(dq.as<float>(), dk.as<float>(), dv.as<float>(), delta.as<float>(),
                                     dout.as<float>(), out.as<float>(), lse.as<float>(), q.as<float>(), k.as<float>(),
                                     v.as<float>(), d);
    } else {
      PRORES_FAIL(op, ": takes CUDA tensors only");  // not reached: check_flash_tensors took CUDA q only
    }
  });
}

bool cudnn_attention_built() {
  if constexpr (detail::kWithCuda) {
    return cuda::cudnn_attention_built();
  } else {
    return false;
  }
}

void require_cudnn_attention() {
  PRORES_CHECK(cudnn_attention_built(), "--attention-backend cudnn: this build has no cuDNN attention (",
               detail::kWithCuda ? "CMake found no cuDNN frontend headers: bash launch/setup.sh installs them when "
                                   "nvcc is found, then rebuild"
                                 : "a build without CUDA",
               ")");
}

int64_t cudnn_attention_workspace_bytes(int64_t B, int64_t T, int64_t NH, int64_t KV, int64_t HS) {
  if constexpr (detail::kWithCuda) {
    return cuda::cudnn_attention_workspace_bytes(AttentionDims{B, T, NH, KV, HS});
  } else {
    require_cudnn_attention();
    return 0;
  }
}

void cudnn_attention_forward(const Tensor& out, const Tensor& stats, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& workspace) {
  constexpr const char* op = "cudnn_attention_forward";
  const AttentionDims d = attention_dims(op, q, k);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("q", q), s.groups("k", k), s.groups("v", v), s.rows("stats", stats),
                            s.tokens("out", out)});
  detail::check_dtype(op, DType::BF16, {{"q", q}, {"k", k}, {"v", v}, {"out", out}});
  detail::check_dtype(op, DType::F32, {{"stats", stats}});
  detail::dispatch(op, {{"out", out}, {"stats", stats}, {"q", q}, {"k", k}, {"v", v}, {"workspace", workspace}},
                   [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      cuda::cudnn_attention_forward(out.as<uint16_t>(), stats.as<float>(), q.as<uint16_t>(), k.as<uint16_t>(),
                                    v.as<uint16_t>(), workspace.data, static_cast<int64_t>(workspace.nbytes()), d);
    } else {
      PRORES_FAIL(op, ": takes CUDA tensors only (the CPU path is attention_forward)");
    }
  });
}

void cudnn_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                              const Tensor& out, const Tensor& stats, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& workspace) {
  constexpr const char* op = "cudnn_attention_backward";
  const AttentionDims d = attention_dims(op, q, k);
  const Shapes s{d};
  detail::check_shapes(op, {s.heads("q", q), s.groups("k", k), s.groups("v", v), s.rows("stats", stats),
                            s.tokens("out", out), s.tokens("dout", dout), s.heads("dq", dq), s.groups("dk", dk),
                            s.groups("dv", dv)});
  detail::check_dtype(op, DType::BF16, {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"dout", dout}, {"dq", dq},
                                        {"dk", dk}, {"dv", dv}});
  detail::check_dtype(op, DType::F32, {{"stats", stats}});
  detail::dispatch(op, {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"dout", dout}, {"out", out}, {"stats", stats},
                        {"q", q}, {"k", k}, {"v", v}, {"workspace", workspace}}, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      cuda::cudnn_attention_backward(dq.as<uint16_t>(), dk.as<uint16_t>(), dv.as<uint16_t>(), dout.as<uint16_t>(),
                                     out.as<uint16_t>(), stats.as<float>(), q.as<uint16_t>(), k.as<uint16_t>(),
                                     v.as<uint16_t>(), workspace.data, static_cast<int64_t>(workspace.nbytes()), d);
    } else {
      PRORES_FAIL(op, ": takes CUDA tensors only (the CPU path is attention_backward)");
    }
  });
}

}  // namespace prores::ops
