// Vocabulary-shard dispatch: validates shapes, dtypes and devices, then runs the kernel for the dtype
// (f32, f64; the cross-entropy's logits also bf16, with f32 statistics). CUDA tensors go to
// ops/cuda/vocab_shard.h in builds with PRORES_WITH_CUDA and fail with a clear message otherwise.
#include "ops/vocab_shard.h"

#include <initializer_list>

#include "core/bf16.h"
#include "ops/cpu/vocab_shard.h"
#include "ops/device_check.h"
#include "ops/element_type.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/vocab_shard.h"
#endif

namespace prores::ops {

namespace {

// True when the tensors ts are CUDA tensors. Throws unless they are all on one device, and for CUDA tensors
// unless their memory is CUDA device memory (always, in a build without the CUDA path: callers then never
// see true).
bool on_cuda(const char* op, std::initializer_list<detail::NamedTensor> ts) {
  const Device device = ts.begin()->tensor.device;
  for (const detail::NamedTensor& t : ts) {
    PRORES_CHECK(t.tensor.device == device, op, ": all tensors must be on the same device");
  }
  if (device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, ts);
#else
    detail::fail_no_cuda(op);
#endif
  }
  return device == Device::CUDA;
}

// Throws unless every tensor of ts has dtype.
void check_dtype(const char* op, DType dtype, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts) {
    PRORES_CHECK(t->dtype == dtype, op, ": expected every float tensor to be ", dtype_name(dtype), ", got ",
                 dtype_name(t->dtype));
  }
}

void check_ids_i32(const char* op, const char* name, const Tensor& ids) {
  PRORES_CHECK(ids.dtype == DType::I32, op, ": ", name, " must be i32, got ", dtype_name(ids.dtype));
}

void check_vocab_start(const char* op, int64_t vocab_start) {
  PRORES_CHECK(vocab_start >= 0, op, ": vocab_start must be >= 0, got ", vocab_start);
}

// Calls fn(T{}, S{}) with T the storage type of logits of dtype (float, double, or uint16_t for bf16) and S
// the type of their statistics (compute_type<T>); throws for other dtypes.
template <typename Fn>
void by_storage(const char* op, DType dtype, Fn&& fn) {
  detail::with_element_type(op, dtype, [&]<typename E>(E) { fn(E{}, compute_type<E>{}); });
}

// The dtype of the per-row statistics of logits of dtype: f64 for f64, f32 for f32 and bf16.
DType statistics_dtype(const char* op, DType logits) {
  PRORES_CHECK(logits == DType::F32 || logits == DType::F64 || logits == DType::BF16, op,
               ": logits must be f32, f64 or bf16, got ", dtype_name(logits));
  return logits == DType::F64 ? DType::F64 : DType::F32;
}

bool is_vector(const Tensor& t, int64_t n) { return t.ndim == 1 && t.shape[0] == n; }

}  // namespace

void embedding_shard_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte_shard,
                             int64_t vocab_start) {
  constexpr const char* op = "embedding_shard_forward";
  PRORES_CHECK(out.ndim == 2 && wte_shard.ndim == 2 && is_vector(tokens, out.shape[0]) &&
                   out.shape[1] == wte_shard.shape[1],
               op, ": expected out (N, C), tokens (N), wte_shard (Vs, C); got out ", out.shape_string(),
               ", tokens ", tokens.shape_string(), ", wte_shard ", wte_shard.shape_string());
  check_ids_i32(op, "tokens", tokens);
  check_dtype(op, wte_shard.dtype, {&out});
  check_vocab_start(op, vocab_start);
  const int64_t N = out.shape[0], C = out.shape[1], Vs = wte_shard.shape[0];
  if (on_cuda(op, {{"out", out}, {"tokens", tokens}, {"wte_shard", wte_shard}})) {
#if defined(PRORES_WITH_CUDA)
    return detail::with_float_type(op, out.dtype, [&]<typename T>(T) {
      cuda::embedding_shard_forward(out.as<T>(), tokens.as<int32_t>(), wte_shard.as<T>(), N, C, Vs, vocab_start);
    });
#endif
  }
  detail::with_float_type(op, out.dtype, [&]<typename T>(T) {
    cpu::embedding_shard_forward(out.as<T>(), tokens.as<int32_t>(), wte_shard.as<T>(), N, C, Vs, vocab_start);
  });
}

