// Raw documents for tokenizer training and preprocessing, read from plain text files (a document per
// blank-line-separated block, or per file) and JSON-lines files (*.jsonl / *.json, one object per line,
// the document in one string field, as Megatron-LM's tools/preprocess_data.py reads them).
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace prores::data {

struct DocumentFormat {
  std::string json_key = "text";   // the field of a JSON line that holds the document (--json-key)
  bool document_per_file = false;  // plain text: the whole file is one document (--document-per-file)
};

// Whether path is read as JSON lines (its name ends in .jsonl or .json) rather than plain text.
bool is_json_lines(const std::string& path);

// Decodes the string value of the top-level key of one JSON object (a line of a JSON-lines file) into
// *value (escapes \" \\ \/ \b \f \n \r \t and \uXXXX, surrogate pairs included, become UTF-8; the
// last occurrence of a repeated key wins, as in Python's json). The rest of the object is checked for
// well-formedness and skipped. Returns false with a one-line *error when the line is not a JSON object,
// the key is missing or its value is not a string.
bool json_string_field(std::string_view json, std::string_view key, std::string* value, std::string* error);

// Reads documents from files in order. Plain text: lines are joined with "\n"; blank (whitespace-only)
// lines separate documents; a trailing "\r" is dropped. JSON lines: blank lines are skipped, an empty
// string is an empty document (skipped and counted). Errors name the file (and line).
class DocumentReader {
 public:
  // Throws prores::Error naming a file that does not exist or cannot be read (before reading any).
  DocumentReader(std::vector<std::string> paths, DocumentFormat format);

  // Replaces docs with the next documents in input order, stopping once their text reaches max_bytes
  // (at least one document). Returns false (docs empty) when every file is exhausted.
  bool next(std::vector<std::string>& docs, size_t max_bytes);

  // Input bytes consumed so far (line terminators included).
  uint64_t bytes_read() const { return bytes_read_; }
  // The size of the input files together, which bytes_read() reaches at the end; 0 when an input is not a
  // regular file (a pipe).
  uint64_t total_bytes() const { return total_bytes_; }
  // Empty documents skipped so far.
  int64_t skipped() const { return skipped_; }

 private:
  // Reads the next document of the open file into doc; false at the end of the file.
  bool next_in_file(std::string& doc);
  bool next_text_block(std::string& doc);
  bool next_json_line(std::string& doc);

  std::vector<std::string> paths_;
  DocumentFormat format_;
  size_t file_ = 0;  // index of the open file in paths_ (== paths_.size() when done)
  bool open_ = false;
  std::ifstream in_;
  int64_t line_ = 0;
  std::string buffer_;
  uint64_t bytes_read_ = 0, total_bytes_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace prores::data
