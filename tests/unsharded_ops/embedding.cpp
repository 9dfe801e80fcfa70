// The test-only unsharded embedding (unsharded_ops/embedding.h): validates shapes, dtypes and devices with
// the op dispatchers' checks (ops/dispatch.h) and the ids against V (ops::check_ids, before anything is
// written), then runs the vocabulary-shard op over the whole table, the one shard starting at id 0.
#include "unsharded_ops/embedding.h"

#include "ops/dispatch.h"
#include "ops/vocab_shard.h"

namespace prores::unsharded {

namespace detail = ops::detail;

void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte) {
  constexpr const char* op = "embedding_forward";
  const int64_t N = tokens.shape[0], C = wte.shape[1], V = wte.shape[0];
  detail::check_shapes(op, {{"out", out, {N, C}, "(N, C)"}, {"tokens", tokens, {N}, "(N)"},
                            {"wte", wte, {V, C}, "(V, C)"}});
  detail::check_dtype(op, DType::I32, {{"tokens", tokens}});
  detail::check_same_dtype(op, {{"out", out}, {"wte", wte}});
  detail::common_device(op, {{"out", out}, {"tokens", tokens}, {"wte", wte}});
  ops::check_ids(op, "token", tokens, V);
  ops::embedding_shard_forward(out, tokens, wte, 0);
}

void embedding_backward(const Tensor& dwte, const Tensor& dout, const Tensor& tokens) {
  constexpr const char* op = "embedding_backward";
  const int64_t N = tokens.shape[0], C = dwte.shape[1], V = dwte.shape[0];
  detail::check_shapes(op, {{"dwte", dwte, {V, C}, "(V, C)"}, {"dout", dout, {N, C}, "(N, C)"},
                            {"tokens", tokens, {N}, "(N)"}});
  detail::check_dtype(op, DType::I32, {{"tokens", tokens}});
  detail::check_same_dtype(op, {{"dwte", dwte}, {"dout", dout}});
  detail::common_device(op, {{"dwte", dwte}, {"dout", dout}, {"tokens", tokens}});
  ops::check_ids(op, "token", tokens, V);
  ops::embedding_shard_backward(dwte, dout, tokens, 0);
}

}  // namespace prores::unsharded
