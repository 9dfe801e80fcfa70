// GPT sampling over an indexed dataset: document-level splits, the per-epoch document shuffle, windows of
// T + 1 tokens across document boundaries, and the per-epoch sample shuffle, built lazily per epoch.
#include "data/gpt_dataset.h"

#include <algorithm>
#include <mutex>
#include <utility>

#include "core/check.h"
#include "core/random.h"

namespace prores::data {

namespace {

// The seed of one shuffle: stream 0 orders documents, stream 1 orders samples.
uint64_t derive_seed(uint64_t seed, Split split, int64_t epoch, uint64_t stream) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<uint64_t>(split));
  h = splitmix64(h ^ static_cast<uint64_t>(epoch));
  return splitmix64(h ^ stream);
}

// Windows of T + 1 tokens at stride T in a stream of n tokens (Megatron: (tokens − 1) // seq_length).
int64_t windows_in(int64_t n, int64_t seq_length) { return n > seq_length ? (n - 1) / seq_length : 0; }

}  // namespace

// One epoch of one split: the document order, where each document starts in the token stream, and the
// order in which the epoch's samples are visited.
struct GptDataset::Epoch {
  int64_t epoch = 0;
  std::vector<int64_t> documents;  // document ids in stream order
  std::vector<int64_t> start;      // start[j]: stream offset of documents[j]; start.back() = tokens
  std::vector<int64_t> samples;    // samples[i]: the in-epoch sample visited i-th
};

// The cached epoch of one split and the lock that guards it.
struct GptDataset::SplitState {
  std::mutex mutex;
  std::shared_ptr<const Epoch> epoch;
};

GptDataset::GptDataset(std::shared_ptr<const IndexedDataset> data, int64_t vocab_size,
                       const std::array<double, 3>& split_weights, int64_t seq_length, uint64_t seed)
    : data_(std::move(data)), vocab_size_(vocab_size), seq_length_(seq_length), seed_(seed) {
  PRORES_CHECK(data_ != nullptr, "GptDataset: no indexed dataset given");
  PRORES_CHECK(seq_length > 0, "--seq-length: must be positive, got ", seq_length);
  PRORES_CHECK(vocab_size > 0, "--vocab-size: must be positive, got ", vocab_size);
  validate_split(split_weights);
  for (auto& state : state_) state = std::make_unique<SplitState>();

  const int64_t num_sequences = data_->num_sequences();
  sequence_start_.resize(static_cast<size_t>(num_sequences) + 1);
  for (int64_t s = 0; s < num_sequences; ++s) {
    const auto i = static_cast<size_t>(s);
    sequence_start_[i + 1] = sequence_start_[i] + data_->sequence_length(s);
  }
  const auto& doc_index = data_->document_index();
  const int64_t num_documents = doc_index.empty() ? 0 : static_cast<int64_t>(doc_index.size()) - 1;
  documents_ = split_ranges(num_documents, split_weights);
  for (int s = 0; s < 3; ++s) {
    const int64_t first = doc_index.empty() ? 0 : doc_index[static_cast<size_t>(documents_[s][0])];
    const int64_t last = doc_index.empty() ? 0 : doc_index[static_cast<size_t>(documents_[s][1])];
    num_tokens_[s] =
        sequence_start_[static_cast<size_t>(last)] - sequence_start_[static_cast<size_t>(first)];
    num_samples_[s] = windows_in(num_tokens_[s], seq_length);
  }
  const bool need_valid = split_weights[1] > 0;
  PRORES_CHECK(num_samples_[0] > 0 && (!need_valid || num_samples_[1] > 0), "--data-path '",
               data_->prefix(), "': ", num_documents, " documents (", sequence_start_.back(),
               " tokens) are too few for one training sample and one validation sample at --seq-length ",
               seq_length, " with --split ", split_weights[0], ",", split_weights[1], ",", split_weights[2],
               " (each split needs ", seq_length + 1, " tokens; train gets ",
               documents_[0][1] - documents_[0][0], " documents with ", num_tokens_[0], " tokens, valid ",
               documents_[1][1] - documents_[1][0], " documents with ", num_tokens_[1], " tokens)");
}

std::shared_ptr<GptDataset> GptDataset::open(const std::string& prefix, int64_t vocab_size,
                                             const std::array<double, 3>& split_weights, int64_t seq_length,
                                             uint64_t seed) {
  auto data = std::make_shared<const IndexedDataset>(IndexedDataset::open(prefix, vocab_size));
  return std::make_shared<GptDataset>(std::move(data), vocab_size, split_weights, seq_length, seed);
}

GptDataset::~GptDataset() = default;

int64_t GptDataset::num_samples(Split split) const { return num_samples_[static_cast<int>(split)]; }

int64_t GptDataset::num_tokens(Split split) const { return num_tokens_[static_cast<int>(split)]; }

std::array<int64_t, 2> GptDataset::document_range(Split split) const {
  return documents_[static_cast<int>(split)];
}

