// SentencePiece tokenizer: a tiny BPE model (vocabulary 300) trained on generated text in a temp dir,
// the text → ids → text round trip (unseen characters through byte fallback), the special ids, encoding
// from several threads at once, Megatron's padded vocabulary size, and the errors.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/check.h"
#include "data/tokenizer.h"
#include "test_util.h"

namespace prores::data {
namespace {

using test::expect_error;

using test::TempDir;

// Seeded pseudo-English over a small alphabet: 3000 lines of words drawn from a fixed word list.
std::string generated_text() {
  const std::vector<std::string> words = {"the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "to",
                                          "see", "its", "friend", "dog", "who", "was", "not", "at", "home", "today"};
  std::mt19937_64 rng(7);
  std::string text;
  for (int line = 0; line < 3000; ++line) {
    for (int w = 0, n = 4 + static_cast<int>(rng() % 8); w < n; ++w)
      text += (w ? " " : "") + words[rng() % words.size()];
    text += line % 10 == 9 ? ".\n\n" : ".\n";
  }
  return text;
}

// Trains the tiny model once for every test of this file.
const std::string& tiny_model() {
  static TempDir dir;
  static const std::string model = [] {
    const std::string corpus = dir.file("corpus.txt");
    std::ofstream(corpus) << generated_text();
    train_tokenizer({corpus}, 300, dir.file("tiny"), "bpe");
    return dir.file("tiny.model");
  }();
  return model;
}

TEST(Tokenizer, TrainsTinyBpeAndRoundTrips) {
  const Tokenizer tok = Tokenizer::load(tiny_model());
  EXPECT_EQ(tok.model_path(), tiny_model());
  EXPECT_EQ(tok.vocab_size(), 300);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  const std::string seen = "the cat sat on a mat and then ran to see its friend.";
  const std::vector<int32_t> ids = tok.encode(seen);
  EXPECT_LT(ids.size(), seen.size() / 2) << "BPE merges should give far fewer tokens than bytes";
  EXPECT_EQ(tok.decode(ids), seen);
  // Characters never seen in training (and runs of spaces, tabs, newlines, digits) survive through
  // byte fallback and the identity normalization.
  const std::string unseen = "  Zebra  crossing:\tgrüße, 日本 123\n\nend ";
  const std::vector<int32_t> unseen_ids = tok.encode(unseen);
  for (int32_t id : unseen_ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, tok.vocab_size());
  }
  EXPECT_EQ(tok.decode(unseen_ids), unseen);
  EXPECT_TRUE(tok.encode("").empty());
  expect_error([&] { tok.decode({300}); }, {"id 300", "300"});
}

TEST(Tokenizer, EncodesFromSeveralThreads) {
  const Tokenizer tok = Tokenizer::load(tiny_model());
  const std::string text = generated_text();
  std::vector<std::string> lines;
  for (size_t b = 0, e; b < text.size(); b = e + 1) {
    e = std::min(text.find('\n', b), text.size());
    lines.push_back(text.substr(b, e - b));
  }
  std::vector<std::vector<int32_t>> serial(lines.size()), parallel(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) serial[i] = tok.encode(lines[i]);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t; i < lines.size(); i += 4) tok.encode(lines[i], parallel[i]);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(serial, parallel);
}

TEST(Tokenizer, TrainsFromJsonLines) {
  TempDir dir;
  const std::string jsonl = dir.file("docs.jsonl");
  {
    std::ofstream out(jsonl);
    const std::string text = generated_text();
    for (size_t b = 0, e; b < text.size(); b = e + 1) {
      e = std::min(text.find('\n', b), text.size());
      if (e > b) out << "{\"id\": " << b << ", \"content\": \"" << text.substr(b, e - b) << "\\nmore\"}\n";
    }
  }
  TokenizerTrainingOptions options;
  options.json_key = "content";
  train_tokenizer({jsonl}, 300, dir.file("sub/j"), "unigram", options);
  const Tokenizer tok = Tokenizer::load(dir.file("sub/j.model"));
  EXPECT_EQ(tok.vocab_size(), 300);
  EXPECT_EQ(tok.decode(tok.encode("the dog was not at home\nmore")), "the dog was not at home\nmore");
}

TEST(Tokenizer, PaddedVocabSizeFollowsMegatron) {
  EXPECT_EQ(padded_vocab_size(32000), 32000);
  EXPECT_EQ(padded_vocab_size(32001), 32128);
  EXPECT_EQ(padded_vocab_size(50257), 50304);          // GPT-2's vocabulary
  EXPECT_EQ(padded_vocab_size(50257, 128, 8), 51200);  // multiple of 128 · 8 = 1024
  EXPECT_EQ(padded_vocab_size(300, 128, 2), 512);
  EXPECT_EQ(padded_vocab_size(256, 1, 1), 256);
  EXPECT_EQ(padded_vocab_size(8000, 64, 3), 8064);  // multiple of 192
  expect_error([] { padded_vocab_size(0); }, {"vocabulary size"});
  expect_error([] { padded_vocab_size(100, 0); }, {"--make-vocab-size-divisible-by"});
  expect_error([] { padded_vocab_size(100, 128, 0); }, {"--tensor-model-parallel-size"});
}

TEST(Tokenizer, Errors) {
  TempDir dir;
  expect_error([&] { Tokenizer::load(dir.file("missing.model")); }, {"--tokenizer-model", dir.file("missing.model")});
  const std::string garbage = dir.file("garbage.model");
  std::ofstream(garbage) << "not a protobuf";
  expect_error([&] { Tokenizer::load(garbage); }, {"--tokenizer-model", garbage});
  const std::string corpus = dir.file("c.txt");
  std::ofstream(corpus) << generated_text();
  expect_error([&] { train_tokenizer({dir.file("nope.txt")}, 300, dir.file("m"), "bpe"); }, {"--input", "nope.txt"});
  expect_error([&] { train_tokenizer({corpus}, 300, dir.file("m"), "wordpiece"); }, {"--model-type", "wordpiece"});
  expect_error([&] { train_tokenizer({corpus}, 0, dir.file("m"), "bpe"); }, {"--vocab-size"});
  expect_error([&] { train_tokenizer({corpus}, 100, dir.file("m"), "bpe"); }, {"SentencePiece"});
}

}  // namespace
}  // namespace prores::data
