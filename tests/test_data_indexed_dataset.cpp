// Megatron indexed dataset (MMIDIDX): the writer's bytes against a fixture written out by hand from the
// published format, a file written by Megatron's own writer code (tests/fixtures/megatron_tiny.*, made
// by make_megatron_tiny.py), every kind of bad input (each error names the file), and a seeded fuzz of
// one million mutated indexes that must each parse to a readable dataset or throw prores::Error.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/indexed_dataset.h"
#include "test_util.h"

namespace prores::data {
namespace {

using test::expect_error;

using test::TempDir;

using Bytes = std::vector<uint8_t>;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Little-endian encodings for writing expected bytes by hand.
void put(Bytes& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

std::vector<int32_t> read_all(const IndexedDataset& ds, int64_t sequence) {
  std::vector<int32_t> out(static_cast<size_t>(ds.sequence_length(sequence)));
  ds.read(sequence, 0, static_cast<int64_t>(out.size()), out.data());
  return out;
}

TEST(IndexedDataset, WriterMatchesHandWrittenBytes) {
  TempDir dir;
  const std::string prefix = dir.file("three_docs");
  IndexedDatasetWriter writer(prefix, TokenDType::U16);
  const std::vector<std::vector<int32_t>> docs = {{5, 6, 7}, {1000}, {65535, 0}};
  for (const auto& d : docs) writer.add_sequence(d.data(), static_cast<int64_t>(d.size()));
  writer.finish();

  Bytes idx = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};  // magic b"MMIDIDX\x00\x00"
  put(idx, 1, 8);                                          // version, uint64
  put(idx, 8, 1);                                          // dtype code 8 = uint16
  put(idx, 3, 8);                                          // sequence count
  put(idx, 4, 8);                                          // document count = len([0, 1, 2, 3])
  for (uint64_t len : {3, 1, 2}) put(idx, len, 4);         // sequence lengths, int32
  for (uint64_t ptr : {0, 6, 8}) put(idx, ptr, 8);         // byte pointers into .bin, int64
  for (uint64_t d : {0, 1, 2, 3}) put(idx, d, 8);          // document indices, int64
  ASSERT_EQ(idx.size(), 34u + 3 * 4 + 3 * 8 + 4 * 8);
  const Bytes bin = {5, 0, 6, 0, 7, 0, 0xE8, 0x03, 0xFF, 0xFF, 0, 0};  // uint16 little-endian tokens
  EXPECT_EQ(read_bytes(prefix + ".idx"), idx);
  EXPECT_EQ(read_bytes(prefix + ".bin"), bin);
  EXPECT_FALSE(std::filesystem::exists(prefix + ".idx.tmp"));
  EXPECT_FALSE(std::filesystem::exists(prefix + ".bin.tmp"));

  const IndexedDataset ds = IndexedDataset::open(prefix);
  EXPECT_EQ(ds.prefix(), prefix);
  EXPECT_EQ(ds.dtype(), TokenDType::U16);
  EXPECT_EQ(ds.num_sequences(), 3);
  EXPECT_EQ(ds.num_tokens(), 6);
  EXPECT_EQ(ds.document_index(), (std::vector<int64_t>{0, 1, 2, 3}));
  for (int64_t s = 0; s < 3; ++s) EXPECT_EQ(read_all(ds, s), docs[static_cast<size_t>(s)]);
  int32_t tail[2];
  ds.read(0, 1, 2, tail);
  EXPECT_EQ(tail[0], 6);
  EXPECT_EQ(tail[1], 7);
}

TEST(IndexedDataset, ExplicitDocumentsGroupSequences) {
  TempDir dir;
  const std::string prefix = dir.file("grouped");
  IndexedDatasetWriter writer(prefix, TokenDType::I32);
  const std::vector<std::vector<int32_t>> seqs = {{1, 2}, {3}, {100000, 4, 5}, {6}, {}, {7, 8}};
  writer.add_sequence(seqs[0].data(), 2);
  writer.add_sequence(seqs[1].data(), 1);
  writer.end_document();  // document 0: sequences 0, 1
  writer.add_sequence(seqs[2].data(), 3);
  writer.end_document();  // document 1: sequence 2
  writer.add_sequence(seqs[3].data(), 1);
  writer.add_sequence(seqs[4].data(), 0);
  writer.add_sequence(seqs[5].data(), 2);
  writer.finish();  // document 2: the trailing sequences 3, 4, 5
  const IndexedDataset ds = IndexedDataset::open(prefix);
  EXPECT_EQ(ds.document_index(), (std::vector<int64_t>{0, 2, 3, 6}));
  EXPECT_EQ(ds.num_tokens(), 9);
  for (int64_t s = 0; s < 6; ++s) EXPECT_EQ(read_all(ds, s), seqs[static_cast<size_t>(s)]);
}

TEST(IndexedDataset, ReadsMegatronWrittenFixture) {
  const std::string prefix = std::string(PRORES_SOURCE_DIR) + "/tests/fixtures/megatron_tiny";
  const IndexedDataset ds = IndexedDataset::open(prefix);
  EXPECT_EQ(ds.dtype(), TokenDType::I32);
  EXPECT_EQ(ds.num_sequences(), 6);
  EXPECT_EQ(ds.num_tokens(), 13);
  EXPECT_EQ(ds.document_index(), (std::vector<int64_t>{0, 2, 3, 5, 6}));
  const std::vector<std::vector<int32_t>> expected = {{1, 2, 3}, {4, 5}, {100000}, {7}, {8, 9, 10, 11}, {31999, 2}};
  for (int64_t s = 0; s < 6; ++s) EXPECT_EQ(read_all(ds, s), expected[static_cast<size_t>(s)]);

  // Our writer reproduces Megatron's bytes for the same documents.
  TempDir dir;
  IndexedDatasetWriter writer(dir.file("again"), TokenDType::I32);
  for (size_t s = 0; s < expected.size(); ++s) {
    writer.add_sequence(expected[s].data(), static_cast<int64_t>(expected[s].size()));
    if (s == 1 || s == 2 || s == 4) writer.end_document();
  }
  writer.finish();
  EXPECT_EQ(read_bytes(dir.file("again.idx")), read_bytes(prefix + ".idx"));
  EXPECT_EQ(read_bytes(dir.file("again.bin")), read_bytes(prefix + ".bin"));

  // With a vocabulary of 32000, sequence 2 holds an id out of range: the read names file, sequence, id.
  const IndexedDataset checked = IndexedDataset::open(prefix, 32000);
  EXPECT_EQ(read_all(checked, 5), expected[5]);
  int32_t out[1];
  expect_error([&] { checked.read(2, 0, 1, out); }, {"megatron_tiny.bin", "sequence 2", "100000", "32000"});
}

TEST(IndexedDataset, WriterRejectsTokensOutsideTheDtype) {
  TempDir dir;
  const std::string prefix = dir.file("w");
  {
    IndexedDatasetWriter writer(prefix, TokenDType::U16);
    const int32_t big[] = {1, 65536}, negative[] = {-1};
    expect_error([&] { writer.add_sequence(big, 2); }, {"w.bin", "65536"});
    expect_error([&] { writer.add_sequence(negative, 1); }, {"w.bin", "-1"});
    EXPECT_TRUE(std::filesystem::exists(prefix + ".bin.tmp"));
  }  // abandoned: the temporary file goes, nothing is published
  EXPECT_FALSE(std::filesystem::exists(prefix + ".bin.tmp"));
  EXPECT_FALSE(std::filesystem::exists(prefix + ".bin"));
  expect_error([&] { IndexedDatasetWriter(dir.file("missing_dir/x"), TokenDType::I32); }, {"missing_dir/x.bin.tmp"});
}

// A valid two-document uint16 dataset as (idx, bin) bytes for the bad-input tests to corrupt.
struct Pair {
  Bytes idx, bin;
};

Pair valid_pair(TokenDType dtype = TokenDType::U16) {
  TempDir dir;
  IndexedDatasetWriter writer(dir.file("v"), dtype);
  const int32_t a[] = {1, 2, 3, 4}, b[] = {5, 6};
  writer.add_sequence(a, 4);
  writer.add_sequence(b, 2);
  writer.finish();
  return {read_bytes(dir.file("v.idx")), read_bytes(dir.file("v.bin"))};
}

void set(Bytes& b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

// Offsets in valid_pair()'s index: lengths at 34, pointers at 42, document indices at 58.
constexpr size_t kLengths = 34, kPointers = 42, kDocs = 58;

// Writes pair under dir as "bad", expects open() to fail naming `file` and `what`.
void expect_open_error(const Pair& pair, const std::string& file, const std::string& what, int64_t vocab = 0) {
  TempDir dir;
  write_bytes(dir.file("bad.idx"), pair.idx);
  write_bytes(dir.file("bad.bin"), pair.bin);
  expect_error([&] { IndexedDataset::open(dir.file("bad"), vocab); }, {file, what});
}

TEST(IndexedDataset, BadInputsNameTheFile) {
  TempDir dir;
  const Pair good = valid_pair();
  write_bytes(dir.file("only_idx.idx"), good.idx);
  expect_error([&] { IndexedDataset::open(dir.file("only_idx")); }, {"only_idx.bin", "cannot open"});
  write_bytes(dir.file("only_bin.bin"), good.bin);
  expect_error([&] { IndexedDataset::open(dir.file("only_bin")); }, {"only_bin.idx", "cannot open"});

  Pair p = good;
  p.bin.resize(10);  // the second sequence (2 tokens at byte 8) ends at byte 12
  expect_open_error(p, "bad.bin", "ends past the end");
  p = good;
  p.idx[0] = 'X';
  expect_open_error(p, "bad.idx", "bad magic");
  p = good;
  set(p.idx, 9, 2, 8);
  expect_open_error(p, "bad.idx", "version 2");
  for (uint64_t code : {0, 9, 255}) {
    p = good;
    set(p.idx, 17, code, 1);
    expect_open_error(p, "bad.idx", "dtype code " + std::to_string(code));
  }
  p = good;
  set(p.idx, kPointers + 8, 10, 8);  // second pointer 10: 2 tokens end at byte 14 > 12
  expect_open_error(p, "bad.bin", "ends past the end");
  p = good;
  set(p.idx, kPointers + 8, 7, 8);  // not a multiple of the uint16 item size
  expect_open_error(p, "bad.idx", "pointer 7");
  p = good;
  set(p.idx, kLengths, 0xFFFFFFFF, 4);
  expect_open_error(p, "bad.idx", "negative length");
  p = good;
  set(p.idx, kDocs + 8, 2, 8);  // [0, 2, 2] is fine; [0, 2, 1] decreases
  set(p.idx, kDocs + 16, 1, 8);
  expect_open_error(p, "bad.idx", "decreases");
  p = good;
  set(p.idx, kDocs, 1, 8);
  expect_open_error(p, "bad.idx", "starts at 1");
  p = good;
  set(p.idx, kDocs + 16, 1, 8);
  expect_open_error(p, "bad.idx", "ends at 1");
  p = good;
  p.idx.resize(20);
  expect_open_error(p, "bad.idx", "truncated");
  p = good;
  p.idx.pop_back();
  expect_open_error(p, "bad.idx", "does not fit");
  p = good;
  p.idx.push_back(0);
  expect_open_error(p, "bad.idx", "trailing bytes");
  p = good;
  set(p.idx, 18, uint64_t{1} << 62, 8);  // sequence count that would overflow 12 * count
  expect_open_error(p, "bad.idx", "sequence count");
  p = good;
  set(p.idx, 26, ~uint64_t{0}, 8);
  expect_open_error(p, "bad.idx", "document count");
  // Token ids are checked against the vocabulary at read time.
  write_bytes(dir.file("v.idx"), good.idx);
  write_bytes(dir.file("v.bin"), good.bin);
  const IndexedDataset ds = IndexedDataset::open(dir.file("v"), 5);
  int32_t out[4];
  ds.read(0, 0, 4, out);
  expect_error([&] { ds.read(1, 0, 2, out); }, {"v.bin", "sequence 1", "token id 5", "vocabulary"});
  expect_error([&] { ds.read(2, 0, 1, out); }, {"sequence 2 out of range"});
  expect_error([&] { ds.read(0, 3, 2, out); }, {"outside sequence 0"});
}

TEST(IndexedDataset, EmptyDatasetsAreErrors) {
  TempDir dir;
  IndexedDatasetWriter(dir.file("none"), TokenDType::U16).finish();
  expect_error([&] { IndexedDataset::open(dir.file("none")); }, {"none.idx", "empty dataset"});
  IndexedDatasetWriter zero(dir.file("zero"), TokenDType::U16);
  zero.add_sequence(nullptr, 0);
  zero.finish();
  expect_error([&] { IndexedDataset::open(dir.file("zero")); }, {"zero", "no tokens"});
}

// Mutates a copy of idx in one of several ways (bit flips, truncation, extension, random length or
// count fields, random array entries).
Bytes mutate(const Bytes& idx, std::mt19937_64& rng) {
  Bytes b = idx;
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  auto random_value = [&]() -> uint64_t {
    switch (pick(4)) {
      case 0: return pick(16);
      case 1: return rng();
      case 2: return ~pick(16);  // small negative
      default: return pick(1u << 20);
    }
  };
  switch (pick(6)) {
    case 0:
      for (uint64_t k = 1 + pick(4); k > 0; --k) b[pick(b.size())] ^= static_cast<uint8_t>(1u << pick(8));
      break;
    case 1: b.resize(pick(b.size())); break;
    case 2:
      for (uint64_t k = 1 + pick(16); k > 0; --k) b.push_back(static_cast<uint8_t>(rng()));
      break;
    case 3: set(b, pick(2) ? 18 : 26, random_value(), 8); break;
    case 4: {
      const size_t at = 34 + pick(b.size() - 34 - 3);
      set(b, at, random_value(), pick(2) ? 4 : static_cast<int>(std::min<size_t>(8, b.size() - at)));
      break;
    }
    default:
      for (uint64_t k = 1 + pick(3); k > 0; --k) b[pick(b.size())] = static_cast<uint8_t>(rng());
  }
  return Bytes(b.begin(), b.end());  // an allocation of exactly b.size() bytes, so ASan sees any overread
}

TEST(IndexedDataset, MillionMutatedIndexesParseOrThrow) {
  // Bases: several dtypes and shapes, documents of several sequences, an empty sequence.
  std::vector<Pair> bases;
  std::mt19937_64 rng(20261127);
  for (TokenDType dtype : {TokenDType::U16, TokenDType::I32, TokenDType::U8, TokenDType::I64}) {
    TempDir dir;
    IndexedDatasetWriter writer(dir.file("b"), dtype);
    for (int s = 0; s < 2 + static_cast<int>(rng() % 5); ++s) {
      std::vector<int32_t> seq(rng() % 6);
      for (auto& t : seq) t = static_cast<int32_t>(rng() % 200);
      writer.add_sequence(seq.data(), static_cast<int64_t>(seq.size()));
      if (rng() % 2) writer.end_document();
    }
    const int32_t last[] = {7};
    writer.add_sequence(last, 1);
    writer.finish();
    bases.push_back({read_bytes(dir.file("b.idx")), read_bytes(dir.file("b.bin"))});
  }
  int64_t parsed = 0, rejected = 0, bad_reads = 0;
  std::vector<int32_t> out;
  for (int iter = 0; iter < 1'000'000; ++iter) {
    const Pair& base = bases[static_cast<size_t>(iter) % bases.size()];
    const Bytes idx = mutate(base.idx, rng);
    const size_t cut = std::min<size_t>(base.bin.size(), rng() % 8 == 0 ? rng() % 3 : 0);  // a short .bin
    const Bytes bin(base.bin.begin(), base.bin.end() - static_cast<long>(cut));
    try {
      const IndexedDataset ds =
          IndexedDataset::from_memory("fuzz", idx.data(), idx.size(), bin.data(), bin.size(), /*vocab_size=*/150);
      ++parsed;
      for (int64_t s = 0; s < ds.num_sequences(); ++s) {
        out.resize(static_cast<size_t>(ds.sequence_length(s)));
        try {
          ds.read(s, 0, static_cast<int64_t>(out.size()), out.data());
        } catch (const Error&) {
          ++bad_reads;  // a token id >= 150: a valid index over tokens outside the vocabulary
        }
      }
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_EQ(parsed + rejected, 1'000'000);
  EXPECT_GT(parsed, 2'000) << "some mutations should leave the index valid (then every read must work)";
  EXPECT_GT(rejected, 100'000);
  RecordProperty("parsed", std::to_string(parsed));
  RecordProperty("bad_reads", std::to_string(bad_reads));
}

}  // namespace
}  // namespace prores::data