void embedding_shard_backward(const Tensor& dwte_shard, const Tensor& dout, const Tensor& tokens,
                              int64_t vocab_start) {
  constexpr const char* op = "embedding_shard_backward";
  PRORES_CHECK(dwte_shard.ndim == 2 && dout.ndim == 2 && is_vector(tokens, dout.shape[0]) &&
                   dout.shape[1] == dwte_shard.shape[1],
               op, ": expected dwte_shard (Vs, C), dout (N, C), tokens (N); got dwte_shard ",
               dwte_shard.shape_string(), ", dout ", dout.shape_string(), ", tokens ", tokens.shape_string());
  check_ids_i32(op, "tokens", tokens);
  check_dtype(op, dwte_shard.dtype, {&dout});
  check_vocab_start(op, vocab_start);
  const int64_t N = dout.shape[0], C = dout.shape[1], Vs = dwte_shard.shape[0];
  if (on_cuda(op, {{"dwte_shard", dwte_shard}, {"dout", dout}, {"tokens", tokens}})) {
#if defined(PRORES_WITH_CUDA)
    return detail::with_float_type(op, dout.dtype, [&]<typename T>(T) {
      cuda::embedding_shard_backward(dwte_shard.as<T>(), dout.as<T>(), tokens.as<int32_t>(), N, C, Vs, vocab_start);
    });
#endif
  }
  detail::with_float_type(op, dout.dtype, [&]<typename T>(T) {
    cpu::embedding_shard_backward(dwte_shard.as<T>(), dout.as<T>(), tokens.as<int32_t>(), N, C, Vs, vocab_start);
  });
}

void cross_entropy_shard_stats(const Tensor& row_max, const Tensor& row_sumexp, const Tensor& target_logit,
                               const Tensor& logits, const Tensor& targets, int64_t vocab_start) {
  constexpr const char* op = "cross_entropy_shard_stats";
  const int64_t N = logits.ndim == 2 ? logits.shape[0] : -1;
  PRORES_CHECK(logits.ndim == 2 && logits.shape[1] >= 1 && is_vector(row_max, N) && is_vector(row_sumexp, N) &&
                   is_vector(target_logit, N) && is_vector(targets, N),
               op, ": expected row_max, row_sumexp, target_logit (N), logits (N, Vs) with Vs >= 1, targets (N); "
               "got row_max ", row_max.shape_string(), ", row_sumexp ", row_sumexp.shape_string(),
               ", target_logit ", target_logit.shape_string(), ", logits ", logits.shape_string(), ", targets ",
               targets.shape_string());
  check_ids_i32(op, "targets", targets);
  check_dtype(op, statistics_dtype(op, logits.dtype), {&row_max, &row_sumexp, &target_logit});
  check_vocab_start(op, vocab_start);
  const int64_t Vs = logits.shape[1];
  if (on_cuda(op, {{"row_max", row_max}, {"row_sumexp", row_sumexp}, {"target_logit", target_logit},
                   {"logits", logits}, {"targets", targets}})) {
#if defined(PRORES_WITH_CUDA)
    return by_storage(op, logits.dtype, [&]<typename T, typename S>(T, S) {
      cuda::cross_entropy_shard_stats(row_max.as<S>(), row_sumexp.as<S>(), target_logit.as<S>(), logits.as<T>(),
                                      targets.as<int32_t>(), N, Vs, vocab_start);
    });
#endif
  }
  by_storage(op, logits.dtype, [&]<typename T, typename S>(T, S) {
    cpu::cross_entropy_shard_stats(row_max.as<S>(), row_sumexp.as<S>(), target_logit.as<S>(), logits.as<T>(),
                                   targets.as<int32_t>(), N, Vs, vocab_start);
  });
}

void cross_entropy_shard_rebase(const Tensor& row_sumexp, const Tensor& shard_max, const Tensor& row_max) {
  constexpr const char* op = "cross_entropy_shard_rebase";
  const int64_t N = row_sumexp.ndim == 1 ? row_sumexp.shape[0] : -1;
  PRORES_CHECK(is_vector(row_sumexp, N) && is_vector(shard_max, N) && is_vector(row_max, N), op,
               ": expected row_sumexp, shard_max, row_max (N) each; got ", row_sumexp.shape_string(), ", ",
               shard_max.shape_string(), ", ", row_max.shape_string());
  check_dtype(op, row_sumexp.dtype, {&shard_max, &row_max});
  if (on_cuda(op, {{"row_sumexp", row_sumexp}, {"shard_max", shard_max}, {"row_max", row_max}})) {
#if defined(PRORES_WITH_CUDA)
    return detail::with_float_type(op, row_sumexp.dtype, [&]<typename S>(S) {
      cuda::cross_entropy_shard_rebase(row_sumexp.as<S>(), shard_max.as<S>(), row_max.as<S>(), N);
    });
#endif
  }
  detail::with_float_type(op, row_sumexp.dtype, [&]<typename S>(S) {
    cpu::cross_entropy_shard_rebase(row_sumexp.as<S>(), shard_max.as<S>(), row_max.as<S>(), N);
  });
}

