// CUDA kernels of the test-only unsharded token embedding (unsharded_ops/cuda/embedding.h): ids checked
// against V, then the vocabulary-shard kernels over the whole table (the one shard starting at id 0), as in
// unsharded_ops/cpu/embedding.cpp.
#include "unsharded_ops/cuda/embedding.h"

#include "ops/cuda/vocab_shard.h"

namespace prores::unsharded::cuda {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, int64_t N, int64_t C, int64_t V) {
  ops::cuda::check_ids("embedding_forward", "token", tokens, N, V);
  ops::cuda::embedding_shard_forward(out, tokens, wte, N, C, V, 0);
}

template <typename T>
void embedding_backward(T* dwte, const T* dout, const int32_t* tokens, int64_t N, int64_t C, int64_t V) {
  ops::cuda::check_ids("embedding_backward", "token", tokens, N, V);
  ops::cuda::embedding_shard_backward(dwte, dout, tokens, N, C, V, 0);
}

template void embedding_forward<float>(float*, const int32_t*, const float*, int64_t, int64_t, int64_t);
template void embedding_forward<double>(double*, const int32_t*, const double*, int64_t, int64_t, int64_t);
template void embedding_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t, int64_t);
template void embedding_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t, int64_t);

}  // namespace prores::unsharded::cuda
