// CUDA vocabulary-shard kernels (ops/cuda/vocab_shard.h): the id range check, the embedding gather and
// its deterministic scatter-add (a stable radix sort of positions by shard row, then one block per row),
// and the row-wise passes of the sharded cross-entropy (statistics in one online pass, gradient; one block
// per row each).
#include "ops/cuda/vocab_shard.h"

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "ops/cuda/kernel_util.cuh"

namespace prores::ops::cuda {

namespace {

using detail::block_allreduce;
using detail::exp_of;
using detail::kThreads;
using detail::load_element;
using detail::minus_infinity;
using detail::Plus;
using detail::shard_row;
using detail::store_element;

// *first (=) min(*first, every position i of ids (n) whose id is outside [0, V)).
__global__ void first_bad_id_kernel(unsigned long long* first, const int32_t* ids, int64_t n, int64_t V) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (ids[i] < 0 || ids[i] >= V) atomicMin(first, static_cast<unsigned long long>(i));
  }
}

template <typename T>
__global__ void embedding_shard_forward_kernel(T* out, const int32_t* tokens, const T* wte_shard, int64_t N,
                                               int64_t C, int64_t Vs, int64_t vocab_start) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const int64_t row = shard_row(tokens[n], Vs, vocab_start);
    T* y = out + n * C;
    if (row >= 0) {
      const T* src = wte_shard + row * C;
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) y[c] = src[c];
    } else {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) y[c] = T(0);
    }
  }
}

// keys (N) (=) the shard row of tokens[n], or Vs for an id outside the shard; positions (N) (=) n.
__global__ void shard_keys_kernel(uint32_t* keys, int64_t* positions, const int32_t* tokens, int64_t N,
                                  int64_t Vs, int64_t vocab_start) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; n < N; n += stride) {
    const int64_t row = shard_row(tokens[n], Vs, vocab_start);
    keys[n] = static_cast<uint32_t>(row >= 0 ? row : Vs);
    positions[n] = n;
  }
}

// For each run of equal keys in the sorted keys (N) other than `outside`, the block at the run's first
// index adds the dout (N, C) rows at the run's positions, in order, to dwte_shard[key] (C).
template <typename T>
__global__ void scatter_runs_kernel(T* dwte_shard, const T* dout, const uint32_t* keys,
                                    const int64_t* positions, int64_t N, int64_t C, uint32_t outside) {
  for (int64_t i = blockIdx.x; i < N; i += gridDim.x) {
    const uint32_t key = keys[i];
    if (key == outside || (i > 0 && keys[i - 1] == key)) continue;
    int64_t end = i + 1;
    while (end < N && keys[end] == key) ++end;
    T* dst = dwte_shard + static_cast<int64_t>(key) * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      T acc = dst[c];
      for (int64_t j = i; j < end; ++j) acc += dout[positions[j] * C + c];
      dst[c] = acc;
    }
  }
}

// Online statistics of a row: each thread keeps its max m and the sum s of exp(x - m) over its columns,
// rescaling s (in double) whenever m grows; the block then takes the row max and rescales every thread's s
// to it before the fixed-order sum.
template <typename T>
__global__ void cross_entropy_shard_stats_kernel(compute_type<T>* row_max, compute_type<T>* row_sumexp,
                                                 compute_type<T>* target_logit, const T* logits,
                                                 const int32_t* targets, int64_t N, int64_t Vs,
                                                 int64_t vocab_start) {
  using S = compute_type<T>;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = logits + n * Vs;
    S m = minus_infinity<S>();
    double s = 0;
    for (int64_t v = threadIdx.x; v < Vs; v += blockDim.x) {
      const S xv = load_element(x[v]);
      if (xv > m) {
        s = s * exp(static_cast<double>(m) - static_cast<double>(xv)) + 1.0;
        m = xv;
      } else if (xv != minus_infinity<S>()) {  // a -inf logit adds 0 (and would give exp(NaN) while m is -inf)
        s += static_cast<double>(exp_of(xv - m));
      }
    }
    const S max = block_allreduce(m, ::cuda::maximum<>{});
    // A thread without columns has m = -inf and s = 0, and adds 0.
    const double rebased = s == 0 ? 0.0 : s * exp(static_cast<double>(m) - static_cast<double>(max));
    const double sum = block_allreduce(rebased, Plus{});
    if (threadIdx.x == 0) {
      row_max[n] = max;
      row_sumexp[n] = static_cast<S>(sum);
      const int64_t t = shard_row(targets[n], Vs, vocab_start);
      target_logit[n] = t >= 0 ? load_element(x[t]) : S(0);
    }
  }
}

