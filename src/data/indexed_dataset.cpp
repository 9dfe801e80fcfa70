// Megatron-LM's MMIDIDX indexed dataset: a validating memory-mapped reader and an atomic writer.
// The layout follows NVIDIA/Megatron-LM megatron/core/datasets/indexed_dataset.py: _INDEX_HEADER
// (b"MMIDIDX\x00\x00"), DType (codes 1..8), _IndexWriter.__enter__/write (u64 version 1, u8 dtype code,
// u64 sequence count, u64 document count = len(document_indices), int32 lengths, int64 byte pointers,
// int64 document indices, all little-endian), _IndexReader.__init__ (the 34-byte header) and
// IndexedDatasetBuilder (document_indices starts as [0]; add_document / end_document append the number
// of sequences so far). The index arrays start at byte 34, so they are read with memcpy (unaligned).
#include "data/indexed_dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/check.h"

namespace prores::data {

namespace {

static_assert(std::endian::native == std::endian::little, "the MMIDIDX format is little-endian");

constexpr uint8_t kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
constexpr uint64_t kVersion = 1;
constexpr size_t kHeaderBytes = 9 + 8 + 1 + 8 + 8;  // magic, version, dtype, sequences, documents

bool valid_dtype_code(uint8_t code) { return code >= 1 && code <= 8; }

size_t item_size(TokenDType dtype) {
  switch (dtype) {
    case TokenDType::U8:
    case TokenDType::I8: return 1;
    case TokenDType::I16:
    case TokenDType::U16: return 2;
    case TokenDType::I32:
    case TokenDType::F32: return 4;
    case TokenDType::I64:
    case TokenDType::F64: return 8;
  }
  PRORES_FAIL("unknown token dtype code ", static_cast<int>(dtype));
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

std::string errno_text() { return std::strerror(errno); }

// fwrite of n bytes that accepts an empty (possibly null) buffer.
bool write_all(std::FILE* f, const void* data, size_t n) { return n == 0 || std::fwrite(data, 1, n, f) == n; }

// A whole file mapped read-only (POSIX mmap), unmapped on destruction. An empty file maps to nothing.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    PRORES_CHECK(fd >= 0, "cannot open '", path, "': ", errno_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      PRORES_FAIL("'", path, "' is not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      const std::string error = errno_text();
      ::close(fd);
      PRORES_CHECK(addr != MAP_FAILED, "cannot map '", path, "' (", size_, " bytes): ", error);
      addr_ = addr;
    } else {
      ::close(fd);
    }
  }
  MappedFile(MappedFile&& o) noexcept : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedFile& operator=(MappedFile&& o) noexcept {
    std::swap(addr_, o.addr_);
    std::swap(size_, o.size_);
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (addr_) ::munmap(addr_, size_);
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

struct IndexedDataset::Impl {
  std::string prefix, idx_name, bin_name;
  MappedFile idx_file, bin_file;
  const uint8_t* idx = nullptr;
  size_t idx_size = 0;
  const uint8_t* bin = nullptr;
  size_t bin_size = 0;
  int64_t vocab_size = 0;

  TokenDType dtype = TokenDType::I32;
  size_t itemsize = 4;
  int64_t count = 0;                 // sequences
  const uint8_t* lengths = nullptr;  // int32[count], unaligned
  const uint8_t* pointers = nullptr; // int64[count], unaligned
  std::vector<int64_t> documents;
  int64_t tokens = 0;

  int64_t length(int64_t i) const { return load<int32_t>(lengths + 4 * i); }
  int64_t pointer(int64_t i) const { return load<int64_t>(pointers + 8 * i); }

  void parse();
  void parse_documents(uint64_t doc_count, const uint8_t* at);
  void check_sequences();
  template <typename T>
  void convert(int64_t sequence, int64_t offset, int64_t count, int32_t* out) const;
};

void IndexedDataset::Impl::parse() {
  const std::string& f = idx_name;
  PRORES_CHECK(idx_size >= kHeaderBytes, "'", f, "': truncated index (", idx_size, " bytes; the header alone is ",
               kHeaderBytes, ")");
  PRORES_CHECK(std::memcmp(idx, kMagic, sizeof(kMagic)) == 0, "'", f,
               "': not a Megatron MMIDIDX index (bad magic bytes)");
  const uint64_t version = load<uint64_t>(idx + 9);
  PRORES_CHECK(version == kVersion, "'", f, "': unsupported index version ", version, " (expected 1)");
  const uint8_t code = idx[17];
  PRORES_CHECK(valid_dtype_code(code), "'", f, "': unknown dtype code ", static_cast<int>(code),
               " (Megatron's codes are 1..8)");
  dtype = static_cast<TokenDType>(code);
  itemsize = item_size(dtype);
  const uint64_t seq_count = load<uint64_t>(idx + 18), doc_count = load<uint64_t>(idx + 26);
  const size_t body = idx_size - kHeaderBytes;
  PRORES_CHECK(seq_count <= body / 12, "'", f, "': sequence count ", seq_count, " does not fit an index of ",
               idx_size, " bytes");
  const size_t rest = body - 12 * seq_count;
  PRORES_CHECK(doc_count <= rest / 8, "'", f, "': document count ", doc_count, " does not fit an index of ",
               idx_size, " bytes");
  PRORES_CHECK(rest == 8 * doc_count, "'", f, "': ", rest - 8 * doc_count,
               " trailing bytes after the document index (multimodal indexes are not supported)");
  count = static_cast<int64_t>(seq_count);
  PRORES_CHECK(count > 0, "'", f, "': empty dataset (no sequences)");
  lengths = idx + kHeaderBytes;
  pointers = lengths + 4 * seq_count;
  parse_documents(doc_count, pointers + 8 * seq_count);
  check_sequences();
}

void IndexedDataset::Impl::parse_documents(uint64_t doc_count, const uint8_t* at) {
  const std::string& f = idx_name;
  PRORES_CHECK(doc_count >= 2, "'", f, "': document index has ", doc_count,
               " entries (at least [0, sequence count] is needed)");
  documents.resize(doc_count);
  std::memcpy(documents.data(), at, 8 * doc_count);
  PRORES_CHECK(documents.front() == 0, "'", f, "': document index starts at ", documents.front(), ", not 0");
  for (size_t d = 1; d < documents.size(); ++d)
    PRORES_CHECK(documents[d] >= documents[d - 1], "'", f, "': document index decreases at document ", d - 1,
                 " (", documents[d - 1], " then ", documents[d], ")");
  PRORES_CHECK(documents.back() == count, "'", f, "': document index ends at ", documents.back(),
               ", not at the sequence count ", count);
}

void IndexedDataset::Impl::check_sequences() {
  const auto step = static_cast<int64_t>(itemsize);
  tokens = 0;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t len = length(i), ptr = pointer(i);
    PRORES_CHECK(len >= 0, "'", idx_name, "': sequence ", i, " has negative length ", len);
    PRORES_CHECK(ptr >= 0 && ptr % step == 0, "'", idx_name, "': sequence ", i, " has pointer ", ptr,
                 " (must be a non-negative multiple of the item size ", itemsize, ")");
    const auto start = static_cast<uint64_t>(ptr), bytes = static_cast<uint64_t>(len * step);
    PRORES_CHECK(start <= bin_size && bytes <= bin_size - start, "'", idx_name, "': sequence ", i, " (", len,
                 " tokens at byte ", ptr, ") ends past the end of '", bin_name, "' (", bin_size, " bytes)");
    PRORES_CHECK(!__builtin_add_overflow(tokens, len, &tokens), "'", idx_name, "': token count overflows");
  }
  PRORES_CHECK(tokens > 0, "'", prefix, "': empty dataset (no tokens)");
}

template <typename T>
void IndexedDataset::Impl::convert(int64_t sequence, int64_t offset, int64_t n, int32_t* out) const {
  constexpr int64_t kMaxId = std::numeric_limits<int32_t>::max();
  const int64_t limit = vocab_size > 0 ? std::min(vocab_size, kMaxId) : kMaxId;
  const uint8_t* src = bin + pointer(sequence) + offset * static_cast<int64_t>(sizeof(T));
  for (int64_t k = 0; k < n; ++k) {
    const T v = load<T>(src + k * static_cast<int64_t>(sizeof(T)));
    bool ok;
    if constexpr (std::is_floating_point_v<T>) {
      ok = v >= 0 && v < static_cast<T>(limit) && std::floor(v) == v;
    } else if constexpr (std::is_signed_v<T>) {
      ok = v >= 0 && static_cast<int64_t>(v) < limit;
    } else {
      ok = static_cast<uint64_t>(v) < static_cast<uint64_t>(limit);
    }
    if (!ok) {
      using Shown = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
      PRORES_FAIL("'", bin_name, "': sequence ", sequence, " holds token id ", static_cast<Shown>(v), " at position ",
                  offset + k, ", outside [0, ", limit, ")", vocab_size > 0 ? " (the vocabulary size)" : "");
    }
    out[k] = static_cast<int32_t>(v);
  }
}

IndexedDataset::IndexedDataset(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IndexedDataset::IndexedDataset(IndexedDataset&&) noexcept = default;
IndexedDataset& IndexedDataset::operator=(IndexedDataset&&) noexcept = default;
IndexedDataset::~IndexedDataset() = default;

IndexedDataset IndexedDataset::open(const std::string& prefix, int64_t vocab_size) {
  auto impl = std::make_unique<Impl>();
  impl->prefix = prefix;
  impl->idx_name = prefix + ".idx";
  impl->bin_name = prefix + ".bin";
  impl->vocab_size = vocab_size;
  impl->idx_file = MappedFile(impl->idx_name);
  impl->bin_file = MappedFile(impl->bin_name);
  impl->idx = impl->idx_file.data();
  impl->idx_size = impl->idx_file.size();
  impl->bin = impl->bin_file.data();
  impl->bin_size = impl->bin_file.size();
  impl->parse();
  return IndexedDataset(std::move(impl));
}

IndexedDataset IndexedDataset::from_memory(const std::string& name, const uint8_t* idx, size_t idx_size,
                                           const uint8_t* bin, size_t bin_size, int64_t vocab_size) {
  auto impl = std::make_unique<Impl>();
  impl->prefix = name;
  impl->idx_name = name + ".idx";
  impl->bin_name = name + ".bin";
  impl->vocab_size = vocab_size;
  impl->idx = idx;
  impl->idx_size = idx ? idx_size : 0;
  impl->bin = bin;
  impl->bin_size = bin ? bin_size : 0;
  impl->parse();
  return IndexedDataset(std::move(impl));
}

const std::string& IndexedDataset::prefix() const { return impl_->prefix; }
TokenDType IndexedDataset::dtype() const { return impl_->dtype; }
int64_t IndexedDataset::num_sequences() const { return impl_->count; }
const std::vector<int64_t>& IndexedDataset::document_index() const { return impl_->documents; }
int64_t IndexedDataset::num_tokens() const { return impl_->tokens; }

int64_t IndexedDataset::sequence_length(int64_t i) const {
  PRORES_CHECK(i >= 0 && i < impl_->count, "'", impl_->prefix, "': sequence ", i, " out of range [0, ",
               impl_->count, ")");
  return impl_->length(i);
}

void IndexedDataset::read(int64_t sequence, int64_t offset, int64_t count, int32_t* out) const {
  const Impl& m = *impl_;
  const int64_t len = sequence_length(sequence);
  PRORES_CHECK(offset >= 0 && count >= 0 && offset <= len && count <= len - offset, "'", m.prefix,
               "': tokens [", offset, ", ", offset, " + ", count, ") are outside sequence ", sequence, " of length ",
               len);
  switch (m.dtype) {
    case TokenDType::U8: return m.convert<uint8_t>(sequence, offset, count, out);
    case TokenDType::I8: return m.convert<int8_t>(sequence, offset, count, out);
    case TokenDType::I16: return m.convert<int16_t>(sequence, offset, count, out);
    case TokenDType::I32: return m.convert<int32_t>(sequence, offset, count, out);
    case TokenDType::I64: return m.convert<int64_t>(sequence, offset, count, out);
    case TokenDType::F64: return m.convert<double>(sequence, offset, count, out);
    case TokenDType::F32: return m.convert<float>(sequence, offset, count, out);
    case TokenDType::U16: return m.convert<uint16_t>(sequence, offset, count, out);
  }
}

struct IndexedDatasetWriter::Impl {
  std::string bin_path, idx_path, bin_tmp, idx_tmp;
  TokenDType dtype = TokenDType::I32;
  size_t itemsize = 4;
  std::FILE* bin = nullptr;
  std::vector<int32_t> lengths;
  std::vector<int64_t> documents{0};
  bool explicit_documents = false, finished = false;
  std::vector<uint8_t> buffer;

  template <typename T>
  void encode(const int32_t* tokens, int64_t count);
  void write_index() const;
};

template <typename T>
void IndexedDatasetWriter::Impl::encode(const int32_t* tokens, int64_t count) {
  // The largest id the dtype holds exactly (float32 holds integers up to 2^24 exactly).
  constexpr int64_t kMax = std::is_same_v<T, float>    ? int64_t{1} << 24
                           : std::is_same_v<T, double> ? std::numeric_limits<int32_t>::max()
                                                       : static_cast<int64_t>(std::numeric_limits<T>::max());
  buffer.resize(static_cast<size_t>(count) * sizeof(T));
  for (int64_t k = 0; k < count; ++k) {
    PRORES_CHECK(tokens[k] >= 0 && tokens[k] <= kMax, "'", bin_path, "': token id ", tokens[k], " at position ", k,
                 " of sequence ", lengths.size(), " does not fit the dataset dtype (max ", kMax, ")");
    const T v = static_cast<T>(tokens[k]);
    std::memcpy(buffer.data() + k * sizeof(T), &v, sizeof(T));
  }
}

void IndexedDatasetWriter::Impl::write_index() const {
  std::FILE* f = std::fopen(idx_tmp.c_str(), "wb");
  PRORES_CHECK(f, "cannot create '", idx_tmp, "': ", errno_text());
  std::vector<uint8_t> bytes(kHeaderBytes);
  std::memcpy(bytes.data(), kMagic, sizeof(kMagic));
  std::memcpy(bytes.data() + 9, &kVersion, 8);
  bytes[17] = static_cast<uint8_t>(dtype);
  const uint64_t seq_count = lengths.size(), doc_count = documents.size();
  std::memcpy(bytes.data() + 18, &seq_count, 8);
  std::memcpy(bytes.data() + 26, &doc_count, 8);
  std::vector<int64_t> pointers(lengths.size());
  int64_t at = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    pointers[i] = at;
    at += static_cast<int64_t>(lengths[i]) * static_cast<int64_t>(itemsize);
  }
  bool ok = write_all(f, bytes.data(), bytes.size());
  ok = ok && write_all(f, lengths.data(), 4 * lengths.size());
  ok = ok && write_all(f, pointers.data(), 8 * pointers.size());
  ok = ok && write_all(f, documents.data(), 8 * documents.size());
  const std::string error = errno_text();
  ok = (std::fclose(f) == 0) && ok;
  PRORES_CHECK(ok, "cannot write '", idx_tmp, "': ", error);
}

IndexedDatasetWriter::IndexedDatasetWriter(const std::string& prefix, TokenDType dtype)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.bin_path = prefix + ".bin";
  m.idx_path = prefix + ".idx";
  m.bin_tmp = m.bin_path + ".tmp";
  m.idx_tmp = m.idx_path + ".tmp";
  PRORES_CHECK(valid_dtype_code(static_cast<uint8_t>(dtype)), "'", m.bin_path, "': unknown dtype code ",
               static_cast<int>(dtype));
  m.dtype = dtype;
  m.itemsize = item_size(dtype);
  m.bin = std::fopen(m.bin_tmp.c_str(), "wb");
  PRORES_CHECK(m.bin, "cannot create '", m.bin_tmp, "': ", errno_text());
  std::setvbuf(m.bin, nullptr, _IOFBF, 1 << 20);
}

