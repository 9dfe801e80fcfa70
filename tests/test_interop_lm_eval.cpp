// Agreement with lm-evaluation-harness 0.4.13 and transformers 4.57.1 (docs/eval.md, "Agreement with
// lm-evaluation-harness and transformers"), on a tiny SentencePiece checkpoint trained here (2 layers, width
// 64, 400-piece BPE, T = 64, 80 steps of a linear ProRes warm-up over 200 steps, so that export-hf folds
// α = 0.79 and 0.395) and its export-hf copy, with task files made here by tests/lm_eval_check.py (trailing
// whitespace, an empty context, contexts longer than the model, non-ASCII choices, continuations that are
// the model's greedy ones, a rolling text of four windows):
// - `prores eval --tasks --samples-dir` (one rank, and with mpiexec TP 2 x PP 2 and TP 2 x DP 2) against
//   lm_eval's HFLM (add_bos_token=False, float32, CPU) on the same requests: every log-likelihood within
//   1e-4 relative (absolute 1e-7 below magnitude 1e-3), is_greedy identical, and acc, acc_norm, perplexity,
//   word/byte perplexity and bits per byte computed lm-eval's way identical (floats: within 1e-4 in the log);
// - `prores generate` (key/value cache, --no-kv-cache, stopping at EOS or not) against transformers'
//   greedy generate, token for token;
// - `prores serve` against lm_eval's local-completions (remote tokenizer, token requests): the same
//   accuracies, and the log-likelihoods of every request that neither side truncates within 1e-4.
// The Python side is tests/lm_eval_check.py, run with test::reference_python(); skipped when there is none or
// it lacks lm_eval, transformers or torch (bash launch/install_references.sh installs them).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cli_test_util.h"

namespace {

using namespace prores::test;

constexpr int kSeqLength = 64;
const std::string kInstall = "bash launch/install_references.sh (or set PRORES_REFERENCE_PYTHON)";

// Why an agreement test that imports `modules` (besides lm_eval, transformers, torch and sentencepiece)
// cannot run here, or empty.
std::string missing_reference(const std::string& modules = "") {
  const std::string python = reference_python();
  if (python.empty()) return "no reference interpreter with lm_eval and transformers: " + kInstall;
  const std::string all = "lm_eval transformers torch sentencepiece " + modules;
  const std::string probe = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))";
  if (run_shell(python + " -c '" + probe + "' " + all).exit_code != 0)
    return python + " lacks one of " + all + ": " + kInstall;
  return "";
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

std::string check_script() { return reference_python() + " '" PRORES_SOURCE_DIR "/tests/lm_eval_check.py' "; }

// The checkpoint, its export and the task files, made once per process.
struct Fixture {
  fs::path dir, tokenizer, checkpoint, hf, tasks;
  std::string error;  // what went wrong making them
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.dir = work_dir().path() / "lm_eval";
    x.tokenizer = x.dir / "tok" / "spm.model";
    x.checkpoint = x.dir / "ckpt";
    x.hf = x.dir / "hf";
    x.tasks = x.dir / "tasks";
    fs::create_directories(x.dir);
    const fs::path corpus = x.dir / "corpus.txt", data = x.dir / "data";
    const auto step = [&](const std::string& what, const RunResult& r) {
      if (x.error.empty() && r.exit_code != 0) x.error = what + " failed: " + r.out + r.err;
      return x.error.empty();
    };
    step("corpus", run_shell(check_script() + "corpus " + quoted(corpus))) &&
        step("train-tokenizer", run("data train-tokenizer --input " + quoted(corpus) + " --vocab-size 400 --model-type bpe"
                                    " --model-prefix " + quoted(x.dir / "tok" / "spm"))) &&
        step("preprocess", run("data preprocess --input " + quoted(corpus) + " --tokenizer-model " + quoted(x.tokenizer) +
                               " --output-prefix " + quoted(data)));
    if (x.error.empty()) {
      const RunResult r = run(
          "train --num-layers 2 --hidden-size 64 --ffn-hidden-size 128 --num-attention-heads 4 --num-query-groups 2"
          " --seq-length " + std::to_string(kSeqLength) + " --tokenizer-model " + quoted(x.tokenizer) +
          " --data-path " + quoted(data) + " --micro-batch-size 4 --global-batch-size 8 --train-iters 80 --lr 1e-2"
          " --lr-warmup-iters 5 --prores-schedule linear --prores-warmup-steps 200 --log-interval 80"
          " --eval-interval 0 --save " + quoted(x.checkpoint));
      // α < 1 at the end (0.79 and 0.395), folded into o_proj / down_proj by export-hf
      if (step("train", r) && r.out.find("alpha[1..2] 0.790..0.395") == std::string::npos)
        x.error = "train: expected alpha[1..2] 0.790..0.395 at iteration 80: " + r.out;
    }
    step("export-hf", run("export-hf --load " + quoted(x.checkpoint) + " --out " + quoted(x.hf))) &&
        step("tasks", run_shell(check_script() + "tasks " + quoted(x.tasks) + " --tokenizer " + quoted(x.tokenizer) +
                                " --seq-length " + std::to_string(kSeqLength) + " --load " + quoted(x.checkpoint) +
                                " --prores " PRORES_BINARY));
    return x;
  }();
  return f;
}

