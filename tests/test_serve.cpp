// End-to-end tests of `prores serve`: tiny checkpoints (byte-level, and with a SentencePiece tokenizer) trained by
// the prores executable, served by `prores serve --port 0` in a child process, and asked over HTTP (httplib's
// client) what lm-eval's local-completions model and OpenAI clients ask: greedy and seeded generation equal to
// `prores generate`'s, echo with logprobs on token-id prompts equal to log-probabilities computed in this process
// (eval::Generator recomputing the prefix, no key/value cache) and, read as lm-eval reads them, equal to
// `prores eval --tasks`'s log-likelihoods, list prompts, stop strings, vLLM's tokenizer endpoints, every refused
// input answered 4xx with an OpenAI error body while the server goes on, concurrent clients each getting their
// own prompt's result, and SIGTERM / SIGINT ending it with exit status 0.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/inference_options.h"
#include "cli_test_util.h"
#include "eval/loaded_model.h"
#include "serve/served_tokenizer.h"

namespace {

using namespace prores::test;
using Json = nlohmann::json;
namespace fs = std::filesystem;

// The tiny config trained for 40 iterations into work_dir()/name; extra: more training options.
std::string train_checkpoint(const std::string& name, const std::string& extra) {
  const std::string dir = (work_dir().path() / name).string();
  const RunResult r = run(std::string("train --config ") + PRORES_SOURCE_DIR +
                          "/configs/tiny.ini --train-iters 40 --eval-interval 0 --save " + dir + " " + extra);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return dir;
}

// A byte-level checkpoint (its model name: "serve_bytes").
const std::string& byte_checkpoint() {
  static const std::string dir = train_checkpoint("serve_bytes", "--data-path " + corpus());
  return dir;
}

// A checkpoint with a 300-piece SentencePiece BPE tokenizer (unk 0, bos 1, eos 2), trained on the corpus' first
// 4000 lines, one document each.
const std::string& sentencepiece_checkpoint() {
  static const std::string dir = [] {
    const fs::path w = work_dir().path();
    const std::string text = (w / "serve_spm_corpus.txt").string(), model = (w / "serve_spm.model").string();
    {
      std::ifstream in(corpus());
      std::ofstream out(text);
      int lines = 0;
      for (std::string line; lines < 4000 && std::getline(in, line); ++lines) out << line << "\n\n";
    }
    RunResult r = run("data train-tokenizer --input " + text + " --vocab-size 300 --model-type bpe --model-prefix " +
                      (w / "serve_spm").string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = run("data preprocess --input " + text + " --tokenizer-model " + model + " --output-prefix " +
            (w / "serve_spm_data").string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return train_checkpoint("serve_spm",
                            "--tokenizer-model " + model + " --data-path " + (w / "serve_spm_data").string());
  }();
  return dir;
}

// `prores serve --load checkpoint --port 0` as a child process, its stdout read through a pipe.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& checkpoint) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    const std::string err = (work_dir().path() / ("serve_stderr_" + std::to_string(++count_) + ".txt")).string();
    std::vector<std::string> args = {PRORES_BINARY, "serve", "--load", checkpoint, "--port", "0"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {  // only async-signal-safe calls until exec
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // no server outlives a test process that crashes
      if (getppid() != parent) _exit(127);
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      const int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      execv(PRORES_BINARY, argv.data());
      _exit(127);
    }
    EXPECT_GT(pid_, 0);
    close(fds[1]);
    out_fd_ = fds[0];
    // The line the server prints once it listens, with the port it chose.
    const std::string marker = "serve: listening on http://127.0.0.1:";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    size_t at = std::string::npos;
    while ((at = output_.find(marker)) == std::string::npos || output_.find('\n', at) == std::string::npos)
      if (!read_some(deadline)) break;
    if (at == std::string::npos || output_.find('\n', at) == std::string::npos) {
      ADD_FAILURE() << "no listening line; stdout: " << output_ << "\nstderr: " << read_file(err);
      return;
    }
    port_ = std::stoi(output_.substr(at + marker.size()));
    line_ = output_.substr(at, output_.find('\n', at) - at);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  const std::string& listening_line() const { return line_; }
  // Sends signal and waits up to seconds for the exit: its exit status, 128 + the signal that killed it, or -1
  // when it is still running.
  int stop(int signal, double seconds) {
    kill(pid_, signal);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(seconds));
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        while (read_some(deadline)) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  const std::string& output() const { return output_; }

 private:
  // Appends what the pipe has by the deadline; false at end of file or past the deadline.
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{out_fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[4096];
    const ssize_t n = read(out_fd_, buffer, sizeof buffer);
    if (n <= 0) return false;
    output_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  static inline int count_ = 0;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::string output_, line_;
};

struct Reply {
  int status = 0;
  Json body;  // discarded when the body is not JSON
};

Reply to_reply(const httplib::Result& res) {
  if (!res) {
    ADD_FAILURE() << "no response: " << httplib::to_string(res.error());
    return {};
  }
  return {res->status, Json::parse(res->body, nullptr, false)};
}

Reply post(int port, const std::string& path, const std::string& body) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  return to_reply(client.Post(path.c_str(), body, "application/json"));
}

Reply get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  return to_reply(client.Get(path.c_str()));
}

// A 200 reply's body (the test fails on another status).
Json completion(int port, const Json& request) {
  const Reply r = post(port, "/v1/completions", request.dump());
  EXPECT_EQ(r.status, 200) << request.dump() << " → " << r.body.dump();
  return r.body;
}

// The checkpoint loaded into this process without a key/value cache (every position recomputes its prefix): the
// reference for the server's cached decoder.
struct Oracle {
  prores::InferenceOptions options;
  std::unique_ptr<prores::eval::LoadedModel> model;
  explicit Oracle(const std::string& checkpoint) {
    boost::program_options::options_description extra;
    std::ostringstream out;
    EXPECT_TRUE(prores::parse_inference_options("serve-test", "", {"--load", checkpoint}, extra, out, options));
    options.load.kv_cache = false;
    model = std::make_unique<prores::eval::LoadedModel>(options.model, options.schedule, options.load);
  }
  // prompt's log-probabilities (echo) and one greedy token with its log-probability and the top one.
  prores::eval::GenerationResult score(const std::vector<int32_t>& prompt) {
    prores::eval::GenerationRequest request;
    request.prompt = prompt;
    request.max_new_tokens = 1;
    request.eos_id = model->codec().eos_id();
    request.logprobs = 1;
    request.echo = true;
    return model->generator().generate(request);
  }
};

// What `prores generate` continues each prompt with, as the server writes text: invalid UTF-8 replaced (a
// byte-level model may generate part of a character). From its stdout, "PROMPT TEXT\n\n" and its summary line,
// one run per prompt (its --output-json cannot hold bytes that are not UTF-8).
std::vector<std::string> generate_texts(const std::string& checkpoint, const std::vector<std::string>& prompts,
                                        const std::string& options) {
  std::vector<std::string> texts;
  for (const std::string& p : prompts) {
    const RunResult r = run("generate --load " + checkpoint + " " + options + " --prompt '" + p + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const size_t end = r.out.rfind("\n\ngenerate: ");
    EXPECT_TRUE(r.out.rfind(p, 0) == 0 && end != std::string::npos && end >= p.size()) << r.out;
    if (r.exit_code != 0 || end == std::string::npos || end < p.size()) return {};
    texts.push_back(prores::serve::valid_utf8(r.out.substr(p.size(), end - p.size())));
  }
  return texts;
}

void expect_relative_near(double actual, double expected, const std::string& what) {
  EXPECT_LE(std::abs(actual - expected), 1e-5 * std::max(std::abs(expected), 1e-3)) << what << ": " << actual
                                                                                    << " vs " << expected;
}

// The echo + logprobs response of one prompt checked against the oracle: token texts, a null first entry, every
// log-probability within 1e-5 relative, each top_logprobs maximum at least the token's (equal when the token is
// the most likely), and lm-eval's reading of it.
void expect_scored(const Json& choice, const std::vector<int32_t>& ids, Oracle& oracle) {
  const prores::eval::GenerationResult ref = oracle.score(ids);
  const prores::eval::TextCodec& codec = oracle.model->codec();
  const Json& lp = choice["logprobs"];
  const size_t n = ids.size();
  ASSERT_EQ(lp["tokens"].size(), n + 1) << choice.dump();
  ASSERT_EQ(lp["token_logprobs"].size(), n + 1);
  ASSERT_EQ(lp["top_logprobs"].size(), n + 1);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  ASSERT_EQ(ref.prompt_logprobs.size(), n - 1);
  ASSERT_EQ(ref.token_logprobs.size(), 1u);
  for (size_t i = 1; i <= n; ++i) {
    const prores::eval::TokenLogprob& t = i < n ? ref.prompt_logprobs[i - 1] : ref.token_logprobs[0];
    const int32_t id = i < n ? ids[i] : ref.tokens[0];
    EXPECT_EQ(t.token, id);
    const double logprob = lp["token_logprobs"][i];
    expect_relative_near(logprob, t.logprob, "token " + std::to_string(i));
    double top = -INFINITY;
    for (const auto& [text, value] : lp["top_logprobs"][i].items()) top = std::max(top, value.get<double>());
    EXPECT_GE(top, logprob) << i;
    if (t.top[0].first == t.token) EXPECT_EQ(top, logprob) << i;  // lm-eval's greedy test is this equality
    expect_relative_near(top, t.top[0].second, "top of token " + std::to_string(i));
  }
  if (codec.is_bytes())
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(lp["tokens"][i], std::string(1, static_cast<char>(ids[i])));
  EXPECT_EQ(choice["text"], codec.decode(ids) + codec.decode(std::vector<int32_t>{ref.tokens[0]}));
}

class ServeBytes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(byte_checkpoint());
    oracle_ = new Oracle(byte_checkpoint());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete oracle_;
  }
  static int port() { return server_->port(); }
  static inline ServerProcess* server_ = nullptr;
  static inline Oracle* oracle_ = nullptr;
};

const std::vector<std::string> kPrompts = {"the ", "an old story about", "xq", "Zebra crossing"};

TEST_F(ServeBytes, ListeningLineAndModels) {
  EXPECT_NE(server_->listening_line().find("(model serve_bytes, context 32 tokens)"), std::string::npos)
      << server_->listening_line();
  const Reply r = get(port(), "/v1/models");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["object"], "list");
  ASSERT_EQ(r.body["data"].size(), 1u);
  EXPECT_EQ(r.body["data"][0]["id"], "serve_bytes");
  EXPECT_EQ(r.body["data"][0]["object"], "model");
  EXPECT_EQ(r.body["data"][0]["max_model_len"], 32);
  EXPECT_EQ(get(port(), "/health").status, 200);
}

