// Parameter initialisation for every --init-scheme (docs/prores.md). Each parameter draws from its own
// random stream, seeded by the run seed and the parameter's global name, so the result depends neither on
// the parameter order nor on the tensor- or pipeline-parallel layout.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/random.h"
#include "model/model.h"
#include "ops/memory.h"

namespace prores {

namespace {

uint64_t name_hash(const std::string& s) {  // FNV-1a: stable across platforms, unlike std::hash
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// How one parameter is drawn: N(0, std), N(0, std) truncated at ±3 std (redrawn outside), U(-bound, bound), or
// the constant 1 (norm gains).
struct Draw {
  enum Kind { Ones, Normal, TruncatedNormal, Uniform } kind = Normal;
  double scale = 0;  // std for the normals, bound for Uniform
};

// The scheme's draw of every parameter; the normals are truncated under --init-distribution truncated-normal,
// which also draws the embedding at σ instead of the reference code's σ·√d.
Draw draw_for(const ModelConfig& c, const ParamEntry& e) {
  const double sigma = c.init_method_std, L = static_cast<double>(c.num_layers), l = static_cast<double>(e.layer);
  const bool truncated = c.init_distribution == InitDistribution::TruncatedNormal;
  const Draw::Kind normal = truncated ? Draw::TruncatedNormal : Draw::Normal;
  if (e.role == ParamRole::Norm) return {Draw::Ones, 0};
  if (e.role == ParamRole::Embedding)
    return {normal, truncated ? sigma : sigma * std::sqrt(static_cast<double>(c.hidden_size))};
  if (e.role == ParamRole::LmHead) return {normal, sigma};
  const double fan_out = static_cast<double>(e.global_shape[0]), fan_in = static_cast<double>(e.global_shape[1]);
  const bool residual_out = e.role == ParamRole::ResidualOut;
  switch (c.init_scheme) {
    case InitScheme::Normal: return {normal, sigma};
    case InitScheme::Scaled: return {normal, residual_out ? sigma / std::sqrt(2.0 * L) : sigma};
    case InitScheme::DsInit: return {normal, residual_out ? sigma / std::sqrt(2.0 * l) : sigma};
    case InitScheme::DsInitXavier: return {Draw::Uniform, std::sqrt(6.0 / (fan_in + fan_out)) / std::sqrt(l)};
    case InitScheme::DeepNorm: {
      const bool qk = e.role == ParamRole::QueryKey;
      const double gain = qk ? 1.0 : std::pow(8.0 * L, -0.25);
      return {normal, gain * std::sqrt(2.0 / (fan_in + fan_out))};
    }
  }
  return {normal, sigma};
}

double draw_value(const Draw& draw, std::mt19937_64& rng, std::normal_distribution<double>& normal,
                  std::uniform_real_distribution<double>& uniform) {
  if (draw.kind == Draw::Uniform) return uniform(rng);
  double value = normal(rng);
  while (draw.kind == Draw::TruncatedNormal && std::abs(value) > 3 * draw.scale) value = normal(rng);
  return value;
}

// Draws the global tensor of entry e element by element (row-major, one stream) and keeps this rank's
// shard: the values are the same whatever the tensor-parallel split.
template <typename T>
void fill_shard(T* out, const ParamEntry& e, const Draw& draw, uint64_t seed) {
  if (draw.kind == Draw::Ones) {
    std::fill(out, out + e.numel, T(1));
    return;
  }
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, draw.scale);
  std::uniform_real_distribution<double> uniform(-draw.scale, draw.scale);
  const int64_t rows = e.global_shape[0], cols = e.global_shape.size() > 1 ? e.global_shape[1] : 1;
  const int64_t row_begin = e.shard_axis == 0 ? e.shard_offset : 0;
  const int64_t row_end = e.shard_axis == 0 ? row_begin + e.shape[0] : rows;
  const int64_t col_begin = e.shard_axis == 1 ? e.shard_offset : 0;
  const int64_t col_end = e.shard_axis == 1 ? col_begin + e.shape[1] : cols;
  for (int64_t r = 0; r < row_end; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double value = draw_value(draw, rng, normal, uniform);
      if (r >= row_begin && c >= col_begin && c < col_end)
        *out++ = static_cast<T>(value);
    }
}

template <typename T>
void init_shards(const ParamTable& table, const ModelConfig& config, uint64_t seed, const Tensor& params) {
  std::vector<T> host(static_cast<size_t>(table.total_numel()));
  for (const ParamEntry& e : table.entries())
    fill_shard(host.data() + e.offset, e, draw_for(config, e), splitmix64(seed ^ splitmix64(name_hash(e.name))));
  ops::copy_from_host(params, host.data());
}

}  // namespace

void Model::init_weights(uint64_t seed) {
  if (dtype_ == DType::F32) init_shards<float>(table_, config_, seed, params_);
  else init_shards<double>(table_, config_, seed, params_);
  round_matmul_weights();
}

}  // namespace prores