std::string task_list() {
  const fs::path t = fixture().tasks;
  return quoted(t / "agree_mc.jsonl") + "," + quoted(t / "agree_target.jsonl") + "," + quoted(t / "agree_rolling.jsonl");
}

// The `summary: {...}` line of lm_eval_check.py's output.
std::string summary_line(const std::string& out) {
  const size_t at = out.rfind("summary: ");
  return at == std::string::npos ? "" : out.substr(at, out.find('\n', at) - at);
}

// Runs lm_eval_check.py ARGS, echoes its report, expects agreement and returns its summary line.
std::string expect_agreement(const std::string& args, const std::string& what) {
  const RunResult r = run_shell(check_script() + args);
  std::cout << "[" << what << "]\n" << r.out;
  EXPECT_EQ(r.exit_code, 0) << what << ": lm_eval_check.py disagrees:\n" << r.out << r.err;
  const std::string summary = summary_line(r.out);
  EXPECT_FALSE(summary.empty()) << r.out << r.err;
  if (summary.empty()) return "";
  EXPECT_GT(number_after(summary, "compared"), 0) << summary;
  EXPECT_EQ(number_after(summary, "failures"), 0) << summary;
  EXPECT_LE(number_after(summary, "max_rel_diff"), 1e-4) << summary;
  return summary;
}