TEST_F(ServeBytes, GreedyGenerationEqualsProresGenerate) {
  const std::vector<std::string> expected = generate_texts(byte_checkpoint(), kPrompts, "--max-new-tokens 8");
  ASSERT_EQ(expected.size(), kPrompts.size());
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    const Json r = completion(port(), {{"prompt", kPrompts[i]}, {"max_tokens", 8}, {"temperature", 0}});
    EXPECT_EQ(r["object"], "text_completion");
    EXPECT_EQ(r["model"], "serve_bytes");
    EXPECT_EQ(r["id"].get<std::string>().rfind("cmpl-", 0), 0u);
    EXPECT_TRUE(r["created"].is_number_integer());
    ASSERT_EQ(r["choices"].size(), 1u);
    const Json& choice = r["choices"][0];
    EXPECT_EQ(choice["index"], 0);
    EXPECT_EQ(choice["text"], expected[i]) << kPrompts[i];
    EXPECT_TRUE(choice["logprobs"].is_null());
    EXPECT_EQ(choice["finish_reason"], "length");  // a byte-level run has no EOS
    EXPECT_EQ(r["usage"]["prompt_tokens"], kPrompts[i].size());
    EXPECT_EQ(r["usage"]["completion_tokens"], 8);
    EXPECT_EQ(r["usage"]["total_tokens"], kPrompts[i].size() + 8);
  }
}