IndexedDatasetWriter::~IndexedDatasetWriter() {
  if (impl_->bin) std::fclose(impl_->bin);
  if (!impl_->finished) {
    std::remove(impl_->bin_tmp.c_str());
    std::remove(impl_->idx_tmp.c_str());
  }
}

void IndexedDatasetWriter::add_sequence(const int32_t* tokens, int64_t count) {
  Impl& m = *impl_;
  PRORES_CHECK(!m.finished, "'", m.bin_path, "': add_sequence after finish()");
  PRORES_CHECK(count >= 0 && count <= std::numeric_limits<int32_t>::max(), "'", m.bin_path,
               "': sequence length ", count, " does not fit Megatron's int32 lengths");
  switch (m.dtype) {
    case TokenDType::U8: m.encode<uint8_t>(tokens, count); break;
    case TokenDType::I8: m.encode<int8_t>(tokens, count); break;
    case TokenDType::I16: m.encode<int16_t>(tokens, count); break;
    case TokenDType::I32: m.encode<int32_t>(tokens, count); break;
    case TokenDType::I64: m.encode<int64_t>(tokens, count); break;
    case TokenDType::F64: m.encode<double>(tokens, count); break;
    case TokenDType::F32: m.encode<float>(tokens, count); break;
    case TokenDType::U16: m.encode<uint16_t>(tokens, count); break;
  }
  PRORES_CHECK(write_all(m.bin, m.buffer.data(), m.buffer.size()), "cannot write '",
               m.bin_tmp, "': ", errno_text());
  m.lengths.push_back(static_cast<int32_t>(count));
}

