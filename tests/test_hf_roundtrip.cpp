// Hugging Face round trip: a Pre-LN run stopped while ProRes α < 1 (with LayerNorm Scaling on), exported
// with `prores export-hf` and imported back with `prores import-hf`, computes the same logits with α = 1
// as the original checkpoint with its α; the exported file reads back with the published layout; other
// norm placements are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/residual_schedule.h"
#include "train/checkpointing.h"

namespace {

using namespace prores;
using namespace prores::test;

std::string tiny_run(const std::string& extra) {
  return std::string("train --config ") + PRORES_SOURCE_DIR + "/configs/tiny.ini --data-path " + corpus() +
         " --num-layers 3 --train-iters 6 --lr-warmup-iters 2 --log-interval 1 --eval-interval 0 " + extra;
}

// The logits of `checkpoint` for a fixed batch, with the given per-layer alphas.
std::vector<float> logits_of(const std::string& checkpoint, const std::vector<double>& alpha,
                             bool layernorm_scaling) {
  const io::CheckpointReader reader(io::resolve_load_dir(checkpoint));
  ModelConfig config = train::model_config_from(reader.attributes(), reader.directory());
  config.layernorm_scaling = layernorm_scaling;
  Model model(config, 2);
  for (const ParamEntry& e : model.table().entries())
    reader.read_shard(e.name, e.shard_axis, e.shard_offset, e.shape, model.param(e.name).as<float>());
  model.set_alphas(alpha);
  std::vector<int32_t> tokens(2 * config.seq_length), targets(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<int32_t>((i * 37 + 11) % 256);
    targets[i] = static_cast<int32_t>((i * 53 + 7) % 256);
  }
  model.forward(0, tokens.data(), targets.data());
  const float* p = model.logits().as<float>();
  return std::vector<float>(p, p + model.logits().numel());
}

TEST(HuggingFace, ExportImportKeepsTheFunction) {
  const fs::path save = work_dir().path() / "hf_run", hf = work_dir().path() / "hf_model",
                 imported = work_dir().path() / "hf_imported";
  ASSERT_EQ(run(tiny_run("--layernorm-scaling --prores-warmup-steps 30 --save " + save.string())).exit_code, 0);
  RunResult r = run("export-hf --load " + save.string() + " --out " + hf.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run("import-hf --hf-dir " + hf.string() + " --save " + imported.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const ResidualSchedule schedule(ScheduleKind::Linear, 3, 30);
  std::vector<double> alpha(3);
  schedule.alphas(6, 1, 3, alpha.data());
  ASSERT_LT(alpha[2], 1.0);
  const std::vector<float> original = logits_of(save.string(), alpha, true);
  const std::vector<float> roundtrip = logits_of(imported.string(), {1.0, 1.0, 1.0}, false);
  ASSERT_EQ(original.size(), roundtrip.size());
  float worst = 0, scale = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    worst = std::max(worst, std::abs(original[i] - roundtrip[i]));
    scale = std::max(scale, std::abs(original[i]));
  }
  EXPECT_LE(worst, 1e-5f * scale) << "largest logit difference " << worst << " of " << scale;

  const io::HfLlamaConfig config = io::read_hf_config((hf / "config.json").string());
  EXPECT_EQ(config.num_hidden_layers, 3);
  EXPECT_EQ(config.num_key_value_heads, 2);
  const auto tensors = io::read_safetensors((hf / "model.safetensors").string());
  EXPECT_EQ(tensors.count("model.layers.2.mlp.down_proj.weight"), 1u);
  EXPECT_EQ(tensors.at("lm_head.weight").shape, (std::vector<int64_t>{256, 32}));
}

TEST(HuggingFace, OtherPlacementsAreRefused) {
  const fs::path save = work_dir().path() / "hf_post";
  ASSERT_EQ(run(tiny_run("--norm-placement post --save " + save.string())).exit_code, 0);
  const RunResult r = run("export-hf --load " + save.string() + " --out " + (work_dir().path() / "x").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--norm-placement post"), std::string::npos) << r.err;
}

}  // namespace
