// Byte-level dataset: file loading, Megatron-style contiguous splits, window indexing and the seeded
// per-epoch shuffle of training windows.
#include "data/byte_dataset.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <system_error>
#include <utility>

#include "core/check.h"

namespace prores::data {

namespace {

// "969,30,1" for messages.
std::string format_weights(const std::array<double, 3>& w) {
  std::ostringstream os;
  os << w[0] << "," << w[1] << "," << w[2];
  return os.str();
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

// Windows of T + 1 tokens at stride T that fit in a range of n tokens.
int64_t windows_in(int64_t n, int64_t seq_length) { return n > seq_length ? (n - 1) / seq_length : 0; }

// Uniform draw from [0, bound) without modulo bias: reject the 2^64 mod bound lowest raw values.
uint64_t bounded_draw(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;
  uint64_t r = rng();
  while (r < threshold) r = rng();
  return r % bound;
}

}  // namespace

const char* split_name(Split split) {
  switch (split) {
    case Split::Train: return "train";
    case Split::Valid: return "valid";
    case Split::Test: return "test";
  }
  return "?";
}

std::array<double, 3> parse_split(const std::string& text) {
  std::array<double, 3> weights{};
  size_t count = 0;
  std::istringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    const std::string item = trim(part);
    char* end = nullptr;
    errno = 0;
    const double value = item.empty() ? 0.0 : std::strtod(item.c_str(), &end);
    const bool is_number = !item.empty() && end == item.c_str() + item.size() && errno == 0;
    PRORES_CHECK(is_number && std::isfinite(value) && value >= 0 && count < 3,
                 "--split: expected three non-negative numbers like 969,30,1, got '", text, "'");
    weights[count++] = value;
  }
  const std::string trimmed = trim(text);
  const bool trailing_comma = !trimmed.empty() && trimmed.back() == ',';
  PRORES_CHECK(count == 3 && !trailing_comma,
               "--split: expected three non-negative numbers like 969,30,1, got '", text, "'");
  PRORES_CHECK(weights[0] > 0, "--split: the train part must be positive, got '", text, "'");
  return weights;
}

void validate_split(const std::array<double, 3>& weights) {
  for (double w : weights) {
    PRORES_CHECK(std::isfinite(w) && w >= 0, "--split: weights must be finite and non-negative, got ",
                 format_weights(weights));
  }
  PRORES_CHECK(weights[0] > 0, "--split: the train part must be positive, got ", format_weights(weights));
}

std::array<std::array<int64_t, 2>, 3> split_ranges(int64_t n, const std::array<double, 3>& weights) {
  validate_split(weights);
  const double total = weights[0] + weights[1] + weights[2];
  std::array<int64_t, 4> bounds{0, 0, 0, n};
  double cumulative = 0;
  for (int i = 0; i < 2; ++i) {
    cumulative += weights[i];
    bounds[i + 1] = std::min<int64_t>(n, std::llround(static_cast<double>(n) * (cumulative / total)));
  }
  return {{{bounds[0], bounds[1]}, {bounds[1], bounds[2]}, {bounds[2], bounds[3]}}};
}

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(bounded_draw(rng, static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

// The shuffled train order of one epoch, rebuilt when a sample from another epoch is asked for.
struct ByteDataset::EpochCache {
  std::mutex mutex;
  int64_t epoch = -1;
  std::vector<int64_t> order;
};

ByteDataset::ByteDataset(ByteDataset&&) noexcept = default;
ByteDataset& ByteDataset::operator=(ByteDataset&&) noexcept = default;
ByteDataset::~ByteDataset() = default;

ByteDataset ByteDataset::from_text_file(const std::string& path, std::array<double, 3> split_weights,
                                        int64_t seq_length, uint64_t seed) {
  std::error_code ec;
  PRORES_CHECK(!std::filesystem::is_directory(path, ec), "--data-path: '", path, "' is a directory");
  std::ifstream in(path, std::ios::binary);
  PRORES_CHECK(!path.empty() && in.is_open(), "--data-path: cannot open '", path, "'");
  std::vector<uint8_t> bytes;
  try {
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::ios_base::failure& e) {
    PRORES_FAIL("--data-path: cannot read '", path, "': ", e.what());
  }
  PRORES_CHECK(!in.bad(), "--data-path: cannot read '", path, "'");
  return ByteDataset(std::move(bytes), split_weights, seq_length, seed, path);
}

ByteDataset ByteDataset::from_bytes(std::vector<uint8_t> bytes, std::array<double, 3> split_weights,
                                    int64_t seq_length, uint64_t seed, const std::string& name) {
  return ByteDataset(std::move(bytes), split_weights, seq_length, seed, name);
}

ByteDataset::ByteDataset(std::vector<uint8_t> bytes, const std::array<double, 3>& split_weights,
                         int64_t seq_length, uint64_t seed, const std::string& name)
    : bytes_(std::move(bytes)), seq_length_(seq_length), seed_(seed),
      cache_(std::make_unique<EpochCache>()) {
  PRORES_CHECK(seq_length > 0, "--seq-length: must be positive, got ", seq_length);
  validate_split(split_weights);
  ranges_ = split_ranges(num_bytes(), split_weights);
  for (int s = 0; s < 3; ++s) num_samples_[s] = windows_in(ranges_[s][1] - ranges_[s][0], seq_length);
  const bool need_valid = split_weights[1] > 0;
  PRORES_CHECK(num_samples_[0] > 0 && (!need_valid || num_samples_[1] > 0), "--data-path '", name, "': ",
               num_bytes(), " bytes is too small for one training sample and one validation sample at",
               " --seq-length ", seq_length, " with --split ", format_weights(split_weights),
               " (each split needs at least ", seq_length + 1, " bytes; train gets ",
               ranges_[0][1] - ranges_[0][0], ", valid gets ", ranges_[1][1] - ranges_[1][0], ")");
}

int64_t ByteDataset::num_samples(Split split) const { return num_samples_[static_cast<int>(split)]; }

std::array<int64_t, 2> ByteDataset::range(Split split) const { return ranges_[static_cast<int>(split)]; }

int64_t ByteDataset::window_start(Split split, int64_t index) const {
  const int64_t n = num_samples(split);
  PRORES_CHECK(n > 0, "dataset: the ", split_name(split), " split has no samples (see --split)");
  PRORES_CHECK(index >= 0, "dataset: negative sample index ", index);
  int64_t window = index % n;
  if (split == Split::Train) {
    const int64_t epoch = index / n;
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->epoch != epoch) {
      cache_->order = shuffled_order(n, seed_ + static_cast<uint64_t>(epoch));
      cache_->epoch = epoch;
    }
    window = cache_->order[static_cast<size_t>(window)];
  }
  return range(split)[0] + window * seq_length_;
}

void ByteDataset::get_sample(Split split, int64_t index, int32_t* tokens, int32_t* targets) const {
  const uint8_t* window = bytes_.data() + window_start(split, index);
  for (int64_t t = 0; t < seq_length_; ++t) {
    tokens[t] = window[t];
    targets[t] = window[t + 1];
  }
}

}  // namespace prores::data
