// Hugging Face round trip: a Pre-LN run stopped while ProRes α < 1 (with LayerNorm Scaling on), exported
// with `prores export-hf` and imported back with `prores import-hf`, computes the same logits and loss with
// α = 1 as the original checkpoint with its α; the exported file reads back with the published layout; a
// RoPE base of 50000 survives a config.json rewritten as transformers 5.x writes it and, when python has
// transformers (test::python(): PRORES_PYTHON, else build/python, else python3), LlamaConfig.from_pretrained + save_pretrained; other norm
// placements are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
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

// The mean loss and the logits of `checkpoint` for a fixed batch, with the given per-layer alphas.
struct Forward {
  double loss = 0;
  std::vector<float> logits;
};
Forward forward_of(const std::string& checkpoint, const std::vector<double>& alpha, bool layernorm_scaling) {
  const io::CheckpointReader reader(io::resolve_load_dir(checkpoint));
  ModelConfig config = train::model_config_from(reader.attributes(), reader.directory());
  config.layernorm_scaling = layernorm_scaling;
  Model model(config, 2);
  for (const ParamEntry& e : model.table().entries())
    reader.read_shard(e.name, e.shard_axis, e.shard_offset, e.shape, model.param(e.name).as<float>());
  model.set_residual_scales(alpha);
  std::vector<int32_t> tokens(2 * config.seq_length), targets(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<int32_t>((i * 37 + 11) % 256);
    targets[i] = static_cast<int32_t>((i * 53 + 7) % 256);
  }
  Forward out;
  out.loss = model.forward(0, tokens.data(), targets.data());
  const float* p = model.logits().as<float>();
  out.logits.assign(p, p + model.logits().numel());
  return out;
}

// `imported` (α = 1, no LayerNorm Scaling) computes what tiny_run's `original` computed after its 6 steps
// of a 30-step linear ProRes warm-up.
void expect_same_function(const fs::path& original, const fs::path& imported, bool layernorm_scaling) {
  const ResidualSchedule schedule(ScheduleKind::Linear, 3, 30);
  std::vector<double> alpha(3);
  schedule.alphas(6, 1, 3, alpha.data());
  ASSERT_LT(alpha[2], 1.0);
  const Forward before = forward_of(original.string(), alpha, layernorm_scaling);
  const Forward after = forward_of(imported.string(), {1.0, 1.0, 1.0}, false);
  ASSERT_EQ(before.logits.size(), after.logits.size());
  float worst = 0, scale = 0;
  for (size_t i = 0; i < before.logits.size(); ++i) {
    worst = std::max(worst, std::abs(before.logits[i] - after.logits[i]));
    scale = std::max(scale, std::abs(before.logits[i]));
  }
  EXPECT_LE(worst, 1e-5f * scale) << "largest logit difference " << worst << " of " << scale;
  EXPECT_NEAR(after.loss, before.loss, 1e-5 * before.loss);
}

ModelConfig recorded_model(const fs::path& checkpoint) {
  const io::CheckpointReader reader(io::resolve_load_dir(checkpoint.string()));
  return train::model_config_from(reader.attributes(), reader.directory());
}