TEST_F(ServeBytes, SeededSamplingEqualsProresGenerate) {
  const std::vector<std::string> expected =
      generate_texts(byte_checkpoint(), {kPrompts[1]},
                     "--max-new-tokens 10 --temperature 0.9 --top-k 20 --top-p 0.95 --seed 7");
  const Json request = {{"prompt", kPrompts[1]}, {"max_tokens", 10}, {"temperature", 0.9},
                        {"top_k", 20},           {"top_p", 0.95},     {"seed", 7}};
  ASSERT_EQ(expected.size(), 1u);
  const Json first = completion(port(), request), second = completion(port(), request);
  EXPECT_EQ(first["choices"][0]["text"], expected[0]);
  EXPECT_EQ(second["choices"][0]["text"], expected[0]);
}

TEST_F(ServeBytes, EchoLogprobsOfTokenIdsMatchTheGenerator) {
  // lm-eval's loglikelihood request: token ids, max_tokens 1, temperature 0, logprobs 1, echo.
  for (const std::string& text : {std::string("the old man and the sea"), std::string("ab"), std::string("q")}) {
    const std::vector<int32_t> ids = oracle_->model->codec().encode(text);
    const Json r = completion(port(), {{"prompt", ids}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 1},
                                       {"seed", 1234}, {"echo", true}, {"model", nullptr}});
    ASSERT_EQ(r["choices"].size(), 1u);
    expect_scored(r["choices"][0], ids, *oracle_);
    EXPECT_EQ(r["usage"]["prompt_tokens"], ids.size());
  }
}

