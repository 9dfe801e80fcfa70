// Plain-text and JSON-lines document reading (see text_documents.h); JSON lines are parsed with nlohmann-json
// (core/json_input.h) under Python's rule for repeated keys (the last one wins).
#include "data/text_documents.h"

#include <filesystem>
#include <iterator>

#include "core/check.h"
#include "core/json_input.h"

namespace prores::data {

namespace {

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos; }

}  // namespace

bool is_json_lines(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".jsonl" || ext == ".json";
}

bool json_string_field(std::string_view json, std::string_view key, std::string* value, std::string* error) {
  nlohmann::ordered_json object;
  if (!try_parse_json(json, &object, error, RepeatedKeys::LastWins)) return false;
  if (!object.is_object()) {
    *error = std::string("expected '{': a JSON-lines record is an object, not ") + json_kind_name(object);
    return false;
  }
  const auto field = object.find(key);
  if (field == object.end()) {
    *error = "no \"" + std::string(key) + "\" key";
    return false;
  }
  if (!field->is_string()) {
    *error = "the value of \"" + std::string(key) + "\" is not a string but " + json_kind_name(*field);
    return false;
  }
  *value = std::move(field->get_ref<std::string&>());  // the document moves out of the parsed line
  return true;
}

DocumentReader::DocumentReader(std::vector<std::string> paths, DocumentFormat format)
    : paths_(std::move(paths)), format_(std::move(format)) {
  PRORES_CHECK(!paths_.empty(), "--input: no input files");
  for (const std::string& p : paths_) {
    std::ifstream probe(p, std::ios::binary);
    PRORES_CHECK(probe.good() && !std::filesystem::is_directory(p), "--input: cannot read '", p, "'");
  }
  for (const std::string& p : paths_) {
    if (!std::filesystem::is_regular_file(p)) {
      total_bytes_ = 0;
      break;
    }
    total_bytes_ += std::filesystem::file_size(p);
  }
}

bool DocumentReader::next(std::vector<std::string>& docs, size_t max_bytes) {
  docs.clear();
  size_t bytes = 0;
  std::string doc;
  while (file_ < paths_.size() && (docs.empty() || bytes < max_bytes)) {
    if (!open_) {
      in_ = std::ifstream(paths_[file_], std::ios::binary);
      PRORES_CHECK(in_.good(), "--input: cannot read '", paths_[file_], "'");
      open_ = true;
      line_ = 0;
    }
    if (next_in_file(doc)) {
      bytes += doc.size();
      docs.push_back(std::move(doc));
      doc = std::string();
    } else {
      PRORES_CHECK(!in_.bad(), "--input: error reading '", paths_[file_], "'");
      in_.close();
      open_ = false;
      ++file_;
    }
  }
  return !docs.empty();
}

bool DocumentReader::next_in_file(std::string& doc) {
  if (is_json_lines(paths_[file_])) return next_json_line(doc);
  if (!format_.document_per_file) return next_text_block(doc);
  if (line_ > 0) return false;
  line_ = 1;
  doc.assign(std::istreambuf_iterator<char>(in_), std::istreambuf_iterator<char>());
  bytes_read_ += doc.size();
  if (!doc.empty()) return true;
  ++skipped_;
  return false;
}

bool DocumentReader::next_text_block(std::string& doc) {
  doc.clear();
  while (std::getline(in_, buffer_)) {
    ++line_;
    bytes_read_ += buffer_.size() + (in_.eof() ? 0 : 1);
    if (is_blank(buffer_)) {
      if (!doc.empty()) return true;
      continue;
    }
    if (buffer_.back() == '\r') buffer_.pop_back();
    if (!doc.empty()) doc += '\n';
    doc += buffer_;
  }
  return !doc.empty();
}

bool DocumentReader::next_json_line(std::string& doc) {
  while (std::getline(in_, buffer_)) {
    ++line_;
    bytes_read_ += buffer_.size() + (in_.eof() ? 0 : 1);
    if (is_blank(buffer_)) continue;
    std::string error;
    PRORES_CHECK(json_string_field(buffer_, format_.json_key, &doc, &error), "--input: '", paths_[file_], "' line ",
                 line_, ": ", error);
    if (!doc.empty()) return true;
    ++skipped_;
  }
  return false;
}

}  // namespace prores::data