int64_t GptDataset::document_length(int64_t document) const {
  const auto& doc_index = data_->document_index();
  PRORES_CHECK(document >= 0 && document + 1 < static_cast<int64_t>(doc_index.size()), "dataset '",
               data_->prefix(), "': document ", document, " out of range");
  return sequence_start_[static_cast<size_t>(doc_index[static_cast<size_t>(document) + 1])] -
         sequence_start_[static_cast<size_t>(doc_index[static_cast<size_t>(document)])];
}

void GptDataset::read_document(int64_t document, int64_t offset, int64_t count, int32_t* out) const {
  const int64_t length = document_length(document);
  PRORES_CHECK(offset >= 0 && count >= 0 && offset + count <= length, "dataset '", data_->prefix(),
               "': tokens [", offset, ", ", offset + count, ") outside document ", document, " of ", length,
               " tokens");
  const auto& doc_index = data_->document_index();
  const int64_t first = doc_index[static_cast<size_t>(document)];
  const int64_t last = doc_index[static_cast<size_t>(document) + 1];
  int64_t position = sequence_start_[static_cast<size_t>(first)] + offset;
  // The last sequence of the document that starts at or before position (skips empty sequences).
  const auto begin = sequence_start_.begin();
  int64_t sequence = std::upper_bound(begin + first, begin + last + 1, position) - begin - 1;
  while (count > 0) {
    const int64_t in_sequence = position - sequence_start_[static_cast<size_t>(sequence)];
    const int64_t take = std::min(count, data_->sequence_length(sequence) - in_sequence);
    if (take > 0) data_->read(sequence, in_sequence, take, out);
    out += take;
    position += take;
    count -= take;
    ++sequence;
  }
}

std::shared_ptr<const GptDataset::Epoch> GptDataset::build_epoch(Split split, int64_t epoch) const {
  const auto [first, last] = documents_[static_cast<int>(split)];
  auto result = std::make_shared<Epoch>();
  result->epoch = epoch;
  result->documents = shuffled_order(last - first, derive_seed(seed_, split, epoch, 0));
  result->start.resize(result->documents.size() + 1);
  for (size_t j = 0; j < result->documents.size(); ++j) {
    result->documents[j] += first;
    result->start[j + 1] = result->start[j] + document_length(result->documents[j]);
  }
  result->samples = shuffled_order(num_samples(split), derive_seed(seed_, split, epoch, 1));
  return result;
}

std::shared_ptr<const GptDataset::Epoch> GptDataset::epoch_of(Split split, int64_t epoch) const {
  SplitState& state = *state_[static_cast<int>(split)];
  std::lock_guard<std::mutex> lock(state.mutex);
  if (!state.epoch || state.epoch->epoch != epoch) state.epoch = build_epoch(split, epoch);
  return state.epoch;
}

std::vector<int64_t> GptDataset::document_order(Split split, int64_t epoch) const {
  PRORES_CHECK(epoch >= 0, "dataset '", data_->prefix(), "': negative epoch ", epoch);
  return epoch_of(split, epoch)->documents;
}

void GptDataset::check_index(Split split, int64_t index) const {
  PRORES_CHECK(num_samples(split) > 0, "dataset '", data_->prefix(), "': the ", split_name(split),
               " split has no samples (see --split)");
  PRORES_CHECK(index >= 0, "dataset '", data_->prefix(), "': negative sample index ", index);
}

GptSamplePosition GptDataset::locate(Split split, int64_t index) const {
  check_index(split, index);
  const int64_t n = num_samples(split);
  GptSamplePosition position;
  position.epoch = index / n;
  position.sample = epoch_of(split, position.epoch)->samples[static_cast<size_t>(index % n)];
  position.token_offset = position.sample * seq_length_;
  return position;
}

void GptDataset::get_window(Split split, int64_t index, int32_t* window) const {
  check_index(split, index);
  const int64_t n = num_samples(split);
  const std::shared_ptr<const Epoch> epoch = epoch_of(split, index / n);
  int64_t position = epoch->samples[static_cast<size_t>(index % n)] * seq_length_;
  // The last document that starts at or before position (skips empty documents).
  auto j = static_cast<size_t>(std::upper_bound(epoch->start.begin(), epoch->start.end(), position) -
                               epoch->start.begin() - 1);
  int32_t* out = window;
  for (int64_t remaining = seq_length_ + 1; remaining > 0; ++j) {
    const int64_t in_document = position - epoch->start[j];
    const int64_t take = std::min(remaining, epoch->start[j + 1] - epoch->start[j] - in_document);
    if (take > 0) read_document(epoch->documents[j], in_document, take, out);
    out += take;
    position += take;
    remaining -= take;
  }
  for (int64_t t = 0; t <= seq_length_; ++t) {
    PRORES_CHECK(window[t] >= 0 && window[t] < vocab_size_, "dataset '", data_->prefix(), "': token id ",
                 window[t], " of the ", split_name(split), " sample at index ", index,
                 " is outside --vocab-size ", vocab_size_);
  }
}

void GptDataset::get_sample(Split split, int64_t index, int32_t* tokens, int32_t* targets) const {
  std::vector<int32_t> window(static_cast<size_t>(seq_length_) + 1);
  get_window(split, index, window.data());
  std::copy(window.begin(), window.end() - 1, tokens);
  std::copy(window.begin() + 1, window.end(), targets);
}

}  // namespace prores::data