TEST_F(ServeBytes, LogprobsWithoutEchoAndEchoWithoutLogprobs) {
  const Json scored = completion(port(), {{"prompt", "the "}, {"max_tokens", 3}, {"temperature", 0}, {"logprobs", 5}});
  const Json& lp = scored["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 3u);
  for (const Json& top : lp["top_logprobs"]) EXPECT_LE(top.size(), 5u);
  for (const Json& top : lp["top_logprobs"]) EXPECT_GE(top.size(), 1u);
  std::string joined;
  for (const Json& t : lp["tokens"]) joined += t.get<std::string>();
  EXPECT_EQ(joined, scored["choices"][0]["text"]);
  const Json echoed = completion(port(), {{"prompt", "the "}, {"max_tokens", 3}, {"temperature", 0}, {"echo", true}});
  EXPECT_EQ(echoed["choices"][0]["text"], "the " + scored["choices"][0]["text"].get<std::string>());
  EXPECT_TRUE(echoed["choices"][0]["logprobs"].is_null());
  const Json none = completion(port(), {{"prompt", "the "}, {"max_tokens", 0}, {"echo", true}});
  EXPECT_EQ(none["choices"][0]["text"], "the ");
  EXPECT_EQ(none["usage"]["completion_tokens"], 0);
}

TEST_F(ServeBytes, ListPromptsGiveOneChoiceEachInOrder) {
  Json singles = Json::array();
  for (const std::string& p : kPrompts)
    singles.push_back(completion(port(), {{"prompt", p}, {"max_tokens", 5}, {"temperature", 0}})["choices"][0]);
  const Json strings = completion(port(), {{"prompt", kPrompts}, {"max_tokens", 5}, {"temperature", 0}});
  ASSERT_EQ(strings["choices"].size(), kPrompts.size());
  size_t prompt_tokens = 0;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(strings["choices"][i]["index"], i);
    EXPECT_EQ(strings["choices"][i]["text"], singles[i]["text"]) << i;
    prompt_tokens += kPrompts[i].size();
  }
  EXPECT_EQ(strings["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(strings["usage"]["completion_tokens"], 5 * kPrompts.size());
  // A list of token lists, as lm-eval batches loglikelihood requests.
  Json lists = Json::array();
  for (const std::string& p : kPrompts) lists.push_back(oracle_->model->codec().encode(p));
  const Json tokens = completion(
      port(), {{"prompt", lists}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 1}, {"echo", true}});
  ASSERT_EQ(tokens["choices"].size(), kPrompts.size());
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(tokens["choices"][i]["index"], i);
    expect_scored(tokens["choices"][i], lists[i].get<std::vector<int32_t>>(), *oracle_);
  }
}