void IndexedDatasetWriter::end_document() {
  Impl& m = *impl_;
  PRORES_CHECK(!m.finished, "'", m.bin_path, "': end_document after finish()");
  m.explicit_documents = true;
  m.documents.push_back(static_cast<int64_t>(m.lengths.size()));
}

void IndexedDatasetWriter::finish() {
  Impl& m = *impl_;
  PRORES_CHECK(!m.finished, "'", m.bin_path, "': finish() called twice");
  const auto n = static_cast<int64_t>(m.lengths.size());
  if (!m.explicit_documents) {
    m.documents.resize(static_cast<size_t>(n) + 1);
    for (int64_t i = 0; i <= n; ++i) m.documents[static_cast<size_t>(i)] = i;
  } else if (m.documents.back() != n) {
    m.documents.push_back(n);
  }
  const bool flushed = std::fflush(m.bin) == 0 && !std::ferror(m.bin);
  const std::string error = errno_text();
  const bool closed = std::fclose(m.bin) == 0;
  m.bin = nullptr;
  PRORES_CHECK(flushed && closed, "cannot write '", m.bin_tmp, "': ", error);
  m.write_index();
  PRORES_CHECK(std::rename(m.bin_tmp.c_str(), m.bin_path.c_str()) == 0, "cannot rename '", m.bin_tmp, "' to '",
               m.bin_path, "': ", errno_text());
  PRORES_CHECK(std::rename(m.idx_tmp.c_str(), m.idx_path.c_str()) == 0, "cannot rename '", m.idx_tmp, "' to '",
               m.idx_path, "': ", errno_text());
  m.finished = true;
}

}  // namespace prores::data