void cross_entropy_shard_loss(const Tensor& losses, const Tensor& row_max, const Tensor& row_sumexp,
                              const Tensor& target_logit) {
  constexpr const char* op = "cross_entropy_shard_loss";
  const int64_t N = losses.ndim == 1 ? losses.shape[0] : -1;
  PRORES_CHECK(is_vector(losses, N) && is_vector(row_max, N) && is_vector(row_sumexp, N) &&
                   is_vector(target_logit, N),
               op, ": expected losses, row_max, row_sumexp, target_logit (N) each; got ", losses.shape_string(),
               ", ", row_max.shape_string(), ", ", row_sumexp.shape_string(), ", ",
               target_logit.shape_string());
  check_dtype(op, losses.dtype, {&row_max, &row_sumexp, &target_logit});
  if (on_cuda(op, {{"losses", losses}, {"row_max", row_max}, {"row_sumexp", row_sumexp},
                   {"target_logit", target_logit}})) {
#if defined(PRORES_WITH_CUDA)
    return detail::with_float_type(op, losses.dtype, [&]<typename S>(S) {
      cuda::cross_entropy_shard_loss(losses.as<S>(), row_max.as<S>(), row_sumexp.as<S>(), target_logit.as<S>(), N);
    });
#endif
  }
  detail::with_float_type(op, losses.dtype, [&]<typename S>(S) {
    cpu::cross_entropy_shard_loss(losses.as<S>(), row_max.as<S>(), row_sumexp.as<S>(), target_logit.as<S>(), N);
  });
}

void cross_entropy_shard_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                                  int64_t vocab_start, const Tensor& row_max, const Tensor& row_sumexp,
                                  double dloss) {
  constexpr const char* op = "cross_entropy_shard_backward";
  const int64_t N = logits.ndim == 2 ? logits.shape[0] : -1;
  PRORES_CHECK(logits.ndim == 2 && dlogits.ndim == 2 && dlogits.shape[0] == N &&
                   dlogits.shape[1] == logits.shape[1] && is_vector(targets, N) && is_vector(row_max, N) &&
                   is_vector(row_sumexp, N),
               op, ": expected dlogits, logits (N, Vs), targets, row_max, row_sumexp (N); got dlogits ",
               dlogits.shape_string(), ", logits ", logits.shape_string(), ", targets ", targets.shape_string(),
               ", row_max ", row_max.shape_string(), ", row_sumexp ", row_sumexp.shape_string());
  check_ids_i32(op, "targets", targets);
  check_dtype(op, logits.dtype, {&dlogits});
  check_dtype(op, statistics_dtype(op, logits.dtype), {&row_max, &row_sumexp});
  check_vocab_start(op, vocab_start);
  const int64_t Vs = logits.shape[1];
  if (on_cuda(op, {{"dlogits", dlogits}, {"logits", logits}, {"targets", targets},
                   {"row_max", row_max}, {"row_sumexp", row_sumexp}})) {
#if defined(PRORES_WITH_CUDA)
    return by_storage(op, logits.dtype, [&]<typename T, typename S>(T, S) {
      cuda::cross_entropy_shard_backward(dlogits.as<T>(), logits.as<T>(), targets.as<int32_t>(), row_max.as<S>(),
                                         row_sumexp.as<S>(), N, Vs, vocab_start, dloss);
    });
#endif
  }
  by_storage(op, logits.dtype, [&]<typename T, typename S>(T, S) {
    cpu::cross_entropy_shard_backward(dlogits.as<T>(), logits.as<T>(), targets.as<int32_t>(), row_max.as<S>(),
                                      row_sumexp.as<S>(), N, Vs, vocab_start, dloss);
  });
}

}  // namespace prores::ops