TEST_F(ServeBytes, StopStringsCutTheText) {
  const Json full = completion(port(), {{"prompt", kPrompts[1]}, {"max_tokens", 12}, {"temperature", 0}});
  const std::string text = full["choices"][0]["text"];
  ASSERT_GE(text.size(), 6u) << text;
  const std::string stop = text.substr(3, 2);
  const Json cut = completion(
      port(), {{"prompt", kPrompts[1]}, {"max_tokens", 12}, {"temperature", 0}, {"stop", {"\x01never", stop}}});
  EXPECT_EQ(cut["choices"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
  EXPECT_LE(cut["usage"]["completion_tokens"], 5);
  const Json single =
      completion(port(), {{"prompt", kPrompts[1]}, {"max_tokens", 12}, {"temperature", 0}, {"stop", stop}});
  EXPECT_EQ(single["choices"][0]["text"], cut["choices"][0]["text"]);
}

TEST_F(ServeBytes, TheContextEndsGeneration) {
  // 30 of the 32 positions taken: positions 30 and 31 take two new tokens and the logits of 31 give a third,
  // then "length".
  const Json r = completion(port(), {{"prompt", std::string(30, 'a')}, {"max_tokens", 32}, {"temperature", 0}});
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["completion_tokens"], 3);
  const Json full = completion(port(), {{"prompt", std::string(32, 'a')}, {"max_tokens", 4}});
  EXPECT_EQ(full["usage"]["completion_tokens"], 1);
  EXPECT_EQ(full["choices"][0]["finish_reason"], "length");
}

TEST_F(ServeBytes, TokenizerEndpoints) {
  const Reply info = get(port(), "/tokenizer_info");
  ASSERT_EQ(info.status, 200);
  // lm-eval's check_remote_tokenizer_support needs the key eos_token; a byte-level run has no special tokens.
  for (const char* key : {"eos_token", "eos_token_id", "bos_token", "bos_token_id", "pad_token", "pad_token_id"}) {
    ASSERT_TRUE(info.body.contains(key)) << key;
    EXPECT_TRUE(info.body[key].is_null()) << key;
  }
  EXPECT_EQ(info.body["vocab_size"], 256);
  EXPECT_EQ(info.body["model_max_length"], 32);
  const std::string text = "h\xC3\xA9llo, world";  // "héllo": UTF-8 bytes are the ids
  const Reply tokens = post(port(), "/tokenize", Json{{"prompt", text}, {"add_special_tokens", false}}.dump());
  ASSERT_EQ(tokens.status, 200);
  const std::vector<int32_t> ids = tokens.body["tokens"];
  EXPECT_EQ(ids, oracle_->model->codec().encode(text));
  EXPECT_EQ(tokens.body["count"], ids.size());
  const Reply back = post(port(), "/detokenize", Json{{"tokens", ids}}.dump());
  ASSERT_EQ(back.status, 200);
  EXPECT_EQ(back.body["prompt"], text);
  // A byte that is not UTF-8 by itself comes back as U+FFFD.
  EXPECT_EQ(post(port(), "/detokenize", R"({"tokens": [104, 195]})").body["prompt"], "h\xEF\xBF\xBD");
}

struct BadRequest {
  std::string method, path, body;
  int status;
  std::string param;  // "" : null
};

void PrintTo(const BadRequest& b, std::ostream* os) { *os << b.method << " " << b.path << " " << b.body; }

class ServeBadInput : public ServeBytes, public ::testing::WithParamInterface<BadRequest> {};

TEST_P(ServeBadInput, AnswersAnOpenAiErrorAndServesOn) {
  const BadRequest& b = GetParam();
  const Reply r = b.method == "GET" ? get(port(), b.path) : post(port(), b.path, b.body);
  EXPECT_EQ(r.status, b.status) << r.body.dump();
  ASSERT_TRUE(r.body.is_object()) << "not JSON";
  const Json& e = r.body["error"];
  ASSERT_TRUE(e.is_object()) << r.body.dump();
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.body.dump();
  EXPECT_EQ(e["type"], "invalid_request_error");
  ASSERT_TRUE(e.contains("param") && e.contains("code")) << r.body.dump();
  EXPECT_EQ(e["code"], b.status);
  if (b.param.empty())
    EXPECT_TRUE(e["param"].is_null()) << r.body.dump();
  else
    EXPECT_EQ(e["param"], b.param) << r.body.dump();
  const Json good = completion(port(), {{"prompt", "ok"}, {"max_tokens", 2}, {"temperature", 0}});
  EXPECT_EQ(good["choices"][0]["finish_reason"], "length");
}

const std::string kLong(33, 'a');  // one byte more than the context

INSTANTIATE_TEST_SUITE_P(
    Refused, ServeBadInput,
    ::testing::Values(
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x",)", 400, ""},
        BadRequest{"POST", "/v1/completions", "", 400, ""},
        BadRequest{"POST", "/v1/completions", R"([1, 2])", 400, ""},
        BadRequest{"POST", "/v1/completions", "{\"prompt\": \"\xff\xfe\"}", 400, ""},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "\ud800"})", 400, ""},
        BadRequest{"POST", "/v1/completions", R"({})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": null})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": ""})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": []})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": 7})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": [1, "a"]})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": ["a", 1]})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": [256]})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": [-1]})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": [1.5]})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": [[1, 2], []]})", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", "{\"prompt\": \"" + kLong + "\"}", 400, "prompt"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "max_tokens": -1})", 400, "max_tokens"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 1000000000})", 400, "max_tokens"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 1e300})", 400, "max_tokens"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 33})", 400, "max_tokens"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "max_tokens": "8"})", 400, "max_tokens"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 2.5})", 400, "max_tokens"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "temperature": -1})", 400, "temperature"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "temperature": "hot"})", 400, "temperature"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "top_p": 0})", 400, "top_p"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "top_p": 1.5})", 400, "top_p"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "top_k": -2})", 400, "top_k"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "seed": "a"})", 400, "seed"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "logprobs": 21})", 400, "logprobs"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "logprobs": -1})", 400, "logprobs"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "logprobs": true})", 400, "logprobs"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "echo": "yes"})", 400, "echo"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "stop": [""]})", 400, "stop"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "stop": 5})", 400, "stop"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "n": 2})", 400, "n"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "best_of": 3})", 400, "best_of"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "suffix": "y"})", 400, "suffix"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "stream": true})", 400, "stream"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "presence_penalty": 0.5})", 400, "presence_penalty"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "logit_bias": {"1": 5}})", 400, "logit_bias"},
        BadRequest{"POST", "/v1/completions", R"({"prompt": "x", "model": 3})", 400, "model"},
        BadRequest{"POST", "/tokenize", R"({})", 400, "prompt"},
        BadRequest{"POST", "/tokenize", R"({"prompt": 5})", 400, "prompt"},
        BadRequest{"POST", "/tokenize", R"({"prompt": "a", "add_special_tokens": 1})", 400, "add_special_tokens"},
        BadRequest{"POST", "/detokenize", R"({})", 400, "tokens"},
        BadRequest{"POST", "/detokenize", R"({"tokens": [999]})", 400, "tokens"},
        BadRequest{"POST", "/detokenize", R"({"tokens": "abc"})", 400, "tokens"},
        BadRequest{"GET", "/v1/completions", "", 405, ""},
        BadRequest{"GET", "/v1/chat/completions", "", 404, ""}));

