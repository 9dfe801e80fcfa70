// Vocabulary-shard dispatch: validates shapes, dtypes and devices, then runs the kernel for the dtype
// (f32, f64; the cross-entropy's logits also bf16, with f32 statistics) on the tensors' device
// (ops/dispatch.h).
#include "ops/vocab_shard.h"

#include "core/bf16.h"
#include "ops/cpu/vocab_shard.h"
#include "ops/cuda/vocab_shard.h"
#include "ops/dispatch.h"
#include "ops/element_type.h"

namespace prores::ops {

namespace {

void check_vocab_start(const char* op, int64_t vocab_start) {
  PRORES_CHECK(vocab_start >= 0, op, ": vocab_start must be >= 0, got ", vocab_start);
}

// The dtype of the per-row statistics of logits of dtype: f64 for f64, f32 for f32 and bf16.
DType statistics_dtype(const char* op, DType logits) {
  PRORES_CHECK(logits == DType::F32 || logits == DType::F64 || logits == DType::BF16, op,
               ": logits must be f32, f64 or bf16, got ", dtype_name(logits));
  return logits == DType::F64 ? DType::F64 : DType::F32;
}

}  // namespace

void check_ids(const char* op, const char* what, const Tensor& ids, int64_t V) {
  detail::check_dtype(op, DType::I32, {{"ids", ids}});
  PRORES_CHECK(ids.ndim == 1, op, ": ids must be (N), got ", ids.shape_string());
  detail::dispatch(op, {{"ids", ids}}, [&](auto be) {
    PRORES_KERNEL(be, check_ids)(op, what, ids.as<int32_t>(), ids.shape[0], V);
  });
}

void embedding_shard_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte_shard,
                             int64_t vocab_start) {
  constexpr const char* op = "embedding_shard_forward";
  const int64_t N = out.shape[0], C = wte_shard.shape[1], Vs = wte_shard.shape[0];
  detail::check_shapes(op, {{"out", out, {N, C}, "(N, C)"}, {"tokens", tokens, {N}, "(N)"},
                            {"wte_shard", wte_shard, {Vs, C}, "(Vs, C)"}});
  detail::check_dtype(op, DType::I32, {{"tokens", tokens}});
  detail::check_same_dtype(op, {{"out", out}, {"wte_shard", wte_shard}});
  check_vocab_start(op, vocab_start);
  detail::dispatch(op, {{"out", out}, {"tokens", tokens}, {"wte_shard", wte_shard}}, [&](auto be) {
    detail::with_float_type(op, out.dtype, [&]<typename T>(T) {
      PRORES_KERNEL(be, embedding_shard_forward)(out.as<T>(), tokens.as<int32_t>(), wte_shard.as<T>(), N, C, Vs,
                                                 vocab_start);
    });
  });
}

void embedding_shard_backward(const Tensor& dwte_shard, const Tensor& dout, const Tensor& tokens,
                              int64_t vocab_start) {
  constexpr const char* op = "embedding_shard_backward";
  const int64_t N = dout.shape[0], C = dwte_shard.shape[1], Vs = dwte_shard.shape[0];
  detail::check_shapes(op, {{"dwte_shard", dwte_shard, {Vs, C}, "(Vs, C)"}, {"dout", dout, {N, C}, "(N, C)"},
                            {"tokens", tokens, {N}, "(N)"}});
  detail::check_dtype(op, DType::I32, {{"tokens", tokens}});
  detail::check_same_dtype(op, {{"dwte_shard", dwte_shard}, {"dout", dout}});
  check_vocab_start(op, vocab_start);
  detail::dispatch(op, {{"dwte_shard", dwte_shard}, {"dout", dout}, {"tokens", tokens}}, [&](auto be) {
    detail::with_float_type(op, dout.dtype, [&]<typename T>(T) {
      PRORES_KERNEL(be, embedding_shard_backward)(dwte_shard.as<T>(), dout.as<T>(), tokens.as<int32_t>(), N, C, Vs,
                                                  vocab_start);
    });
  });
}

