// The pieces of zero-shot evaluation that need no model: lm-evaluation-harness's request rules (whitespace
// moving to the continuation, continuation tokens as the whole's minus the context's, the prefix token for an
// empty context, left-truncation), rolling windows covering every token once, task-file errors naming file and
// line, the metrics and their standard errors, and next-token sampling.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "eval/requests.h"
#include "eval/sampling.h"
#include "eval/task_eval.h"
#include "eval/task_file.h"
#include "test_util.h"

namespace prores::eval {
namespace {

const test::TempDir& scratch() {
  static const test::TempDir dir("prores_eval_requests");
  return dir;
}

// A small BPE model trained once on generated text (bos 1, eos 2).
const TextCodec& sentencepiece_codec() {
  static const TextCodec codec = [] {
    const std::string text_path = (scratch().path() / "text.txt").string();
    std::mt19937 rng(4);
    const std::vector<std::string> words = {"the", "model", "warms", "up", "each", "residual", "branch", "layer",
                                            "deep", "shallow", "first", "slowly", "and", "then", "all", "at", "once"};
    std::ofstream out(text_path);
    for (int line = 0; line < 3000; ++line) {
      for (int w = 0, n = 3 + static_cast<int>(rng() % 8); w < n; ++w) out << (w ? " " : "") << words[rng() % words.size()];
      out << ".\n";
    }
    out.close();
    const std::string prefix = (scratch().path() / "bpe").string();
    data::train_tokenizer({text_path}, 400, prefix, "bpe", {.num_threads = 1});
    return TextCodec::sentencepiece(prefix + ".model");
  }();
  return codec;
}

TEST(EvalRequests, TrailingContextWhitespaceMovesToTheContinuation) {
  const TextCodec codec = TextCodec::bytes();
  const TokenRequest r = make_request(codec, "Question: why?\nAnswer: \n", "because", 64);
  EXPECT_EQ(r.tokens, codec.encode("Question: why?\nAnswer: \nbecause"));
  EXPECT_EQ(r.continuation, 9);  // " \nbecause"
  EXPECT_FALSE(r.truncated);
}

TEST(EvalRequests, ContinuationTokensAreTheWholesAfterTheContexts) {
  const TextCodec& codec = sentencepiece_codec();
  const std::string context = "the model warms up", continuation = " each residual branch";
  const TokenRequest r = make_request(codec, context, continuation, 64);
  const std::vector<int32_t> whole = codec.encode(context + continuation), ctx = codec.encode(context);
  EXPECT_EQ(r.tokens, whole);
  EXPECT_EQ(r.continuation, static_cast<int64_t>(whole.size() - ctx.size()));
  EXPECT_GT(r.continuation, 0);
}

TEST(EvalRequests, EmptyContextIsThePrefixToken) {
  const TextCodec& codec = sentencepiece_codec();
  ASSERT_EQ(codec.prefix_id(), codec.bos_id());
  const TokenRequest r = make_request(codec, "", "deep layer", 64);
  std::vector<int32_t> expected{codec.bos_id()};
  const std::vector<int32_t> cont = codec.encode("deep layer");
  expected.insert(expected.end(), cont.begin(), cont.end());
  EXPECT_EQ(r.tokens, expected);
  EXPECT_EQ(r.continuation, static_cast<int64_t>(cont.size()));
  test::expect_error([] { make_request(TextCodec::bytes(), "", "x", 8); }, {"empty context needs a BOS or EOS"});
}

TEST(EvalRequests, LongRequestsKeepTheirLastMaxLengthPlusOneTokens) {
  const TextCodec codec = TextCodec::bytes();
  const TokenRequest r = make_request(codec, "0123456789", "ab", 5);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.tokens, codec.encode("6789ab"));
  EXPECT_EQ(r.continuation, 2);
  const TokenRequest clipped = make_request(codec, "x", "abcdefgh", 5);  // a continuation longer than the model
  EXPECT_EQ(clipped.tokens.size(), 6u);
  EXPECT_EQ(clipped.continuation, 5);
}

TEST(EvalRequests, RollingWindowsScoreEveryTokenOnceWithFullContexts) {
  const TextCodec& codec = sentencepiece_codec();
  std::string text;
  for (int i = 0; i < 40; ++i) text += "the shallow layer warms up first and the deep one slowly. ";
  const std::vector<int32_t> tokens = codec.encode(text);
  const int64_t max_length = 16;
  const std::vector<TokenRequest> windows = rolling_requests(codec, text, max_length);
  ASSERT_GT(windows.size(), 3u);
  std::vector<int32_t> scored;
  for (size_t w = 0; w < windows.size(); ++w) {
    const TokenRequest& r = windows[w];
    ASSERT_LE(static_cast<int64_t>(r.tokens.size()), max_length + 1);
    if (w == 0) EXPECT_EQ(r.tokens.front(), codec.prefix_id());
    if (w > 0 && w + 1 < windows.size()) EXPECT_EQ(static_cast<int64_t>(r.tokens.size()), max_length + 1);
    scored.insert(scored.end(), r.tokens.end() - r.continuation, r.tokens.end());
  }
  EXPECT_EQ(scored, tokens);
  // Each window's input is the tokens just before its targets.
  for (size_t w = 1; w < windows.size(); ++w) {
    const TokenRequest& r = windows[w];
    const auto end = std::search(tokens.begin(), tokens.end(), r.tokens.begin(), r.tokens.end());
    EXPECT_NE(end, tokens.end()) << "window " << w << " is not a contiguous piece of the text";
  }
}

std::string write_task(const std::string& name, const std::vector<std::string>& lines) {
  const std::string path = (scratch().path() / (name + ".jsonl")).string();
  std::ofstream out(path);
  for (const std::string& line : lines) out << line << "\n";
  return path;
}

const char* kHeader =
    R"({"prores_eval_task": 1, "task": "toy", "kind": "multiple_choice", "split": "test", "metrics": ["acc", "acc_norm"], "num_docs": 3})";

TEST(EvalTaskFile, ReadsDocumentsAndNamesTheLineOfAnError) {
  const std::vector<std::string> docs = {
      R"({"doc_id": 0, "requests": [["Q: a\nA:", " yes"], ["Q: a\nA:", " no way"]], "gold": 1, "choice_chars": [3, 6]})",
      R"({"doc_id": 1, "requests": [["c", " x"], ["c", " y"], ["c", " zz"]], "gold": 0, "choice_chars": [1, 1, 2]})",
      R"({"doc_id": 2, "requests": [["d", " p"], ["d", " q"]], "gold": 0, "choice_chars": [1, 1], "subject": "s"})"};
  const TaskFile file = read_task_file(write_task("good", {kHeader, docs[0], docs[1], docs[2]}));
  EXPECT_EQ(file.task, "toy");
  ASSERT_EQ(file.docs.size(), 3u);
  EXPECT_EQ(file.docs[0].requests[1].second, " no way");
  EXPECT_EQ(file.docs[2].subject, "s");
  EXPECT_EQ(read_task_file(write_task("limited", {kHeader, docs[0], docs[1], docs[2]}), 2).docs.size(), 2u);
  test::expect_error([&] { read_task_file(write_task("bad_json", {kHeader, docs[0], "{not json", docs[2]})); },
                     {"bad_json.jsonl:3", "not a JSON object"});
  test::expect_error(
      [&] { read_task_file(write_task("bad_gold", {kHeader, docs[0], docs[1], R"({"doc_id": 2, "requests": [["d", " p"]], "gold": 4, "choice_chars": [1]})"})); },
      {"bad_gold.jsonl:4", "gold 4"});
  test::expect_error([&] { read_task_file(write_task("missing", {kHeader, docs[0], R"({"doc_id": 1, "gold": 0})", docs[2]})); },
                     {"missing.jsonl:3", "missing field \"requests\""});
  test::expect_error([&] { read_task_file(write_task("short", {kHeader, docs[0]})); }, {"header says 3 documents, the file has 1"});
  test::expect_error([&] { read_task_file(write_task("no_header", {docs[0]})); }, {"no_header.jsonl:1", "not a task file header"});
}

TEST(EvalTaskFile, UnknownOrMissingTasksSayWhatToDo) {
  test::expect_error([] { task_file_path("data/eval", "pika"); }, {"unknown task 'pika'", "piqa", "lambada_openai"});
  test::expect_error([] { task_file_path("/nonexistent/eval", "piqa"); },
                     {"/nonexistent/eval/piqa.jsonl is missing", "bash launch/eval_tasks.sh --out /nonexistent/eval"});
  test::expect_error([] { task_file_path("d", "race"); }, {"--race FILE"});
}

TEST(EvalMetrics, MultipleChoiceAccuraciesAndStandardErrors) {
  const std::vector<std::string> docs = {
      R"({"doc_id": 0, "requests": [["q", " a"], ["q", " bbbb"]], "gold": 1, "choice_chars": [1, 4]})",
      R"({"doc_id": 1, "requests": [["q", " a"], ["q", " b"]], "gold": 0, "choice_chars": [1, 1]})",
      R"({"doc_id": 2, "requests": [["q", " a"], ["q", " b"]], "gold": 1, "choice_chars": [1, 1]})"};
  const TaskFile file = read_task_file(write_task("metrics", {kHeader, docs[0], docs[1], docs[2]}));
  // doc 0: acc picks 0 (-1 > -2), acc_norm picks 1 (-2/4 > -1/1); doc 1: both pick 0 (gold); doc 2: tie → first.
  const std::vector<std::vector<RequestScore>> scores = {{{-1, false}, {-2, false}}, {{-1, true}, {-3, false}},
                                                         {{-2, false}, {-2, false}}};
  std::vector<nlohmann::json> per_doc;
  const nlohmann::json m = task_metrics(file, scores, &per_doc);
  EXPECT_DOUBLE_EQ(m["acc,none"].get<double>(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(m["acc_norm,none"].get<double>(), 2.0 / 3);
  // sqrt(var_{n-1} / n) of (0, 1, 0): var = 1/3.
  EXPECT_DOUBLE_EQ(m["acc_stderr,none"].get<double>(), std::sqrt(1.0 / 3 / 3));
  EXPECT_EQ(per_doc[0]["acc_norm"].get<double>(), 1.0);
}

TEST(EvalMetrics, TargetAndRollingMetrics) {
  const TaskFile target = read_task_file(write_task(
      "target", {R"({"prores_eval_task": 1, "task": "t", "kind": "target", "metrics": ["acc", "perplexity"], "num_docs": 2})",
                 R"({"doc_id": 0, "requests": [["a b", " c"]]})", R"({"doc_id": 1, "requests": [["d", " e"]]})"}));
  const nlohmann::json t = task_metrics(target, {{{-1.0, true}}, {{-3.0, false}}});
  EXPECT_DOUBLE_EQ(t["acc,none"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(t["perplexity,none"].get<double>(), std::exp(2.0));
  const TaskFile rolling = read_task_file(write_task(
      "rolling", {R"({"prores_eval_task": 1, "task": "r", "kind": "rolling", "metrics": ["word_perplexity", "byte_perplexity", "bits_per_byte"], "num_docs": 1})",
                  R"({"doc_id": 0, "text": "one two three four", "words": 4, "bytes": 20})"}));
  const nlohmann::json r = task_metrics(rolling, {{{-6.0, false}, {-2.0, false}}});
  EXPECT_DOUBLE_EQ(r["word_perplexity,none"].get<double>(), std::exp(8.0 / 4));
  EXPECT_DOUBLE_EQ(r["byte_perplexity,none"].get<double>(), std::exp(8.0 / 20));
  EXPECT_DOUBLE_EQ(r["bits_per_byte,none"].get<double>(), 8.0 / 20 / std::log(2.0));
}

TEST(EvalSampling, GreedyTopKTopPAndSeeds) {
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f, 2.0f, -1.0f};
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_token(logits, {}, rng), 1);  // the first of the tied maxima
  EXPECT_EQ(sample_token(logits, {.temperature = 1.0, .top_k = 1}, rng), 1);
  EXPECT_EQ(sample_token(logits, {.temperature = 1.0, .top_p = 0.01}, rng), 1);
  // Frequencies follow softmax(logits / 0.7) over the top 3.
  std::map<int32_t, int> counts;
  const SamplingOptions options{.temperature = 0.7, .top_k = 3};
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[sample_token(logits, options, rng)];
  EXPECT_EQ(counts.count(0) + counts.count(4), 0u);
  const double z = 2 * std::exp(2.0 / 0.7) + std::exp(1.0 / 0.7);
  EXPECT_NEAR(counts[2] / static_cast<double>(draws), std::exp(1.0 / 0.7) / z, 0.01);
  EXPECT_NEAR(counts[1] / static_cast<double>(draws), std::exp(2.0 / 0.7) / z, 0.01);
  std::mt19937_64 a(7), b(7);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits, options, a), sample_token(logits, options, b));
  test::expect_error([] { SamplingOptions{.top_p = 0}.validate(); }, {"--top-p"});
  test::expect_error([] { SamplingOptions{.temperature = -1}.validate(); }, {"--temperature"});
}

}  // namespace
}  // namespace prores::eval