TEST_F(ServeBytes, ConcurrentClientsGetTheirOwnResults) {
  // Per client: greedy generation, a seeded sample and an echo score of its own prompt; first one at a time.
  const auto requests_of = [](const std::string& prompt) {
    return std::vector<Json>{
        {{"prompt", prompt}, {"max_tokens", 10}, {"temperature", 0}},
        {{"prompt", prompt}, {"max_tokens", 10}, {"temperature", 1.0}, {"seed", 99}},
        {{"prompt", prompt}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 2}, {"echo", true}}};
  };
  std::vector<std::vector<Json>> expected;
  for (const std::string& p : kPrompts) {
    expected.emplace_back();
    for (const Json& request : requests_of(p)) expected.back().push_back(completion(port(), request)["choices"]);
  }
  std::vector<std::vector<Json>> got(kPrompts.size());
  std::vector<std::thread> clients;
  for (size_t c = 0; c < kPrompts.size(); ++c)
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port());  // one keep-alive connection per client
      client.set_keep_alive(true);
      client.set_read_timeout(120, 0);
      for (int round = 0; round < 3; ++round)
        for (const Json& request : requests_of(kPrompts[c])) {
          const auto res = client.Post("/v1/completions", request.dump(), "application/json");
          got[c].push_back(res && res->status == 200 ? Json::parse(res->body)["choices"] : Json());
        }
    });
  for (std::thread& t : clients) t.join();
  for (size_t c = 0; c < kPrompts.size(); ++c) {
    ASSERT_EQ(got[c].size(), 9u);
    for (size_t i = 0; i < got[c].size(); ++i) EXPECT_EQ(got[c][i], expected[c][i % 3]) << "client " << c << " #" << i;
  }
}

