// Model: a Llama-style decoder (token embedding, L blocks, final RMSNorm, untied LM head, cross-entropy)
// with ProRes residual scaling, hand-written forward and backward over saved activations.
// All tensors (parameters, gradients, activations) are allocated once at construction; a step allocates
// nothing. Runs in f32 (training) or f64 (gradient checks and golden tests).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/config.h"
#include "core/tensor.h"
#include "model/param_table.h"

namespace prores {

struct BlockActivations;
struct BlockScratch;
struct SublayerActivations;

class Model {
 public:
  Model(const ModelConfig& config, int64_t micro_batch, DType dtype = DType::F32);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const ParamTable& table() const { return table_; }
  int64_t micro_batch() const { return B_; }
  DType dtype() const { return dtype_; }

  Tensor params() const { return params_; }  // flat (P), ordered by table()
  Tensor grads() const { return grads_; }     // flat (P), same order
  Tensor param(const std::string& name) const;
  Tensor grad(const std::string& name) const;

  // Draws every parameter from the configured init scheme (DESIGN.md §2), deterministically from seed.
  void init_weights(uint64_t seed);
  // alpha[i] is the residual scale of block i + 1 (one per layer), used by the next forward/backward.
  void set_alphas(std::span<const double> alpha);
  const std::vector<double>& alphas() const { return alpha_; }

  // Forward over one micro-batch: tokens, targets (B·T) i32 ids in [0, V). Returns the mean loss and
  // keeps the activations for backward.
  double forward(const int32_t* tokens, const int32_t* targets);
  // grads() (+=) loss_scale · d(mean loss)/d(params), for the preceding forward.
  void backward(double loss_scale);
  void zero_grads();
  // Logits (B·T, V) of the last forward; overwritten by backward.
  Tensor logits() const { return logits_; }
  // When on (the default), blocks whose α is exactly 0 skip their branches in forward and backward;
  // the result is bitwise the same either way.
  void set_skip_zero_alpha(bool on) { skip_zero_alpha_ = on; }

 private:
  enum class Branch { Attention, Mlp };
  void plan_buffers();
  Tensor residual(int64_t index) const;  // residual stream entering block index (index L: the output)
  // Views of one flat buffer (parameters or gradients) per use: fused q|k|v and gate|up matrices.
  struct LayerWeights {
    Tensor attn_norm, qkv, o, attn_out_norm, mlp_norm, gate_up, down, mlp_out_norm;
  };
  struct Weights {
    Tensor embedding, final_norm, lm_head;
    std::vector<LayerWeights> layers;
  };
  Tensor view_of(const Tensor& flat, const std::string& name) const;
  Weights weights_of(const Tensor& flat) const;
  double norm_scale(int64_t layer0) const;
  void block_forward(int64_t layer0, const Tensor& x, const Tensor& y);
  void block_backward(int64_t layer0, const Tensor& x, const Tensor& dy, const Tensor& dx);
  void sublayer_forward(int64_t layer0, Branch branch, SublayerActivations& a, const Tensor& u,
                        const Tensor& v);
  void sublayer_backward(int64_t layer0, Branch branch, const SublayerActivations& a, const Tensor& u,
                         const Tensor& dv, const Tensor& du);
  void branch_forward(int64_t layer0, Branch branch, const Tensor& f_in, const Tensor& b);
  void branch_backward(int64_t layer0, Branch branch, const Tensor& f_in, const Tensor& db,
                       const Tensor& dfin);

  ModelConfig config_;
  ParamTable table_;
  int64_t B_;
  DType dtype_;
  Arena arena_;
  Tensor params_, grads_;
  Weights weights_, dweights_;
  std::vector<double> alpha_;
  bool skip_zero_alpha_ = true;
  std::vector<BlockActivations> blocks_;
  std::unique_ptr<BlockScratch> scratch_;
  Tensor tokens_, targets_, residual_, logits_, losses_;
  Tensor final_norm_out_, final_rstd_, dresidual_a_, dresidual_b_, dfinal_;
  Tensor rope_cos_, rope_sin_;
};

}  // namespace prores
