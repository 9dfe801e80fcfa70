// End-to-end tests of `prores data` through the executable: train a tokenizer, preprocess plain text
// and JSON lines into Megatron indexed datasets, read them back (one sequence per document, EOS last,
// decoding to the input text, input order kept with several workers), progress lines on stderr, and the
// errors for a missing input file and a malformed JSON line (exit status 1, one line naming file and line,
// nothing written).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "data/indexed_dataset.h"
#include "data/tokenizer.h"
#include "cli_test_util.h"

namespace prores::data {
namespace {

using test::TempDir;

namespace fs = std::filesystem;

// Runs `prores data ARGS`.
test::RunResult run_data(const std::string& args) { return test::run("data " + args); }

// 400 seeded documents of a few lines each over a small word list.
std::vector<std::string> documents() {
  const std::vector<std::string> words = {"alpha", "beta", "gamma", "delta", "one", "two", "three", "red",
                                          "green", "blue", "is", "the", "of", "and", "a", "an"};
  std::mt19937_64 rng(11);
  std::vector<std::string> docs;
  for (int d = 0; d < 400; ++d) {
    std::string doc;
    for (int line = 0, lines = 1 + static_cast<int>(rng() % 3); line < lines; ++line) {
      if (line) doc += '\n';
      for (int w = 0, n = 3 + static_cast<int>(rng() % 6); w < n; ++w) doc += (w ? " " : "") + words[rng() % 16];
      doc += '.';
    }
    docs.push_back(doc);
  }
  return docs;
}

// A JSON string literal for text made of letters, spaces, dots and newlines.
std::string json_quote(const std::string& text) {
  std::string q = "\"";
  for (char c : text) q += c == '\n' ? std::string("\\n") : std::string(1, c);
  return q + "\"";
}

// Trains the tokenizer used by the tests of this file once (vocabulary 300).
struct TrainedTokenizer {
  TempDir dir;
  std::string text, model;
  std::vector<std::string> docs = documents();
  TrainedTokenizer() {
    text = dir.file("corpus.txt");
    std::ofstream out(text);
    for (const std::string& d : docs) out << d << "\n\n";
    out.close();
    const test::RunResult r = run_data("train-tokenizer --input " + text + " --vocab-size 300 --model-prefix " +
                                     dir.file("tok/spm") + " --model-type bpe");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("wrote"), std::string::npos) << r.out;
    // The phases on stderr: what is trained, the input read, the end with the elapsed time.
    EXPECT_NE(r.err.find("train-tokenizer: a bpe model of 300 pieces on "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("train-tokenizer reading: done, 400 documents, "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("train-tokenizer: done | elapsed "), std::string::npos) << r.err;
    model = dir.file("tok/spm.model");
  }
};

const TrainedTokenizer& trained() {
  static TrainedTokenizer s;
  return s;
}

// Checks that prefix holds docs in order: one sequence per document, EOS last, decoding to the text.
void expect_dataset(const std::string& prefix, const std::vector<std::string>& docs, TokenDType dtype) {
  const Tokenizer tok = Tokenizer::load(trained().model);
  const IndexedDataset ds = IndexedDataset::open(prefix, tok.vocab_size());
  EXPECT_EQ(ds.dtype(), dtype);
  ASSERT_EQ(ds.num_sequences(), static_cast<int64_t>(docs.size()));
  ASSERT_EQ(ds.document_index().size(), docs.size() + 1);
  for (int64_t s = 0; s < ds.num_sequences(); ++s) {
    EXPECT_EQ(ds.document_index()[static_cast<size_t>(s)], s);
    std::vector<int32_t> ids(static_cast<size_t>(ds.sequence_length(s)));
    ds.read(s, 0, static_cast<int64_t>(ids.size()), ids.data());
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.back(), tok.eos_id());
    ids.pop_back();
    EXPECT_EQ(tok.decode(ids), docs[static_cast<size_t>(s)]) << "document " << s;
  }
}

TEST(CliData, PreprocessPlainText) {
  const TrainedTokenizer& s = trained();
  TempDir out;
  const test::RunResult r = run_data("preprocess --input " + s.text + " --tokenizer-model " + s.model +
                                   " --output-prefix " + out.file("text") + " --workers 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("400 documents"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MB/s"), std::string::npos) << r.out;
  // Progress goes to stderr, the summary above to stdout; a run this short (under the 5 s between progress
  // lines) shows only the final progress line.
  const std::regex done_line(
      "preprocess: done, 400 documents, [0-9.]+ [kM]?B(, [0-9.]+ [kMG]?B/s)? \\| elapsed [0-9.]+s\n");
  EXPECT_TRUE(std::regex_search(r.err, done_line)) << r.err;
  EXPECT_EQ(r.out.find("elapsed"), std::string::npos) << r.out;
  expect_dataset(out.file("text"), s.docs, TokenDType::U16);
  EXPECT_FALSE(fs::exists(out.file("text.bin.tmp")));
}

TEST(CliData, PreprocessJsonLinesInOrder) {
  const TrainedTokenizer& s = trained();
  TempDir out;
  const std::string jsonl = out.file("docs.jsonl");
  {
    std::ofstream f(jsonl);
    for (size_t i = 0; i < s.docs.size(); ++i)
      f << "{\"id\": " << i << ", \"meta\": {\"text\": \"no\"}, \"body\": " << json_quote(s.docs[i]) << "}\n";
  }
  const test::RunResult r = run_data("preprocess --input " + jsonl + " --json-key body --tokenizer-model " + s.model +
                                   " --output-prefix " + out.file("json") + " --workers 3 --dtype int32");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_dataset(out.file("json"), s.docs, TokenDType::I32);
  // Two inputs, one a JSON-lines file and one a plain text file read as one document.
  const std::string single = out.file("single.txt");
  std::ofstream(single) << s.docs[0] << "\n\n" << s.docs[1];
  const test::RunResult both = run_data("preprocess --input " + jsonl + "," + single + " --json-key body --document-per-file"
                                  " --tokenizer-model " + s.model + " --output-prefix " + out.file("both"));
  ASSERT_EQ(both.exit_code, 0) << both.err;
  std::vector<std::string> expected = s.docs;
  expected.push_back(s.docs[0] + "\n\n" + s.docs[1]);
  expect_dataset(out.file("both"), expected, TokenDType::U16);
}

TEST(CliData, Errors) {
  const TrainedTokenizer& s = trained();
  TempDir out;
  test::RunResult r = run_data("preprocess --input " + out.file("missing.txt") + " --tokenizer-model " + s.model +
                             " --output-prefix " + out.file("x"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;

  const std::string bad = out.file("bad.jsonl");
  std::ofstream(bad) << "{\"text\": \"fine\"}\n{\"text\": \"broken\\q\"}\n";
  r = run_data("preprocess --input " + bad + " --tokenizer-model " + s.model + " --output-prefix " + out.file("y"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.jsonl' line 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("invalid escape"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out.file("y.bin")));
  EXPECT_FALSE(fs::exists(out.file("y.bin.tmp")));

  r = run_data("preprocess --input " + s.text + " --tokenizer-model " + out.file("none.model") + " --output-prefix " +
                   out.file("z"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--tokenizer-model"), std::string::npos) << r.err;
  r = run_data("preprocess --input " + s.text + " --tokenizer-model " + s.model + " --output-prefix " +
                   out.file("z") + " --dtype float");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--dtype"), std::string::npos) << r.err;
  r = run_data("train-tokenizer --input " + s.text + " --model-prefix " + out.file("m"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--vocab-size"), std::string::npos) << r.err;
  // Training on an indexed dataset that is not there names the option and the missing file.
  r = test::run(std::string("train --config ") + PRORES_SOURCE_DIR + "/configs/tiny.ini --tokenizer-model " + s.model +
                " --data-path " + out.file("absent"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("prores: error: --data-path " + out.file("absent") + ": cannot open '" + out.file("absent"), 0),
            0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = run_data("shuffle");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown subcommand 'shuffle'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace prores::data
