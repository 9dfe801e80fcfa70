// `prores data train-tokenizer` and `prores data preprocess` (see data_command.h). Preprocessing reads
// documents in batches (the next batch is read while the current one is tokenized), tokenizes each
// batch on --workers threads that pull small chunks of documents, appends EOS to every document and
// writes the batch in input order, one sequence per document (Megatron's preprocess_data.py without
// sentence splitting, with --append-eod). Progress lines (documents, bytes, an ETA from the input files'
// size) go to stderr, the summary to stdout.
#include "cli/data_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <future>
#include <iomanip>
#include <mutex>
#include <thread>

#include "cli/option_parsing.h"
#include "core/check.h"
#include "core/progress.h"
#include "data/indexed_dataset.h"
#include "data/text_documents.h"
#include "data/tokenizer.h"

namespace prores {

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: prores data <train-tokenizer|preprocess> [options]   (prores data <subcommand> --help)\n"
    "  train-tokenizer  train a SentencePiece model (BPE or unigram) on text / JSON-lines files\n"
    "  preprocess       tokenize documents into a Megatron indexed dataset OUT.bin / OUT.idx\n"
    "Inputs: *.jsonl / *.json files are JSON lines (one object per line, the text in --json-key);\n"
    "other files are plain text, one document per blank-line-separated block (or per file with\n"
    "--document-per-file).\n";

constexpr size_t kBatchBytes = 8 << 20;  // text per preprocessing batch
constexpr size_t kMaxChunkDocs = 16;     // most documents a worker takes at a time

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int default_workers() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

// The --input values, each a comma-separated list of files, flattened in order.
std::vector<std::string> split_inputs(const std::vector<std::string>& values) {
  std::vector<std::string> files;
  for (const std::string& v : values) {
    size_t begin = 0;
    while (begin <= v.size()) {
      const size_t end = std::min(v.find(',', begin), v.size());
      if (end > begin) files.push_back(v.substr(begin, end - begin));
      begin = end + 1;
    }
  }
  PRORES_CHECK(!files.empty(), "--input: no input files");
  return files;
}

int run_train_tokenizer(const std::vector<std::string>& args, std::ostream& out) {
  std::vector<std::string> inputs;
  int64_t vocab_size = 0;
  std::string model_prefix, model_type = "bpe";
  data::TokenizerTrainingOptions opt;
  po::options_description desc("prores data train-tokenizer options");
  desc.add_options()("help", "print this help")("config", po::value<std::string>(), "INI file of options")
      ("input", po::value(&inputs)->composing()->required(), "input files, comma-separated (may repeat)")
      ("vocab-size", po::value(&vocab_size)->required(), "number of pieces")
      ("model-prefix", po::value(&model_prefix)->required(), "writes PREFIX.model and PREFIX.vocab")
      ("model-type", po::value(&model_type)->default_value(model_type), "bpe or unigram")
      ("json-key", po::value(&opt.json_key)->default_value(opt.json_key), "text field of JSON-lines inputs")
      ("input-sentence-size", po::value(&opt.input_sentence_size)->default_value(opt.input_sentence_size),
       "lines sampled for training (0: all)")
      ("character-coverage", po::value(&opt.character_coverage)->default_value(opt.character_coverage),
       "fraction of characters given their own piece (the rest fall back to bytes)")
      ("workers", po::value(&opt.num_threads)->default_value(default_workers()), "trainer threads");
  po::variables_map vm;
  if (!parse_options("data train-tokenizer", args, desc, vm)) {
    out << "Usage: prores data train-tokenizer --input F1,F2 --vocab-size V --model-prefix P [options]\n" << desc;
    return 0;
  }
  PRORES_CHECK(opt.num_threads > 0, "--workers must be positive, got ", opt.num_threads);
  opt.progress = {};  // to stderr
  const Clock::time_point start = Clock::now();
  data::train_tokenizer(split_inputs(inputs), vocab_size, model_prefix, model_type, opt);
  const data::Tokenizer tokenizer = data::Tokenizer::load(model_prefix + ".model");
  out << "train-tokenizer: wrote " << model_prefix << ".model and " << model_prefix << ".vocab (" << model_type
      << ", " << tokenizer.vocab_size() << " pieces, eos " << tokenizer.eos_id() << ") in " << std::fixed
      << std::setprecision(1) << seconds_since(start) << " s\n";
  return 0;
}

struct PreprocessOptions {
  std::vector<std::string> inputs;
  std::string tokenizer_model, output_prefix, dtype = "auto";
  data::DocumentFormat format;
  int workers = 1;
};

data::TokenDType choose_dtype(const std::string& name, int64_t vocab) {
  if (name == "auto") return vocab < 65500 ? data::TokenDType::U16 : data::TokenDType::I32;  // Megatron's rule
  if (name == "int32") return data::TokenDType::I32;
  PRORES_CHECK(name == "uint16", "--dtype must be auto, uint16 or int32, got '", name, "'");
  PRORES_CHECK(vocab <= 65536, "--dtype uint16 cannot hold the ", vocab, " ids of the tokenizer");
  return data::TokenDType::U16;
}

// ids[i] (=) the tokens of docs[i] followed by eos, computed on `workers` threads (this one included).
void tokenize_batch(const data::Tokenizer& tokenizer, const std::vector<std::string>& docs, int32_t eos,
                    int workers, std::vector<std::vector<int32_t>>& ids) {
  ids.resize(docs.size());
  // Chunks small enough for every worker to get several, large enough to keep the counter cold.
  const size_t chunk = std::clamp<size_t>(docs.size() / (8 * static_cast<size_t>(workers)), 1, kMaxChunkDocs);
  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  auto work = [&] {
    try {
      for (size_t begin; (begin = next.fetch_add(chunk)) < docs.size();) {
        for (size_t i = begin; i < std::min(begin + chunk, docs.size()); ++i) {
          tokenizer.encode(docs[i], ids[i]);
          ids[i].push_back(eos);
        }
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  const size_t extra = std::min(static_cast<size_t>(workers - 1), docs.size() - 1);
  std::vector<std::thread> threads;
  threads.reserve(extra);
  for (size_t t = 0; t < extra; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

int run_preprocess(const std::vector<std::string>& args, std::ostream& out) {
  PreprocessOptions o;
  std::vector<std::string> inputs;
  po::options_description desc("prores data preprocess options");
  desc.add_options()("help", "print this help")("config", po::value<std::string>(), "INI file of options")
      ("input", po::value(&inputs)->composing()->required(), "input files, comma-separated (may repeat)")
      ("tokenizer-model", po::value(&o.tokenizer_model)->required(), "SentencePiece .model file")
      ("output-prefix", po::value(&o.output_prefix)->required(), "writes PREFIX.bin and PREFIX.idx")
      ("json-key", po::value(&o.format.json_key)->default_value(o.format.json_key), "text field of JSON-lines inputs")
      ("document-per-file", po::bool_switch(&o.format.document_per_file), "each plain-text file is one document")
      ("workers", po::value(&o.workers)->default_value(default_workers()), "tokenizer threads")
      ("dtype", po::value(&o.dtype)->default_value(o.dtype),
       "token dtype: auto (uint16 below 65500 ids, else int32), uint16, int32");
  po::variables_map vm;
  if (!parse_options("data preprocess", args, desc, vm)) {
    out << "Usage: prores data preprocess --input FILES --tokenizer-model P.model --output-prefix OUT [options]\n"
        << desc;
    return 0;
  }
  PRORES_CHECK(o.workers > 0, "--workers must be positive, got ", o.workers);
  o.inputs = split_inputs(inputs);
  const data::Tokenizer tokenizer = data::Tokenizer::load(o.tokenizer_model);
  const int32_t eos = tokenizer.eos_id();
  PRORES_CHECK(eos >= 0, "--tokenizer-model: '", o.tokenizer_model, "' has no EOS piece");
  const data::TokenDType dtype = choose_dtype(o.dtype, tokenizer.vocab_size());
  data::DocumentReader reader(o.inputs, o.format);
  const std::filesystem::path out_dir = std::filesystem::path(o.output_prefix).parent_path();
  std::error_code ec;
  if (!out_dir.empty()) std::filesystem::create_directories(out_dir, ec);
  PRORES_CHECK(!ec, "--output-prefix: cannot create directory '", out_dir.string(), "': ", ec.message());
  data::IndexedDatasetWriter writer(o.output_prefix, dtype);

  const Clock::time_point start = Clock::now();
  Progress progress("preprocess", 0, "documents", {.total_bytes = static_cast<int64_t>(reader.total_bytes())});
  int64_t tokens = 0;
  std::vector<std::string> docs, next_docs;
  std::vector<std::vector<int32_t>> ids;
  bool have = reader.next(docs, kBatchBytes);
  PRORES_CHECK(have, "--input: no documents in ", o.inputs.size(), " input file(s)");
  uint64_t bytes_counted = 0;  // input bytes of the batches before this one
  while (have) {
    const uint64_t batch_bytes = reader.bytes_read() - bytes_counted;  // read before the prefetch starts
    bytes_counted = reader.bytes_read();
    std::future<bool> prefetch = std::async(std::launch::async, [&] { return reader.next(next_docs, kBatchBytes); });
    tokenize_batch(tokenizer, docs, eos, o.workers, ids);
    for (size_t i = 0; i < docs.size(); ++i) {
      writer.add_sequence(ids[i].data(), static_cast<int64_t>(ids[i].size()));
      tokens += static_cast<int64_t>(ids[i].size());
    }
    progress.advance(static_cast<int64_t>(docs.size()), static_cast<int64_t>(batch_bytes));
    have = prefetch.get();
    std::swap(docs, next_docs);
  }
  writer.finish();
  progress.finish();
  const double secs = seconds_since(start), mb = static_cast<double>(reader.bytes_read()) / 1e6;
  out << std::fixed << std::setprecision(2) << "preprocess: " << progress.done() << " documents (" << reader.skipped()
      << " empty skipped), " << tokens << " tokens (EOS included) from " << mb << " MB of text in " << secs
      << " s: " << mb / std::max(secs, 1e-9) << " MB/s (--workers " << o.workers << ")\n"
      << "preprocess: wrote " << o.output_prefix << ".bin and " << o.output_prefix << ".idx ("
      << (dtype == data::TokenDType::U16 ? "uint16" : "int32") << ", vocabulary " << tokenizer.vocab_size()
      << ", padded " << data::padded_vocab_size(tokenizer.vocab_size()) << " for --make-vocab-size-divisible-by 128)\n";
  return 0;
}

}  // namespace

int run_data_command(const std::vector<std::string>& args, std::ostream& out) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    out << kUsage;
    return args.empty() ? 1 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "train-tokenizer") return run_train_tokenizer(rest, out);
  if (args[0] == "preprocess") return run_preprocess(rest, out);
  PRORES_FAIL("data: unknown subcommand '", args[0], "' (expected train-tokenizer or preprocess)");
}

}  // namespace prores