// `prores eval` of the three tasks with `launcher` (the binary alone or under mpiexec); the truncation counts
// it prints show that long requests are in the tasks.
void run_eval(const std::string& launcher, const std::string& name, const std::string& layout) {
  const fs::path d = fixture().dir;
  const RunResult r = run_shell(launcher + " eval --load " + quoted(fixture().checkpoint) + " --tasks " + task_list() +
                                " --samples-dir " + quoted(d / name) + " --results-json " +
                                quoted(d / (name + ".json")) + " " + layout);
  ASSERT_EQ(r.exit_code, 0) << name << ": " << r.out << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(eval agree_mc \(20 docs, 59 requests, [1-9]\d* truncated)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(eval agree_target \(10 docs, 10 requests, [1-9]\d* truncated)")))
      << r.out;
}

#define SKIP_WITHOUT_REFERENCE(modules)                           \
  do {                                                            \
    const std::string why = missing_reference(modules);           \
    if (!why.empty()) GTEST_SKIP() << why;                        \
    ASSERT_TRUE(fixture().error.empty()) << fixture().error;      \
  } while (0)

TEST(LmEvalAgreement, HuggingFaceBackendScoresLikeProresEval) {
  SKIP_WITHOUT_REFERENCE("accelerate");
  run_eval(PRORES_BINARY, "one_rank", "");
  std::string args = "hflm --hf " + quoted(fixture().hf) + " --tasks " + quoted(fixture().tasks) +
                     " --seq-length " + std::to_string(kSeqLength);
  args += " --samples " + quoted(fixture().dir / "one_rank") + " --results " + quoted(fixture().dir / "one_rank.json");
#if defined(PRORES_MPIEXEC)
  run_eval(mpirun(4), "tp2_pp2", "--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2");
  run_eval(mpirun(4), "tp2_dp2", "--tensor-model-parallel-size 2 --micro-batch-size 2 --global-batch-size 8");
  for (const std::string name : {"tp2_pp2", "tp2_dp2"})
    args += " --samples " + quoted(fixture().dir / name) + " --results " + quoted(fixture().dir / (name + ".json"));
#endif
  expect_agreement(args, "HFLM");
}

TEST(LmEvalAgreement, GreedyGenerateEqualsTransformers) {
  SKIP_WITHOUT_REFERENCE("");
  const fs::path d = fixture().dir, prompts = d / "prompts.txt";
  // Each fits the model with its 20 new tokens (<= 64 positions); given as --prompt ... once, else in a file.
  const std::vector<std::string> texts = {"Q: ioavdfw dn oqhxdxot?", "A:", "kghhm knl hekhh. bo unjltfh", "naïve café"};
  std::string prompt_flags;
  for (const std::string& t : texts) {
    std::ofstream(prompts, std::ios::app) << t << "\n";
    prompt_flags += " --prompt '" + t + "'";
  }
  std::string args = "generate --hf " + quoted(fixture().hf) + " --max-new-tokens 20";
  for (const std::string flags : {"--ignore-eos", "--ignore-eos --no-kv-cache", "", "--no-kv-cache"}) {
    const std::string name = "generate" + std::regex_replace(flags, std::regex("[ -]+"), "_") + ".json";
    const std::string input = flags == "--ignore-eos" ? prompt_flags : " --prompt-file " + quoted(prompts);
    const RunResult r = run("generate --load " + quoted(fixture().checkpoint) + input + " --max-new-tokens 20 " +
                            flags + " --output-json " + quoted(d / name));
    ASSERT_EQ(r.exit_code, 0) << flags << ": " << r.err;
    args += (flags.find("--ignore-eos") != std::string::npos ? " --ours-ignore-eos " : " --ours-stop-at-eos ") +
            quoted(d / name);
  }
  EXPECT_EQ(number_after(expect_agreement(args, "generate"), "prompts"), 4 * texts.size());
}

// `prores serve --port 0` in a child process, stopped with SIGTERM at scope exit.
class Server {
 public:
  explicit Server(const fs::path& log) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      const std::string load = fixture().checkpoint.string();
      execl(PRORES_BINARY, PRORES_BINARY, "serve", "--load", load.c_str(), "--port", "0", static_cast<char*>(nullptr));
      _exit(127);
    }
    const std::regex listening(R"(listening on (http://[0-9.]+:[0-9]+))");
    for (int i = 0; i < 300 && url_.empty(); ++i) {
      std::smatch m;
      const std::string text = read_file(log);
      if (std::regex_search(text, m, listening)) url_ = m[1];
      else if (waitpid(pid_, nullptr, WNOHANG) == pid_) { pid_ = -1; break; }
      else std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~Server() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100 && waitpid(pid_, nullptr, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (waitpid(pid_, nullptr, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

TEST(LmEvalAgreement, LocalCompletionsAgainstServeScoresLikeProresEval) {
  SKIP_WITHOUT_REFERENCE("requests aiohttp tenacity");  // lm_eval[api]
  if (run(" serve --help").exit_code != 0) GTEST_SKIP() << "this prores has no serve command";
  const fs::path d = fixture().dir;
  if (!fs::exists(d / "one_rank.json")) run_eval(PRORES_BINARY, "one_rank", "");
  const Server server(d / "serve.log");
  ASSERT_FALSE(server.url().empty()) << read_file(d / "serve.log");
  expect_agreement("server --url " + server.url() + "/v1/completions --tasks " + quoted(fixture().tasks) +
                       " --samples " + quoted(d / "one_rank") + " --results " + quoted(d / "one_rank.json") +
                       " --seq-length " + std::to_string(kSeqLength),
                   "local-completions");
}

}  // namespace