TEST(Serve, SigtermAndSigintStopItWithExitStatusZero) {
  for (const int signal : {SIGTERM, SIGINT}) {
    ServerProcess server(byte_checkpoint());
    ASSERT_GT(server.port(), 0);
    EXPECT_EQ(completion(server.port(), {{"prompt", "a"}, {"max_tokens", 2}})["choices"].size(), 1u);
    EXPECT_EQ(server.stop(signal, 10.0), 0) << server.output();
    EXPECT_NE(server.output().find(signal == SIGTERM ? "serve: stopped by SIGTERM" : "serve: stopped by SIGINT"),
              std::string::npos)
        << server.output();
  }
}

TEST(Serve, CommandLineErrors) {
  RunResult r = run("serve --port 8000");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--load"), std::string::npos) << r.err;
  r = run("serve --load " + byte_checkpoint() + " --port 70000");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--port"), std::string::npos) << r.err;
  r = run("serve --load " + byte_checkpoint() + " --host 203.0.113.9 --port 0");  // TEST-NET-3: not this machine's
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--host 203.0.113.9"), std::string::npos) << r.err;
  r = run("serve --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* option : {"--load", "--host", "--port", "--model-name", "--bf16"})
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
}

class ServeSentencePiece : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(sentencepiece_checkpoint());
    oracle_ = new Oracle(sentencepiece_checkpoint());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete oracle_;
  }
  static int port() { return server_->port(); }
  static inline ServerProcess* server_ = nullptr;
  static inline Oracle* oracle_ = nullptr;
};

TEST_F(ServeSentencePiece, TokenizerInfoAndLmEvalsSpecialTokenLookup) {
  const Reply info = get(port(), "/tokenizer_info");
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(info.body["tokenizer_class"], "SentencePiece");
  EXPECT_EQ(info.body["eos_token"], "</s>");
  EXPECT_EQ(info.body["eos_token_id"], 2);
  EXPECT_EQ(info.body["bos_token"], "<s>");
  EXPECT_EQ(info.body["bos_token_id"], 1);
  EXPECT_TRUE(info.body["pad_token"].is_null());
  EXPECT_TRUE(info.body["pad_token_id"].is_null());
  EXPECT_EQ(info.body["unk_token_id"], 0);
  EXPECT_EQ(info.body["vocab_size"], 300);
  // lm-eval's RemoteTokenizer takes eos_token_id = tokenize(eos_token)[0] (add_special_tokens false).
  for (const char* role : {"eos", "bos"}) {
    const Json request = {{"prompt", info.body[std::string(role) + "_token"]}, {"add_special_tokens", false}};
    const Reply r = post(port(), "/tokenize", request.dump());
    EXPECT_EQ(r.body["tokens"], Json::array({info.body[std::string(role) + "_token_id"]})) << role;
  }
}

TEST_F(ServeSentencePiece, TokenizeDetokenizeRoundTrip) {
  const prores::eval::TextCodec& codec = oracle_->model->codec();
  const std::string text = "the quick brown fox, 42 times.";
  const std::vector<int32_t> plain = codec.encode(text);
  Reply r = post(port(), "/tokenize", Json{{"prompt", text}, {"add_special_tokens", false}}.dump());
  EXPECT_EQ(r.body["tokens"].get<std::vector<int32_t>>(), plain);
  std::vector<int32_t> with_bos = {1};
  with_bos.insert(with_bos.end(), plain.begin(), plain.end());
  r = post(port(), "/tokenize", Json{{"prompt", text}}.dump());  // vLLM's default: add_special_tokens true
  EXPECT_EQ(r.body["tokens"].get<std::vector<int32_t>>(), with_bos);
  EXPECT_EQ(post(port(), "/detokenize", Json{{"tokens", plain}}.dump()).body["prompt"], text);
  // Special tokens inside text tokenize to their ids and detokenize back to their text.
  const std::string special = "<s>" + text + "</s>" + text;
  r = post(port(), "/tokenize", Json{{"prompt", special}, {"add_special_tokens", false}}.dump());
  const std::vector<int32_t> ids = r.body["tokens"];
  std::vector<int32_t> expected = with_bos;
  expected.push_back(2);
  expected.insert(expected.end(), plain.begin(), plain.end());
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(post(port(), "/detokenize", Json{{"tokens", ids}}.dump()).body["prompt"], special);
}