template <typename S>
__global__ void cross_entropy_shard_rebase_kernel(S* row_sumexp, const S* shard_max, const S* row_max,
                                                  int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; n < N; n += stride) {
    const double scale = exp(static_cast<double>(shard_max[n]) - static_cast<double>(row_max[n]));
    row_sumexp[n] = static_cast<S>(static_cast<double>(row_sumexp[n]) * scale);
  }
}

template <typename S>
__global__ void cross_entropy_shard_loss_kernel(S* losses, const S* row_max, const S* row_sumexp,
                                                const S* target_logit, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; n < N; n += stride) {
    const double lse = log(static_cast<double>(row_sumexp[n])) + static_cast<double>(row_max[n]);
    losses[n] = static_cast<S>(lse - static_cast<double>(target_logit[n]));
  }
}

// Each element is read and written by the same thread, so dlogits may alias logits.
template <typename T>
__global__ void cross_entropy_shard_backward_kernel(T* dlogits, const T* logits, const int32_t* targets,
                                                    const compute_type<T>* row_max,
                                                    const compute_type<T>* row_sumexp, int64_t N, int64_t Vs,
                                                    int64_t vocab_start, double dloss) {
  using S = compute_type<T>;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = logits + n * Vs;
    T* dx = dlogits + n * Vs;
    const S m = row_max[n];
    const S scale = static_cast<S>(dloss / static_cast<double>(row_sumexp[n]));
    const int64_t t = shard_row(targets[n], Vs, vocab_start);
    for (int64_t v = threadIdx.x; v < Vs; v += blockDim.x) {
      S d = exp_of(load_element(x[v]) - m) * scale;
      if (v == t) d -= static_cast<S>(dloss);
      dx[v] = store_element<T>(d);
    }
  }
}

// Bits needed to represent every key in [0, max_key].
int key_bits(int64_t max_key) {
  int bits = 1;
  while (bits < 32 && (int64_t{1} << bits) <= max_key) ++bits;
  return bits;
}

}  // namespace

void check_ids(const char* op, const char* what, const int32_t* ids, int64_t n_ids, int64_t V) {
  if (n_ids == 0) return;
  detail::Scratch<unsigned long long> first(1);
  const auto none = static_cast<unsigned long long>(n_ids);
  PRORES_CUDA_CHECK(cudaMemcpyAsync(first.data(), &none, sizeof none, cudaMemcpyHostToDevice, 0));
  first_bad_id_kernel<<<detail::grid_for(n_ids), kThreads>>>(first.data(), ids, n_ids, V);
  detail::check_launch();
  unsigned long long position = none;
  PRORES_CUDA_CHECK(cudaMemcpy(&position, first.data(), sizeof position, cudaMemcpyDeviceToHost));
  if (position == none) return;
  int32_t id = 0;
  PRORES_CUDA_CHECK(cudaMemcpy(&id, ids + position, sizeof id, cudaMemcpyDeviceToHost));
  PRORES_FAIL(op, ": ", what, " id ", id, " at position ", position, " is outside [0, V) with V = ", V);
}

template <typename T>
void embedding_shard_forward(T* out, const int32_t* tokens, const T* wte_shard, int64_t N, int64_t C,
                             int64_t Vs, int64_t vocab_start) {
  if (N == 0 || C == 0) return;
  embedding_shard_forward_kernel<<<detail::grid_for(N, 1), kThreads>>>(out, tokens, wte_shard, N, C, Vs,
                                                                       vocab_start);
  detail::check_launch();
}

