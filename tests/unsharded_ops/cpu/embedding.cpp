// CPU kernels of the test-only unsharded token embedding (unsharded_ops/cpu/embedding.h): ids checked
// against V, then the vocabulary-shard kernels (ops/cpu/vocab_shard.h) over the whole table.
#include "unsharded_ops/cpu/embedding.h"

#include "ops/cpu/vocab_shard.h"

namespace prores::unsharded::cpu {

// The whole table is the one shard starting at id 0: the vocabulary-parallel kernels do the work.
template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, int64_t N, int64_t C, int64_t V) {
  ops::cpu::check_ids("embedding_forward", "token", tokens, N, V);
  ops::cpu::embedding_shard_forward(out, tokens, wte, N, C, V, 0);
}

template <typename T>
void embedding_backward(T* dwte, const T* dout, const int32_t* tokens, int64_t N, int64_t C, int64_t V) {
  ops::cpu::check_ids("embedding_backward", "token", tokens, N, V);
  ops::cpu::embedding_shard_backward(dwte, dout, tokens, N, C, V, 0);
}

template void embedding_forward<float>(float*, const int32_t*, const float*, int64_t, int64_t, int64_t);
template void embedding_forward<double>(double*, const int32_t*, const double*, int64_t, int64_t, int64_t);
template void embedding_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t, int64_t);
template void embedding_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t, int64_t);

}  // namespace prores::unsharded::cpu