TEST_F(ServeSentencePiece, GenerationAndEchoMatch) {
  const std::vector<std::string> prompts = {"the ", "an old"};
  const std::vector<std::string> expected = generate_texts(sentencepiece_checkpoint(), prompts, "--max-new-tokens 8");
  ASSERT_EQ(expected.size(), prompts.size());
  const Json r = completion(port(), {{"prompt", prompts}, {"max_tokens", 8}, {"temperature", 0}});
  ASSERT_EQ(r["choices"].size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(r["choices"][i]["text"], expected[i]) << prompts[i];
  const prores::eval::TextCodec& codec = oracle_->model->codec();
  std::vector<int32_t> ids = {codec.prefix_id()};  // lm-eval's prefix token before a context
  const std::vector<int32_t> text = codec.encode("the old sat on a mat");
  ids.insert(ids.end(), text.begin(), text.end());
  const Json scored =
      completion(port(), {{"prompt", ids}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 1}, {"echo", true}});
  expect_scored(scored["choices"][0], ids, *oracle_);
  EXPECT_EQ(scored["choices"][0]["logprobs"]["tokens"][0], "<s>");
}

// lm-eval's local-completions loglikelihood through the server (context and continuation tokenized by /tokenize,
// one echo request of max_tokens 1 and logprobs 1, sum of token_logprobs[ctxlen:-1], greedy when each equals its
// top_logprobs maximum) gives what `prores eval --tasks` computes for the same requests.
TEST_F(ServeSentencePiece, LoglikelihoodsAsLmEvalReadsThemEqualProresEval) {
  const fs::path dir = work_dir().path() / "serve_tasks";
  fs::create_directories(dir);
  const std::vector<std::pair<std::string, std::vector<std::string>>> docs = {
      {"the old man", {" sat on a mat", " and"}}, {"An answer:", {" yes", " no, not today"}}, {"x", {" y z", " x"}}};
  {
    std::ofstream out(dir / "piqa.jsonl");
    out << Json{{"prores_eval_task", 1}, {"task", "piqa"},          {"kind", "multiple_choice"},
                {"split", "validation"}, {"metrics", {"acc"}}, {"num_docs", docs.size()}, {"source", "test_serve"}}
               .dump()
        << "\n";
    for (size_t d = 0; d < docs.size(); ++d) {
      Json requests = Json::array(), chars = Json::array();
      for (const std::string& c : docs[d].second) {
        requests.push_back({docs[d].first, c});
        chars.push_back(c.size() - 1);
      }
      out << Json{{"doc_id", d}, {"requests", requests}, {"gold", 0}, {"choice_chars", chars}}.dump() << "\n";
    }
  }
  const RunResult r = run("eval --load " + sentencepiece_checkpoint() + " --tasks piqa --eval-data-dir " +
                          dir.string() + " --samples-dir " + (dir / "samples").string());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::istringstream samples(read_file(dir / "samples" / "piqa.jsonl"));
  const auto tokenize = [&](const std::string& text) {
    return post(port(), "/tokenize", Json{{"prompt", text}, {"add_special_tokens", false}}.dump())
        .body["tokens"]
        .get<std::vector<int32_t>>();
  };
  size_t d = 0;
  for (std::string line; std::getline(samples, line); ++d) {
    const Json sample = Json::parse(line);
    ASSERT_LT(d, docs.size());
    for (size_t i = 0; i < docs[d].second.size(); ++i) {
      const std::vector<int32_t> whole = tokenize(docs[d].first + docs[d].second[i]);
      const size_t ctxlen = tokenize(docs[d].first).size();
      const Json lp = completion(port(), {{"prompt", whole}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 1},
                                          {"echo", true}})["choices"][0]["logprobs"];
      double sum = 0;
      bool greedy = true;
      for (size_t t = ctxlen; t < whole.size(); ++t) {
        const double logprob = lp["token_logprobs"][t];
        sum += logprob;
        double top = -INFINITY;
        for (const auto& [text, value] : lp["top_logprobs"][t].items()) top = std::max(top, value.get<double>());
        greedy = greedy && logprob == top;
      }
      const Json& ref = sample["resps"][i];
      expect_relative_near(sum, ref[0].get<double>(), "doc " + std::to_string(d) + " choice " + std::to_string(i));
      EXPECT_EQ(greedy, ref[1].get<bool>()) << "doc " << d << " choice " << i;
    }
  }
  EXPECT_EQ(d, docs.size());
}

}  // namespace