template <typename T>
void embedding_shard_backward(T* dwte_shard, const T* dout, const int32_t* tokens, int64_t N, int64_t C,
                              int64_t Vs, int64_t vocab_start) {
  if (N == 0 || C == 0 || Vs == 0) return;
  PRORES_CHECK(Vs < int64_t{std::numeric_limits<uint32_t>::max()}, "embedding_shard_backward: the shard has ",
               Vs, " rows, more than the 32-bit sort keys hold");
  detail::Scratch<uint32_t> keys(static_cast<size_t>(N)), sorted_keys(static_cast<size_t>(N));
  detail::Scratch<int64_t> positions(static_cast<size_t>(N)), sorted_positions(static_cast<size_t>(N));
  shard_keys_kernel<<<detail::grid_for(N), kThreads>>>(keys.data(), positions.data(), tokens, N, Vs,
                                                       vocab_start);
  detail::check_launch();
  const int end_bit = key_bits(Vs);
  size_t temp_bytes = 0;
  PRORES_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys.data(), sorted_keys.data(),
                                                    positions.data(), sorted_positions.data(), N, 0, end_bit,
                                                    cudaStream_t{}));
  // At least one byte: a null temp pointer would make the second call another size query.
  detail::Scratch<unsigned char> temp(std::max<size_t>(temp_bytes, 1));
  PRORES_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, keys.data(), sorted_keys.data(),
                                                    positions.data(), sorted_positions.data(), N, 0, end_bit,
                                                    cudaStream_t{}));
  scatter_runs_kernel<<<detail::grid_for(N, 1), kThreads>>>(
      dwte_shard, dout, sorted_keys.data(), sorted_positions.data(), N, C, static_cast<uint32_t>(Vs));
  detail::check_launch();
}

template <typename T>
void cross_entropy_shard_stats(compute_type<T>* row_max, compute_type<T>* row_sumexp,
                               compute_type<T>* target_logit, const T* logits, const int32_t* targets, int64_t N,
                               int64_t Vs, int64_t vocab_start) {
  if (N == 0) return;
  cross_entropy_shard_stats_kernel<<<detail::grid_for(N, 1), kThreads>>>(row_max, row_sumexp, target_logit,
                                                                         logits, targets, N, Vs, vocab_start);
  detail::check_launch();
}

template <typename S>
void cross_entropy_shard_rebase(S* row_sumexp, const S* shard_max, const S* row_max, int64_t N) {
  if (N == 0) return;
  cross_entropy_shard_rebase_kernel<<<detail::grid_for(N), kThreads>>>(row_sumexp, shard_max, row_max, N);
  detail::check_launch();
}

template <typename S>
void cross_entropy_shard_loss(S* losses, const S* row_max, const S* row_sumexp, const S* target_logit,
                              int64_t N) {
  if (N == 0) return;
  cross_entropy_shard_loss_kernel<<<detail::grid_for(N), kThreads>>>(losses, row_max, row_sumexp,
                                                                     target_logit, N);
  detail::check_launch();
}

template <typename T>
void cross_entropy_shard_backward(T* dlogits, const T* logits, const int32_t* targets,
                                  const compute_type<T>* row_max, const compute_type<T>* row_sumexp, int64_t N,
                                  int64_t Vs, int64_t vocab_start, double dloss) {
  if (N == 0 || Vs == 0) return;
  cross_entropy_shard_backward_kernel<<<detail::grid_for(N, 1), kThreads>>>(
      dlogits, logits, targets, row_max, row_sumexp, N, Vs, vocab_start, dloss);
  detail::check_launch();
}

#define PRORES_INSTANTIATE_SAME_TYPE(T)                                                                     \
  template void embedding_shard_forward<T>(T*, const int32_t*, const T*, int64_t, int64_t, int64_t,         \
                                           int64_t);                                                        \
  template void embedding_shard_backward<T>(T*, const T*, const int32_t*, int64_t, int64_t, int64_t,        \
                                            int64_t);                                                       \
  template void cross_entropy_shard_rebase<T>(T*, const T*, const T*, int64_t);                             \
  template void cross_entropy_shard_loss<T>(T*, const T*, const T*, const T*, int64_t);
#define PRORES_INSTANTIATE_LOGITS(T)                                                                        \
  template void cross_entropy_shard_stats<T>(compute_type<T>*, compute_type<T>*, compute_type<T>*, const T*, \
                                             const int32_t*, int64_t, int64_t, int64_t);                     \
  template void cross_entropy_shard_backward<T>(T*, const T*, const int32_t*, const compute_type<T>*,       \
                                                const compute_type<T>*, int64_t, int64_t, int64_t, double);
PRORES_INSTANTIATE_SAME_TYPE(float)
PRORES_INSTANTIATE_SAME_TYPE(double)
PRORES_INSTANTIATE_LOGITS(float)
PRORES_INSTANTIATE_LOGITS(double)
PRORES_INSTANTIATE_LOGITS(uint16_t)
#undef PRORES_INSTANTIATE_SAME_TYPE
#undef PRORES_INSTANTIATE_LOGITS

}  // namespace prores::ops::cuda