// A tiny run with RoPE base 50000, trained once per process.
fs::path rope_50000_run() {
  const fs::path save = work_dir().path() / "hf_rope_run";
  if (!fs::exists(save)) {
    const RunResult r = run(tiny_run("--rotary-base 50000 --prores-warmup-steps 30 --save " + save.string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  return save;
}

TEST(HuggingFace, ExportImportKeepsTheFunction) {
  const fs::path save = work_dir().path() / "hf_run", hf = work_dir().path() / "hf_model",
                 imported = work_dir().path() / "hf_imported";
  ASSERT_EQ(run(tiny_run("--layernorm-scaling --prores-warmup-steps 30 --save " + save.string())).exit_code, 0);
  RunResult r = run("export-hf --load " + save.string() + " --out " + hf.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run("import-hf --hf-dir " + hf.string() + " --save " + imported.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;

  expect_same_function(save, imported, true);

  const io::HfLlamaConfig config = io::read_hf_config((hf / "config.json").string());
  EXPECT_EQ(config.num_hidden_layers, 3);
  EXPECT_EQ(config.num_key_value_heads, 2);
  const auto tensors = io::read_safetensors((hf / "model.safetensors").string());
  EXPECT_EQ(tensors.count("model.layers.2.mlp.down_proj.weight"), 1u);
  EXPECT_EQ(tensors.at("lm_head.weight").shape, (std::vector<int64_t>{256, 32}));
}

// export-hf writes the base at the top level (transformers 4.x) and in rope_parameters (5.x); a config.json
// holding only the latter, as transformers 5.x saves it, imports with that base and the same function.
TEST(HuggingFace, ImportsATransformers5StyleConfig) {
  const fs::path save = rope_50000_run(), hf = work_dir().path() / "hf5_model",
                 imported = work_dir().path() / "hf5_imported", again = work_dir().path() / "hf5_again";
  RunResult r = run("export-hf --load " + save.string() + " --out " + hf.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text = read_file(hf / "config.json");
  ASSERT_NE(text.find("\"rope_parameters\": {\n    \"rope_theta\": 50000.0,\n    \"rope_type\": \"default\"\n  },"),
            std::string::npos)
      << text;
  for (const std::string line : {"\n  \"rope_scaling\": null,", "\n  \"rope_theta\": 50000.0,"}) {
    const size_t at = text.find(line);
    ASSERT_NE(at, std::string::npos) << line << " missing in " << text;
    text.erase(at, line.size());
  }
  std::ofstream(hf / "config.json") << text;
  r = run("import-hf --hf-dir " + hf.string() + " --save " + imported.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(recorded_model(imported).rotary_base, 50000.0);
  expect_same_function(save, imported, false);
  r = run("export-hf --load " + imported.string() + " --out " + again.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(io::read_hf_config((again / "config.json").string()).rope_theta, 50000.0);
  EXPECT_NE(read_file(again / "config.json").find("\n  \"rope_theta\": 50000.0,"), std::string::npos);
}

// What transformers makes of our config.json: LlamaConfig.from_pretrained must see the base where its version
// reads it (4.x: rope_theta with rope_scaling None; 5.x: rope_parameters of type default) and our sizes; its
// save_pretrained must import back with the same base, sizes and function.
const char* const kTransformersCheck = R"(import json, shutil, sys
import transformers
from transformers import LlamaConfig
src, dst = sys.argv[1], sys.argv[2]
c = LlamaConfig.from_pretrained(src)
if int(transformers.__version__.split(".")[0]) < 5:
    theta, rope_type = c.rope_theta, "default" if c.rope_scaling is None else repr(c.rope_scaling)
else:
    theta, rope_type = c.rope_parameters["rope_theta"], c.rope_parameters["rope_type"]
c.save_pretrained(dst)
shutil.copy(src + "/model.safetensors", dst + "/model.safetensors")
print(json.dumps({"version": transformers.__version__, "rope_theta": theta, "rope_type": rope_type,
                  "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
                  "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
                  "num_key_value_heads": c.num_key_value_heads, "head_dim": c.head_dim,
                  "vocab_size": c.vocab_size, "max_position_embeddings": c.max_position_embeddings,
                  "rms_norm_eps": c.rms_norm_eps, "tie_word_embeddings": int(c.tie_word_embeddings)}))
)";

TEST(HuggingFace, TransformersReadsTheExportAndItsSaveImportsBack) {
  const std::string python = test::python();
  if (run_shell(python + " -c 'import transformers'").exit_code != 0)
    GTEST_SKIP() << python << " has no transformers (set PRORES_PYTHON to an interpreter that has)";
  const fs::path save = rope_50000_run(), hf = work_dir().path() / "hf_tf_model",
                 saved = work_dir().path() / "hf_tf_saved", imported = work_dir().path() / "hf_tf_imported",
                 script = work_dir().path() / "transformers_check.py";
  RunResult r = run("export-hf --load " + save.string() + " --out " + hf.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ofstream(script) << kTransformersCheck;
  r = run_shell(python + " " + script.string() + " " + hf.string() + " " + saved.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ModelConfig model = recorded_model(save);
  EXPECT_NE(r.out.find("\"rope_type\": \"default\""), std::string::npos) << r.out;
  EXPECT_EQ(number_after(r.out, "rope_theta"), 50000.0) << r.out;
  EXPECT_EQ(number_after(r.out, "hidden_size"), model.hidden_size);
  EXPECT_EQ(number_after(r.out, "intermediate_size"), model.ffn_hidden_size);
  EXPECT_EQ(number_after(r.out, "num_hidden_layers"), model.num_layers);
  EXPECT_EQ(number_after(r.out, "num_attention_heads"), model.num_attention_heads);
  EXPECT_EQ(number_after(r.out, "num_key_value_heads"), model.kv_groups());
  EXPECT_EQ(number_after(r.out, "head_dim"), model.hidden_size / model.num_attention_heads);
  EXPECT_EQ(number_after(r.out, "vocab_size"), model.vocab_size);
  EXPECT_EQ(number_after(r.out, "max_position_embeddings"), model.seq_length);
  EXPECT_DOUBLE_EQ(number_after(r.out, "rms_norm_eps"), model.norm_eps);
  EXPECT_EQ(number_after(r.out, "tie_word_embeddings"), 0);

  r = run("import-hf --hf-dir " + saved.string() + " --save " + imported.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ModelConfig back = recorded_model(imported);
  EXPECT_EQ(back.rotary_base, 50000.0);
  EXPECT_EQ(back.hidden_size, model.hidden_size);
  EXPECT_EQ(back.ffn_hidden_size, model.ffn_hidden_size);
  EXPECT_EQ(back.num_layers, model.num_layers);
  EXPECT_EQ(back.num_attention_heads, model.num_attention_heads);
  EXPECT_EQ(back.kv_groups(), model.kv_groups());
  EXPECT_EQ(back.vocab_size, model.vocab_size);
  EXPECT_EQ(back.seq_length, model.seq_length);
  EXPECT_EQ(back.norm_eps, model.norm_eps);
  expect_same_function(save, imported, false);
}

TEST(HuggingFace, OtherPlacementsAreRefused) {
  const fs::path save = work_dir().path() / "hf_post";
  ASSERT_EQ(run(tiny_run("--norm-placement post --save " + save.string())).exit_code, 0);
  const RunResult r = run("export-hf --load " + save.string() + " --out " + (work_dir().path() / "x").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--norm-placement post"), std::string::npos) << r.err;
}

}  // namespace
