// SentencePiece tokenizer, trainer and padded vocabulary size (see tokenizer.h).
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <thread>
#include <unordered_map>

#include "core/check.h"
#include "data/text_documents.h"

namespace prores::data {

static_assert(sizeof(int) == sizeof(int32_t), "SentencePiece ids are int");

struct Tokenizer::Impl {
  std::string path;
  sentencepiece::SentencePieceProcessor processor;
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& model_path) {
  auto impl = std::make_unique<Impl>();
  impl->path = model_path;
  PRORES_CHECK(!model_path.empty(), "--tokenizer-model: no model file given");
  const auto status = impl->processor.Load(model_path);
  PRORES_CHECK(status.ok(), "--tokenizer-model: cannot load SentencePiece model '", model_path, "': ",
               status.ToString());
  return Tokenizer(std::move(impl));
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<int> out;
  const auto status = impl_->processor.Encode(absl::string_view(text.data(), text.size()), &out);
  PRORES_CHECK(status.ok(), "tokenizer '", impl_->path, "': encode failed: ", status.ToString());
  ids.assign(out.begin(), out.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  encode(text, ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const std::vector<int> in(ids.begin(), ids.end());
  for (int id : in)
    PRORES_CHECK(id >= 0 && id < impl_->processor.GetPieceSize(), "tokenizer '", impl_->path, "': id ", id,
                 " outside the vocabulary of size ", impl_->processor.GetPieceSize());
  std::string text;
  const auto status = impl_->processor.Decode(in, &text);
  PRORES_CHECK(status.ok(), "tokenizer '", impl_->path, "': decode failed: ", status.ToString());
  return text;
}

const std::string& Tokenizer::model_path() const { return impl_->path; }
int64_t Tokenizer::vocab_size() const { return impl_->processor.GetPieceSize(); }
int32_t Tokenizer::eos_id() const { return impl_->processor.eos_id(); }
int32_t Tokenizer::bos_id() const { return impl_->processor.bos_id(); }

namespace {

// Feeds SentencePieceTrainer the non-empty lines of the documents of a DocumentReader, counting the documents
// and bytes read in `progress` (finished at the end of the input). An input error ends the iteration; the
// exception is kept and rethrown once training returns.
class LineIterator final : public sentencepiece::SentenceIterator {
 public:
  LineIterator(DocumentReader& reader, Progress& progress) : reader_(reader), progress_(progress) { advance(); }

  bool done() const override { return done_; }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }
  std::exception_ptr error() const { return error_; }

 private:
  // Moves to the next non-empty line, reading documents as needed.
  void advance() {
    try {
      for (;;) {
        while (doc_ < docs_.size()) {
          const std::string& d = docs_[doc_];
          if (pos_ > d.size()) {
            ++doc_;
            pos_ = 0;
            continue;
          }
          size_t end = d.find('\n', pos_);
          if (end == std::string::npos) end = d.size();
          line_.assign(d, pos_, end - pos_);
          pos_ = end + 1;
          if (!line_.empty()) return;
        }
        if (!reader_.next(docs_, 1 << 22)) {
          progress_.finish();
          break;
        }
        const uint64_t bytes = reader_.bytes_read() - bytes_counted_;
        bytes_counted_ = reader_.bytes_read();
        progress_.advance(static_cast<int64_t>(docs_.size()), static_cast<int64_t>(bytes));
        doc_ = pos_ = 0;
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    done_ = true;
  }

  DocumentReader& reader_;
  Progress& progress_;
  uint64_t bytes_counted_ = 0;  // reader_.bytes_read() at the last progress_.advance
  std::vector<std::string> docs_;
  size_t doc_ = 0, pos_ = 0;
  std::string line_;
  bool done_ = false;
  std::exception_ptr error_;
};

}  // namespace

void train_tokenizer(const std::vector<std::string>& inputs, int64_t vocab_size, const std::string& model_prefix,
                     const std::string& model_type, const TokenizerTrainingOptions& options) {
  PRORES_CHECK(vocab_size > 0, "--vocab-size must be positive, got ", vocab_size);
  PRORES_CHECK(model_type == "bpe" || model_type == "unigram", "--model-type must be bpe or unigram, got '",
               model_type, "'");
  PRORES_CHECK(!model_prefix.empty(), "--model-prefix: no prefix given");
  PRORES_CHECK(options.input_sentence_size >= 0, "--input-sentence-size must be non-negative");
  PRORES_CHECK(options.character_coverage > 0 && options.character_coverage <= 1,
               "--character-coverage must be in (0, 1], got ", options.character_coverage);
  DocumentFormat format;
  format.json_key = options.json_key;
  DocumentReader reader(inputs, format);
  const std::filesystem::path parent = std::filesystem::path(model_prefix).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  PRORES_CHECK(!ec, "--model-prefix: cannot create directory '", parent.string(), "': ", ec.message());
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int threads = options.num_threads > 0 ? options.num_threads : cores;
  const std::unordered_map<std::string, std::string> args = {
      {"model_prefix", model_prefix},
      {"vocab_size", std::to_string(vocab_size)},
      {"model_type", model_type},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"input_sentence_size", std::to_string(options.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(threads)},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"minloglevel", "1"},
  };
  Progress training("train-tokenizer", 0, "", options.progress);
  training.note("a " + model_type + " model of " + std::to_string(vocab_size) + " pieces on " +
                std::to_string(threads) + " threads from " + format_bytes(static_cast<double>(reader.total_bytes())) +
                " of input, read first");
  ProgressOptions reading_options = options.progress;
  reading_options.total_bytes = static_cast<int64_t>(reader.total_bytes());
  Progress reading("train-tokenizer reading", 0, "documents", reading_options);
  LineIterator lines(reader, reading);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines);
  if (lines.error()) std::rethrow_exception(lines.error());
  PRORES_CHECK(status.ok(), "train-tokenizer: SentencePiece failed: ", status.ToString());
  training.finish();
}

int64_t padded_vocab_size(int64_t vocab, int64_t divisible_by, int64_t tp) {
  PRORES_CHECK(vocab > 0, "vocabulary size must be positive, got ", vocab);
  PRORES_CHECK(divisible_by > 0, "--make-vocab-size-divisible-by must be positive, got ", divisible_by);
  PRORES_CHECK(tp > 0, "--tensor-model-parallel-size must be positive, got ", tp);
  const int64_t multiple = divisible_by * tp;
  return (vocab + multiple - 1) / multiple * multiple;
}

}  // namespace prores::data
