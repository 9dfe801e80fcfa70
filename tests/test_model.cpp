// Whole-model tests: double-precision finite-difference gradients of every parameter in each norm
// placement (α strictly inside (0, 1), LayerNorm Scaling on and off), the α = 0 skip being bitwise
// exact, init schemes drawing the documented spreads, activation recomputation being bitwise exact, and the
// residual stream's RMS per block.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/model.h"
#include "test_util.h"

namespace prores {
namespace {

ModelConfig tiny_config(NormPlacement placement, bool lns) {
  ModelConfig c;
  c.num_layers = 3;
  c.hidden_size = 8;
  c.ffn_hidden_size = 12;
  c.num_attention_heads = 4;
  c.num_query_groups = 2;
  c.seq_length = 5;
  c.vocab_size = 11;
  c.norm_placement = placement;
  c.layernorm_scaling = lns;
  c.init_method_std = 0.3;
  return c;
}

void random_tokens(std::vector<int32_t>& v, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& t : v) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
}

// Norm gains drawn around 1 so that their gradients are exercised away from the trivial point.
template <typename T>
void randomize_params(Model& m, uint64_t seed) {
  m.init_weights(seed);
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<double> dist(0.0, 0.1);
  for (const ParamEntry& e : m.table().entries()) {
    if (e.shape.size() != 1) continue;
    T* p = m.param(e.name).as<T>();
    for (int64_t i = 0; i < e.numel; ++i) p[i] += static_cast<T>(dist(rng));
  }
}

struct GradCase {
  NormPlacement placement;
  bool lns;
};

class ModelGradient : public ::testing::TestWithParam<GradCase> {};

TEST_P(ModelGradient, MatchesFiniteDifferences) {
  const ModelConfig c = tiny_config(GetParam().placement, GetParam().lns);
  const int64_t B = 2, N = B * c.seq_length;
  Model m(c, B, DType::F64);
  randomize_params<double>(m, 7);
  const std::vector<double> alpha = {0.25, 0.6, 0.85};
  m.set_residual_scales(alpha);
  std::vector<int32_t> tokens(N), targets(N);
  random_tokens(tokens, c.vocab_size, 1);
  random_tokens(targets, c.vocab_size, 2);

  m.zero_grads();
  m.forward(0, tokens.data(), targets.data());
  m.backward(0, 1.0);
  const int64_t P = m.table().total_numel();
  double* params = m.params().as<double>();
  const double* grads = m.grads().as<double>();
  std::vector<double> x(params, params + P), analytic(grads, grads + P);
  auto loss = [&] {
    std::copy(x.begin(), x.end(), params);
    return m.forward(0, tokens.data(), targets.data());
  };
  test::expect_gradient_matches(loss, x, analytic, norm_placement_name(c.norm_placement), 1e-5, 1e-6, 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Placements, ModelGradient,
                         ::testing::Values(GradCase{NormPlacement::Pre, false}, GradCase{NormPlacement::Post, false},
                                           GradCase{NormPlacement::Sandwich, false},
                                           GradCase{NormPlacement::DeepNorm, false},
                                           GradCase{NormPlacement::Pre, true}, GradCase{NormPlacement::Post, true},
                                           GradCase{NormPlacement::Sandwich, true},
                                           GradCase{NormPlacement::DeepNorm, true}));

class ZeroAlphaSkip : public ::testing::TestWithParam<NormPlacement> {};

TEST_P(ZeroAlphaSkip, IsBitwiseTheSameAsComputing) {
  const ModelConfig c = tiny_config(GetParam(), false);
  const int64_t B = 3, N = B * c.seq_length;
  std::vector<int32_t> tokens(N), targets(N);
  random_tokens(tokens, c.vocab_size, 3);
  random_tokens(targets, c.vocab_size, 4);
  const std::vector<double> alpha = {0.5, 0.0, 0.0};
  Model skipping(c, B), computing(c, B);
  computing.set_skip_zero_residual_scale(false);
  std::vector<double> losses;
  for (Model* m : {&skipping, &computing}) {
    randomize_params<float>(*m, 11);
    m->set_residual_scales(alpha);
    m->zero_grads();
    losses.push_back(m->forward(0, tokens.data(), targets.data()));
    m->backward(0, 1.0);
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(0, std::memcmp(skipping.grads().data, computing.grads().data, skipping.grads().nbytes()));
  // The zero-α blocks' branch weights received no gradient.
  for (const ParamEntry& e : skipping.table().entries()) {
    if (e.layer < 2 || e.shape.size() != 2) continue;
    const float* g = skipping.grad(e.name).as<float>();
    for (int64_t i = 0; i < e.numel; ++i) ASSERT_EQ(g[i], 0.0f) << e.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Placements, ZeroAlphaSkip,
                         ::testing::Values(NormPlacement::Pre, NormPlacement::Post, NormPlacement::Sandwich,
                                           NormPlacement::DeepNorm));

double sample_std(const Tensor& t) {
  const float* p = t.as<float>();
  double s = 0, s2 = 0;
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) { s += p[i]; s2 += double(p[i]) * p[i]; }
  const double mean = s / n;
  return std::sqrt(s2 / n - mean * mean);
}

TEST(ModelInit, SchemesDrawTheDocumentedSpread) {
  ModelConfig c;
  c.num_layers = 8;
  c.hidden_size = 128;
  c.ffn_hidden_size = 256;
  c.num_attention_heads = 4;
  c.vocab_size = 300;
  const double sigma = c.init_method_std, L = 8, C = 128, F = 256;
  auto std_of = [&](InitScheme scheme, const std::string& name) {
    c.init_scheme = scheme;
    Model m(c, 1);
    m.init_weights(5);
    return sample_std(m.param(name));
  };
  const std::string o = "model.layers.3.self_attn.o_proj.weight", q = "model.layers.3.self_attn.q_proj.weight";
  const std::string up = "model.layers.3.mlp.up_proj.weight";
  EXPECT_NEAR(std_of(InitScheme::Normal, o), sigma, 0.03 * sigma);
  EXPECT_NEAR(std_of(InitScheme::Normal, "model.embed_tokens.weight"), sigma * std::sqrt(C), 0.03 * sigma * std::sqrt(C));
  EXPECT_NEAR(std_of(InitScheme::Scaled, o), sigma / std::sqrt(2 * L), 0.03 * sigma / std::sqrt(2 * L));
  EXPECT_NEAR(std_of(InitScheme::Scaled, q), sigma, 0.03 * sigma);
  // DS-Init as open_lm (the paper's): block l = 4's output projections at σ/√(2l), the rest at σ.
  EXPECT_NEAR(std_of(InitScheme::DsInit, o), sigma / std::sqrt(8.0), 0.03 * sigma / std::sqrt(8.0));
  EXPECT_NEAR(std_of(InitScheme::DsInit, "model.layers.3.mlp.down_proj.weight"), sigma / std::sqrt(8.0),
              0.03 * sigma / std::sqrt(8.0));
  EXPECT_NEAR(std_of(InitScheme::DsInit, up), sigma, 0.03 * sigma);
  const double ds = std::sqrt(6.0 / (C + F)) / std::sqrt(4.0) / std::sqrt(3.0);  // uniform std = bound / √3
  EXPECT_NEAR(std_of(InitScheme::DsInitXavier, up), ds, 0.03 * ds);
  const double dn = std::pow(8 * L, -0.25) * std::sqrt(2.0 / (C + F));
  EXPECT_NEAR(std_of(InitScheme::DeepNorm, up), dn, 0.03 * dn);
  EXPECT_NEAR(std_of(InitScheme::DeepNorm, q), std::sqrt(2.0 / (C + C)), 0.03 * std::sqrt(2.0 / (C + C)));
  c.init_scheme = InitScheme::Normal;
  Model a(c, 1), b(c, 1);
  a.init_weights(9);
  b.init_weights(9);
  EXPECT_EQ(0, std::memcmp(a.params().data, b.params().data, a.params().nbytes()));
}

double max_abs(const Tensor& t) {
  const float* x = t.as<float>();
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::abs(static_cast<double>(x[i])));
  return m;
}

// --init-distribution truncated-normal (the paper's): every normal draw cut at ±3 std, whose spread is then
// std·√(1 − 2·3·φ(3)/(2Φ(3) − 1)) = 0.98658·std, and the embedding at σ, not σ·√d; plain normal draws pass 3 std.
TEST(ModelInit, TruncatedNormalCutsAtThreeStd) {
  ModelConfig c;
  c.num_layers = 2;
  c.hidden_size = 256;
  c.ffn_hidden_size = 512;
  c.num_attention_heads = 4;
  c.vocab_size = 1000;
  const double sigma = c.init_method_std, spread = 0.98658 * sigma;
  const std::string up = "model.layers.1.mlp.up_proj.weight";
  Model plain(c, 1);
  plain.init_weights(4);
  EXPECT_GT(max_abs(plain.param(up)), 3 * sigma);
  c.init_distribution = InitDistribution::TruncatedNormal;
  Model truncated(c, 1);
  truncated.init_weights(4);
  for (const char* name : {"model.layers.1.mlp.up_proj.weight", "model.layers.0.self_attn.o_proj.weight",
                           "model.embed_tokens.weight", "lm_head.weight"}) {
    EXPECT_LE(max_abs(truncated.param(name)), 3 * sigma) << name;
    EXPECT_NEAR(sample_std(truncated.param(name)), spread, 0.02 * spread) << name;
  }
  EXPECT_GT(max_abs(truncated.param(up)), 2.9 * sigma) << "the cut is at 3 std, not below";
  c.init_scheme = InitScheme::Scaled;  // depth-aware schemes keep their std, truncated at 3 of it
  Model scaled(c, 1);
  scaled.init_weights(4);
  const double scaled_std = sigma / std::sqrt(4.0);
  EXPECT_LE(max_abs(scaled.param("model.layers.0.mlp.down_proj.weight")), 3 * scaled_std);
  EXPECT_NEAR(sample_std(scaled.param("model.layers.0.mlp.down_proj.weight")), 0.98658 * scaled_std,
              0.02 * scaled_std);
}

// Flash attention is a CUDA kernel: asked for on the host (or with heads it does not take) the model
// refuses at construction with one line naming the head size and the device.
TEST(ModelExecution, FlashAttentionOnTheHostIsRefused) {
  ModelConfig c;
  c.num_layers = 1;
  c.hidden_size = 128;
  c.ffn_hidden_size = 64;
  c.num_attention_heads = 2;
  test::expect_error([&] { Model m(c, 1, DType::F32, {}, nullptr, 1, {Device::CPU, AttentionKernel::Flash}); },
                     {"flash attention needs --device cuda", "head size 64 on the cpu"});
}

// cuDNN's attention runs on CUDA with bf16 q, k, v only: on the host, or in f32, the model refuses it.
TEST(ModelExecution, CudnnAttentionOnTheHostOrInF32IsRefused) {
  ModelConfig c;
  c.num_layers = 1;
  c.hidden_size = 128;
  c.ffn_hidden_size = 64;
  c.num_attention_heads = 2;
  for (ops::MatmulPrecision precision : {ops::MatmulPrecision::Fp32, ops::MatmulPrecision::Bf16})
    test::expect_error(
        [&] { Model m(c, 1, DType::F32, {}, nullptr, 1, {Device::CPU, AttentionKernel::Cudnn, precision}); },
        {"cuDNN attention needs --device cuda and --bf16"});
}

// Full activation recomputation of every block, or of the stage's first two, gives bitwise the losses and
// gradients of keeping every activation: in each placement, in f32 and with bf16 matmuls, with a skipped
// (α = 0) block, two micro-batches in flight (1F1B's order: a forward between a forward and its backward),
// and the model's memory shrinks.
TEST(ModelExecution, RecomputedBlocksGiveBitwiseTheSameGradients) {
  for (NormPlacement placement : {NormPlacement::Pre, NormPlacement::Sandwich, NormPlacement::DeepNorm}) {
    ModelConfig c = tiny_config(placement, false);
    c.num_layers = 4;
    const int64_t B = 2, N = B * c.seq_length;
    std::vector<int32_t> tokens(N), targets(N), tokens2(N), targets2(N);
    random_tokens(tokens, c.vocab_size, 71);
    random_tokens(targets, c.vocab_size, 72);
    random_tokens(tokens2, c.vocab_size, 73);
    random_tokens(targets2, c.vocab_size, 74);
    for (ops::MatmulPrecision precision : {ops::MatmulPrecision::Fp32, ops::MatmulPrecision::Bf16}) {
      std::vector<float> reference_grads;
      double reference_loss = 0;
      size_t reference_bytes = 0;
      for (int64_t recompute : {0, 2, 4}) {
        SCOPED_TRACE(::testing::Message() << "placement " << static_cast<int>(placement) << " bf16 "
                                          << (precision == ops::MatmulPrecision::Bf16) << " recompute " << recompute);
        Model m(c, B, DType::F32, {}, nullptr, 2, {Device::CPU, AttentionKernel::Unfused, precision, true, recompute});
        randomize_params<float>(m, 75);
        m.round_matmul_weights();
        m.set_residual_scales(std::vector<double>{1.0, 0.0, 0.5, 0.25});
        m.zero_grads();
        const double loss = m.forward(0, tokens.data(), targets.data());
        m.forward(1, tokens2.data(), targets2.data());
        m.backward(0, 1.0);
        m.backward(1, 0.5);
        const float* g = m.grads().as<float>();
        std::vector<float> grads(g, g + m.grads().numel());
        if (recompute == 0) {
          reference_grads = grads;
          reference_loss = loss;
          reference_bytes = m.allocated_bytes();
          continue;
        }
        EXPECT_EQ(loss, reference_loss);
        EXPECT_EQ(grads, reference_grads);
        EXPECT_LT(m.allocated_bytes(), reference_bytes);
      }
    }
  }
}

// block_output_sum_squares is Σ h² of the residual stream after each block: the last is the stage output's, and
// with every block skipped (α = 0, Pre-LN: h = x) each is the embedding's.
TEST(ModelExecution, BlockOutputSumSquaresMeasuresTheResidualStream) {
  const ModelConfig c = tiny_config(NormPlacement::Pre, false);
  const int64_t B = 2, N = B * c.seq_length;
  std::vector<int32_t> tokens(N), targets(N);
  random_tokens(tokens, c.vocab_size, 81);
  random_tokens(targets, c.vocab_size, 82);
  Model m(c, B);
  randomize_params<float>(m, 83);
  const auto sum_squares_of = [](const Tensor& t) {
    double s = 0;
    for (int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(t.as<float>()[i]) * t.as<float>()[i];
    return s;
  };
  m.set_residual_scales(std::vector<double>{1.0, 0.5, 0.25});
  m.forward(0, tokens.data(), targets.data());
  std::vector<double> sums = m.block_output_sum_squares(0, 0);
  ASSERT_EQ(sums.size(), 3u);
  EXPECT_NEAR(sums.back(), sum_squares_of(m.stage_output(0)), 1e-12 * sums.back());
  EXPECT_NE(sums[0], sums[1]);
  m.set_residual_scales(std::vector<double>{0.0, 0.0, 0.0});
  m.forward(0, tokens.data(), targets.data());
  sums = m.block_output_sum_squares(0, 0);
  for (double v : sums) EXPECT_NEAR(v, sum_squares_of(m.stage_input(0)), 1e-12 * v);
}

TEST(ModelExecution, MoreRecomputedLayersThanTheStageHoldsAreRefused) {
  ModelConfig c = tiny_config(NormPlacement::Pre, false);
  test::expect_error(
      [&] { Model m(c, 1, DType::F32, {}, nullptr, 1, {Device::CPU, AttentionKernel::Unfused, ops::MatmulPrecision::Fp32, true, 4}); },
      {"4 layers to recompute", "the stage has 3"});
}

}  // namespace
}  // namespace prores