void cross_entropy_shard_stats(const Tensor& row_max, const Tensor& row_sumexp, const Tensor& target_logit,
                               const Tensor& logits, const Tensor& targets, int64_t vocab_start) {
  constexpr const char* op = "cross_entropy_shard_stats";
  const int64_t N = logits.shape[0], Vs = logits.shape[1];
  detail::check_shapes(op, {{"row_max", row_max, {N}, "(N)"}, {"row_sumexp", row_sumexp, {N}, "(N)"},
                            {"target_logit", target_logit, {N}, "(N)"}, {"logits", logits, {N, Vs}, "(N, Vs)"},
                            {"targets", targets, {N}, "(N)"}});
  PRORES_CHECK(Vs >= 1, op, ": logits ", logits.shape_string(), " must have Vs >= 1 columns");
  detail::check_dtype(op, DType::I32, {{"targets", targets}});
  detail::check_dtype(op, statistics_dtype(op, logits.dtype),
                      {{"row_max", row_max}, {"row_sumexp", row_sumexp}, {"target_logit", target_logit}});
  check_vocab_start(op, vocab_start);
  detail::dispatch(op, {{"row_max", row_max}, {"row_sumexp", row_sumexp}, {"target_logit", target_logit},
                        {"logits", logits}, {"targets", targets}}, [&](auto be) {
    detail::with_element_type(op, logits.dtype, [&]<typename T>(T) {
      using S = compute_type<T>;
      PRORES_KERNEL(be, cross_entropy_shard_stats)(row_max.as<S>(), row_sumexp.as<S>(), target_logit.as<S>(),
                                                   logits.as<T>(), targets.as<int32_t>(), N, Vs, vocab_start);
    });
  });
}

void cross_entropy_shard_rebase(const Tensor& row_sumexp, const Tensor& shard_max, const Tensor& row_max) {
  constexpr const char* op = "cross_entropy_shard_rebase";
  const int64_t N = row_sumexp.shape[0];
  detail::check_shapes(op, {{"row_sumexp", row_sumexp, {N}, "(N)"}, {"shard_max", shard_max, {N}, "(N)"},
                            {"row_max", row_max, {N}, "(N)"}});
  const std::initializer_list<detail::NamedTensor> tensors = {
      {"row_sumexp", row_sumexp}, {"shard_max", shard_max}, {"row_max", row_max}};
  detail::check_same_dtype(op, tensors);
  detail::dispatch(op, tensors, [&](auto be) {
    detail::with_float_type(op, row_sumexp.dtype, [&]<typename S>(S) {
      PRORES_KERNEL(be, cross_entropy_shard_rebase)(row_sumexp.as<S>(), shard_max.as<S>(), row_max.as<S>(), N);
    });
  });
}

void cross_entropy_shard_loss(const Tensor& losses, const Tensor& row_max, const Tensor& row_sumexp,
                              const Tensor& target_logit) {
  constexpr const char* op = "cross_entropy_shard_loss";
  const int64_t N = losses.shape[0];
  detail::check_shapes(op, {{"losses", losses, {N}, "(N)"}, {"row_max", row_max, {N}, "(N)"},
                            {"row_sumexp", row_sumexp, {N}, "(N)"}, {"target_logit", target_logit, {N}, "(N)"}});
  const std::initializer_list<detail::NamedTensor> tensors = {
      {"losses", losses}, {"row_max", row_max}, {"row_sumexp", row_sumexp}, {"target_logit", target_logit}};
  detail::check_same_dtype(op, tensors);
  detail::dispatch(op, tensors, [&](auto be) {
    detail::with_float_type(op, losses.dtype, [&]<typename S>(S) {
      PRORES_KERNEL(be, cross_entropy_shard_loss)(losses.as<S>(), row_max.as<S>(), row_sumexp.as<S>(),
                                                  target_logit.as<S>(), N);
    });
  });
}

void cross_entropy_shard_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                                  int64_t vocab_start, const Tensor& row_max, const Tensor& row_sumexp,
                                  double dloss) {
  constexpr const char* op = "cross_entropy_shard_backward";
  const int64_t N = logits.shape[0], Vs = logits.shape[1];
  detail::check_shapes(op, {{"dlogits", dlogits, {N, Vs}, "(N, Vs)"}, {"logits", logits, {N, Vs}, "(N, Vs)"},
                            {"targets", targets, {N}, "(N)"}, {"row_max", row_max, {N}, "(N)"},
                            {"row_sumexp", row_sumexp, {N}, "(N)"}});
  detail::check_dtype(op, DType::I32, {{"targets", targets}});
  detail::check_same_dtype(op, {{"dlogits", dlogits}, {"logits", logits}});
  detail::check_dtype(op, statistics_dtype(op, logits.dtype), {{"row_max", row_max}, {"row_sumexp", row_sumexp}});
  check_vocab_start(op, vocab_start);
  detail::dispatch(op, {{"dlogits", dlogits}, {"logits", logits}, {"targets", targets}, {"row_max", row_max},
                        {"row_sumexp", row_sumexp}}, [&](auto be) {
    detail::with_element_type(op, logits.dtype, [&]<typename T>(T) {
      using S = compute_type<T>;
      PRORES_KERNEL(be, cross_entropy_shard_backward)(dlogits.as<T>(), logits.as<T>(), targets.as<int32_t>(),
                                                      row_max.as<S>(), row_sumexp.as<S>(), N, Vs, vocab_start, dloss);
    });
  });
}

}  // namespace prores::ops
