// Megatron-LM's indexed dataset (the MMIDIDX format): PREFIX.bin holds the token ids of every sequence
// back to back; PREFIX.idx holds the header ("MMIDIDX\0\0", version 1, dtype code), the sequence
// lengths, their byte offsets into .bin and the document index (sequence boundaries of documents).
// The reader memory-maps both files and validates everything before handing out a single token.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace prores::data {

// Megatron's dtype codes: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16.
enum class TokenDType : uint8_t { U8 = 1, I8 = 2, I16 = 3, I32 = 4, I64 = 5, F64 = 6, F32 = 7, U16 = 8 };

class IndexedDataset {
 public:
  // Opens PREFIX.bin / PREFIX.idx. Throws prores::Error naming the file and what is wrong (missing file,
  // bad magic, version or dtype code, truncated index, offsets or lengths past the end of .bin,
  // inconsistent document index). vocab_size > 0 additionally requires every token id < vocab_size
  // (checked lazily per read, naming the file, sequence and id).
  static IndexedDataset open(const std::string& prefix, int64_t vocab_size = 0);
  // The same validation over caller-owned bytes of a .idx and a .bin (which must outlive the dataset);
  // name stands in for the prefix in messages. The seam for tests that parse mutated indexes in memory.
  static IndexedDataset from_memory(const std::string& name, const uint8_t* idx, size_t idx_size,
                                    const uint8_t* bin, size_t bin_size, int64_t vocab_size = 0);
  IndexedDataset(IndexedDataset&&) noexcept;
  IndexedDataset& operator=(IndexedDataset&&) noexcept;
  ~IndexedDataset();

  const std::string& prefix() const;
  TokenDType dtype() const;
  int64_t num_sequences() const;
  int64_t sequence_length(int64_t i) const;
  // Document d covers sequences [document_index()[d], document_index()[d+1]).
  const std::vector<int64_t>& document_index() const;
  int64_t num_tokens() const;
  // out[0, count) (=) tokens [offset, offset + count) of sequence i, as int32.
  void read(int64_t sequence, int64_t offset, int64_t count, int32_t* out) const;

 private:
  struct Impl;
  explicit IndexedDataset(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes PREFIX.bin / PREFIX.idx in the same format (one sequence per document unless end_document is
// called explicitly after several add_sequence calls). Once end_document has been called, documents
// are what it delimits (sequences added after the last call form one final document at finish()).
// Writes PREFIX.bin.tmp / PREFIX.idx.tmp and renames them at finish(); the destructor of an unfinished
// writer removes them.
class IndexedDatasetWriter {
 public:
  IndexedDatasetWriter(const std::string& prefix, TokenDType dtype);
  ~IndexedDatasetWriter();
  void add_sequence(const int32_t* tokens, int64_t count);  // throws if a token does not fit dtype
  void end_document();
  // Writes the .idx, closes both files; throws naming the file on I/O errors.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace prores::data
